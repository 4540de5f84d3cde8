"""The remote-code import audit: which ``core`` modules travel with a pushed checkpoint, and the check
that each of them loads as remote code for a user without the package.

transformers copies remote code flat next to the checkpoint and follows only ``from .module import name``
between the copies, so a travelling module may import the other travelling modules relatively and, by
absolute name, only the standard library and ``REMOTE_CODE_DEPENDENCIES`` (THE allow-list: what a user
without the package is told to install; the tests use it too).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from transformers import Pipeline
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.pipelines import PIPELINE_REGISTRY

from ..core.configuration_musenet_remote import MuseNetRemoteConfig
from ..core.tokenization_musenet import MuseNetTokenizer

TASK = "midi-generation"
# Third-party imports remote code may use: what a user without the package is told to install.
REMOTE_CODE_DEPENDENCIES = ("transformers", "tokenizers", "torch", "numpy", "mido")
PACKAGE = __name__.split(".")[0]


def registered_pipeline_class() -> type[Pipeline]:
    """The pipeline class ``import musenet_hf`` registered for ``TASK``."""
    return PIPELINE_REGISTRY.supported_tasks[TASK]["impl"]


def remote_code_files() -> list[Path]:
    """The package modules a repo needs for ``trust_remote_code`` loading, sorted by name: the pipeline,
    tokenizer and config modules and everything they import relatively.

    Raises:
        `ValueError`: a module would not load as remote code (see ``check_remote_module``).
    """
    roots = [registered_pipeline_class(), MuseNetTokenizer, MuseNetRemoteConfig]
    files: dict[str, Path] = {}
    for cls in roots:
        root = Path(sys.modules[cls.__module__].__file__)
        for path in [root, *map(Path, get_relative_import_files(str(root)))]:
            files[path.name] = path
    for path in files.values():
        check_remote_module(path)
    return [files[name] for name in sorted(files)]


def check_remote_module(path: Path) -> None:
    """Check that a module would load as remote code.

    Args:
        path (`Path`): the module's source file.

    Raises:
        `ValueError`: naming the file, the line and the import transformers would not follow or a user may
            lack (the package itself, anything beyond the standard library and ``REMOTE_CODE_DEPENDENCIES``).
    """
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        problem = remote_import_problem(node) if isinstance(node, (ast.Import, ast.ImportFrom)) else None
        if problem:
            raise ValueError(f"{path.name}:{node.lineno} cannot travel as remote code: {problem}")


def remote_import_problem(node: ast.Import | ast.ImportFrom) -> str | None:
    """Why an import statement cannot travel as remote code, or None when it can.

    Args:
        node (`ast.Import` or `ast.ImportFrom`): the statement.
    """
    if isinstance(node, ast.ImportFrom) and node.level:
        if node.module is None:
            return "`from . import ...` is not followed by transformers' remote-code loader; use `from .module import name`"
        return None
    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
    bad = {name.split(".")[0] for name in names} - set(REMOTE_CODE_DEPENDENCIES) - set(sys.stdlib_module_names)
    if not bad:
        return None
    if PACKAGE in bad:
        return "imports the package by absolute name; remote code may import it only relatively"
    return f"imports {', '.join(sorted(bad))}, not among {', '.join(REMOTE_CODE_DEPENDENCIES)}"
