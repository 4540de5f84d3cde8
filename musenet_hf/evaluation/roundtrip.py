"""Measurements of the encoding: note-level round-trip fidelity and tokens per note."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from ..core.midi_io import Note

TOLERANCE_SECONDS = 0.005  # the encoding's promise: onsets and ends within +-5 ms (10 ms grid, rounded)
ADJUSTED_TOLERANCE_SECONDS = 0.010  # notes the encoding had to lengthen to one step
EPS = 1e-6  # float slack on the tolerance boundaries


@dataclass
class RoundTrip:
    notes: int = 0  # reference notes
    kept: int = 0  # matched within tolerance (pitch, family, onset, end, velocity bin)
    tokens: int = 0

    def __iadd__(self, other: RoundTrip) -> RoundTrip:
        self.notes += other.notes
        self.kept += other.kept
        self.tokens += other.tokens
        return self

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.notes if self.notes else 1.0


def roundtrip(tok, source, style: str | None = None) -> RoundTrip:
    """Encode ``source``, decode the ids to MIDI, read that back, and count the notes kept."""
    reference = tok.read_score(source)
    ids = tok.encode_score(reference, style)
    decoded = tok.read_score(tok.decode_midi(ids))
    kept = count_matches(reference.notes, decoded.notes, tok.musenet_vocab)
    return RoundTrip(len(reference.notes), kept, len(ids))


def count_matches(reference: list[Note], decoded: list[Note], vocab) -> int:
    """How many reference notes have a decoded twin: same family and pitch, same velocity bin,
    onset (and, except for drums, end) within +-5 ms, or +-10 ms for notes the encoding adjusted
    (start and end on the same 10 ms step: it had to be lengthened to one step)."""
    by_key: dict[tuple[int, int], list[Note]] = defaultdict(list)
    for n in decoded:
        by_key[(n.family, n.pitch)].append(n)
    ref_by_key: dict[tuple[int, int], list[Note]] = defaultdict(list)
    for n in reference:
        ref_by_key[(n.family, n.pitch)].append(n)
    vbin = vocab.bin_of_velocity
    step = vocab.config.step_seconds
    kept = 0
    for key, refs in ref_by_key.items():
        refs.sort(key=lambda n: n.start)
        candidates = sorted(by_key.get(key, []), key=lambda n: n.start)
        used = [False] * len(candidates)
        drums = key[0] == vocab.drum_index
        for r in refs:
            tol = ADJUSTED_TOLERANCE_SECONDS if not drums and _lengthened(r, step) else TOLERANCE_SECONDS
            for j, c in enumerate(candidates):
                if used[j] or abs(c.start - r.start) > tol + EPS or vbin[c.velocity] != vbin[r.velocity]:
                    continue
                if drums or abs(c.end - r.end) <= tol + EPS:
                    used[j] = True
                    kept += 1
                    break
    return kept


def _lengthened(note: Note, step: float) -> bool:
    """Did rounding put this note's start and end on one step (so the encoding made it one step long)?"""
    return math.floor(note.start / step + 0.5) == math.floor(note.end / step + 0.5)
