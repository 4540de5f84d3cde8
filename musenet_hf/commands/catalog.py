"""``musenet-hf styles`` and ``musenet-hf instruments``: what a checkpoint's vocabulary knows."""

from __future__ import annotations

import sys


def register(sub) -> None:
    for name, help_text in (("styles", "list the styles a model knows"), ("instruments", "list the instrument families")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--model", default=None, help="checkpoint directory or Hub id (default: the bundled model)")
        p.set_defaults(func=run, listing=name)


def run(args) -> int:
    from transformers import AutoTokenizer

    from .. import DEFAULT_MODEL_DIR

    try:
        tok = AutoTokenizer.from_pretrained(str(args.model or DEFAULT_MODEL_DIR))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not hasattr(tok, "musenet_vocab"):
        print(f"error: {args.model} does not hold a MuseNetTokenizer", file=sys.stderr)
        return 2
    for name in getattr(tok, args.listing):
        print(name)
    return 0
