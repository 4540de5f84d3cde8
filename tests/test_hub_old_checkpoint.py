"""A checkpoint pushed before the restructuring still loads: with the package (no trust_remote_code) and
without it (trust_remote_code=True runs the old remote code the repo carries), generating MIDI both ways.

The old package is ``git archive``d from ``PRE_RESTRUCTURE`` (main before the restructuring) into a
temporary folder; a child with only that folder on its path builds a tiny checkpoint and pushes it with the
old ``push_to_hub.py`` to the local Hub of ``hub_server.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile

import pytest
from hub_fixtures import BLOCK_PACKAGE, REPO_ROOT, TOKEN, USER, child_env, count_notes, run_child

PRE_RESTRUCTURE = "5d5cba0"  # main before the restructuring (the commit of the golden record)
OLD_REPO = f"{USER}/pushed-before-the-restructuring"
# Sampling passed explicitly, so the old remote code and the new package draw from the same distribution
# whatever their defaults; with the same seed they must then write the same notes.
SAMPLING = "seconds=2.0, seed=5, temperature=1.0, top_k=0, top_p=0.95, style='pop', instruments=['piano', 'bass']"


def export_old_package(dest) -> None:
    """The package and push_to_hub.py at PRE_RESTRUCTURE into ``dest``; skips when git history is absent."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot export the package as it was before the restructuring")
    found = subprocess.run(["git", "-C", str(REPO_ROOT), "cat-file", "-e", f"{PRE_RESTRUCTURE}^{{commit}}"],
                           capture_output=True)
    if found.returncode != 0:
        pytest.skip(f"commit {PRE_RESTRUCTURE} (main before the restructuring) is not in this checkout's git history")
    archive = dest.parent / "old.tar"
    subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "-o", str(archive), PRE_RESTRUCTURE, "musenet_hf", "push_to_hub.py"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


@pytest.fixture(scope="module")
def old_push(hub_server, tmp_path_factory):
    """Push a tiny checkpoint with the old package; returns the repo's files on the local Hub."""
    old = tmp_path_factory.mktemp("old-package")
    export_old_package(old)
    root = tmp_path_factory.mktemp("old-push")
    code = f"""
        import json, sys
        import musenet_hf
        assert musenet_hf.__file__.startswith({str(old)!r}), musenet_hf.__file__
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
        from musenet_hf import MuseNetTokenizer
        from push_to_hub import main
        tok = MuseNetTokenizer()
        config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        GPT2LMHeadModel(config).save_pretrained("ckpt")
        tok.save_pretrained("ckpt")
        record = {{"corpus": {{"sources": [{{"name": "Old", "styles": {{"pop": 3}}, "licence": "CC0-1.0"}}]}}, "metrics": {{}}}}
        with open("ckpt/training_record.json", "w") as fh:
            json.dump(record, fh)
        print(json.dumps(main(["ckpt", "--repo-id", {OLD_REPO!r}, "--sample-seconds", "1"])))
    """
    assert run_child(code, child_env(hub_server, root / "home", TOKEN, PYTHONPATH=str(old)), root) == 0
    return hub_server.state.repos[OLD_REPO].resolve("main").files


def generate(home, cwd, env, trust: bool, prelude: str = "", extra: str = "") -> dict:
    code = prelude + f"""
import json, sys
from transformers import pipeline
{"" if trust else "import musenet_hf"}
generate = pipeline("midi-generation", model={OLD_REPO!r}{", trust_remote_code=True" if trust else ""})
piece = generate({SAMPLING}{extra})[0]
piece["midi"].save("piece.mid")
print(json.dumps({{"pipeline": type(generate).__module__, "tokenizer": type(generate.tokenizer).__module__,
                  "notes": piece["notes"], "package": sorted(m for m in sys.modules if m.startswith("musenet_hf"))[:1]}}))
"""
    return run_child(code, env, cwd)


@pytest.mark.slow
def test_old_checkpoint_loads_with_and_without_the_package(old_push, hub_server, tmp_path):
    assert "events.py" in old_push and "codec.py" not in old_push  # really the old layout's remote code
    (tmp_path / "pkg").mkdir()
    (tmp_path / "nopkg").mkdir()
    # the old remote code predates int8 decoding, the lean decoding loop, the ensemble density rule and the key
    # repeat guard: it samples float logits through generate(). The package is asked to do the same, so that one
    # seed draws the same ids.
    with_package = generate(tmp_path / "pkg", tmp_path / "pkg", child_env(hub_server, tmp_path / "pkg" / "home"), trust=False,
                            extra=", quantize=False, lean_decoding=False, density_guard=False, repeat_guard=False")
    env = child_env(hub_server, tmp_path / "nopkg" / "home")
    env.pop("PYTHONPATH")
    without = generate(tmp_path / "nopkg", tmp_path / "nopkg", env, trust=True, prelude=BLOCK_PACKAGE)

    assert with_package["pipeline"] == "musenet_hf.core.pipeline_midi_generation"
    assert with_package["tokenizer"] == "musenet_hf.core.tokenization_musenet"
    assert without["pipeline"].startswith("transformers_modules.") and without["package"] == []
    assert with_package["notes"] == count_notes(tmp_path / "pkg" / "piece.mid") > 0
    assert without["notes"] == count_notes(tmp_path / "nopkg" / "piece.mid") > 0
    # The new package and the old remote code encode, sample and decode alike: the same notes.
    assert (tmp_path / "pkg" / "piece.mid").read_bytes() == (tmp_path / "nopkg" / "piece.mid").read_bytes()
