"""MIDI file <-> notes: the first and last stage of the flow.

``read_midi`` turns any MIDI source into a ``Score``: notes in seconds (tempo changes applied),
already mapped to instrument families, with the sustain pedal folded into note lengths.
``write_midi`` writes notes back as a type-1 file, one track per family, with a representative
General MIDI program each and drums on channel 10.

Every failure of mido, and every file past a ``MidiLimits`` bound, becomes a ``MidiError``.
"""

from __future__ import annotations

import io
import os
from collections import deque
from dataclasses import dataclass, field

import mido

from .errors import MidiError, WorkBudget, describe_source
from .vocabulary import EncodingConfig, MidiLimits, Vocabulary

DRUM_CHANNEL = 9  # channel 10 in 1-based numbering: General MIDI percussion
DEFAULT_TEMPO = 500_000  # microseconds per beat: MIDI's implicit 120 BPM
SUSTAIN_CONTROL = 64
PEDAL_DOWN = 64  # CC64 values >= 64 mean pedal down (GM convention)
# Decoded files use 20 ticks per 10 ms step (500 us ticks), so every grid time is an exact tick;
# ticks_per_beat is then chosen per tempo, 120000 / BPM (400..6000 for 20..300 BPM).
DECODE_TICK_US = 500


@dataclass
class Note:
    """One note. Times in seconds from the start of the file; ``end == start`` for drum hits."""

    start: float
    end: float
    family: int  # index into EncodingConfig.families
    pitch: int  # MIDI pitch 0..127
    velocity: int  # MIDI velocity 1..127


@dataclass
class Score:
    notes: list[Note] = field(default_factory=list)
    bpm: float = 120.0  # the first tempo of the file
    source: str = ""
    # the time bound of the file this score was read from, so encoding it continues the same clock
    budget: WorkBudget | None = field(default=None, repr=False, compare=False)

    @property
    def seconds(self) -> float:
        return max((n.end for n in self.notes), default=0.0)


class _BoundedReader(io.BytesIO):
    """The file object mido parses: mido calls ``tell()`` once per message (and once per track), so counting
    those calls stops a file with too many messages, or past its time bound, while it is being parsed."""

    def __init__(self, data: bytes, source, limits: MidiLimits, budget: WorkBudget):
        super().__init__(data)
        self.source, self.budget = source, budget
        tracks = int.from_bytes(data[10:12], "big") if data[:4] == b"MThd" else 0  # the header's track count
        self.calls_left = limits.max_messages + 2 * tracks  # + two calls per track (its start and its end)
        self.max_messages = limits.max_messages

    def tell(self) -> int:
        self.calls_left -= 1
        if self.calls_left < 0:
            raise MidiError(self.source, f"over {self.max_messages} messages (the message limit)")
        self.budget.tick()
        return super().tell()


def load_midi_file(source, limits: MidiLimits | None = None, budget: WorkBudget | None = None) -> mido.MidiFile:
    """Parse a path, bytes or ``mido.MidiFile`` with mido, translating every failure into ``MidiError``.

    Args:
        source: a path, bytes or a parsed ``mido.MidiFile`` (returned as is).
        limits (`MidiLimits`, *optional*): the bounds to enforce (defaults to ``MidiLimits()``).
        budget (`WorkBudget`, *optional*): the file's time bound (defaults to a new one of ``limits.max_cpu_seconds``).
    """
    limits = limits or MidiLimits()
    budget = budget or WorkBudget(source, limits.max_cpu_seconds)
    if isinstance(source, mido.MidiFile):
        return source
    if isinstance(source, (str, os.PathLike)):
        try:
            size = os.path.getsize(source)
        except OSError as exc:
            raise MidiError(source, f"cannot read file ({exc.strerror or exc})") from None
        _check(size <= limits.max_file_bytes, source, f"file is {size} bytes, over the limit of {limits.max_file_bytes}")
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise MidiError(source, f"cannot read file ({exc.strerror or exc})") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check(len(data) <= limits.max_file_bytes, source, f"data is {len(data)} bytes, over the limit of {limits.max_file_bytes}")
    else:
        raise TypeError(f"a MIDI source is a path, bytes or mido.MidiFile, not {type(source).__name__}")
    _check(len(data) > 0, source, "file is empty")
    _check_chunks(data, source)
    try:
        midi = mido.MidiFile(file=_BoundedReader(data, source, limits, budget))
    except MidiError:
        raise
    except Exception as exc:  # mido raises EOFError, OSError, IndexError, KeyError, ValueError, bare Exceptions...
        raise MidiError(source, f"not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    if isinstance(source, (str, os.PathLike)):
        midi.filename = os.fspath(source)
    return midi


def _check_chunks(data: bytes, source) -> None:
    """Walk the chunk headers before mido parses anything, so a file whose track chunks do not match its header
    fails in O(tracks) with a clear reason instead of after parsing every message up to the end of the data.

    mido reads the ``MThd`` chunk, then as many ``MTrk`` chunks as the header's track count, each until its
    declared length is consumed: a declared length past the end of the data can only end in an ``EOFError``
    once the whole rest of the file has been parsed. mido also reads the count as a *signed* 16-bit number, so
    a count of 32768 or more reads as no tracks at all, and a count below the chunks present drops the rest:
    both would silently lose every note, so both are errors here.
    """
    if data[:4] != b"MThd" or len(data) < 14:
        return  # mido raises its own error for these at once
    pos = 8 + int.from_bytes(data[4:8], "big")
    declared = int.from_bytes(data[10:12], "big")
    for index in range(declared):
        _check(
            pos + 8 <= len(data) and data[pos : pos + 4] == b"MTrk",
            source,
            f"the header declares {declared} tracks but track {index} has no MTrk chunk (truncated or corrupt file)",
        )
        size = int.from_bytes(data[pos + 4 : pos + 8], "big")
        remaining = len(data) - pos - 8
        _check(
            size <= remaining,
            source,
            f"track {index} declares {size} bytes but only {remaining} follow (truncated file or corrupt chunk length)",
        )
        pos += 8 + size
    _check(
        data[pos : pos + 4] != b"MTrk" or declared >= 0x8000,
        source,
        f"the header declares {declared} tracks but more MTrk chunks follow (a corrupt track count)",
    )


def read_midi(source, config: EncodingConfig | None = None, vocab: Vocabulary | None = None) -> Score:
    """Read a MIDI source into a ``Score`` of family-mapped notes in seconds.

    Parsing and reading share one ``WorkBudget`` of ``config.limits.max_cpu_seconds``, which the score
    carries on (``Score.budget``) so that encoding it stays within the same bound.
    """
    config = config or (vocab.config if vocab else EncodingConfig())
    vocab = vocab or Vocabulary(config)
    budget = WorkBudget(source, config.limits.max_cpu_seconds)
    midi = load_midi_file(source, config.limits, budget)
    try:
        score = _NoteReader(midi, vocab, source, budget).read()
        score.budget = budget
        return score
    except MidiError:
        raise
    except Exception as exc:  # malformed messages mido accepted: never let them escape as another type
        raise MidiError(source, f"malformed MIDI content ({type(exc).__name__}: {exc})") from None


class _NoteReader:
    """Walks a parsed file in time order, tracking tempo, programs, pedals and sounding notes."""

    def __init__(self, midi: mido.MidiFile, vocab: Vocabulary, source, budget: WorkBudget):
        self.midi, self.vocab, self.source, self.budget = midi, vocab, source, budget
        self.limits = vocab.config.limits
        self.notes: list[Note] = []
        self.first_tempo: int | None = None

    def read(self) -> Score:
        midi, lim = self.midi, self.limits
        ppq = midi.ticks_per_beat
        _check(ppq > 0, self.source, f"ticks per beat is {ppq}: SMPTE or zero time division is not supported")
        _check(ppq <= lim.max_ticks_per_beat, self.source, f"ticks per beat {ppq} is over {lim.max_ticks_per_beat}")
        nmsg = sum(len(t) for t in midi.tracks)
        _check(nmsg <= lim.max_messages, self.source, f"{nmsg} messages, over the limit of {lim.max_messages}")
        # Type 2 files hold independent sequences played one after another; types 0/1 play tracks together.
        groups = [[t] for t in midi.tracks] if midi.type == 2 else [midi.tracks]
        offset = 0.0
        for tracks in groups:
            offset = self._read_group(tracks, ppq, offset)
        bpm = mido.tempo2bpm(self.first_tempo or DEFAULT_TEMPO) if (self.first_tempo or 0) > 0 else 120.0
        self.notes.sort(key=lambda n: (n.start, n.family, n.pitch))
        return Score(self.notes, bpm=bpm, source=describe_source(self.source))

    def _read_group(self, tracks, ppq: int, offset: float) -> float:
        lim = self.limits
        timeline = []
        for ti, track in enumerate(tracks):
            tick = 0
            for mi, msg in enumerate(track):
                _check(msg.time <= lim.max_delta_ticks, self.source, f"delta-time {msg.time} is longer than the MIDI maximum")
                tick += msg.time
                self.budget.tick()
                if msg.type in ("note_on", "note_off", "control_change", "program_change", "set_tempo"):
                    timeline.append((tick, ti, mi, msg))
        timeline.sort(key=lambda x: x[:3])
        tempo, last_tick, now = DEFAULT_TEMPO, 0, offset
        state = _ChannelState()
        for tick, _, _, msg in timeline:
            self.budget.tick()
            now += (tick - last_tick) * tempo / (ppq * 1e6)
            last_tick = tick
            _check(now <= lim.max_seconds, self.source, f"music lasts over {lim.max_seconds:g} s (the duration limit)")
            if msg.type == "set_tempo":
                tempo = msg.tempo
                if self.first_tempo is None:
                    self.first_tempo = tempo
            else:
                self._handle(msg, now, state)
        state.release_all(now, self._emit)
        return now

    def _handle(self, msg, now: float, st: _ChannelState) -> None:
        ch = msg.channel
        if msg.type == "program_change":
            st.program[ch] = msg.program
        elif msg.type == "control_change":
            if msg.control == SUSTAIN_CONTROL:
                down = msg.value >= PEDAL_DOWN
                if st.pedal[ch] and not down:
                    st.release_held(ch, now, self._emit)
                st.pedal[ch] = down
        elif msg.type == "note_on" and msg.velocity > 0:
            if ch == DRUM_CHANNEL:  # drums are onset-only
                self._emit(now, now, self.vocab.drum_index, msg.note, msg.velocity)
                return
            family = int(self.vocab.program_family[st.program[ch]])
            st.release_held_key(ch, msg.note, now, self._emit)  # a re-struck pedalled note ends the old one
            st.sounding.setdefault((ch, msg.note), deque()).append((now, family, msg.velocity))
        elif ch != DRUM_CHANNEL:  # note_off, or note_on with velocity 0
            stack = st.sounding.get((ch, msg.note))
            if stack:
                start = stack.popleft()  # first in, first out: the oldest sounding copy ends
                if st.pedal[ch]:
                    st.held.setdefault((ch, msg.note), []).append(start)
                else:
                    self._emit(start[0], now, start[1], msg.note, start[2])

    def _emit(self, start: float, end: float, family: int, pitch: int, velocity: int) -> None:
        self.notes.append(Note(start, end, family, pitch, velocity))
        _check(len(self.notes) <= self.limits.max_notes, self.source, f"over {self.limits.max_notes} notes (the note limit)")


class _ChannelState:
    def __init__(self):
        self.program = [0] * 16
        self.pedal = [False] * 16
        self.sounding: dict[tuple[int, int], deque] = {}  # (channel, pitch) -> [(start, family, velocity)]
        self.held: dict[tuple[int, int], list] = {}  # released keys still sounding under the pedal

    def release_held(self, ch: int, now: float, emit) -> None:
        for key in [k for k in self.held if k[0] == ch]:
            for start, fam, vel in self.held.pop(key):
                emit(start, now, fam, key[1], vel)

    def release_held_key(self, ch: int, pitch: int, now: float, emit) -> None:
        for start, fam, vel in self.held.pop((ch, pitch), []):
            emit(start, now, fam, pitch, vel)

    def release_all(self, now: float, emit) -> None:
        for table in (self.held, self.sounding):
            for (_, pitch), starts in table.items():
                for start, fam, vel in starts:
                    emit(start, now, fam, pitch, vel)
            table.clear()


def write_midi(notes: list[Note], vocab: Vocabulary, bpm: float = 120.0) -> mido.MidiFile:
    """Write notes (seconds) as a type-1 MIDI file: a tempo track, then one track per family present.

    The file's tempo is ``bpm`` and its resolution 500 us per tick, so times on the 10 ms grid are
    exact. Each family plays on its own channel (drums on channel 10); a note whose key is already
    sounding in that family goes to a spare channel with the same program, so doubled notes survive.
    """
    bpm = min(max(float(bpm), vocab.config.min_bpm), vocab.config.max_bpm)
    ppq = max(1, round(60_000_000 / (bpm * DECODE_TICK_US)))
    midi = mido.MidiFile(type=1, ticks_per_beat=ppq)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=ppq * DECODE_TICK_US, time=0)]))
    primary = _family_channels(len(vocab.families), vocab.drum_index)
    spare = [c for c in range(16) if c != DRUM_CHANNEL and c not in primary]
    for fam in sorted({n.family for n in notes}):
        fam_notes = sorted((n for n in notes if n.family == fam), key=lambda n: (n.start, -n.end))
        midi.tracks.append(_family_track(vocab, fam, primary[fam], spare, fam_notes))
    return midi


def _family_channels(nfam: int, drum_index: int) -> list[int]:
    free = iter(c for c in range(16) if c != DRUM_CHANNEL)
    return [DRUM_CHANNEL if f == drum_index else next(free, 0) for f in range(nfam)]


def _family_track(vocab: Vocabulary, fam: int, channel: int, spare: list[int], notes: list[Note]) -> mido.MidiTrack:
    name = vocab.families[fam]
    program = vocab.config.decode_programs.get(name, 0)
    to_tick = 1e6 / DECODE_TICK_US
    channels = [channel]
    busy: dict[tuple[int, int], int] = {}  # (channel, pitch) -> tick its note ends
    events = []  # (tick, order, message): at equal ticks, note-offs before note-ons
    for n in notes:
        on, off = round(n.start * to_tick), round(n.end * to_tick)
        off = max(off, on + 1)
        ch = next((c for c in channels if busy.get((c, n.pitch), -1) <= on), None)
        if ch is None and spare and fam != vocab.drum_index:
            ch = spare.pop(0)  # a doubled key: give this family another channel with its program
            channels.append(ch)
        ch = channel if ch is None else ch  # out of channels: the player sounds the key once
        busy[(ch, n.pitch)] = off
        events.append((on, 1, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
        events.append((off, 0, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    if fam != vocab.drum_index:
        track += [mido.Message("program_change", channel=c, program=program) for c in channels]
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    return track


def _check(ok: bool, source, reason: str) -> None:
    if not ok:
        raise MidiError(source, reason)
