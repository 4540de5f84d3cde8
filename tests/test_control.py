"""Control: instrument adherence, the style classifier, primer continuity."""

import math

import numpy as np
import pytest

from musenet_hf import MuseNetTokenizer
from musenet_hf.core.midi_io import Note
from musenet_hf.evaluation import control
from musenet_hf.evaluation.statistics import piece_statistics

INSTRUMENTS = MuseNetTokenizer().instruments
PIANO, BASS, DRUMS = (INSTRUMENTS.index(f) for f in ("piano", "bass", "drums"))


def slow_chords(rng) -> list[Note]:
    """Sparse low piano chords of 2 s in C major."""
    notes = []
    for bar in range(8):
        root = 48 + int(rng.choice([0, 5, 7, 9]))
        notes += [Note(bar * 2.0, bar * 2.0 + 1.9, PIANO, root + k, 60) for k in (0, 4, 7)]
    return notes


def busy_band(rng) -> list[Note]:
    """Sixteenth-note drums and a chromatic bass line."""
    notes = [Note(i * 0.125, i * 0.125, DRUMS, int(rng.choice([36, 38, 42])), 100) for i in range(128)]
    notes += [Note(i * 0.25, i * 0.25 + 0.2, BASS, 36 + int(rng.integers(0, 12)), 90) for i in range(64)]
    return notes


def features(notes):
    return control.style_features(piece_statistics(notes, INSTRUMENTS, seconds=16), INSTRUMENTS)


def test_classifier_beats_chance_on_two_clearly_different_styles():
    rng = np.random.default_rng(0)
    train = [("ballad", features(slow_chords(rng))) for _ in range(8)] + [("funk", features(busy_band(rng))) for _ in range(8)]
    heldout = [("ballad", features(slow_chords(rng))) for _ in range(4)] + [("funk", features(busy_band(rng))) for _ in range(4)]
    # "generated" pieces asked for funk that sound like ballads: the classifier says so
    generated = [("funk", features(slow_chords(rng))) for _ in range(4)]
    result = control.style_adherence(train, heldout, generated)
    assert result.styles == ["ballad", "funk"]
    assert result.chance == pytest.approx(0.5)
    assert result.real_heldout_accuracy == 1.0 > result.chance
    assert result.generated_accuracy == 0.0


def test_classifier_needs_two_styles():
    rng = np.random.default_rng(1)
    result = control.style_adherence([("pop", features(slow_chords(rng))) for _ in range(6)], [], [])
    assert math.isnan(result.real_heldout_accuracy) and "2 styles" in result.skipped


def test_fitted_classifier_names_the_style_and_drops_small_ones():
    rng = np.random.default_rng(2)
    train = [("ballad", features(slow_chords(rng))) for _ in range(6)] + [("funk", features(busy_band(rng))) for _ in range(6)]
    train += [("rare", features(busy_band(rng))) for _ in range(control.MIN_STYLE_PIECES - 1)]
    model, styles, counts = control.fit_style_classifier(train)
    assert styles == ["ballad", "funk"] and counts["rare"] == control.MIN_STYLE_PIECES - 1
    predicted = model.predict(np.asarray([features(busy_band(rng)), features(slow_chords(rng))], dtype=float))
    assert list(predicted) == ["funk", "ballad"]
    assert control.fit_style_classifier(train[:6])[0] is None


def test_instrument_adherence():
    notes = [Note(i * 0.1, i * 0.1 + 0.1, PIANO, 60, 80) for i in range(9)] + [Note(0, 1, BASS, 40, 80)]
    stats = piece_statistics(notes, INSTRUMENTS, asked=["piano", "drums"])
    assert control.instrument_adherence(notes, INSTRUMENTS, stats) == {"outside_share": 0.1, "silent_asked": ["drums"]}


def test_primer_continuity_keeps_or_breaks_key_and_pulse():
    c_major = [60, 62, 64, 65, 67, 69, 71]
    primer = [Note(i * 0.5, i * 0.5 + 0.4, PIANO, c_major[i % 7], 80) for i in range(12)]
    same = [Note(i * 0.5, i * 0.5 + 0.4, PIANO, c_major[(i * 3) % 7], 80) for i in range(20)]
    other = [Note(i * 0.25, i * 0.25 + 0.2, PIANO, 61 + [0, 2, 4, 5, 7, 9, 11][i % 7], 80) for i in range(40)]  # C# major
    ps = piece_statistics(primer, INSTRUMENTS, seconds=6)
    pitches = [n.pitch for n in primer]
    good = control.primer_continuity(ps, pitches, piece_statistics(same, INSTRUMENTS, seconds=10), [n.pitch for n in same])
    bad = control.primer_continuity(ps, pitches, piece_statistics(other, INSTRUMENTS, seconds=10), [n.pitch for n in other])
    assert good["primer_key"] == "C major" and good["same_key"] and good["continuation_in_primer_key"] == 1.0
    assert good["inter_onset_ratio"] == pytest.approx(1.0)
    assert bad["continuation_key"] == "C# major" and not bad["same_key"]
    assert bad["continuation_in_primer_key"] < 0.5
    assert bad["inter_onset_ratio"] == pytest.approx(0.5) and bad["density_ratio"] == pytest.approx(2.0, rel=0.1)
