"""The options of a push: ``PushArguments`` and their command line (``push_to_hub.py`` and ``musenet-hf push``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..utils import parse_dataclass_args
from .sample import DEFAULT_SAMPLE_SECONDS

USAGE = "CHECKPOINT_DIR --repo-id NAME [--private] [--revision R] [--commit-message M] [options]"


@dataclass
class PushArguments:
    """``push_to_hub.py CHECKPOINT_DIR --repo-id NAME [options]`` (or one .json file with these keys)."""

    checkpoint_dir: str = field(metadata={"help": "checkpoint folder written by train.py"})
    repo_id: str = field(metadata={"help": "Hub repo to push to: user/name or org/name (created if missing)"})
    private: bool = field(default=False, metadata={"help": "create the repo private (an existing repo keeps its visibility)"})
    revision: str | None = field(default=None, metadata={"help": "branch to commit to, created from main if missing"})
    commit_message: str | None = field(default=None, metadata={"help": "commit message; unset: names the checkpoint folder"})
    token: str | None = field(
        default=None, metadata={"help": "write token; unset: HF_TOKEN or `hf auth login` (which keep it out of shell history)"})
    sample_seconds: float = field(default=DEFAULT_SAMPLE_SECONDS, metadata={"help": "seconds of music in sample.mid"})
    sample_seed: int = field(default=0, metadata={"help": "seed of sample.mid"})
    sample_style: str | None = field(default=None, metadata={"help": "style of sample.mid; unset: the training data's most frequent"})
    sample_instruments: str | None = field(
        default=None, metadata={"help": "comma-separated instrument families of sample.mid; unset: the pipeline's default"})
    license: str | None = field(
        default=None, metadata={"help": "Hub licence id for the card; unset: the corpus sources' shared licence, else 'other'"})
    base_repo_id: str | None = field(
        default=None, metadata={"help": "for a LoRA adapter folder: the Hub repo of its base (checked to hold the weights "
                                "it was trained on); needed when the adapter names a local base folder"})


def push_parser(prog: str = "push_to_hub.py") -> HfArgumentParser:
    """The parser of ``PushArguments``.

    Args:
        prog (`str`, *optional*, defaults to "push_to_hub.py"): the program name its usage line shows.
    """
    parser = HfArgumentParser(PushArguments, prog=prog)
    parser.usage = f"{prog} {USAGE}"
    return parser


def parse_push_args(argv: Sequence[str] | None = None, prog: str = "push_to_hub.py") -> PushArguments:
    """``PushArguments`` from the command line: a leading CHECKPOINT_DIR is positional, a lone .json file
    holds all arguments.

    Args:
        argv (`Sequence[str]`, *optional*): the arguments without the program name; default ``sys.argv[1:]``.
        prog (`str`, *optional*, defaults to "push_to_hub.py"): the program name in usage and error messages.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and not (len(argv) == 1 and argv[0].endswith(".json")):
        argv = ["--checkpoint_dir", *argv]
    return parse_dataclass_args(push_parser(prog), argv)[0]
