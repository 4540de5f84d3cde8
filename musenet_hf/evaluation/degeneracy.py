"""Degeneracy counters: the failures a listener notices first, counted per piece.

- notes held past their family's 99.9th-percentile real length (stuck notes);
- the busiest single drum's hits per second (machine-gun drums), from ``statistics``;
- silences longer than ``LONG_SILENCE_SECONDS``, from ``statistics``;
- token loops: the share of event tokens inside a stretch that repeats the stretch just before it verbatim
  (a period of at most ``MAX_LOOP_PERIOD`` tokens, repeated for at least ``MIN_LOOP_TOKENS`` tokens).
  Sequenced real music repeats too (a drum bar copied 16 times), so the figure is read against the real one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.midi_io import Note
from .statistics import PieceStatistics

HELD_QUANTILE = 0.999  # a note longer than 99.9 % of the real notes of its family is "held too long"
MAX_LOOP_PERIOD = 64  # tokens: ~20 notes, a bar or two of band music
MIN_LOOP_TOKENS = 48  # a repeat must last this long (~16 notes) to count as a loop
MIN_FAMILY_NOTES = 50  # families with fewer real notes have no reliable 99.9th percentile (none is used)


@dataclass
class PieceDegeneracy:
    """Counters of one piece."""

    held_past_real: int  # pitched notes longer than their family's real HELD_QUANTILE length
    held_past_real_share: float  # of the pitched notes whose family has a threshold
    busiest_drum_hits_per_second: float
    silences_over_4s: int
    loop_share: float  # share of event tokens inside a verbatim loop


def held_thresholds(pieces: list[list[Note]], instruments: list[str], drum_family: str = "drums") -> dict[str, float]:
    """Family -> the ``HELD_QUANTILE`` note length in seconds over the notes of all ``pieces`` (real, unclipped:
    clipping would shorten exactly the long notes), for families with at least ``MIN_FAMILY_NOTES`` notes.

    Args:
        pieces (`list[list[Note]]`): real pieces, times in seconds.
        instruments (`list[str]`): family names.
        drum_family (`str`, *optional*, defaults to ``"drums"``): onset-only, so left out.
    """
    pooled: dict[str, list[float]] = {}
    for notes in pieces:
        for n in notes:
            name = instruments[n.family]
            if name != drum_family:
                pooled.setdefault(name, []).append(n.end - n.start)
    return {f: float(np.quantile(v, HELD_QUANTILE)) for f, v in pooled.items() if len(v) >= MIN_FAMILY_NOTES}


def loop_share(ids, max_period: int = MAX_LOOP_PERIOD, min_tokens: int = MIN_LOOP_TOKENS) -> float:
    """Share of ``ids`` (event tokens) covered by stretches where ``ids[i] == ids[i - p]`` for ``min_tokens``
    consecutive positions, for some period ``p <= max_period``.

    Args:
        ids (`array-like` of `int`): event ids, without the header.
        max_period (`int`, *optional*, defaults to ``MAX_LOOP_PERIOD``): the longest repeating unit, in tokens.
        min_tokens (`int`, *optional*, defaults to ``MIN_LOOP_TOKENS``): the shortest counted repeat.
    """
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    if n <= min_tokens:
        return 0.0
    covered = np.zeros(n, dtype=bool)
    for p in range(1, min(max_period, n - 1) + 1):
        same = np.concatenate([[False], ids[p:] == ids[:-p], [False]])
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        for start, stop in zip(edges[::2], edges[1::2]):  # runs of positions i in [start+p, stop+p)
            if stop - start >= min_tokens:
                covered[start: stop + p] = True
    return float(covered.mean())


def piece_degeneracy(stats: PieceStatistics, event_ids, thresholds: dict[str, float]) -> PieceDegeneracy:
    """The counters of one piece.

    Args:
        stats (`PieceStatistics`): the piece's statistics (``note_lengths`` per family).
        event_ids (`array-like` of `int`): the piece's event ids (``codec.encode_notes`` of its notes, header
            left out), for the loop counter.
        thresholds (`dict[str, float]`): from ``held_thresholds`` of the real pieces.
    """
    held = counted = 0
    for family, lengths in stats.note_lengths.items():
        if family in thresholds:
            arr = np.asarray(lengths)
            held += int((arr > thresholds[family]).sum())
            counted += len(arr)
    return PieceDegeneracy(
        held_past_real=held,
        held_past_real_share=held / counted if counted else 0.0,
        busiest_drum_hits_per_second=stats.busiest_drum_hits_per_second,
        silences_over_4s=stats.silences_over_4s,
        loop_share=loop_share(event_ids),
    )


def summarize(pieces: list[PieceDegeneracy]) -> dict[str, float]:
    """Totals over pieces: mean share held past real, the worst busiest drum, silences, mean loop share."""
    if not pieces:
        return {}
    return {
        "pieces": len(pieces),
        "held_past_real": sum(p.held_past_real for p in pieces),
        "held_past_real_share_mean": float(np.mean([p.held_past_real_share for p in pieces])),
        "busiest_drum_hits_per_second_max": max(p.busiest_drum_hits_per_second for p in pieces),
        "silences_over_4s": sum(p.silences_over_4s for p in pieces),
        "loop_share_mean": float(np.mean([p.loop_share for p in pieces])),
    }
