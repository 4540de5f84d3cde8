"""Tiny MIDI files built with mido, so tests own their inputs.

``make_midi`` takes notes as (start_s, end_s, channel, pitch, velocity[, program]) at a fixed tempo and
writes a type-1 file (one track per channel) or, with ``type=0``, a single track.
"""

from __future__ import annotations

import mido

TICKS_PER_BEAT = 480
TEMPO = 500_000  # 120 BPM: one tick = 500000 / 480 us ~ 1.04 ms


def seconds_to_ticks(seconds: float, tempo: int = TEMPO, ppq: int = TICKS_PER_BEAT) -> int:
    return round(seconds * 1e6 * ppq / tempo)


def make_midi(notes, tempo: int = TEMPO, type: int = 1, extra=(), ppq: int = TICKS_PER_BEAT) -> mido.MidiFile:
    """notes: (start_s, end_s, channel, pitch, velocity[, program]); extra: (time_s, channel-message) pairs."""
    events_by_track: dict[int, list] = {}
    programs: dict[int, int] = {}
    for n in notes:
        start, end, ch, pitch, vel = n[:5]
        if len(n) > 5:
            programs[ch] = n[5]
        track = 0 if type == 0 else ch
        events_by_track.setdefault(track, [])
        events_by_track[track].append((seconds_to_ticks(start, tempo, ppq), 1, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
        events_by_track[track].append((seconds_to_ticks(end, tempo, ppq), 0, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
    for t, msg in extra:
        track = 0 if type == 0 else msg.channel
        events_by_track.setdefault(track, []).append((seconds_to_ticks(t, tempo, ppq), 0, msg))
    midi = mido.MidiFile(type=type, ticks_per_beat=ppq)
    head = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
    if type == 1:
        midi.tracks.append(head)
    for track_id in sorted(events_by_track):
        track = head if type == 0 else mido.MidiTrack()
        for ch, prog in programs.items():
            if type == 0 or ch == track_id:
                track.append(mido.Message("program_change", channel=ch, program=prog, time=0))
        last = 0
        for tick, _, msg in sorted(events_by_track[track_id], key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - last))
            last = tick
        if type == 1:
            midi.tracks.append(track)
    if type == 0:
        midi.tracks.append(head)
    return midi


def to_bytes(midi: mido.MidiFile) -> bytes:
    import io

    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()
