"""A checkpoint folder as the Hub sees it: the files that must be there (``validate_checkpoint``), the
weights (one safetensors file or a sharded index with its shards), whether it can be loaded at all
(``check_loadable``), and what its training record says."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.tokenization_musenet import MuseNetTokenizer
from .errors import CheckpointIncompleteError, CheckpointLoadError

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
EMBEDDING_TENSOR = "transformer.wte.weight"  # GPT-2's token embeddings: one row per vocabulary id


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


def check_loadable(checkpoint_dir: str | os.PathLike) -> None:
    """Fail early, with one clear error, on a local checkpoint folder that cannot be loaded as it is.

    Checks, in order: the weights files exist (``weight_files``); each is a complete safetensors file (its
    header and every tensor it lists lie within the file: an interrupted download or save leaves it short);
    config.json's ``vocab_size`` equals the rows of the token embeddings in the weights; and the folder's
    tokenizer (when it has one) has exactly ``vocab_size`` tokens. Reads only headers and small JSON files:
    the weights are memory-mapped, not loaded.

    Args:
        checkpoint_dir (`str` or `os.PathLike`): a full checkpoint folder (``save_pretrained`` output).

    Raises:
        `CheckpointLoadError`: naming the file and the problem.
    """
    from safetensors import SafetensorError, safe_open

    root = Path(checkpoint_dir)
    try:
        files = weight_files(root)
    except CheckpointIncompleteError as err:
        raise CheckpointLoadError(str(err)) from None
    config_path = root / "config.json"
    try:
        vocab_size = read_json(config_path).get("vocab_size")
    except (OSError, ValueError) as err:
        raise CheckpointLoadError(f"{config_path} cannot be read ({err})") from None
    embedding_rows = None
    for name in files:
        if name == WEIGHTS_INDEX:
            continue
        path = root / name
        try:
            with safe_open(str(path), framework="pt") as weights:
                if EMBEDDING_TENSOR in weights.keys():
                    embedding_rows = weights.get_slice(EMBEDDING_TENSOR).get_shape()[0]
        except (SafetensorError, OSError) as err:
            raise CheckpointLoadError(
                f"{path} is not a complete safetensors file ({path.stat().st_size} bytes; safetensors: {err}): "
                "it was probably cut short by an interrupted download or save; fetch or save it again"
            ) from None
    if embedding_rows is not None and vocab_size != embedding_rows:
        raise CheckpointLoadError(
            f"{config_path} says vocab_size {vocab_size} but the weights' token embeddings ({EMBEDDING_TENSOR}) "
            f"have {embedding_rows} rows: config.json and the weights are not from the same checkpoint"
        )
    if (root / "tokenizer_config.json").is_file():
        tokens = len(MuseNetTokenizer.from_pretrained(str(root)))
        if tokens != vocab_size:
            raise CheckpointLoadError(
                f"the tokenizer in {root} (tokenizer.json, tokenizer_config.json) has {tokens} tokens but {config_path} "
                f"says vocab_size {vocab_size}: the tokenizer is not the one this model was trained with"
            )


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
