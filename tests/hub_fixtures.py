"""Helpers of the Hub tests: tiny checkpoints with a training record, and child processes that talk to the
local Hub of ``hub_server.py`` (its fixture, ``hub_server``, is in conftest.py).

huggingface_hub reads HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE at import, so everything that talks to the
Hub runs in a fresh ``python`` subprocess with those set; the server runs in a thread of the test process,
so tests can also inspect what was committed. Users without the package are simulated by a child whose
import system refuses ``musenet_hf`` (it is pip-installed in editable mode here, so leaving it off
PYTHONPATH is not enough).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hub_server import HubServer
from pipeline_fixtures import save_tiny_checkpoint
from safetensors.torch import load_file

from musenet_hf.hub.checkpoint import TRAINING_RECORD

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN, USER = "hf_test_alice", "alice"
OTHER_TOKEN = "hf_test_bob"  # a valid token of a user who may not write to alice's repos
HUB_TOKENS = {TOKEN: USER, OTHER_TOKEN: "bob"}
SAMPLE_SECONDS = 1.0  # keeps the sample generation of each push well under a second for the tiny model
CHILD_TIMEOUT_S = 300
# Makes `import musenet_hf` fail in a child, as for a user who never installed the package.
BLOCK_PACKAGE = """
import sys
class _NoMusenetHf:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "musenet_hf":
            raise ModuleNotFoundError(f"No module named {name!r} (this user does not have the package)")
sys.meta_path.insert(0, _NoMusenetHf())
"""

# A training record as train.py writes it, its corpus being a corpus card as build_corpus writes it.
RECORD = {
    "corpus": {"sources": [{"name": "TinyCorpus", "files": 12, "hours": 0.4, "notes": 9000, "tokens": 50000,
                            "styles": {"pop": 8, "jazz": 4}, "licence": "CC-BY-4.0"}],
               "rows": {"train": 10, "validation": 2}, "skipped": 2, "skipped_reasons": {"no notes": 2},
               "totals": {"files": 12, "hours": 0.4, "notes": 9000, "tokens": 50000}},
    "training_args": {"learning_rate": 0.0006, "seed": 0, "per_device_batch_size": 8, "output_dir": "/home/me/runs/x",
                      "data": "/home/me/midi"},
    "preset": "tiny",
    "metrics": {"eval_loss": 2.75, "perplexity": 15.64, "bits_per_note": 12.34, "baseline_bits_per_note": 20.5},
    "train_seconds": 5400.0,
    "steps": 1200,
    "tokens": 4915200,
    "hardware": "2 CPU cores",
    "styles": ["unknown", "pop", "jazz", "bach"],
    "instruments": ["piano", "bass"],
}


def make_checkpoint(path: Path, seed: int = 0, record: dict | None = None) -> Path:
    """A tiny random checkpoint in train.py's layout, with a training record."""
    save_tiny_checkpoint(path, seed=seed)
    (path / TRAINING_RECORD).write_text(json.dumps(RECORD if record is None else record))
    return path


def fingerprint(checkpoint: Path) -> float:
    """A number that differs between differently seeded checkpoints: the sum of the token embeddings."""
    return float(load_file(checkpoint / "model.safetensors")["transformer.wte.weight"].double().sum())


def child_env(server: HubServer | None, home: Path, token: str | None = None, **extra) -> dict:
    """Environment of a child process: this worktree's package first, a private HF_HOME, no stray HF_*;
    the local Hub as endpoint (``server=None``: the real Hub)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(home), PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error", TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    if server is not None:
        env["HF_ENDPOINT"] = server.url
    if token:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env


def offline_env(home: Path) -> dict:
    """A child environment for offline loading from the cache in ``home``."""
    # A closed port as endpoint: any request that slipped past offline mode would fail loudly.
    return child_env(None, home, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")


def run_child(code: str, env: dict, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line last, which is returned."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT_S)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def count_notes(path: Path) -> int:
    """Sounding note-ons in a MIDI file, read with mido."""
    import mido

    midi = mido.MidiFile(path)
    return sum(1 for track in midi.tracks for msg in track if msg.type == "note_on" and msg.velocity > 0)
