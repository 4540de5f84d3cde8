"""Tiny MIDI files written with mido, for the corpus, window and augmentation tests."""

from __future__ import annotations

from pathlib import Path

import mido

TICKS_PER_BEAT = 96


def write_song(path: Path, pitches, program: int = 0, drums: bool = False, beats_per_note: float = 0.5, bpm: int = 120,
               velocity: int = 80) -> Path:
    """A one-track MIDI file: the pitches one after another (channel 10 when ``drums``), with a program change."""
    channel = 9 if drums else 0
    step = int(TICKS_PER_BEAT * beats_per_note)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    for p in pitches:
        track.append(mido.Message("note_on", channel=channel, note=p, velocity=velocity, time=0))
        track.append(mido.Message("note_off", channel=channel, note=p, velocity=0, time=step))
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


def write_band(path: Path, bars: int = 4) -> Path:
    """Violin melody, bass line and a drum beat together: three families, drums on channel 10."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    parts = [(0, 40, [76, 79, 81, 79]), (1, 33, [40, 43, 45, 43]), (9, 0, [36, 42, 38, 42])]
    for channel, program, pitches in parts:
        track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program, time=0)])
        for _ in range(bars):
            for p in pitches:
                track.append(mido.Message("note_on", channel=channel, note=p, velocity=90, time=0))
                track.append(mido.Message("note_off", channel=channel, note=p, velocity=0, time=TICKS_PER_BEAT))
        midi.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


def make_tree(root: Path) -> dict[str, Path]:
    """A corpus folder with good files in two sub-folders, a duplicate, and three bad files."""
    files = {
        "folk/a.mid": write_song(root / "folk" / "a.mid", [60, 62, 64, 65, 67]),
        "folk/b.mid": write_song(root / "folk" / "b.mid", [67, 65, 64, 62, 60, 59]),
        "folk/deep/c.mid": write_song(root / "folk" / "deep" / "c.MID", [48, 52, 55], program=24),
        "band/d.mid": write_band(root / "band" / "d.mid"),
        "band/e.midi": write_song(root / "band" / "e.midi", [36, 38, 42, 46], drums=True),
    }
    dup = root / "folk" / "zz_copy_of_a.mid"  # sorts after a.mid: the first copy found is the one kept
    dup.write_bytes(files["folk/a.mid"].read_bytes())
    (root / "band" / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00")
    (root / "band" / "empty.mid").write_bytes(b"")
    silent = mido.MidiFile()
    silent.tracks.append(mido.MidiTrack([mido.MetaMessage("track_name", name="silence", time=0)]))
    silent.save(root / "band" / "silent.mid")
    (root / "band" / "notes.txt").write_text("not a MIDI file, and not named like one: ignored")
    return files
