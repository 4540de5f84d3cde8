"""Small helpers several stages share: argument parsing for the scripts and commands, file hashing."""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Sequence

from transformers import HfArgumentParser

HASH_CHUNK_BYTES = 1 << 20  # read files in 1 MiB chunks: constant memory for any file size
PACKAGE_LOGGER = "musenet_hf"  # every module's logger (``logging.get_logger(__name__)``) is a child of this one


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in ``HASH_CHUNK_BYTES`` chunks.

    Args:
        path (`str` or `os.PathLike`): the file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_dataclass_args(parser: HfArgumentParser, argv: Sequence[str]) -> tuple:
    """The dataclasses of ``parser`` from ``argv``: one lone ``.json`` argument is a file holding every
    option as one JSON object; anything else is parsed as command-line flags.

    Args:
        parser (`HfArgumentParser`): the parser of the script's dataclasses.
        argv (`Sequence[str]`): the arguments, without the program name.
    """
    argv = list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return tuple(parser.parse_json_file(argv[0]))
    return tuple(parser.parse_args_into_dataclasses(argv, look_for_args_file=False))


def show_progress_logs(level: int = logging.INFO) -> None:
    """For scripts and CLI commands: the package's log records at ``level`` and above go to stderr, one plain line each.

    Library code only logs; which records a user sees is the entry point's decision.

    Args:
        level (`int`, defaults to `logging.INFO`): the lowest level shown.
    """
    logger = logging.getLogger(PACKAGE_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # shown once, not again by a root handler an application may have set up
    logger.setLevel(level)
