"""A checkpoint folder as the Hub sees it: the files that must be there (``validate_checkpoint``), the
weights (one safetensors file or a sharded index with its shards), and what its training record says."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.tokenization_musenet import MuseNetTokenizer
from .errors import CheckpointIncompleteError

TRAINING_RECORD = "training_record.json"
# What a checkpoint folder must hold, with the writer to name when one is missing. Weights are checked
# separately: model.safetensors, or a sharded index plus the shards it lists.
REQUIRED_FILES = {
    "config.json": "model.save_pretrained",
    "generation_config.json": "model.save_pretrained",
    "tokenizer.json": "tokenizer.save_pretrained",
    "tokenizer_config.json": "tokenizer.save_pretrained",
    TRAINING_RECORD: "train.py",
}
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def validate_checkpoint(checkpoint_dir: str | os.PathLike) -> list[str]:
    """The checkpoint's files that go to the Hub (names relative to the folder).

    Only ``save_pretrained`` output and the training record are listed: optimizer and RNG states
    (pickles) never leave the machine.

    Args:
        checkpoint_dir (`str` or `os.PathLike`): a folder written by train.py.

    Raises:
        `CheckpointIncompleteError`: a required file is missing or unreadable; the message names it.
    """
    root = Path(checkpoint_dir)
    if not root.is_dir():
        raise CheckpointIncompleteError(f"checkpoint folder {root} does not exist")
    for name, writer in REQUIRED_FILES.items():
        if not (root / name).is_file():
            raise CheckpointIncompleteError(f"checkpoint folder {root} is incomplete: {name} is missing (written by {writer})")
    weights = weight_files(root)
    try:
        record = read_json(root / TRAINING_RECORD)
    except json.JSONDecodeError as err:
        raise CheckpointIncompleteError(f"checkpoint folder {root}: {TRAINING_RECORD} is not valid JSON ({err})") from err
    if not isinstance(record, dict):
        raise CheckpointIncompleteError(f"checkpoint folder {root}: {TRAINING_RECORD} must hold a JSON object")
    tokenizer_class = read_json(root / "tokenizer_config.json").get("tokenizer_class")
    if tokenizer_class != MuseNetTokenizer.__name__:
        raise CheckpointIncompleteError(
            f"checkpoint folder {root}: tokenizer_config.json names tokenizer_class {tokenizer_class!r}, "
            f"expected {MuseNetTokenizer.__name__!r} (save the tokenizer with MuseNetTokenizer.save_pretrained)"
        )
    return list(REQUIRED_FILES) + weights


def weight_files(root: Path) -> list[str]:
    """``model.safetensors``, or the index and every shard it lists.

    Args:
        root (`Path`): the checkpoint folder.

    Raises:
        `CheckpointIncompleteError`: naming the first weight file missing (and any pickled weights found instead).
    """
    if (root / WEIGHTS_FILE).is_file():
        return [WEIGHTS_FILE]
    if not (root / WEIGHTS_INDEX).is_file():
        pickled = [p.name for p in root.glob("*.bin")]
        hint = f" (found {', '.join(pickled)}: only safetensors weights are published)" if pickled else ""
        raise CheckpointIncompleteError(f"checkpoint folder {root} is incomplete: {WEIGHTS_FILE} is missing{hint}")
    shards = sorted(set(read_json(root / WEIGHTS_INDEX)["weight_map"].values()))
    for shard in shards:
        if not (root / shard).is_file():
            raise CheckpointIncompleteError(
                f"checkpoint folder {root} is incomplete: {shard} (listed in {WEIGHTS_INDEX}) is missing")
    return [WEIGHTS_INDEX] + shards


def corpus_sources(record: dict) -> list[dict]:
    """The corpus card's source entries in a training record (none when the record names no card).

    Args:
        record (`dict`): the checkpoint's ``training_record.json``.
    """
    corpus = record.get("corpus") or {}
    return [s for s in corpus.get("sources", []) if isinstance(s, dict)]


def trained_styles(record: dict) -> dict[str, int]:
    """Pieces per style over the corpus sources, most frequent first (the corpus card counts them).

    Args:
        record (`dict`): the checkpoint's ``training_record.json``.
    """
    counts: dict[str, int] = {}
    for source in corpus_sources(record):
        styles = source.get("styles") or {}
        for name, count in (styles.items() if isinstance(styles, dict) else ((name, 1) for name in styles)):
            counts[name] = counts.get(name, 0) + int(count)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def read_json(path: Path) -> dict:
    """A JSON file's content (UTF-8)."""
    return json.loads(path.read_text(encoding="utf-8"))
