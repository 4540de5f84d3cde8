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


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLED, reason="no checkpoint in musenet_hf/default_model (the trained default model is committed there)")
def test_a_built_wheel_ships_the_default_model(tmp_path):
    """Build the wheel from a copy of the sources (the checkout is left untouched) and look inside it."""
    import shutil
    import zipfile

    assert musenet_hf.DEFAULT_MODEL_DIR == Path(musenet_hf.__file__).parent / "default_model"
    src = tmp_path / "src"
    shutil.copytree(ROOT / "musenet_hf", src / "musenet_hf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)]
    built = subprocess.run(pip_wheel, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("musenet_hf-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"musenet_hf/default_model/{p.name}" for p in musenet_hf.DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert expected <= shipped, sorted(expected - shipped)


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

