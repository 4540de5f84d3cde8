"""The bundled checkpoint: pipeline("midi-generation") with no model, offline, makes a 20-second duet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import musenet_hf

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = (musenet_hf.DEFAULT_MODEL_DIR / "config.json").is_file()

GENERATE_OFFLINE = """
import json, musenet_hf
from transformers import pipeline
gen = pipeline("midi-generation")
r = gen(style="pop", instruments=["piano", "violin"], seconds=20, seed=0)[0]
print(json.dumps({"model": gen.model.name_or_path, "seconds": r["seconds"], "notes": r["notes"],
                  "instruments": r["instruments"], "tracks": len(r["midi"].tracks)}))
"""


def test_default_model_dir_is_package_data():
    assert musenet_hf.DEFAULT_MODEL_DIR == Path(musenet_hf.__file__).parent / "default_model"
    assert "default_model/*" in (ROOT / "pyproject.toml").read_text()


@pytest.mark.skipif(not BUNDLED, reason="no checkpoint in musenet_hf/default_model (the trained default model is committed there)")
def test_bundled_checkpoint_generates_twenty_seconds_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", GENERATE_OFFLINE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["model"]).resolve() == musenet_hf.DEFAULT_MODEL_DIR.resolve()
    assert abs(result["seconds"] - 20) <= 0.01 + 1e-9
    assert result["notes"] > 0
    assert set(result["instruments"]) <= {"piano", "violin"} and result["instruments"]
    assert result["tracks"] == 1 + len(result["instruments"])  # a tempo track, then one per instrument
