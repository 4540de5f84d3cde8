"""Tokenization benchmark: tokens per note and notes/s for MuseNet's encoding, against MidiTok REMI.

    python bench/tokenize.py DIR [--limit N]

MidiTok's REMI (velocities, programs, tempos; one stream) runs on the same files when ``miditok`` and
``symusic`` are installed (``pip install -e .[bench]``). Files either side cannot read are left out of both.
"""

from __future__ import annotations

import sys

# This file's name shadows the standard library's ``tokenize`` whenever a script in bench/ runs, because
# Python puts the script's folder first on sys.path. Take that folder off; and when this file is being
# imported in the stdlib's place (by linecache, inspect...), hand the importer the real module instead.
_HERE = __file__.rsplit("/", 1)[0]
sys.path[:] = [p for p in sys.path if p not in ("", _HERE)]
if __name__ == "tokenize":
    import importlib

    del sys.modules["tokenize"]
    sys.modules["tokenize"] = importlib.import_module("tokenize")  # the import statement returns this one

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

# musenet_hf is imported inside the functions: when this file stands in for the stdlib module above,
# nothing heavy may run at import time.


def bench_musenet(files: list[Path]) -> dict:
    from musenet_hf import MuseNetTokenizer

    tok = MuseNetTokenizer()
    notes = tokens = 0
    start = time.perf_counter()
    for f in files:
        score = tok.read_score(f)
        tokens += len(tok.encode_score(score))
        notes += len(score.notes)
    return {"notes": notes, "tokens": tokens, "seconds": time.perf_counter() - start}


def bench_remi(files: list[Path]) -> dict | None:
    try:
        import symusic
        from miditok import REMI, TokenizerConfig
    except ImportError:
        return None
    remi = REMI(TokenizerConfig(use_velocities=True, use_programs=True, use_tempos=True, one_token_stream_for_programs=True))
    notes = tokens = 0
    start = time.perf_counter()
    for f in files:
        score = symusic.Score(str(f))
        tokens += len(remi.encode(score))
        notes += sum(len(t.notes) for t in score.tracks)
    return {"notes": notes, "tokens": tokens, "seconds": time.perf_counter() - start}


def readable(files: list[Path]) -> list[Path]:
    from musenet_hf import MidiError, MuseNetTokenizer

    tok = MuseNetTokenizer()
    ok = []
    for f in files:
        try:
            tok.read_score(f)
            ok.append(f)
        except MidiError:
            pass
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    parser.add_argument("--roundtrip", action="store_true", help="also measure the note-level round trip")
    args = parser.parse_args()
    files = readable(sorted(p for p in args.dir.rglob("*") if p.suffix.lower() in (".mid", ".midi"))[: args.limit])
    rows = [("musenet_hf (10 ms)", bench_musenet(files)), ("MidiTok REMI", bench_remi(files))]
    print(f"{len(files)} files from {args.dir}")
    print("| tokenizer | files | notes | tokens | tokens/note | notes/s |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        if r is not None:
            print(f"| {name} | {len(files)} | {r['notes']} | {r['tokens']} | {r['tokens'] / r['notes']:.3f} | {r['notes'] / r['seconds']:,.0f} |")
    ours, remi = rows[0][1], rows[1][1]
    if remi is not None:
        print(f"tokens/note ratio musenet_hf / REMI: {(ours['tokens'] / ours['notes']) / (remi['tokens'] / remi['notes']):.3f}")
        print(f"speed ratio musenet_hf / REMI (notes/s): {(ours['notes'] / ours['seconds']) / (remi['notes'] / remi['seconds']):.3f}")
    if args.roundtrip:
        from musenet_hf import MuseNetTokenizer
        from musenet_hf.evaluation.roundtrip import RoundTrip, roundtrip

        tok, total = MuseNetTokenizer(), RoundTrip()
        for f in files:
            total += roundtrip(tok, f)
        print(f"round trip: {total.kept}/{total.notes} notes kept ({100 * total.kept_fraction:.3f} %) within +-5 ms, same velocity bin")


if __name__ == "__main__":
    main()
