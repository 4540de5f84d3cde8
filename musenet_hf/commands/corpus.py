"""``musenet-hf corpus build DIR... --out PATH``: build a tokenized corpus; ``musenet-hf corpus info PATH``: show its card."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("corpus", help="build or inspect a tokenized MIDI corpus (datasets on disk)")
    actions = p.add_subparsers(dest="action", required=True)
    b = actions.add_parser("build", help="tokenize folders of MIDI into train/validation/test splits")
    b.add_argument("inputs", nargs="+", metavar="DIR", help="folders searched recursively for .mid/.midi/.kar (or single files)")
    b.add_argument("--out", required=True, help="output folder (dataset/, tokenizer/, corpus_card.json, skipped.jsonl)")
    b.add_argument("--styles", default=None, help="style map: .json {file or folder: style} or .csv path,style (default: all 'unknown')")
    b.add_argument("--num-proc", type=int, default=1, help="worker processes for tokenization")
    b.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the package's tokenizer_files)")
    b.add_argument("--validation", type=float, default=0.05, help="share of pieces in the validation split (by content hash)")
    b.add_argument("--test", type=float, default=0.05, help="share of pieces in the test split (by content hash)")
    b.add_argument("--licences", default=None, help="JSON {source folder name: licence} recorded in the corpus card")
    b.add_argument("--force", action="store_true", help="rebuild even if the inputs match the previous build")
    b.set_defaults(func=run_build)
    i = actions.add_parser("info", help="print the card of a built corpus")
    i.add_argument("path", help="a folder written by `corpus build`")
    i.set_defaults(func=run_info)


def run_build(args) -> int:
    from ..data.corpus import build_corpus, format_card_table
    from .tokenize import load_tokenizer

    licences = None
    if args.licences:
        with open(args.licences, encoding="utf-8") as fh:
            licences = json.load(fh)
    try:
        result = build_corpus(
            args.inputs, args.out, load_tokenizer(args.tokenizer), styles=args.styles, num_proc=args.num_proc,
            validation_fraction=args.validation, test_fraction=args.test, licences=licences, force=args.force,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_card_table(result.card))
    state = "reused (inputs unchanged)" if result.reused else "built"
    print(f"{state}: {result.out}  ({result.total} pieces, {result.skipped} skipped: see {result.out / 'skipped.jsonl'})")
    if result.added_styles:
        print(f"styles added to the tokenizer: {', '.join(result.added_styles)} (saved in {result.out / 'tokenizer'})")
    return 0


def run_info(args) -> int:
    from pathlib import Path

    from ..data.corpus import format_card_table

    card = Path(args.path) / "corpus_card.json"
    if not card.is_file():
        print(f"error: {args.path} has no corpus_card.json (not a built corpus)", file=sys.stderr)
        return 1
    print(format_card_table(json.loads(card.read_text())))
    return 0
