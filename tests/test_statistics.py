"""Per-piece statistics: hand-checkable pieces with known answers, and a real POP909 file."""

import math

import pytest

from musenet_hf import MuseNetTokenizer
from musenet_hf.core.midi_io import Note
from musenet_hf.evaluation import statistics as st

INSTRUMENTS = MuseNetTokenizer().instruments
PIANO, BASS, GUITAR, DRUMS = (INSTRUMENTS.index(f) for f in ("piano", "bass", "guitar", "drums"))


def test_pitch_statistics_follow_muspy_definitions():
    # C major scale once: 7 pitch classes equally often, all in C major, range 11 semitones.
    notes = [Note(i * 0.5, i * 0.5 + 0.5, PIANO, p, 80) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71])]
    s = st.piece_statistics(notes, INSTRUMENTS, seconds=3.5)
    assert s.pitch_class_entropy == pytest.approx(math.log2(7))
    assert s.scale_consistency == 1.0
    assert s.pitch_range == 11
    assert s.polyphony == pytest.approx(1.0)
    # One chromatic note among 8: the best scale holds 7 of them.
    s2 = st.piece_statistics(notes + [Note(4.0, 4.5, PIANO, 61, 80)], INSTRUMENTS)
    assert s2.scale_consistency == pytest.approx(7 / 8)


def test_polyphony_counts_distinct_pitches_where_any_sounds():
    notes = [Note(0, 1, PIANO, 60, 80), Note(0, 1, PIANO, 64, 80), Note(0.5, 2, PIANO, 67, 80),
             Note(0, 1, GUITAR, 60, 80)]  # a doubled pitch in another family counts once
    # 0-0.5 s: 2 pitches, 0.5-1 s: 3, 1-2 s: 1, and the silent 2-10 s is not counted
    assert st.piece_statistics(notes, INSTRUMENTS, seconds=10).polyphony == pytest.approx((50 * 2 + 50 * 3 + 100) / 200)


def test_rhythm_statistics():
    # A kick on every beat at 120 BPM for 8 bars: no empty beat, the same groove in every bar.
    steady = [Note(b * 0.5, b * 0.5, DRUMS, 36, 100) for b in range(32)]
    s = st.piece_statistics(steady, INSTRUMENTS, seconds=16, bpm=120)
    assert s.empty_beat_rate == 0.0
    assert s.groove_consistency == 1.0
    assert s.busiest_drum == 36 and s.busiest_drum_hits_per_second == pytest.approx(2.0)
    assert s.median_inter_onset == pytest.approx(0.5)
    # Half the beats silent, and bars that alternate between two patterns.
    sparse = [Note(b * 0.5, b * 0.5, DRUMS, 36, 100) for b in range(32) if (b // 4) % 2 == 0]
    s2 = st.piece_statistics(sparse, INSTRUMENTS, seconds=16, bpm=120)
    assert s2.empty_beat_rate == pytest.approx(0.5)
    assert s2.groove_consistency == pytest.approx(1 - 4 / 16)


def test_onsets_on_grid_is_the_share_on_the_tempo_s_sixteenths_at_their_best_phase():
    # sixteenths at 120 BPM, 30 ms behind time 0 (a primer's phase, say), two notes to a chord
    late = [Note(0.03 + 0.125 * k, 0.13 + 0.125 * k, PIANO, p, 80) for k in range(32) for p in (60, 64)]
    assert st.piece_statistics(late, INSTRUMENTS, bpm=120).onsets_on_grid == 1.0
    assert st.piece_statistics(late, INSTRUMENTS, bpm=100).onsets_on_grid < 0.6  # read at another tempo
    assert math.isnan(st.piece_statistics(late[: 2 * 10], INSTRUMENTS, bpm=120).onsets_on_grid)  # 10 onsets: too few


def test_quietest_part_share_reads_the_thinnest_asked_part():
    piano = [Note(0.25 * k, 0.25 * k + 0.2, PIANO, 60 + k % 12, 80) for k in range(90)]
    bass = [Note(2.0 * k, 2.0 * k + 1.0, BASS, 40, 80) for k in range(10)]
    band = st.piece_statistics(piano + bass, INSTRUMENTS, seconds=30, asked=["piano", "bass"])
    assert band.quietest_part_share == pytest.approx(10 / 100)
    # unasked, the parts are the families that play; a silent asked part reads 0
    assert st.piece_statistics(piano + bass, INSTRUMENTS, seconds=30).quietest_part_share == pytest.approx(0.1)
    assert st.piece_statistics(piano, INSTRUMENTS, seconds=30, asked=["piano", "bass"]).quietest_part_share == 0.0
    # one part is no ensemble
    assert math.isnan(st.piece_statistics(piano, INSTRUMENTS, seconds=30).quietest_part_share)
    assert "quietest_part_share" in band.scalars()


def test_quality_counters():
    notes = [Note(0, 20, PIANO, 60, 80)] + [Note(i * 0.1, i * 0.1 + 0.1, PIANO, 72, 80) for i in range(99)]
    notes += [Note(0, 1, BASS, 40, 80)] * 3  # an asked bass with 3 notes "never plays"
    notes += [Note(25 + i * 0.05, 25 + i * 0.05, DRUMS, 38, 100) for i in range(60)]
    s = st.piece_statistics(notes, INSTRUMENTS, seconds=30, asked=["piano", "bass", "guitar", "drums"])
    assert s.long_notes == 1 and s.long_note_share == pytest.approx(1 / 103)
    assert s.silent_asked == ["bass", "guitar"]
    assert s.notes_per_family["piano"] == 100 and s.notes_per_family["drums"] == 60
    assert s.busiest_drum_hits_per_second == pytest.approx(60 / 30)
    assert s.longest_silence == pytest.approx(5.0)  # the held piano note ends at 20 s, drums start at 25 s
    assert s.silences_over_4s == 1
    assert s.notes_per_second == pytest.approx(163 / 30)
    assert st.long_note_share_overall([s, st.piece_statistics(notes[1:], INSTRUMENTS)]) == pytest.approx(1 / 205)


def test_segment_coverage():
    # Piano plays in segments 1 and 3 of a 90 s piece, bass only 2 notes (below the per-segment minimum).
    notes = [Note(t + i, t + i + 0.5, PIANO, 60, 80) for t in (0, 60) for i in range(6)]
    notes += [Note(40, 41, BASS, 40, 80), Note(41, 42, BASS, 40, 80)]
    s = st.piece_statistics(notes, INSTRUMENTS, seconds=90)
    assert s.segments == 3
    assert s.segments_played == {"piano": 2, "bass": 0}


def test_clip_notes():
    notes = [Note(1, 3, PIANO, 60, 80), Note(4, 9, PIANO, 62, 80), Note(9, 10, PIANO, 64, 80)]
    clipped = st.clip_notes(notes, 2.0, 5.0)
    assert [(n.start, n.end, n.pitch) for n in clipped] == [(2.0, 5.0, 62)]


def test_empty_piece_has_no_pitch_statistics():
    s = st.piece_statistics([], INSTRUMENTS, seconds=30)
    assert math.isnan(s.pitch_class_entropy) and math.isnan(s.polyphony)
    assert s.empty_beat_rate == 1.0 and s.longest_silence == 30.0


def test_real_pop909_piece_is_in_plausible_ranges(tokenizer):
    from conftest import shared_midi

    path = sorted(shared_midi("pop909").rglob("*.mid"))[0]
    score = tokenizer.read_score(path)
    s = st.piece_statistics(st.clip_notes(score.notes, 0.0, 30.0), tokenizer.instruments, seconds=30, bpm=score.bpm)
    assert 1 < s.notes_per_second < 30
    assert 0.6 < s.scale_consistency <= 1
    assert 1 <= s.polyphony < 10
    assert s.long_note_share < 0.02


def test_a_note_held_exactly_the_long_note_limit_is_not_long():
    # 15.85 + 8.0 - 15.85 is 8.000000000000002 in floats: the note guard's forced note-off lands exactly there
    exact = Note(15.85, 15.85 + st.LONG_NOTE_SECONDS, PIANO, 60, 80)
    assert exact.end - exact.start > st.LONG_NOTE_SECONDS
    longer = Note(0.0, st.LONG_NOTE_SECONDS + 0.01, PIANO, 62, 80)  # one 10 ms step more is long
    assert st.piece_statistics([exact, longer], INSTRUMENTS, seconds=30).long_notes == 1
