"""Notes <-> event ids: the encoding itself, on plain ints (no text tokenization on this path).

Encoding rules, each deliberate:

- Time: onsets and ends are rounded to the nearest 10 ms step (so within +-5 ms); the clock advances
  with ``wait`` tokens of at most ``max_wait_steps`` steps each.
- A note shorter than half a step would start and end on the same step: it is kept, one step long.
- Overlapping notes of the same family and pitch (a melody doubled by the accompaniment in another
  track, a key re-struck before its release) are all kept, as voices of that key: a note-on always
  starts a new voice; a note-off ends the latest-started voice (or, when the header says
  ``<voice:fifo>``, the earliest), and each ``<voice:skip>`` marker before it skips one voice from that
  end. The encoder picks, per sequence, the order that needs fewer markers (performed pop with doubled
  melodies favours last-in-first-out, sequenced band arrangements with legato overlaps first-in-first-out). Decoded
  files put simultaneous voices of one key on spare channels with the same program.
- Within a step, note-offs come before note-ons, each ordered by family then pitch (same-key
  note-ons longest first), so a sequence has one canonical form.
- Drums are onset-only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .errors import MidiError, WorkBudget
from .midi_io import Note, Score
from .vocabulary import EOS, VOICE_FIFO, VOICE_SKIP, MidiLimits, Vocabulary
from .voices import VoiceStack


@dataclass
class Header:
    style: str = "unknown"
    families: list[int] = field(default_factory=list)  # family indices, ascending
    bpm: int = 120
    fifo: bool = False  # note-offs end a key's earliest voice rather than its latest


def header_ids(vocab: Vocabulary, header: Header) -> list[int]:
    """``<bos> style:S inst:F... tempo:BPM [<voice:fifo>]`` as ids."""
    ids = [vocab.token_to_id["<bos>"], vocab.style_id(header.style)]
    ids += [vocab.inst_id(f) for f in sorted(set(header.families))]
    ids.append(vocab.tempo_id(header.bpm))
    if header.fifo:
        ids.append(vocab.token_to_id[VOICE_FIFO])
    return ids


def quantize(notes: list[Note], vocab: Vocabulary) -> list[tuple[int, int, int, int, int]]:
    """Notes -> (on_step, off_step, family, pitch, velocity_bin), sorted by (on_step, family, pitch).

    Drum hits keep ``off_step == on_step``; a pitched note is at least one step long. Two hits of
    the same drum on one step become one (the louder).
    """
    step = vocab.config.step_seconds
    vbin = vocab.bin_of_velocity
    drums = vocab.drum_index
    q = []
    for n in notes:
        on = int(np.floor(n.start / step + 0.5))
        off = on if n.family == drums else max(int(np.floor(n.end / step + 0.5)), on + 1)
        q.append((on, off, n.family, n.pitch, int(vbin[n.velocity])))
    q.sort(key=lambda x: (x[0], x[2], x[3], -x[1]))
    out = []
    for note in q:
        if note[2] == drums and out and out[-1][:4] == note[:4]:
            out[-1] = (*note[:4], max(out[-1][4], note[4]))
            continue
        out.append(note)
    return out


def score_header(score: Score, style: str = "unknown") -> Header:
    """The header of a whole score: its style, the families that play in it, its first tempo."""
    return Header(style or "unknown", sorted({n.family for n in score.notes}), round(score.bpm))


def encode_score(score: Score, vocab: Vocabulary, style: str = "unknown") -> list[int]:
    """A whole score -> ids: its header (``score_header``), the events and ``<eos>``; within the time
    bound the score was read under (``Score.budget``), if any."""
    budget = score.budget or WorkBudget(score.source or "<score>", vocab.config.limits.max_cpu_seconds)
    return encode_notes(score.notes, vocab, score_header(score, style), budget=budget)


def encode_events(
    notes: list[Note], vocab: Vocabulary, end_steps: int | None = None, budget: WorkBudget | None = None
) -> tuple[list[int], bool, int]:
    """Notes -> (event ids without header or ``<eos>``, whether they use ``<voice:fifo>``, length in 10 ms steps).

    The voice-order marker is returned as a flag, for the header that goes with the events (a primer's
    header is built for the piece it starts). With ``end_steps`` the events last at least that long: trailing
    waits carry the clock to it, so music appended after them starts there even after a silence.
    """
    events = encode_notes(notes, vocab, eos=False, budget=budget)
    fifo = bool(events) and events[0] == vocab.token_to_id[VOICE_FIFO]
    events = events[1:] if fifo else events
    steps = int(vocab.wait_steps(events).sum()) if events else 0
    if end_steps is not None and end_steps > steps:
        events += vocab.wait_ids(end_steps - steps)
        steps = end_steps
    return events, fifo, steps


def encode_notes(
    notes: list[Note], vocab: Vocabulary, header: Header | None = None, eos: bool = True, budget: WorkBudget | None = None
) -> list[int]:
    """Notes -> ids: the header (if given), the events, and ``<eos>``.

    Without a header, a ``<voice:fifo>`` marker still leads the events when that voice order was chosen.

    Args:
        notes: the notes, times in seconds.
        vocab: the event vocabulary; its ``config.limits`` bound the work.
        header (`Header`, *optional*): the sequence header to lead the ids with.
        eos (`bool`, defaults to `True`): end with ``<eos>``.
        budget (`WorkBudget`, *optional*): the time bound (defaults to a new one of ``limits.max_cpu_seconds``,
            for the source ``<notes>``).

    Raises ``MidiError`` (naming the budget's source) when more notes start in one 10 ms step than
    ``limits.max_onsets_per_step``, when a key has more simultaneous voices than ``limits.max_voices_per_key``,
    or when the time bound is spent.
    """
    limits = vocab.config.limits
    budget = budget or WorkBudget("<notes>", limits.max_cpu_seconds)
    q = quantize(notes, vocab)
    _check_onsets(q, limits, budget)
    plans = [_plan(q, vocab, fifo, budget) for fifo in (False, True)]
    events, skips, use_fifo = min(plans, key=lambda plan: sum(plan[1]))
    skips = iter(skips)
    if header is not None:
        ids = header_ids(vocab, dataclasses.replace(header, fifo=use_fifo))
    else:
        ids = [vocab.token_to_id[VOICE_FIFO]] if use_fifo else []
    skip = vocab.token_to_id[VOICE_SKIP]
    now = 0
    for t, kind, fam, pitch, _, i in events:
        if t > now:
            ids += vocab.wait_ids(t - now)
            now = t
        if kind == 1:
            ids.append(vocab.note_on_id(fam, q[i][4], pitch))
        else:
            ids += [skip] * next(skips)
            ids.append(vocab.note_off_id(fam, pitch))
    if eos:
        ids.append(vocab.token_to_id[EOS])
    return ids


def _check_onsets(q, limits: MidiLimits, budget: WorkBudget) -> None:
    """``MidiError`` when more notes start in one step than ``limits.max_onsets_per_step`` (``q`` is sorted by onset)."""
    run, last = 0, None
    for note in q:
        budget.tick()
        run = run + 1 if note[0] == last else 1
        last = note[0]
        if run > limits.max_onsets_per_step:
            raise MidiError(
                budget.source,
                f"over {limits.max_onsets_per_step} notes start in the 10 ms step {last} (the per-step onset limit)",
            )


def _plan(q, vocab: Vocabulary, fifo: bool, budget: WorkBudget):
    """Events in token order for one voice order, and the ``<voice:skip>`` count before each note-off.

    Events are (step, 0 = off / 1 = on, family, pitch, tie-break, note index). Same-step note-ons of one
    key go in the order that voice order ends them (shorter last for last-in-first-out, first otherwise).
    Returns (events, skips, fifo).
    """
    events = []
    for i, (on, off, fam, pitch, _) in enumerate(q):
        events.append((on, 1, fam, pitch, off if fifo else -off, i))
        if fam != vocab.drum_index:
            events.append((off, 0, fam, pitch, 0, i))
    events.sort()
    voices: dict[tuple[int, int], VoiceStack] = {}  # key -> its voices, as (on_step, velocity bin)
    skips = []
    max_voices = vocab.config.limits.max_voices_per_key
    for _, kind, fam, pitch, _, i in events:
        budget.tick()
        if fam == vocab.drum_index:  # drum hits are onset-only: no voices to end
            continue
        stack = voices.get((fam, pitch))
        if stack is None:
            stack = voices[(fam, pitch)] = VoiceStack(fifo)
        voice = (q[i][0], q[i][4])  # voices alike in onset and velocity are interchangeable
        if kind == 1:
            stack.push(voice)
            if len(stack) > max_voices:
                raise MidiError(
                    budget.source, f"over {max_voices} simultaneous voices of {vocab.families[fam]} pitch {pitch} (the voice limit)"
                )
        else:
            skips.append(stack.end_voice(voice))
    return events, skips, fifo




@dataclass
class Decoded:
    notes: list[Note]
    header: Header
    steps: int  # length of the event part in 10 ms steps


def decode_ids(ids, vocab: Vocabulary) -> Decoded:
    """Ids -> notes. Never fails: unknown, misplaced or unmatched tokens are ignored, notes still
    sounding at the end (or at ``<eos>``) end there, one step long at least."""
    cfg = vocab.config
    step = cfg.step_seconds
    ids = np.asarray(list(ids), dtype=np.int64).ravel()
    kinds = vocab.kinds(ids)
    header = Header()
    voices: dict[tuple[int, int], VoiceStack] = {}  # key -> its voices, as (on_step, velocity)
    last_hit: dict[int, int] = {}  # drum pitch -> index in notes of its last hit
    notes: list[Note] = []
    now = 0
    eos, skip, fifo = vocab.token_to_id[EOS], vocab.token_to_id[VOICE_SKIP], vocab.token_to_id[VOICE_FIFO]
    in_header, skips = True, 0
    columns = (vocab.wait_steps(ids), vocab.note_family(ids), vocab.pitch(ids), vocab.velocity_bin(ids))
    for tok, kind, wait, fam, pitch, vb in zip(ids.tolist(), kinds.tolist(), *(c.tolist() for c in columns)):
        if tok == eos:
            break
        if tok == skip:
            skips += 1
            continue
        if tok == fifo and in_header:
            header.fifo = True
            continue
        if kind in (vocab.KIND_WAIT, vocab.KIND_ON, vocab.KIND_OFF):
            in_header = False  # header tokens after the first event are ignored
        elif in_header:
            _read_header_token(vocab, tok, kind, header)
            continue
        if kind == vocab.KIND_WAIT:
            now += wait
        elif kind == vocab.KIND_ON:
            vel = vocab.bin_velocity[vb]
            if fam == vocab.drum_index:
                _drum_hit(notes, last_hit, now, pitch, vel, fam, step, cfg.drum_note_seconds)
            else:
                stack = voices.get((fam, pitch))
                if stack is None:
                    stack = voices[(fam, pitch)] = VoiceStack(header.fifo)
                stack.push((now, vel))
        elif kind == vocab.KIND_OFF:
            stack = voices.get((fam, pitch))
            if stack:
                on, vel = stack.end(skips)
                notes.append(Note(on * step, max(now, on + 1) * step, fam, pitch, vel))
        skips = 0
    for (fam, pitch), stack in voices.items():
        for on, vel in stack:
            notes.append(Note(on * step, max(now, on + 1) * step, fam, pitch, vel))
    notes.sort(key=lambda n: (n.start, n.family, n.pitch))
    return Decoded(notes, header, now)


def _drum_hit(notes, last_hit, now, pitch, vel, fam, step, length) -> None:
    j = last_hit.get(pitch)
    t = now * step
    if j is not None and notes[j].start >= t:  # the same drum twice on one step: keep one, louder
        notes[j].velocity = max(notes[j].velocity, vel)
        return
    if j is not None and notes[j].end > t:  # re-struck before its decoded length ran out
        notes[j].end = t
    last_hit[pitch] = len(notes)
    notes.append(Note(t, t + length, fam, pitch, vel))


def _read_header_token(vocab: Vocabulary, tok: int, kind: int, header: Header) -> None:
    value = vocab.header_value(tok)
    if kind == vocab.KIND_STYLE:
        header.style = value
    elif kind == vocab.KIND_INST:
        if value not in header.families:
            header.families.append(value)
    elif kind == vocab.KIND_TEMPO:
        header.bpm = value
