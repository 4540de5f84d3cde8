"""musenet_hf.hub.audit: the core modules that travel as Hub remote code import only each other and
the allow-list ``REMOTE_CODE_DEPENDENCIES`` (the one list; this test uses it, it keeps none of its own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from musenet_hf.hub.audit import REMOTE_CODE_DEPENDENCIES, check_remote_module, remote_code_files

CORE = Path(__file__).resolve().parents[1] / "musenet_hf" / "core"


def test_travelling_files_are_the_core_closure_and_pass_the_audit():
    files = remote_code_files()  # raises on any module that could not travel
    names = {p.name for p in files}
    assert {"pipeline_midi_generation.py", "tokenization_musenet.py", "configuration_musenet_remote.py",
            "vocabulary.py", "codec.py", "midi_io.py", "errors.py", "logits_processors.py", "sliding_window.py"} <= names
    assert {p.parent for p in files} == {CORE}  # one flat folder, as transformers copies it
    assert "__init__.py" not in names


@pytest.mark.parametrize("module", sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py"))
def test_every_core_module_could_travel(module):
    check_remote_module(CORE / module)


@pytest.mark.parametrize("source, problem", [
    ("from . import encoding\n", "from . import"),
    ("import musenet_hf.core.vocabulary\n", "absolute name"),
    ("from musenet_hf import Vocabulary\n", "absolute name"),
    ("def f():\n    import requests\n", "requests"),
    ("from datasets import Dataset\n", "datasets"),
])
def test_audit_rejects_imports_that_break_trust_remote_code(tmp_path, source, problem):
    module = tmp_path / "pipeline_x.py"
    module.write_text("import json\nimport torch\nfrom .encoding import Vocabulary\n" + source)
    with pytest.raises(ValueError, match=r"pipeline_x\.py:[45] .*" + re.escape(problem)):
        check_remote_module(module)


@pytest.mark.parametrize("package", REMOTE_CODE_DEPENDENCIES)
def test_audit_accepts_the_allowed_packages(tmp_path, package):
    module = tmp_path / "ok.py"
    module.write_text(f"from __future__ import annotations\nimport os.path\nimport {package}\nfrom .codec import x\n")
    check_remote_module(module)
