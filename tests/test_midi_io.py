import os

import mido
import pytest
from conftest import shared_midi
from midi_fixtures import make_midi, seconds_to_ticks, to_bytes

from musenet_hf import MidiError
from musenet_hf.core.midi_io import read_midi, write_midi
from musenet_hf.core.vocabulary import EncodingConfig, MidiLimits

CFG = EncodingConfig()
CC = lambda ch, ctl, val: mido.Message("control_change", channel=ch, control=ctl, value=val)  # noqa: E731


def notes_of(score):
    return [(round(n.start, 3), round(n.end, 3), CFG.families[n.family], n.pitch, n.velocity) for n in score.notes]


def test_reads_families_from_programs_and_drum_channel():
    midi = make_midi([(0, 1, 0, 60, 80, 40), (0, 1, 1, 36, 70, 33), (0.5, 0.6, 9, 38, 100)])
    assert notes_of(read_midi(midi, CFG)) == [(0, 1, "violin", 60, 80), (0, 1, "bass", 36, 70), (0.5, 0.5, "drums", 38, 100)]


def test_tempo_changes_are_applied():
    # 120 BPM for the first beat (0.5 s), then 60 BPM: a note one beat after the change starts at 1.5 s
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500_000, time=0),
        mido.MetaMessage("set_tempo", tempo=1_000_000, time=480),
        mido.Message("note_on", note=60, velocity=64, time=480),
        mido.Message("note_off", note=60, velocity=0, time=480),
    ]))
    score = read_midi(midi, CFG)
    assert notes_of(score) == [(1.5, 2.5, "piano", 60, 64)]
    assert round(score.bpm) == 120  # the first tempo goes into the header


def test_sustain_pedal_extends_notes_until_release_or_restrike():
    extra = [(0.0, CC(0, 64, 127)), (2.0, CC(0, 64, 0))]
    midi = make_midi([(0, 0.5, 0, 60, 64), (0.2, 0.4, 0, 64, 64), (1.0, 1.2, 0, 60, 64)], extra=extra)
    # 60 is re-struck at 1.0 s while held by the pedal: the held copy ends there; the rest end at release
    assert sorted(notes_of(read_midi(midi, CFG))) == [(0, 1.0, "piano", 60, 64), (0.2, 2.0, "piano", 64, 64), (1.0, 2.0, "piano", 60, 64)]


def test_type2_tracks_play_one_after_another():
    midi = mido.MidiFile(type=2, ticks_per_beat=480)
    for pitch in (60, 62):
        midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=pitch, velocity=64, time=0),
                                           mido.Message("note_off", note=pitch, velocity=0, time=480)]))
    assert notes_of(read_midi(midi, CFG)) == [(0, 0.5, "piano", 60, 64), (0.5, 1.0, "piano", 62, 64)]


def test_unterminated_notes_end_at_the_last_event():
    midi = make_midi([(0, 2, 0, 62, 64)])
    midi.tracks[1].insert(1, mido.Message("note_on", channel=0, note=60, velocity=64, time=0))
    assert (0, 2.0, "piano", 60, 64) in notes_of(read_midi(midi, CFG))


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"not a midi file at all", "not a readable MIDI"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01", "not a readable MIDI"),  # truncated header
])
def test_unreadable_bytes_raise_midi_error(data, reason):
    with pytest.raises(MidiError, match=reason):
        read_midi(data, CFG)


def test_error_names_the_file(tmp_path):
    path = tmp_path / "broken song.mid"
    path.write_bytes(b"MThd garbage")
    with pytest.raises(MidiError) as info:
        read_midi(path, CFG)
    assert str(path) in str(info.value) and info.value.source == str(path)
    with pytest.raises(MidiError, match="cannot read file"):
        read_midi(tmp_path / "missing.mid", CFG)


def test_limits_fail_fast():
    midi = make_midi([(i * 0.01, i * 0.01 + 0.005, 0, 60 + i % 12, 64) for i in range(300)])
    data = to_bytes(midi)
    tight = lambda **kw: EncodingConfig(limits=MidiLimits(**kw))  # noqa: E731
    with pytest.raises(MidiError, match="over the limit of 100"):
        read_midi(data, tight(max_file_bytes=100))
    with pytest.raises(MidiError, match="messages"):
        read_midi(data, tight(max_messages=50))
    with pytest.raises(MidiError, match="note limit"):
        read_midi(data, tight(max_notes=10))
    with pytest.raises(MidiError, match="duration limit"):
        read_midi(data, tight(max_seconds=1.0))
    with pytest.raises(MidiError, match="ticks per beat"):
        read_midi(make_midi([(0, 1, 0, 60, 64)], ppq=960), tight(max_ticks_per_beat=480))


def test_huge_delta_time_fails_fast_without_allocating():
    # one note after a 2**27-tick delta at 1 tick per beat of 1 s: ~4 years of silence
    midi = mido.MidiFile(type=0, ticks_per_beat=1)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1_000_000, time=0),
                                       mido.Message("note_on", note=60, velocity=64, time=2**27),
                                       mido.Message("note_off", note=60, velocity=0, time=1)]))
    with pytest.raises(MidiError, match="duration limit"):
        read_midi(to_bytes(midi), CFG)


def test_smpte_and_zero_division_are_rejected():
    data = bytearray(to_bytes(make_midi([(0, 1, 0, 60, 64)])))
    for division in (b"\x00\x00", b"\xe7\x28"):  # 0 ticks per beat; SMPTE -25 fps x 40
        data[12:14] = division
        with pytest.raises(MidiError, match="time division"):
            read_midi(bytes(data), CFG)


def test_every_edge_case_file_encodes_or_raises_midi_error(tokenizer):
    root = shared_midi("edge-cases")
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    assert len(files) >= 388
    outcomes = {"ok": 0, "MidiError": 0}
    for path in files:
        try:
            tokenizer.encode_midi(path)
            outcomes["ok"] += 1
        except MidiError as exc:
            assert path in str(exc)
            outcomes["MidiError"] += 1
    assert outcomes["ok"] > 300 and outcomes["MidiError"] >= 10  # the corrupt files really are rejected


def test_write_midi_is_exact_on_the_grid_and_sounds_right():
    from musenet_hf.core.midi_io import Note
    from musenet_hf.core.vocabulary import Vocabulary

    vocab = Vocabulary(CFG)
    notes = [Note(0.01, 0.73, 1, 67, 72), Note(0.5, 0.5, vocab.drum_index, 36, 100)]
    midi = write_midi(notes, vocab, bpm=97)
    assert round(mido.tempo2bpm(midi.tracks[0][0].tempo)) == 97
    programs = {m.channel: m.program for t in midi.tracks for m in t if m.type == "program_change"}
    assert 9 not in programs and 40 in programs.values()  # violin sounds as a violin; drums on channel 10
    back = read_midi(midi, CFG)
    assert [(n.start, n.end) for n in back.notes if n.family == 1] == [(0.01, 0.73)]  # exact ticks, no rounding
    assert seconds_to_ticks(1.0, midi.tracks[0][0].tempo, midi.ticks_per_beat) == 2000


# --- work bounds while parsing ----------------------------------------------------------------------
def test_message_limit_stops_parsing_just_over_and_passes_just_under():
    import io

    import mido
    from midi_fixtures import make_midi, to_bytes

    from musenet_hf.core.errors import MidiError
    from musenet_hf.core.midi_io import load_midi_file
    from musenet_hf.core.vocabulary import MidiLimits

    midi = make_midi([(0.01 * i, 0.01 * i + 0.005, 0, 60, 64) for i in range(50)])
    data = to_bytes(midi)
    messages = sum(len(t) for t in mido.MidiFile(file=io.BytesIO(data)).tracks)  # saving adds end_of_track
    assert len(load_midi_file(data, MidiLimits(max_messages=messages)).tracks) == len(midi.tracks)
    with pytest.raises(MidiError, match=f"over {messages - 1} messages"):
        load_midi_file(data, MidiLimits(max_messages=messages - 1))
    tight = MidiLimits(max_messages=messages // 3)  # stopped while parsing, long before the end
    with pytest.raises(MidiError, match=f"over {messages // 3} messages"):
        load_midi_file(data, tight)


def test_time_bound_is_a_midi_error_naming_the_file(tmp_path):
    from midi_fixtures import make_midi

    from musenet_hf.core.errors import MidiError
    from musenet_hf.core.midi_io import read_midi
    from musenet_hf.core.vocabulary import EncodingConfig, MidiLimits

    path = tmp_path / "slow.mid"
    make_midi([(0.001 * i, 0.001 * i + 0.5, 0, 40 + i % 40, 64) for i in range(3000)]).save(path)
    assert len(read_midi(path, EncodingConfig(limits=MidiLimits(max_cpu_seconds=30.0))).notes) == 3000
    with pytest.raises(MidiError, match="slow.mid: took over 0 s of CPU time"):
        read_midi(path, EncodingConfig(limits=MidiLimits(max_cpu_seconds=0.0)))
