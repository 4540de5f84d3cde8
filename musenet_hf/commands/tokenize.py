"""``musenet-hf tokenize FILE``: encode a MIDI file, print a summary and its first events, write it back."""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_TOKENIZER = Path(__file__).resolve().parents[2] / "tokenizer_files"
PREVIEW_TOKENS = 40  # enough to show the header and the first few notes


def register(sub) -> None:
    p = sub.add_parser("tokenize", help="encode a MIDI file to MuseNet tokens and decode it back")
    p.add_argument("file", help="a .mid file")
    p.add_argument("--style", default=None, help="style token for the header (default: unknown)")
    p.add_argument("--out", default=None, help="write the decoded MIDI here")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the package's tokenizer_files)")
    p.add_argument("--show", type=int, default=PREVIEW_TOKENS, help="how many tokens to print")
    p.set_defaults(func=run)


def load_tokenizer(path: str | None):
    from ..core.tokenization_musenet import MuseNetTokenizer

    if path is None and DEFAULT_TOKENIZER.is_dir():
        path = str(DEFAULT_TOKENIZER)
    return MuseNetTokenizer.from_pretrained(path) if path else MuseNetTokenizer()


def run(args) -> int:
    from ..core.errors import MidiError

    tok = load_tokenizer(args.tokenizer)
    try:
        score = tok.read_score(args.file)
        ids = tok.encode_score(score, args.style)
    except (MidiError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    families = sorted({tok.instruments[n.family] for n in score.notes})
    notes = len(score.notes)
    print(f"file:         {args.file}")
    print(f"notes:        {notes}")
    print(f"tokens:       {len(ids)}")
    print(f"tokens/note:  {len(ids) / notes:.3f}" if notes else "tokens/note:  -")
    print(f"seconds:      {score.seconds:.2f}")
    print(f"instruments:  {', '.join(families) or '-'}")
    print(f"first events: {tok.decode(ids[: args.show])}")
    if args.out:
        tok.decode_midi(ids).save(args.out)
        print(f"wrote {args.out}")
    return 0
