"""On-the-fly augmentation of training windows, on ids directly (numpy; no MIDI is re-parsed).

Three transformations, each applied to a window with probability ``probability`` and a seeded
``numpy.random.Generator``:

- transposition by ``s`` semitones, ``|s| <= transpose``: note-on/off ids of pitched families move
  by ``s`` (pitch is the lowest digit of both blocks, so this is an addition). Drums are never
  transposed. **Range policy: the shift is limited, nothing is dropped.** ``s`` is drawn from the
  shifts that keep every family's notes inside its ``family_ranges`` entry; a family whose notes
  already lie outside its range may not be pushed further out (so a shift of 0 is always allowed).
- velocity: every note-on moves by ``d`` velocity bins, ``|d| <= velocity_bins_shift``, clipped to
  the bins that exist (the id-level form of scaling all dynamics up or down).
- time stretch: all event times are multiplied by ``f`` in ``[1 - time_stretch, 1 + time_stretch]``
  and rounded to the 10 ms grid; wait tokens are rebuilt and the header's tempo becomes ``bpm / f``.
  The window's length changes by about ``f``: callers truncate to their context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..core.vocabulary import NUM_PITCHES, Vocabulary

# Playable MIDI pitch ranges (inclusive) of each family's instruments, widened a little to cover the
# whole GM group a family stands for (e.g. "violin" holds viola and string ensembles). Families not
# listed may use the whole MIDI range.
FAMILY_RANGES = {
    "piano": (21, 108),  # A0..C8, the 88 keys
    "violin": (48, 105),  # viola C3 .. violin A7
    "cello": (24, 81),  # double bass C1 .. cello A5
    "bass": (23, 67),  # 5-string bass B0 .. G4
    "guitar": (38, 88),  # dropped-D D2 .. E6 (24th fret)
    "flute": (55, 98),  # alto flute G3 .. flute D7
    "clarinet": (34, 94),  # bass clarinet Bb1 .. clarinet Bb6
    "trumpet": (34, 84),  # trombone Bb1 .. trumpet C6
    "harp": (23, 104),  # concert harp B0 .. G#7
}


@dataclass
class AugmentConfig:
    """Seeded, id-level augmentation of training windows (see the module docstring for the rules)."""

    transpose: int = field(default=3, metadata={"help": "largest transposition, in semitones up or down (0: off)"})
    velocity_bins_shift: int = field(default=1, metadata={"help": "largest velocity change, in velocity bins (0: off)"})
    time_stretch: float = field(default=0.05, metadata={"help": "largest relative tempo change, e.g. 0.05 = +-5% (0: off)"})
    probability: float = field(default=0.5, metadata={"help": "chance that each transformation is applied to a window"})
    family_ranges: dict = field(
        default_factory=lambda: {k: list(v) for k, v in FAMILY_RANGES.items()},
        metadata={"help": "inclusive MIDI pitch range per family; transposition never pushes notes out of it"},
    )

    def __post_init__(self):
        if self.transpose < 0 or self.velocity_bins_shift < 0 or not 0 <= self.time_stretch < 1:
            raise ValueError("transpose and velocity_bins_shift must be >= 0 and time_stretch in [0, 1)")
        if not 0 <= self.probability <= 1:
            raise ValueError("probability must be in [0, 1]")


def augment_ids(ids, vocab: Vocabulary, rng: np.random.Generator, cfg: AugmentConfig) -> list[int]:
    """One augmented copy of ``ids`` (a window or piece, with or without its header)."""
    arr = np.asarray(ids, dtype=np.int64)
    kinds = id_tables(vocab).kind[arr]
    if cfg.transpose and rng.random() < cfg.probability:
        arr = transpose_ids(arr, kinds, vocab, allowed_shift(arr, kinds, vocab, cfg, rng))
    if cfg.velocity_bins_shift and rng.random() < cfg.probability:
        arr = shift_velocity(arr, kinds, vocab, int(rng.integers(-cfg.velocity_bins_shift, cfg.velocity_bins_shift + 1)))
    if cfg.time_stretch and rng.random() < cfg.probability:
        arr = stretch_time(arr, kinds, vocab, 1.0 + rng.uniform(-cfg.time_stretch, cfg.time_stretch))
    return arr.tolist()


@dataclass(frozen=True)
class _IdTables:
    """Per-id lookup tables (shape ``[vocab size]``), so augmenting a window is indexing, not arithmetic."""

    kind: np.ndarray  # Vocabulary.KIND_* of every id
    pitched: np.ndarray  # True for note-on/off ids of pitched (non-drum) families
    family: np.ndarray  # family index of note ids, -1 elsewhere
    pitch: np.ndarray  # MIDI pitch of note ids, 0 elsewhere


@lru_cache(maxsize=8)
def id_tables(vocab: Vocabulary) -> _IdTables:
    every = np.arange(vocab.size)
    kind = vocab.kinds(every)
    family = vocab.note_family(every)
    notes = (kind == vocab.KIND_ON) | (kind == vocab.KIND_OFF)
    pitch = np.where(notes, vocab.pitch(every), 0)
    return _IdTables(kind, notes & (family != vocab.drum_index), family, pitch)


def allowed_shift(arr, kinds, vocab: Vocabulary, cfg: AugmentConfig, rng: np.random.Generator) -> int:
    """A transposition drawn uniformly from the shifts within ``cfg.transpose`` that respect every range."""
    t = id_tables(vocab)
    notes = arr[t.pitched[arr]]
    fam, pitch = t.family[notes], t.pitch[notes]
    lo, hi = -cfg.transpose, cfg.transpose
    for f in np.unique(fam):
        p = pitch[fam == f]
        rlo, rhi = cfg.family_ranges.get(vocab.families[f], (0, NUM_PITCHES - 1))
        lo = max(lo, min(rlo - int(p.min()), 0))
        hi = min(hi, max(rhi - int(p.max()), 0))
    return int(rng.integers(lo, hi + 1))


def transpose_ids(arr: np.ndarray, kinds: np.ndarray, vocab: Vocabulary, shift: int) -> np.ndarray:
    """Move every pitched note by ``shift`` semitones; the caller guarantees pitches stay in 0..127."""
    if shift == 0:
        return arr
    out = arr.copy()
    out[id_tables(vocab).pitched[arr]] += shift
    return out


def shift_velocity(arr: np.ndarray, kinds: np.ndarray, vocab: Vocabulary, bins: int) -> np.ndarray:
    """Move every note-on (drums included) by ``bins`` velocity bins, clipped to the existing bins."""
    if bins == 0:
        return arr
    on = kinds == vocab.KIND_ON
    out = arr.copy()
    out[on] = vocab.with_velocity_bin(arr[on], vocab.velocity_bin(arr[on]) + bins)
    return out


def stretch_time(arr: np.ndarray, kinds: np.ndarray, vocab: Vocabulary, factor: float) -> np.ndarray:
    """Scale event times by ``factor`` (rounded to the grid), rebuild the waits, and scale the tempo by ``1/factor``."""
    is_wait = kinds == vocab.KIND_WAIT
    steps = vocab.wait_steps(arr)
    clock = np.cumsum(steps)  # steps elapsed up to and including each token
    keep = np.flatnonzero(~is_wait)
    tokens = arr[keep].copy()
    tempo = kinds[keep] == vocab.KIND_TEMPO
    tokens[tempo] = vocab.tempo_ids(vocab.tempo_bpm(tokens[tempo]) / factor)
    # times at which each kept token sounds, plus the end of the window (trailing waits survive too)
    times = np.rint(np.append(clock[keep], clock[-1] if len(clock) else 0) * factor).astype(np.int64)
    delta = np.diff(times, prepend=0)
    return _interleave_waits(np.append(tokens, -1), delta, vocab)[:-1]


def _interleave_waits(tokens: np.ndarray, delta: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """Each token preceded by the wait tokens for its ``delta`` steps (full-length waits, then the rest)."""
    max_wait = vocab.config.max_wait_steps
    nwait = -(-delta // max_wait)  # ceil
    ends = np.cumsum(nwait + 1) - 1  # output position of each token
    out = np.full(int(ends[-1]) + 1 if len(ends) else 0, vocab.wait_id(max_wait), dtype=np.int64)
    out[ends] = tokens
    has = nwait > 0
    remainder = delta[has] - (nwait[has] - 1) * max_wait
    out[ends[has] - 1] = vocab.wait_id(remainder)
    return out
