"""Degeneracy counters on hand-made pieces."""

import pytest

from musenet_hf import MuseNetTokenizer
from musenet_hf.core.midi_io import Note
from musenet_hf.evaluation.degeneracy import held_thresholds, loop_share, piece_degeneracy, summarize
from musenet_hf.evaluation.statistics import piece_statistics

INSTRUMENTS = MuseNetTokenizer().instruments
PIANO = INSTRUMENTS.index("piano")


def test_loop_share():
    assert loop_share([1, 2, 3, 4] * 30) == 1.0
    assert loop_share(list(range(200))) == 0.0
    # a verbatim repeat in the middle of varied material covers only that stretch
    body = list(range(100)) + [7, 8, 9] * 30 + list(range(200, 300))
    assert loop_share(body) == pytest.approx(90 / 290)


def test_held_past_real_length():
    real_notes = [Note(i * 0.5, i * 0.5 + 0.4, PIANO, 60 + i % 7, 80) for i in range(100)]
    real = [piece_statistics(real_notes, INSTRUMENTS)]
    thresholds = held_thresholds([real_notes, [Note(0, 0, INSTRUMENTS.index("drums"), 36, 90)] * 60], INSTRUMENTS)
    assert set(thresholds) == {"piano"}  # drums are onsets, never held
    assert thresholds["piano"] == pytest.approx(0.4)
    stuck = piece_statistics([Note(0, 12, PIANO, 60, 80)] + [Note(i, i + 0.3, PIANO, 64, 80) for i in range(9)], INSTRUMENTS)
    d = piece_degeneracy(stuck, [], thresholds)
    assert d.held_past_real == 1 and d.held_past_real_share == pytest.approx(0.1)
    assert summarize([d, piece_degeneracy(real[0], [], thresholds)])["held_past_real"] == 1
