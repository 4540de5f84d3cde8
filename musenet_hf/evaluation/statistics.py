"""Per-piece statistics of a list of notes: what a listener hears, as numbers comparable with real music.

Input is what the rest of the project passes around: ``musenet_hf.core.midi_io.Note`` lists (times in
seconds, ``family`` an index into the tokenizer's ``instruments``; drum hits have ``end == start`` when read
from a file, a short length when decoded from ids: drums are treated as onsets everywhere here).

The pitch and rhythm statistics follow the definitions of MusPy's ``muspy.metrics`` (Dong et al., "MusPy: A
Toolkit for Symbolic Music Generation", ISMIR 2020; https://salu133445.github.io/muspy/metrics.html),
reimplemented on our notes (MusPy itself pulls in heavy dependencies); drums are ignored by every pitch
statistic, as in MusPy:

- ``pitch_class_entropy``: Shannon entropy in bits of the normalised pitch-class histogram of note counts
  (MusPy ``pitch_class_entropy``, after Wu & Yang, "The Jazz Transformer on the Front Line", ISMIR 2020);
- ``scale_consistency``: the largest share of notes inside one major or minor scale, over the 24 scales
  (MusPy ``scale_consistency``, after Mogren, "C-RNN-GAN", 2016);
- ``polyphony``: the mean number of distinct pitches sounding, over the 10 ms steps where at least one
  sounds (MusPy ``polyphony``, after Dong et al., "MuseGAN", AAAI 2018);
- ``pitch_range``: highest minus lowest pitch, in semitones (MusPy ``pitch_range``);
- ``empty_beat_rate``: the share of beats in which no note is played (MusPy ``empty_beat_rate``); a beat
  counts as played when a note sounds in it or a drum is hit in it;
- ``groove_consistency``: 1 - the mean Hamming distance between the onset patterns of neighbouring bars,
  divided by the positions per bar (MusPy ``groove_consistency``, after Wu & Yang 2020). Bars are 4 beats of
  the piece's tempo, on a sixteenth-note grid (``GROOVE_POSITIONS_PER_BEAT``).
- ``onsets_on_grid``: the share of distinct onsets within 20 ms of the sixteenth-note grid of the piece's tempo,
  at the grid phase that fits best (``core.guards.grid_fit``, the grid guard's own measure): near 1 for
  sequenced or quantized music, ~0.25-0.5 for onsets with no pulse.
- ``quietest_part_share``: the smallest share of the piece's notes that one of its parts plays (the asked
  families, or those that play where none were asked); ``nan`` with fewer than two parts. A band whose bass
  plays 15 notes under a 230-note piano reads 0.05; real jazz trios' basses rarely fall that low. No other
  statistic counts one part's notes.

And what the quality issue measures: notes per second, notes per family, the share of pitched notes held
longer than ``LONG_NOTE_SECONDS``, every drum's hits per second and the busiest one's, note lengths per
family, inter-onset intervals, the longest silence, and in how many ``SEGMENT_SECONDS`` segments each family
plays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.guards import GRID_FRACTIONS, GRID_MIN_ONSETS, GROOVE_BAR_BEATS, grid_fit, sounding_levels
from ..core.guards import groove_consistency as bar_groove_consistency
from ..core.midi_io import Note

GRID_SECONDS = 0.01  # the encoding's 10 ms step: polyphony and silences are measured on it
LONG_NOTE_SECONDS = 8.0  # quality issue: POP909 holds 0.01 % of piano notes longer than this
LENGTH_DECIMALS = 6  # note lengths are compared with LONG_NOTE_SECONDS to the microsecond (float sums of steps)
SILENT_FAMILY_NOTES = 5  # an asked family with fewer notes than this in a piece "never plays" (quality issue)
SEGMENT_SECONDS = 30.0  # coverage is counted in 30 s segments (quality issue: 6 of 8 in a 4-minute piece)
SEGMENT_MIN_NOTES = SILENT_FAMILY_NOTES  # a family "plays" in a segment with at least this many onsets
LONG_SILENCE_SECONDS = 4.0  # degeneracy counter: silences longer than this
GROOVE_POSITIONS_PER_BEAT = len(GRID_FRACTIONS)  # sixteenth notes
BEATS_PER_BAR = GROOVE_BAR_BEATS  # the corpus holds no time signatures we trust; 4/4 is by far the most common
ONSET_DECIMALS = 2  # onsets are compared on the 10 ms grid (2 decimals of a second)
MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=bool)  # C major; roll for other roots
MINOR_SCALE = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], dtype=bool)  # C natural minor

# The scalar statistics a comparison reads (each one number per piece), in report order.
SCALAR_STATISTICS = (
    "notes_per_second", "polyphony", "pitch_class_entropy", "scale_consistency", "pitch_range",
    "empty_beat_rate", "groove_consistency", "median_note_length", "median_inter_onset", "longest_silence",
    "busiest_drum_hits_per_second", "long_note_share", "onsets_on_grid", "quietest_part_share",
)


@dataclass
class PieceStatistics:
    """Statistics of one piece. Seconds are of music; "pitched" notes are those of every family but drums.

    Scalars are ``nan`` where a piece has nothing to measure (e.g. ``pitch_range`` of a drums-only piece).
    """

    seconds: float
    notes: int
    pitched_notes: int
    notes_per_second: float
    polyphony: float
    pitch_class_entropy: float  # bits, 0..log2(12)
    scale_consistency: float  # 0..1
    pitch_range: float  # semitones
    empty_beat_rate: float  # 0..1
    groove_consistency: float  # 0..1
    median_note_length: float  # seconds, pitched notes
    median_inter_onset: float  # seconds between successive distinct onsets
    longest_silence: float  # seconds with nothing sounding, from 0 to ``seconds``
    silences_over_4s: int
    long_notes: int  # pitched notes held longer than LONG_NOTE_SECONDS
    long_note_share: float  # long_notes / pitched_notes
    busiest_drum: int | None  # MIDI pitch of the most-hit drum, None without drums
    busiest_drum_hits_per_second: float  # 0 without drums
    onsets_on_grid: float  # 0..1, share of distinct onsets on the beat grid; nan under GRID_MIN_ONSETS onsets
    quietest_part_share: float  # 0..1, the least busy part's share of the notes; nan with fewer than two parts
    notes_per_family: dict[str, int] = field(default_factory=dict)
    drum_hits_per_second: dict[int, float] = field(default_factory=dict)  # drum pitch -> hits per second
    note_lengths: dict[str, list[float]] = field(default_factory=dict)  # family -> seconds of each note
    inter_onsets: list[float] = field(default_factory=list)  # seconds
    segments: int = 0  # SEGMENT_SECONDS segments in the piece (the last may be partial)
    segments_played: dict[str, int] = field(default_factory=dict)  # family -> segments it plays in
    asked: list[str] = field(default_factory=list)  # families the piece was asked to have
    silent_asked: list[str] = field(default_factory=list)  # asked families with < SILENT_FAMILY_NOTES notes

    def scalars(self) -> dict[str, float]:
        """The ``SCALAR_STATISTICS`` of this piece, by name."""
        return {name: float(getattr(self, name)) for name in SCALAR_STATISTICS}

    def summary(self) -> dict:
        """A JSON-ready dict: every scalar and count, without the per-note lists."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("note_lengths", "inter_onsets", "drum_hits_per_second")}
        out["drum_hits_per_second"] = {str(k): v for k, v in self.drum_hits_per_second.items()}
        return out


def clip_notes(notes: list[Note], start: float, seconds: float) -> list[Note]:
    """The notes starting in ``[start, start + seconds)``, shifted to start at 0 and cut to end by ``seconds``.

    Args:
        notes (`list[Note]`): times in seconds.
        start (`float`): where the clip begins, in seconds.
        seconds (`float`): the clip's length, in seconds.
    """
    end = start + seconds
    return [
        Note(n.start - start, min(n.end, end) - start, n.family, n.pitch, n.velocity)
        for n in notes if start <= n.start < end
    ]


def piece_statistics(notes: list[Note], instruments: list[str], seconds: float | None = None, bpm: float = 120.0,
                     asked: list[str] | None = None, drum_family: str = "drums") -> PieceStatistics:
    """Every statistic of one piece (see the module docstring for the definitions and their sources).

    Args:
        notes (`list[Note]`): the piece, times in seconds, ``family`` indexing ``instruments``.
        instruments (`list[str]`): family names, e.g. ``tokenizer.instruments``.
        seconds (`float`, *optional*): the piece's length in seconds (the rate denominators, and where a
            trailing silence ends); default: the last note's end.
        bpm (`float`, *optional*, defaults to 120): the tempo beats and bars are counted in.
        asked (`list[str]`, *optional*): the families the piece was asked for; ``silent_asked`` lists those
            with fewer than ``SILENT_FAMILY_NOTES`` notes. Default: none asked.
        drum_family (`str`, *optional*, defaults to ``"drums"``): the family name of onset-only percussion.
    """
    drum = instruments.index(drum_family) if drum_family in instruments else -1
    end_time = max((max(n.end, n.start) for n in notes), default=0.0)
    seconds = float(seconds) if seconds is not None else end_time
    rate_seconds = max(seconds, GRID_SECONDS)
    pitched = [n for n in notes if n.family != drum]
    drums = [n for n in notes if n.family == drum]
    pitches = np.array([n.pitch for n in pitched], dtype=np.int64)
    lengths = np.array([n.end - n.start for n in pitched], dtype=np.float64)
    # to the microsecond: times are sums of 10 ms steps, so a note held exactly 8 s can measure 8.000000000000002
    long_notes = int((lengths.round(LENGTH_DECIMALS) > LONG_NOTE_SECONDS).sum())

    hits = {}
    for n in drums:
        hits[n.pitch] = hits.get(n.pitch, 0) + 1
    drum_rates = {p: c / rate_seconds for p, c in sorted(hits.items())}
    busiest = max(hits, key=hits.get) if hits else None

    per_family = {name: 0 for name in instruments}
    note_lengths: dict[str, list[float]] = {}
    for n in notes:
        per_family[instruments[n.family]] += 1
        if n.family != drum:
            note_lengths.setdefault(instruments[n.family], []).append(n.end - n.start)
    asked = list(asked or [])
    silences = _silences(notes, seconds)
    onsets = np.unique(np.round([n.start for n in notes], ONSET_DECIMALS))
    segments = max(1, math.ceil(seconds / SEGMENT_SECONDS - 1e-9)) if seconds > 0 else 0
    return PieceStatistics(
        seconds=seconds,
        notes=len(notes),
        pitched_notes=len(pitched),
        notes_per_second=len(notes) / rate_seconds,
        polyphony=polyphony(pitched),
        pitch_class_entropy=pitch_class_entropy(pitches),
        scale_consistency=scale_consistency(pitches),
        pitch_range=float(pitches.max() - pitches.min()) if len(pitches) else math.nan,
        empty_beat_rate=empty_beat_rate(notes, seconds, bpm, drum),
        groove_consistency=groove_consistency(notes, seconds, bpm),
        median_note_length=float(np.median(lengths)) if len(lengths) else math.nan,
        median_inter_onset=float(np.median(np.diff(onsets))) if len(onsets) > 1 else math.nan,
        longest_silence=max(silences, default=0.0),
        silences_over_4s=sum(s > LONG_SILENCE_SECONDS for s in silences),
        long_notes=long_notes,
        long_note_share=long_notes / len(pitched) if pitched else 0.0,
        busiest_drum=busiest,
        busiest_drum_hits_per_second=drum_rates[busiest] if busiest is not None else 0.0,
        onsets_on_grid=onsets_on_grid(onsets, bpm),
        quietest_part_share=quietest_part_share(per_family, asked),
        notes_per_family=per_family,
        drum_hits_per_second=drum_rates,
        note_lengths=note_lengths,
        inter_onsets=np.diff(onsets).tolist(),
        segments=segments,
        segments_played=_segments_played(notes, instruments, segments),
        asked=asked,
        silent_asked=[f for f in asked if per_family.get(f, 0) < SILENT_FAMILY_NOTES],
    )


def long_note_share_overall(stats: list[PieceStatistics]) -> float:
    """Pitched notes held longer than ``LONG_NOTE_SECONDS`` over all pieces, as a share of all pitched notes."""
    pitched = sum(s.pitched_notes for s in stats)
    return sum(s.long_notes for s in stats) / pitched if pitched else 0.0


def pitch_class_entropy(pitches: np.ndarray) -> float:
    """Bits of entropy of the pitch-class histogram of ``pitches`` (MIDI numbers); ``nan`` for none."""
    if len(pitches) == 0:
        return math.nan
    p = np.bincount(np.asarray(pitches) % 12, minlength=12) / len(pitches)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def scale_consistency(pitches: np.ndarray) -> float:
    """The largest share of ``pitches`` inside one of the 12 major and 12 minor scales; ``nan`` for none."""
    if len(pitches) == 0:
        return math.nan
    counts = np.bincount(np.asarray(pitches) % 12, minlength=12)
    best = max(counts[np.roll(scale, root)].sum() for scale in (MAJOR_SCALE, MINOR_SCALE) for root in range(12))
    return float(best / len(pitches))


def polyphony(pitched: list[Note]) -> float:
    """Mean number of distinct pitches sounding over the 10 ms steps where any sounds; ``nan`` for none.
    A pitch's notes are merged where they overlap (doubled notes count once, across instruments too)."""
    lengths, levels = sounding_levels(pitched, GRID_SECONDS, key=lambda n: n.pitch)
    sounding = lengths[levels > 0].sum()
    return float((lengths * levels)[levels > 0].sum() / sounding) if sounding else math.nan


def empty_beat_rate(notes: list[Note], seconds: float, bpm: float, drum: int = -1) -> float:
    """Share of the beats of ``[0, seconds)`` (at ``bpm``) in which no note sounds and no drum is hit."""
    beat = 60.0 / bpm
    n_beats = max(1, math.ceil(seconds / beat - 1e-9))
    played = np.zeros(n_beats + 1, dtype=np.int64)  # a difference array over beats
    for n in notes:
        first = int(n.start // beat)
        last = first if n.family == drum else int(max(n.end - 1e-9, n.start) // beat)
        if first >= n_beats:
            continue
        played[first] += 1
        played[min(last, n_beats - 1) + 1] -= 1
    return float((np.cumsum(played)[:n_beats] == 0).mean())


def groove_consistency(notes: list[Note], seconds: float, bpm: float) -> float:
    """1 - mean Hamming distance of neighbouring bars' sixteenth-note onset patterns / positions per bar, bars
    counted from time 0 (``core.guards.groove_consistency``, the groove guard's own measure).

    ``nan`` for a piece shorter than two bars.
    """
    positions = GROOVE_POSITIONS_PER_BEAT * BEATS_PER_BAR
    cell = 60.0 / bpm / GROOVE_POSITIONS_PER_BEAT
    n_bars = math.ceil(seconds / (cell * positions) - 1e-9)
    slots = np.array([int(round(n.start / cell)) for n in notes], dtype=np.int64)
    return bar_groove_consistency(slots, n_bars, positions)


def quietest_part_share(notes_per_family: dict[str, int], asked: list[str]) -> float:
    """The smallest share of a piece's notes played by one of its parts: the ``asked`` families, or the
    families with notes when none were asked; ``nan`` with fewer than two parts or no notes.

    Args:
        notes_per_family (`dict[str, int]`): notes of each family in the piece.
        asked (`list[str]`): the families the piece was asked for (empty: those that play).
    """
    parts = set(asked) or {f for f, count in notes_per_family.items() if count}
    total = sum(notes_per_family.values())
    if len(parts) < 2 or not total:
        return math.nan
    return min(notes_per_family.get(f, 0) for f in parts) / total


def onsets_on_grid(onsets: np.ndarray, bpm: float) -> float:
    """Share of ``onsets`` (seconds) on the beat grid of ``bpm`` at its best-fitting phase (``grid_fit``, on
    the 10 ms step); ``nan`` for fewer than ``GRID_MIN_ONSETS`` onsets (a handful fits some phase by chance)."""
    if len(onsets) < GRID_MIN_ONSETS:
        return math.nan
    steps = np.rint(np.asarray(onsets, dtype=np.float64) / GRID_SECONDS)
    return grid_fit(steps, 60.0 / bpm / GRID_SECONDS)[0]


def _silences(notes: list[Note], seconds: float) -> list[float]:
    """Lengths in seconds of the gaps in ``[0, seconds]`` where no note sounds (drum hits last one grid step)."""
    spans = sorted((n.start, max(n.end, n.start + GRID_SECONDS)) for n in notes)
    gaps, reach = [], 0.0
    for start, end in spans:
        if start > reach:
            gaps.append(start - reach)
        reach = max(reach, end)
    if seconds > reach:
        gaps.append(seconds - reach)
    return gaps


def _segments_played(notes: list[Note], instruments: list[str], segments: int) -> dict[str, int]:
    """Family -> how many ``SEGMENT_SECONDS`` segments hold at least ``SEGMENT_MIN_NOTES`` of its onsets."""
    if segments == 0:
        return {}
    counts = np.zeros((len(instruments), segments), dtype=np.int64)
    for n in notes:
        seg = min(int(n.start // SEGMENT_SECONDS), segments - 1)
        counts[n.family, seg] += 1
    played = (counts >= SEGMENT_MIN_NOTES).sum(axis=1)
    return {name: int(played[i]) for i, name in enumerate(instruments) if counts[i].sum()}
