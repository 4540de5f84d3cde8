"""A small built corpus of patterned songs (learnable in a few steps) for the training tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from corpus_fixtures import write_song

REPO = Path(__file__).resolve().parents[1]
ARPEGGIO = [0, 4, 7, 12, 7, 4]  # a pattern a tiny model picks up within tens of steps
PROGRAMS = (0, 40)  # piano and violin families


def write_songs(folder: Path, count: int, repeats: int = 16, first_pitch: int = 48) -> list[Path]:
    """``count`` one-track songs, each an arpeggio repeated ``repeats`` times from its own root."""
    return [
        write_song(folder / f"song{k:02d}.mid", [first_pitch + k + step for step in ARPEGGIO] * repeats,
                   program=PROGRAMS[k % len(PROGRAMS)], beats_per_note=0.25)
        for k in range(count)
    ]


def build_song_corpus(root: Path, count: int = 16) -> Path:
    """A corpus folder (``build_corpus`` output) with a validation split guaranteed non-empty."""
    from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
    from musenet_hf.data.corpus import build_corpus

    write_songs(root / "songs", count)
    result = build_corpus([root / "songs"], root / "corpus", MuseNetTokenizer(), validation_fraction=0.3, test_fraction=0.0)
    assert result.rows["validation"] > 0 and result.rows["train"] > 0
    return root / "corpus"


def tiny_args(data: Path, out: Path, **overrides) -> list[str]:
    """train.py flags for a deterministic tiny CPU run (dropout 0, no tqdm)."""
    flags = {
        "data": data, "output_dir": out, "preset": "tiny", "context_length": 128, "dropout": 0.0,
        "per_device_batch_size": 4, "max_steps": 16, "warmup_steps": 2, "learning_rate": 3e-3,
        "logging_steps": 1, "eval_steps": 0, "save_steps": 4, "mixed_precision": "no", "cpu": True,
        "disable_tqdm": True, "report_to": "none", "max_eval_windows": 16,
    }
    flags.update(overrides)
    argv = []
    for key, value in flags.items():
        argv += [f"--{key}", str(value)]
    return argv


def run_env(key_file: Path) -> dict:
    """Environment for a child training process: this checkout first, one thread, a test-only checkpoint key."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MUSENET_HF_CHECKPOINT_KEY_FILE=str(key_file))
    return env


def train_cli(argv: list[str], key_file: Path, launcher: list[str] | None = None, **popen) -> subprocess.Popen:
    cmd = (launcher or [sys.executable]) + [str(REPO / "train.py"), *argv]
    return subprocess.Popen(cmd, env=run_env(key_file), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
