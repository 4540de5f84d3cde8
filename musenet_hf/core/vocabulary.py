"""The MuseNet event vocabulary: what every token means, and the id arithmetic behind it.

A sequence is::

    <bos> style:S inst:F1 inst:F2 ... tempo:BPM [<voice:fifo>]  events...  <eos>

Events, in absolute time on a 10 ms grid:

- ``wait:N``           advance the clock by N steps of 10 ms (1 <= N <= ``max_wait_steps``;
                       longer gaps use several wait tokens);
- ``FAMILY:vV:P``      note-on of pitch P for an instrument family, velocity bin whose
                       representative MIDI velocity is V (drums are onset-only);
- ``FAMILY:off:P``     note-off of pitch P (MuseNet's "volume 0"), for every family but drums; it ends the
                       latest-started sounding note of that key (the earliest, if the header has
                       ``<voice:fifo>``); each ``<voice:skip>`` before it skips one voice from that end.

The ids are laid out in blocks so that transposition or velocity changes are integer arithmetic
on ids (``note_on_id``), with no string handling on the hot path. Style tokens come last, so that
adding a style for a fine-tune appends ids and never renumbers the ones a model has learned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
# One key (family, pitch) may sound several times at once (doubled parts in different tracks). A note-off
# ends the most recently started of the key's sounding notes (last in, first out: right for short notes
# doubling a long one), or the earliest (first in, first out: right for overlapping legato) when the
# header holds VOICE_FIFO; each VOICE_SKIP before a note-off skips one voice from that end.
VOICE_SKIP = "<voice:skip>"
VOICE_FIFO = "<voice:fifo>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, VOICE_SKIP, VOICE_FIFO)

NUM_PITCHES = 128  # the whole MIDI range, so nothing is ever clipped and transposition is id arithmetic

# MuseNet's ten instrument families and the General MIDI programs (0-based) that map to each.
# Programs not listed here fall back to ``default_family``; channel 10 (index 9) is always drums.
DEFAULT_FAMILIES = ("piano", "violin", "cello", "bass", "guitar", "flute", "clarinet", "trumpet", "harp", "drums")
DEFAULT_PROGRAM_MAP = {
    "violin": [40, 41, 44, 45, 48, 49, 50, 51],
    "cello": [42, 43],
    "bass": list(range(32, 40)),
    "guitar": list(range(24, 32)),
    "flute": list(range(72, 80)),
    "clarinet": list(range(64, 72)),
    "trumpet": list(range(56, 64)),
    "harp": [46],
}
# The GM program each family is written back with, so any player sounds it as that instrument.
DEFAULT_DECODE_PROGRAMS = {
    "piano": 0, "violin": 40, "cello": 42, "bass": 33, "guitar": 25,
    "flute": 73, "clarinet": 71, "trumpet": 56, "harp": 46, "drums": 0,
}
# The style labels of the default training corpus (recipes/default_corpus.py assigns them; DATA_CARD.md lists
# their sources), so the bundled model has trained every style token it offers.
DEFAULT_STYLES = (
    "unknown", "bach", "palestrina", "monteverdi", "beethoven", "mozart", "haydn", "schubert", "trecento",
    "renaissance", "baroque", "romantic", "folk", "irish", "scottish", "fiddle", "chinese", "pop", "rock", "jazz",
    "swing", "blues", "funk", "latin", "country", "dance", "ballad", "game", "march", "waltz",
)


@dataclass
class MidiLimits:
    """Bounds on the work one MIDI file may cause; a file past any of them raises ``MidiError``.

    Checked before or while parsing, so an oversized file fails fast without allocating its tokens.
    """

    # Every file may cost at most ~2 s of CPU time (issue 14). mido parses ~100k messages a second and the
    # reader and encoder cost about as much again, so the count limits below stop a file at the cheapest point
    # (its size before reading, its message count while parsing) well before the time bound must.
    # Bytes of one file, checked before it is read: 12x the largest of the 15,767 default-corpus sources
    # (85 KB, music21's opus133); a 1 MB file of running-status events would hold ~330k messages.
    max_file_bytes: int = 1_000_000
    # Messages of all tracks, counted while mido parses: ~0.5 s of parsing; 2.7x the most in a real file (18,224).
    max_messages: int = 50_000
    max_seconds: float = 3600.0  # an hour of music; longer is almost surely a broken delta-time or tempo
    max_notes: int = 25_000  # 2.7x the most notes in a real file (9,093, opus59no2); ~60k tokens at 2-3 a note
    max_ticks_per_beat: int = 32767  # the largest metrical division a MIDI header can express
    max_delta_ticks: int = 0x0FFFFFFF  # the 4-byte variable-length maximum of the MIDI spec
    # Simultaneous voices of one key (family, pitch) after quantisation; the densest real file measured has
    # far fewer (README, "Encoding choices"). Each voice past the first costs <voice:skip> tokens to address.
    max_voices_per_key: int = 1024
    # Note-ons in one 10 ms step (all families): a full orchestral tutti stays well under it.
    max_onsets_per_step: int = 512
    # CPU seconds that reading and encoding one file may take together (``WorkBudget``), the bound that holds
    # whatever the input: 0.5 s under the 2 s target for the work between two clock checks and outside them
    # (reading the bytes, the final sorts). The largest real files take 0.3-0.8 s on a loaded 2-core machine.
    max_cpu_seconds: float = 1.5


@dataclass
class EncodingConfig:
    """Everything that defines the vocabulary; stored in tokenizer_config.json under ``musenet``."""

    families: list[str] = field(default_factory=lambda: list(DEFAULT_FAMILIES))
    drum_family: str = "drums"
    default_family: str = "piano"
    program_map: dict[str, list[int]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_PROGRAM_MAP.items()})
    decode_programs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DECODE_PROGRAMS))
    styles: list[str] = field(default_factory=lambda: list(DEFAULT_STYLES))
    # 8 bins of ~16 velocity steps: one bin per dynamic marking ppp..fff, for every family (MuseNet had 13 for
    # piano and 1 elsewhere); finer bins multiply the note vocabulary for differences few listeners hear.
    velocity_bins: int = 8
    step_seconds: float = 0.01  # MuseNet's ~10 ms wait unit; rounding keeps onsets and ends within +-5 ms
    max_wait_steps: int = 100  # one wait token covers up to 1 s; longer gaps are rare and use several
    min_bpm: int = 20
    max_bpm: int = 300
    drum_note_seconds: float = 0.1  # drums are onset-only; decoded hits get this length (or less, if re-struck)
    limits: MidiLimits = field(default_factory=MidiLimits)

    def __post_init__(self):
        if isinstance(self.limits, dict):
            self.limits = MidiLimits(**self.limits)
        self.validate()

    def validate(self) -> None:
        if len(set(self.families)) != len(self.families) or not self.families:
            raise ValueError(f"families must be unique and non-empty, got {self.families}")
        for name in (self.drum_family, self.default_family):
            if name not in self.families:
                raise ValueError(f"{name!r} is not one of the families {self.families}")
        unknown = set(self.program_map) - set(self.families)
        if unknown:
            raise ValueError(f"program_map names unknown families {sorted(unknown)}")
        if not self.styles or self.styles[0] != "unknown" or len(set(self.styles)) != len(self.styles):
            raise ValueError("styles must be unique and start with 'unknown'")
        for style in self.styles:
            if not style or any(ch.isspace() for ch in style):
                raise ValueError(f"style names may not be empty or contain whitespace: {style!r}")
        if not 1 <= self.velocity_bins <= 127:
            raise ValueError("velocity_bins must be in 1..127")
        if self.max_wait_steps < 1 or not 0 < self.min_bpm < self.max_bpm:
            raise ValueError("max_wait_steps must be >= 1 and 0 < min_bpm < max_bpm")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> EncodingConfig:
        return cls(**(data or {}))


class Vocabulary:
    """Token strings and the block layout of ids for one ``EncodingConfig``.

    Blocks, in id order: specials, waits, tempos, instruments, note-ons (family x velocity bin x pitch),
    note-offs (pitched families x pitch), styles.
    """

    def __init__(self, config: EncodingConfig):
        self.config = config
        c = config
        self.families = list(c.families)
        self.family_index = {f: i for i, f in enumerate(self.families)}
        self.drum_index = self.family_index[c.drum_family]
        self.pitched = [i for i in range(len(self.families)) if i != self.drum_index]
        # position of a family inside the note-off block (-1 for drums, which have no note-offs)
        self.off_slot = np.full(len(self.families), -1, dtype=np.int64)
        for slot, fam in enumerate(self.pitched):
            self.off_slot[fam] = slot
        self.nbins = c.velocity_bins
        self.bin_of_velocity, self.bin_velocity = _velocity_tables(c.velocity_bins)
        self.program_family = self._program_table()

        self.wait_start = len(SPECIAL_TOKENS)
        self.tempo_start = self.wait_start + c.max_wait_steps
        self.inst_start = self.tempo_start + (c.max_bpm - c.min_bpm + 1)
        self.on_start = self.inst_start + len(self.families)
        self.off_start = self.on_start + len(self.families) * self.nbins * NUM_PITCHES
        self.style_start = self.off_start + len(self.pitched) * NUM_PITCHES
        self.size = self.style_start + len(c.styles)
        self.tokens = self._token_strings()
        self.token_to_id = {t: i for i, t in enumerate(self.tokens)}
        self._kinds = self._kind_table()
        self._wait_steps, self._pitch, self._vbin, self._key, self._bpm = self._id_tables()

    # --- id construction (scalar; the encoder works on these) ---------------------------------
    def wait_id(self, steps: int) -> int:
        return self.wait_start + steps - 1

    def tempo_id(self, bpm: float) -> int:
        c = self.config
        return self.tempo_start + int(min(max(round(bpm), c.min_bpm), c.max_bpm)) - c.min_bpm

    def tempo_ids(self, bpm) -> np.ndarray:
        """``tempo_id`` of every value of an array of BPMs (rounded, clipped to the tempo range)."""
        c = self.config
        return self.tempo_start + np.clip(np.rint(bpm), c.min_bpm, c.max_bpm).astype(np.int64) - c.min_bpm

    def inst_id(self, family: int) -> int:
        return self.inst_start + family

    def note_on_id(self, family: int, vbin: int, pitch: int) -> int:
        return self.on_start + (family * self.nbins + vbin) * NUM_PITCHES + pitch

    def note_off_id(self, family: int, pitch: int) -> int:
        return self.off_start + int(self.off_slot[family]) * NUM_PITCHES + pitch

    def style_id(self, style: str) -> int:
        try:
            return self.style_start + self.config.styles.index(style)
        except ValueError:
            raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(self.config.styles)}") from None

    def family_id(self, name: str) -> int:
        try:
            return self.family_index[name]
        except KeyError:
            raise ValueError(f"unknown instrument {name!r}; valid instruments: {', '.join(self.families)}") from None

    # --- id classification (vectorised: used by decoding, augmentation and logits processors) --
    KIND_SPECIAL, KIND_WAIT, KIND_TEMPO, KIND_INST, KIND_ON, KIND_OFF, KIND_STYLE = range(7)

    # Per-id tables (shape ``[size]``) behind the readers below: every question about an id is one lookup,
    # so no module outside this one does offset arithmetic on the block layout.
    def wait_steps(self, ids) -> np.ndarray:
        """10 ms steps each id advances the clock by (0 for every id but ``wait:N``); shape of ``ids``."""
        return self._lookup(self._wait_steps, ids, 0)

    def pitch(self, ids) -> np.ndarray:
        """MIDI pitch of note-on/off ids, -1 for any other id; shape of ``ids``."""
        return self._lookup(self._pitch, ids, -1)

    def velocity_bin(self, ids) -> np.ndarray:
        """Velocity bin of note-on ids, -1 for any other id; shape of ``ids``."""
        return self._lookup(self._vbin, ids, -1)

    def key(self, ids) -> np.ndarray:
        """Key slot (pitched family slot x 128 + pitch, in ``[0, num_keys)``) of note-on and note-off ids of
        pitched families, -1 for drums and every other id: the index voice tracking uses."""
        return self._lookup(self._key, ids, -1)

    @property
    def num_keys(self) -> int:
        """Keys (pitched family, pitch) a voice can sound on."""
        return len(self.pitched) * NUM_PITCHES

    def note_off_id_of_key(self, key: int) -> int:
        """The note-off id of a key slot (see ``key``)."""
        return self.off_start + int(key)

    def header_value(self, tok: int):
        """What a header id says: the style name, the family index or the BPM; None for other ids."""
        kind = int(self.kinds(tok))
        if kind == self.KIND_STYLE:
            return self.config.styles[tok - self.style_start]
        if kind == self.KIND_INST:
            return tok - self.inst_start
        if kind == self.KIND_TEMPO:
            return tok - self.tempo_start + self.config.min_bpm
        return None

    def tempo_bpm(self, ids) -> np.ndarray:
        """BPM of tempo ids, 0 for any other id; shape of ``ids``."""
        return self._lookup(self._bpm, ids, 0)

    def with_velocity_bin(self, ids, bins) -> np.ndarray:
        """Note-on ids with their velocity bin replaced by ``bins`` (clipped to the bins that exist)."""
        ids = np.asarray(ids, dtype=np.int64)
        fam = self.note_family(ids)
        bins = np.clip(bins, 0, self.nbins - 1)
        return self.on_start + (fam * self.nbins + bins) * NUM_PITCHES + self.pitch(ids)

    def wait_ids(self, steps: int) -> list[int]:
        """The wait ids that advance the clock by ``steps`` (full-length waits first, then the rest)."""
        max_wait = self.config.max_wait_steps
        full, rest = divmod(max(int(steps), 0), max_wait)
        return [self.wait_id(max_wait)] * full + ([self.wait_id(rest)] if rest else [])

    def note_on_range(self, family: int) -> slice:
        """One family's note-on ids (every velocity bin and pitch) as a slice of the vocabulary."""
        span = self.nbins * NUM_PITCHES
        return slice(self.on_start + family * span, self.on_start + (family + 1) * span)

    @property
    def note_off_range(self) -> slice:
        """The note-off ids as a slice of the vocabulary (ordered by key slot)."""
        return slice(self.off_start, self.style_start)

    def _lookup(self, table: np.ndarray, ids, missing: int) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        ok = (ids >= 0) & (ids < self.size)
        return np.where(ok, table[np.clip(ids, 0, self.size - 1)], missing)

    def kinds(self, ids) -> np.ndarray:
        """Kind code (``KIND_*``) of every id; ids outside the vocabulary count as special."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.full(ids.shape, self.KIND_SPECIAL, dtype=np.int8)
        ok = (ids >= 0) & (ids < self.size)
        out[ok] = self._kinds[ids[ok]]
        return out

    def note_family(self, ids) -> np.ndarray:
        """Family index of note-on/off ids (shape of ``ids``); -1 for any other id."""
        ids = np.asarray(ids, dtype=np.int64)
        fam = np.full(ids.shape, -1, dtype=np.int64)
        on = (ids >= self.on_start) & (ids < self.off_start)
        fam[on] = (ids[on] - self.on_start) // (self.nbins * NUM_PITCHES)
        off = (ids >= self.off_start) & (ids < self.style_start)
        fam[off] = np.asarray(self.pitched, dtype=np.int64)[(ids[off] - self.off_start) // NUM_PITCHES]
        return fam

    def family_token_mask(self, families) -> np.ndarray:
        """Boolean mask over the vocabulary (shape ``[size]``): the note ids of the given families."""
        mask = np.zeros(self.size, dtype=bool)
        fam = self.note_family(np.arange(self.size))
        mask[np.isin(fam, list(families))] = True
        return mask

    # --- internals ------------------------------------------------------------------------------
    def _program_table(self) -> np.ndarray:
        table = np.full(128, self.family_index[self.config.default_family], dtype=np.int64)
        for fam, programs in self.config.program_map.items():
            for p in programs:
                table[int(p)] = self.family_index[fam]
        return table

    def _token_strings(self) -> list[str]:
        c = self.config
        toks = list(SPECIAL_TOKENS)
        toks += [f"wait:{n}" for n in range(1, c.max_wait_steps + 1)]
        toks += [f"tempo:{b}" for b in range(c.min_bpm, c.max_bpm + 1)]
        toks += [f"inst:{f}" for f in self.families]
        toks += [
            f"{f}:v{self.bin_velocity[b]}:{p}" for f in self.families for b in range(self.nbins) for p in range(NUM_PITCHES)
        ]
        toks += [f"{self.families[f]}:off:{p}" for f in self.pitched for p in range(NUM_PITCHES)]
        toks += [f"style:{s}" for s in c.styles]
        assert len(toks) == self.size
        return toks

    def _id_tables(self) -> tuple[np.ndarray, ...]:
        every = np.arange(self.size)
        kinds = self._kinds
        waits = np.where(kinds == self.KIND_WAIT, every - self.wait_start + 1, 0)
        on, off = kinds == self.KIND_ON, kinds == self.KIND_OFF
        pitch = np.where(on, (every - self.on_start) % NUM_PITCHES, np.where(off, (every - self.off_start) % NUM_PITCHES, -1))
        vbin = np.where(on, ((every - self.on_start) // NUM_PITCHES) % self.nbins, -1)
        fam = np.where(on, (every - self.on_start) // (self.nbins * NUM_PITCHES), -1)
        slot = np.where(fam >= 0, self.off_slot[np.clip(fam, 0, None)], -1)
        key = np.where(on & (slot >= 0), slot * NUM_PITCHES + pitch, -1)
        key = np.where(off, every - self.off_start, key)
        bpm = np.where(kinds == self.KIND_TEMPO, every - self.tempo_start + self.config.min_bpm, 0)
        return waits, pitch, vbin, key, bpm

    def _kind_table(self) -> np.ndarray:
        k = np.zeros(self.size, dtype=np.int8)
        bounds = [self.wait_start, self.tempo_start, self.inst_start, self.on_start, self.off_start, self.style_start, self.size]
        for kind, (lo, hi) in enumerate(zip(bounds, bounds[1:]), start=self.KIND_WAIT):
            k[lo:hi] = kind
        return k


def _velocity_tables(nbins: int) -> tuple[np.ndarray, list[int]]:
    """(bin of each MIDI velocity 0..127, representative velocity of each bin).

    Velocities 1..127 are split into ``nbins`` equal ranges; a bin is written back as its middle.
    """
    vel = np.arange(128)
    bins = np.clip((np.maximum(vel, 1) - 1) * nbins // 127, 0, nbins - 1)
    reps = [int((vel[1:][bins[1:] == b].min() + vel[1:][bins[1:] == b].max() + 1) // 2) for b in range(nbins)]
    return bins.astype(np.int64), reps
