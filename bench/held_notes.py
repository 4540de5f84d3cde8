"""How long the pitched notes of one style's pieces are held, against that style's real pieces.

    python -m bench.held_notes                                  # bach piano, 3 seeds x 8 pieces of 30 s
    python -m bench.held_notes --no_guard duration              # the same with the duration guard off
    python -m bench.held_notes --style irish --instruments violin --corpus ../data/default_corpus

Each seed is one batched call, ``gen(style=S, instruments=I, seconds=30, num_return_sequences=8, seed=k)``, on
the bundled model (or ``--model``) with every other default. Printed: the median and the longest of the pieces'
longest pitched notes, and the share of pitched notes held longer than each of ``--over`` seconds; with
``--corpus``, the same share over the training split's pieces of that style and those instruments (whole pieces,
each note counted once), the figure the generated share is read against. The evaluator's statistics read the
median note; this reads the tail a listener hears as a voice that never moves.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser

import musenet_hf
from musenet_hf.core.guards import GUARD_NAMES, guards_off


@dataclass
class HeldNotesArgs:
    model: str | None = field(default=None, metadata={"help": "checkpoint directory (default: the bundled model)"})
    style: str = field(default="bach", metadata={"help": "the style asked for"})
    instruments: str = field(default="piano", metadata={"help": "comma-separated instruments asked for"})
    seeds: str = field(default="0,1,2", metadata={"help": "comma-separated sampling seeds, one batch each"})
    pieces: int = field(default=8, metadata={"help": "pieces per seed (num_return_sequences)"})
    seconds: float = field(default=30.0, metadata={"help": "seconds per piece"})
    over: str = field(default="1,2,4", metadata={"help": "comma-separated note lengths in seconds to count past"})
    corpus: str | None = field(default=None, metadata={"help": "a built corpus: read its train split's pieces of the style"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads (the target machine has 2 cores)"})
    no_guard: list[str] = field(default_factory=list, metadata={
        "help": "guards to switch off", "choices": GUARD_NAMES})


def lengths_of(notes, drum_index: int) -> np.ndarray:
    """Seconds each pitched note of ``notes`` is held."""
    return np.array([n.end - n.start for n in notes if n.family != drum_index], dtype=np.float64)


def describe(per_piece: list[np.ndarray], over: list[float]) -> str:
    """``longest: median / max; > s: share`` over pieces' note lengths."""
    every = np.concatenate(per_piece) if per_piece else np.zeros(0)
    longest = [p.max() for p in per_piece if len(p)]
    shares = ", ".join(f"> {s:g} s: {100 * (every > s).mean():.2f} %" for s in over) if len(every) else "no notes"
    head = f"longest per piece: median {np.median(longest):.2f} s, max {max(longest):.2f} s; " if longest else ""
    return f"{len(per_piece)} pieces, {len(every):,} pitched notes; {head}{shares}"


def main() -> int:
    (args,) = HfArgumentParser(HeldNotesArgs).parse_args_into_dataclasses()
    switches = guards_off(args.no_guard)
    torch.set_num_threads(args.threads)
    instruments = args.instruments.split(",")
    over = [float(s) for s in args.over.split(",")]
    gen = musenet_hf.load_pipeline(args.model)
    tok = gen.tokenizer
    drums = tok.musenet_vocab.drum_index
    generated = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for result in gen(style=args.style, instruments=instruments, seconds=args.seconds,
                          num_return_sequences=args.pieces, seed=seed, **switches):
            generated.append(lengths_of(tok.decode_events(result["ids"]).notes, drums))
    print(f"{args.style}, {' + '.join(instruments)}; guards off: {', '.join(args.no_guard) or 'none'}")
    print(f"generated: {describe(generated, over)}")
    if args.corpus:
        from musenet_hf.core.codec import decode_ids
        from musenet_hf.data.corpus import load_corpus

        splits, corpus_tok = load_corpus(args.corpus)
        vocab = corpus_tok.musenet_vocab
        asked = sorted(vocab.family_id(name) for name in instruments)
        real = []
        for ids in splits["train"]["input_ids"]:
            decoded = decode_ids(list(ids), vocab)
            if decoded.header.style == args.style and sorted({n.family for n in decoded.notes}) == asked:
                real.append(lengths_of(decoded.notes, vocab.drum_index))
        print(f"real ({args.corpus}, train): {describe(real, over)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
