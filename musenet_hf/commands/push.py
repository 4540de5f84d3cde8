"""``musenet-hf push``: a checkpoint folder to the Hugging Face Hub, with a model card and a sample MIDI
(the same as ``push_to_hub.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def register(sub) -> None:
    # The options are PushArguments', parsed by push_to_hub.py's parser: this subparser only collects them.
    # prefix_chars="+" makes it treat "--repo-id", "--help" ... as plain strings for that parser, which a
    # REMAINDER argument alone does not do when the first of them starts with "-".
    p = sub.add_parser("push", add_help=False, prefix_chars="+",
                       help="push a checkpoint to the Hugging Face Hub (see `musenet-hf push --help`)")
    p.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args) -> int:
    return push_main(args.argv, prog="musenet-hf push")


def push_main(argv: Sequence[str] | None, prog: str) -> int:
    """Parse the push options, push, and print where the files went (or a one-line error); the exit status.

    Args:
        argv (`Sequence[str]`, *optional*): the options (see ``PushArguments``); default ``sys.argv[1:]``.
        prog (`str`): the program name in usage and error messages.
    """
    from ..hub.arguments import parse_push_args
    from ..hub.errors import PUSH_ERRORS
    from ..hub.push import push_checkpoint
    from ..modeling.adapters import AdapterBaseError

    args = parse_push_args(argv, prog=prog)
    try:
        result = push_checkpoint(**vars(args))
    except (*PUSH_ERRORS, AdapterBaseError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    print(f"pushed {len(result.files)} files to {result.repo_id}@{result.revision}: {result.commit_url}")
    return 0
