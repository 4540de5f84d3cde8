"""Id-level augmentation: pitch shifts, drums untouched, ranges respected, velocity clipping, time stretch."""

from __future__ import annotations

import numpy as np
import pytest

from musenet_hf.core.codec import Header, decode_ids, encode_notes
from musenet_hf.core.midi_io import Note
from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
from musenet_hf.data.augmentation import AugmentConfig, allowed_shift, augment_ids, stretch_time


@pytest.fixture(scope="module")
def vocab():
    return MuseNetTokenizer().musenet_vocab


def _piece(vocab, violin_pitches=(70, 74, 77), bass_pitches=(40, 43), drums=(36, 42)):
    f = vocab.family_index
    notes = [Note(0.5 * i, 0.5 * i + 0.4, f["violin"], p, 80) for i, p in enumerate(violin_pitches)]
    notes += [Note(0.5 * i, 0.5 * i + 0.9, f["bass"], p, 100) for i, p in enumerate(bass_pitches)]
    notes += [Note(0.25 * i, 0.25 * i, f["drums"], p, 60) for i, p in enumerate(drums)]
    header = Header("pop", sorted({n.family for n in notes}), 100)
    return encode_notes(notes, vocab, header), notes


def _only(**kw):
    base = {"transpose": 0, "velocity_bins_shift": 0, "time_stretch": 0.0, "probability": 1.0}
    return AugmentConfig(**{**base, **kw})


def _key(notes):
    return sorted((round(n.start, 2), n.family, n.pitch) for n in notes)


def test_transposition_moves_pitched_notes_and_never_drums(vocab):
    ids, notes = _piece(vocab)
    shifts = set()
    for seed in range(40):
        out = decode_ids(augment_ids(ids, vocab, np.random.default_rng(seed), _only(transpose=5)), vocab)
        assert len(out.notes) == len(notes)
        got = {(round(n.start, 2), n.family): n.pitch for n in out.notes}
        ref = {(round(n.start, 2), n.family): n.pitch for n in notes}
        deltas = {got[k] - ref[k] for k in ref if k[1] != vocab.drum_index}
        assert len(deltas) == 1  # one shift for every pitched note
        assert all(got[k] == ref[k] for k in ref if k[1] == vocab.drum_index)
        shifts |= deltas
    assert shifts == set(range(-5, 6))  # every allowed shift is drawn


def test_shift_is_limited_by_family_ranges(vocab):
    cfg = _only(transpose=6)
    # violin's top is 105: a melody reaching 103 may go up 2 at most; the bass (floor 23) down to 24 allows -1
    ids, _ = _piece(vocab, violin_pitches=(90, 103), bass_pitches=(24, 30))
    arr = np.asarray(ids)
    kinds = vocab.kinds(arr)
    drawn = {allowed_shift(arr, kinds, vocab, cfg, np.random.default_rng(s)) for s in range(200)}
    assert drawn == set(range(-1, 3))
    # a family already out of range is never pushed further out, and a shift of 0 stays possible
    ids, _ = _piece(vocab, violin_pitches=(110, 120), bass_pitches=(40,))
    arr = np.asarray(ids)
    drawn = {allowed_shift(arr, vocab.kinds(arr), vocab, cfg, np.random.default_rng(s)) for s in range(200)}
    assert drawn == set(range(-6, 1))


def test_velocity_shift_clips_to_existing_bins(vocab):
    ids, notes = _piece(vocab)
    bin_of = {v: b for b, v in enumerate(vocab.bin_velocity)}
    def by_key(ns):
        return [bin_of[n.velocity] for n in sorted(ns, key=lambda n: (n.start, n.family, n.pitch))]
    ref = np.asarray(by_key(decode_ids(ids, vocab).notes))
    clipped = set()
    for seed in range(30):
        out = decode_ids(augment_ids(ids, vocab, np.random.default_rng(seed), _only(velocity_bins_shift=20)), vocab)
        assert _key(out.notes) == _key(notes)  # times and pitches untouched
        got = np.asarray(by_key(out.notes))
        matches = [d for d in range(-20, 21) if (np.clip(ref + d, 0, vocab.nbins - 1) == got).all()]
        assert matches  # one shift for every note, drums included, clipped to the bins that exist
        clipped |= {int(got.min()), int(got.max())} & {0, vocab.nbins - 1}
    assert clipped == {0, vocab.nbins - 1}


def test_time_stretch_scales_times_and_tempo(vocab):
    ids, notes = _piece(vocab)
    arr = np.asarray(ids)
    for factor in (0.8, 1.0, 1.37):
        out = decode_ids(stretch_time(arr, vocab.kinds(arr), vocab, factor), vocab)
        assert out.header.bpm == round(100 / factor)
        got = sorted((n.start, n.family, n.pitch) for n in out.notes)
        ref = sorted((n.start * factor, n.family, n.pitch) for n in notes)
        assert [g[1:] for g in got] == [r[1:] for r in ref]
        assert np.allclose([g[0] for g in got], [r[0] for r in ref], atol=0.0101)  # within one 10 ms step
    # long gaps are rebuilt from several full-length wait tokens
    f = vocab.family_index["piano"]
    long = encode_notes([Note(0.0, 0.1, f, 60, 80), Note(3.0, 3.1, f, 62, 80)], vocab, Header("pop", [f], 120))
    arr = np.asarray(long)
    out = decode_ids(stretch_time(arr, vocab.kinds(arr), vocab, 1.5), vocab)
    assert [round(n.start, 2) for n in out.notes] == [0.0, 4.5]


def test_augmentation_is_seeded_and_keeps_the_header(vocab):
    ids, _ = _piece(vocab)
    cfg = AugmentConfig(probability=1.0)
    a = augment_ids(ids, vocab, np.random.default_rng(7), cfg)
    b = augment_ids(ids, vocab, np.random.default_rng(7), cfg)
    assert a == b
    assert a[:4] == ids[:4]  # <bos> style instruments (the tempo may move with a stretch)
    assert vocab.kinds([a[5]])[0] == vocab.KIND_TEMPO
    assert augment_ids(ids, vocab, np.random.default_rng(0), AugmentConfig(probability=0.0)) == ids


def test_config_validation():
    with pytest.raises(ValueError):
        AugmentConfig(time_stretch=1.5)
    with pytest.raises(ValueError):
        AugmentConfig(probability=2)
