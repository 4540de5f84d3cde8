"""The 4-minute band piece of issues 11 and 15, seed by seed: time, density, who plays, and in which register.

    python -m bench.band_piece                                 # seeds 0-3, every default, roll of the first
    python -m bench.band_piece --seeds 0,1,2 --no_guard register   # the same with one guard switched off

Each seed is the issues' call, ``gen(style="pop", instruments=["piano", "bass", "drums", "guitar"],
seconds=240, seed=k)``, on the bundled model (or ``--model``) with every other default, timed around the call.
Printed per seed: wall seconds, tokens, notes and notes per second, notes per instrument, the 30-second
segments each instrument plays in (at least ``SEGMENT_MIN_NOTES`` onsets), and per instrument and minute the
note count and median MIDI pitch (``count@pitch``), which shows a part thinning out or drifting out of its
register. ``--roll PATH`` draws the first seed's piano roll, one row per minute.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import HfArgumentParser

import musenet_hf
from musenet_hf.core.guards import GUARD_NAMES, guards_off
from musenet_hf.evaluation.statistics import SEGMENT_MIN_NOTES, SEGMENT_SECONDS

BAND = ["piano", "bass", "drums", "guitar"]  # the issues' four instruments
MINUTE = 60.0


@dataclass
class BandPieceArgs:
    model: str | None = field(default=None, metadata={"help": "checkpoint directory (default: the bundled model)"})
    seeds: str = field(default="0,1,2,3", metadata={"help": "comma-separated sampling seeds"})
    seconds: float = field(default=240.0, metadata={"help": "the piece's length (the issues' 4 minutes)"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads (the target machine has 2 cores)"})
    no_guard: list[str] = field(default_factory=list, metadata={
        "help": "guards to switch off", "choices": GUARD_NAMES})
    roll: str | None = field(default=None, metadata={"help": "PNG path for the first seed's piano roll, one row per minute"})
    kv_cache_dtype: str = field(default="auto", metadata={"help": "the decoding loop's key/value cache: auto, float32 or bfloat16"})


def describe(notes, names: list[str], seconds: float) -> dict:
    """Per instrument: note count, segments played in (of ``ceil(seconds / SEGMENT_SECONDS)``), and per
    minute ``count@median pitch``."""
    segments = math.ceil(seconds / SEGMENT_SECONDS - 1e-9)
    minutes = math.ceil(seconds / MINUTE - 1e-9)
    out = {}
    for fam in sorted({n.family for n in notes}):
        mine = [n for n in notes if n.family == fam]
        per_segment = np.bincount([min(int(n.start // SEGMENT_SECONDS), segments - 1) for n in mine], minlength=segments)
        by_minute = []
        for m in range(minutes):
            pitches = [n.pitch for n in mine if m * MINUTE <= n.start < (m + 1) * MINUTE]
            by_minute.append(f"{len(pitches)}@{int(np.median(pitches))}" if pitches else "0")
        out[names[fam]] = {"notes": len(mine), "segments": int((per_segment >= SEGMENT_MIN_NOTES).sum()), "minutes": by_minute}
    return out


def main() -> int:
    (args,) = HfArgumentParser(BandPieceArgs).parse_args_into_dataclasses()
    switches = guards_off(args.no_guard)
    torch.set_num_threads(args.threads)
    gen = musenet_hf.load_pipeline(args.model)
    names = gen.tokenizer.instruments
    gen(style="pop", instruments=BAND, seconds=5, seed=0)  # warm-up: int8 copy, first-call costs
    off = ", ".join(args.no_guard) or "none"
    switches["kv_cache_dtype"] = args.kv_cache_dtype
    print(f"pop, {' + '.join(BAND)}, {args.seconds:g} s; guards off: {off}; {args.threads} threads; "
          f"key/value cache {args.kv_cache_dtype}\n")
    print("| seed | wall s | tokens | notes (per s) | notes per instrument | segments (of 8) | per minute: notes@median pitch |")
    print("|---|---:|---:|---|---|---|---|")
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        result = gen(style="pop", instruments=BAND, seconds=args.seconds, seed=seed, **switches)[0]
        wall = time.perf_counter() - start
        notes = gen.tokenizer.decode_events(result["ids"]).notes
        parts = describe(notes, names, args.seconds)
        print(f"| {seed} | {wall:.1f} | {len(result['ids']):,} | {len(notes):,} ({len(notes) / args.seconds:.1f}) | "
              + ", ".join(f"{k} {v['notes']:,}" for k, v in parts.items()) + " | "
              + ", ".join(str(v["segments"]) for v in parts.values()) + " | "
              + "; ".join(f"{k} {' '.join(v['minutes'])}" for k, v in parts.items()) + " |", flush=True)
        if i == 0 and args.roll:
            draw_roll(notes, names, args.seconds, args.roll, f"pop band, seed {seed}, guards off: {off}")
    if args.roll:
        print(f"\nroll: {args.roll}")
    return 0


def draw_roll(notes, names: list[str], seconds: float, path: str, title: str) -> None:
    """One row per minute of the piece, each a piano roll of that minute (times from the minute's start)."""
    from dataclasses import replace

    import matplotlib.pyplot as plt

    from musenet_hf.evaluation.plots import plot_piano_roll, save_figure

    minutes = math.ceil(seconds / MINUTE - 1e-9)
    fig, axes = plt.subplots(minutes, 1, figsize=(14, 3.2 * minutes), squeeze=False, layout="constrained")
    for m, ax in enumerate(axes[:, 0]):
        part = [replace(n, start=n.start - m * MINUTE, end=min(n.end, (m + 1) * MINUTE) - m * MINUTE)
                for n in notes if m * MINUTE <= n.start < (m + 1) * MINUTE]
        plot_piano_roll(part, names, title=f"{title}: minute {m + 1}", ax=ax, seconds=MINUTE)
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
