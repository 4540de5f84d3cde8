"""The pipeline's modules travel to the Hub as remote code: package imports relative, third-party ones few."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "musenet_hf" / "core"
TRAVELLING = ["pipeline_midi_generation.py", "tokenization_musenet.py"]
ALLOWED_THIRD_PARTY = {"transformers", "tokenizers", "torch", "numpy", "mido"}


def imports_of(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield (node.module or "", node.level)
            if node.level and not node.module:
                raise AssertionError(f"{path.name}: `from . import x` is not followed when code is copied to the Hub")


def test_travelling_modules_import_only_what_travels():
    todo, seen = list(TRAVELLING), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for module, level in imports_of(PACKAGE / name):
            if level:
                todo.append(module.replace(".", "/") + ".py")
                continue
            top = module.split(".")[0]
            assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names or top == "__future__", (
                f"{name} imports {module}, which a Hub user may not have"
            )
    assert {"logits_processors.py", "sliding_window.py", "codec.py", "vocabulary.py"} <= seen
