import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from midi_fixtures import to_bytes

from musenet_hf import MuseNetTokenizer
from musenet_hf.core.codec import Header, decode_ids, encode_events, encode_notes, header_ids, quantize
from musenet_hf.core.midi_io import Note
from musenet_hf.core.vocabulary import EncodingConfig, Vocabulary

VOCAB = Vocabulary(EncodingConfig())
TOK = MuseNetTokenizer()
PIANO, VIOLIN, DRUMS = 0, 1, VOCAB.drum_index


def roundtrip(notes):
    return sorted((round(n.start, 3), round(n.end, 3), n.family, n.pitch) for n in decode_ids(encode_notes(notes, VOCAB), VOCAB).notes)


def test_times_round_to_the_nearest_10ms_step():
    out = roundtrip([Note(0.0149, 0.2251, PIANO, 60, 64)])
    assert out == [(0.01, 0.23, PIANO, 60)]


def test_long_gaps_use_several_waits_and_stay_exact():
    ids = encode_notes([Note(0.0, 0.1, PIANO, 60, 64), Note(3.57, 3.6, PIANO, 62, 64)], VOCAB)
    toks = [VOCAB.tokens[i] for i in ids]
    assert toks.count("wait:100") == 3  # 0.1 s -> 3.57 s is 3.47 s: 100 + 100 + 100 + 47 steps
    assert roundtrip([Note(0.0, 0.1, PIANO, 60, 64), Note(3.57, 3.6, PIANO, 62, 64)])[-1] == (3.57, 3.6, PIANO, 62)


def test_offs_come_before_ons_within_a_step_in_family_pitch_order():
    notes = [Note(0, 0.5, VIOLIN, 50, 64), Note(0.5, 1, PIANO, 70, 64), Note(0.5, 1, PIANO, 40, 64), Note(0, 0.5, PIANO, 72, 64)]
    toks = [VOCAB.tokens[i] for i in encode_notes(notes, VOCAB, eos=False)]
    at_half = toks[toks.index("wait:50") + 1:]
    assert at_half[:2] == ["piano:off:72", "violin:off:50"]
    assert [t.split(":")[-1] for t in at_half[2:4]] == ["40", "70"]


def test_overlapping_voices_of_one_key_keep_their_pairing():
    nested = [Note(0, 2, PIANO, 60, 64), Note(0.5, 1, PIANO, 60, 64)]
    staggered = [Note(0, 1, PIANO, 60, 64), Note(0.5, 1.5, PIANO, 60, 64)]
    three = [Note(0, 3, PIANO, 60, 64), Note(0.5, 1, PIANO, 60, 64), Note(0.7, 2, PIANO, 60, 64)]
    for notes in (nested, staggered, three):
        assert roundtrip(notes) == sorted((n.start, n.end, n.family, n.pitch) for n in notes)
    skip = VOCAB.token_to_id["<voice:skip>"]
    fifo = VOCAB.token_to_id["<voice:fifo>"]
    assert skip not in encode_notes(nested, VOCAB) and fifo not in encode_notes(nested, VOCAB)
    assert encode_notes(staggered, VOCAB)[0] == fifo and skip not in encode_notes(staggered, VOCAB)
    assert skip in encode_notes(nested + [Note(5, 6, PIANO, 62, 64), Note(5.5, 6.5, PIANO, 62, 64)] * 1, VOCAB)


def test_drums_are_onset_only_and_deduplicated():
    ids = encode_notes([Note(0.1, 0.1, DRUMS, 36, 100), Note(0.1, 0.1, DRUMS, 36, 50), Note(0.2, 0.2, DRUMS, 42, 80)], VOCAB)
    toks = [VOCAB.tokens[i] for i in ids]
    assert sum(t.startswith("drums:") for t in toks) == 2 and not any("off" in t for t in toks)
    hits = decode_ids(ids, VOCAB).notes
    assert [(round(n.start, 2), n.pitch) for n in hits] == [(0.1, 36), (0.2, 42)]


def test_very_short_notes_last_one_step():
    assert quantize([Note(0.1, 0.101, PIANO, 60, 64)], VOCAB)[0][:2] == (10, 11)


def test_header_is_parsed_and_ignored_after_the_first_event():
    header = Header("bach", [VIOLIN, PIANO], 97)
    ids = encode_notes([Note(0, 1, PIANO, 60, 64)], VOCAB, header)
    ids.insert(-2, VOCAB.style_id("pop"))  # a stray style token in the music changes nothing
    dec = decode_ids(ids, VOCAB)
    assert (dec.header.style, sorted(dec.header.families), dec.header.bpm) == ("bach", [PIANO, VIOLIN], 97)
    assert dec.steps == 100 and len(dec.notes) == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=VOCAB.size - 1), max_size=300))
def test_any_ids_decode_to_a_valid_midi_file(ids):
    midi = TOK.decode_midi(ids)
    back = TOK.read_score(to_bytes(midi))  # the file survives saving and parsing
    assert len(back.notes) == len(decode_ids(ids, VOCAB).notes)
    assert all(0 <= n.start <= n.end for n in back.notes)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 20), st.floats(0.006, 3), st.sampled_from([PIANO, VIOLIN, DRUMS]),
                          st.integers(0, 127), st.integers(1, 127)), max_size=60))
def test_encode_decode_keeps_every_note_on_the_grid(raw):
    notes = [Note(s, s if f == DRUMS else s + d, f, p, v) for s, d, f, p, v in raw]
    dec = decode_ids(encode_notes(notes, VOCAB), VOCAB).notes
    steps = lambda t: int(np.floor(t / 0.01 + 0.5))  # noqa: E731
    pitched = [(steps(n.start), n.pitch, n.family) for n in notes if n.family != DRUMS]
    drum_hits = {(steps(n.start), n.pitch, n.family) for n in notes if n.family == DRUMS}  # one hit per step
    assert sorted((steps(n.start), n.pitch, n.family) for n in dec) == sorted(pitched + list(drum_hits))


def test_encode_events_returns_the_voice_order_as_a_flag_and_lasts_until_the_end():
    vocab = Vocabulary(EncodingConfig())
    # legato overlaps on one key: first-in-first-out needs no skip markers, so the encoder picks it
    notes = [Note(0.0, 0.5, 0, 60, 80), Note(0.4, 1.0, 0, 60, 80)]
    events, fifo, steps = encode_events(notes, vocab, end_steps=300)
    assert fifo and vocab.token_to_id["<voice:fifo>"] not in events
    assert steps == 300 == int(vocab.wait_steps(events).sum())
    header = header_ids(vocab, Header("pop", [0], 120, fifo))
    decoded = decode_ids(header + events, vocab)
    assert [(round(n.start, 2), round(n.end, 2)) for n in decoded.notes] == [(0.0, 0.5), (0.4, 1.0)]
    assert encode_events([], vocab) == ([], False, 0)


# --- limits on the voices of one key and the onsets of one step ------------------------------------
def _limited_vocab(**limits):
    from musenet_hf.core.vocabulary import EncodingConfig, MidiLimits, Vocabulary

    return Vocabulary(EncodingConfig(limits=MidiLimits(**limits)))


def _stacked_notes(count, same_step=True):
    from musenet_hf.core.midi_io import Note

    # `count` notes of one key sounding together (from the same step, or one step apart)
    return [Note(0.0 if same_step else 0.01 * i, 5.0, 0, 60, 64) for i in range(count)]


def test_voice_limit_just_under_passes_just_over_names_the_limit():
    from musenet_hf.core.codec import encode_notes
    from musenet_hf.core.errors import MidiError

    vocab = _limited_vocab(max_voices_per_key=4)
    assert len(encode_notes(_stacked_notes(4, same_step=False), vocab)) > 8
    with pytest.raises(MidiError, match="over 4 simultaneous voices of piano pitch 60"):
        encode_notes(_stacked_notes(5, same_step=False), vocab)


def test_onset_limit_just_under_passes_just_over_names_the_limit():
    from musenet_hf.core.codec import encode_notes
    from musenet_hf.core.errors import MidiError
    from musenet_hf.core.midi_io import Note

    vocab = _limited_vocab(max_onsets_per_step=6)
    chord = [Note(1.0, 2.0, 0, 60 + i, 64) for i in range(6)]
    assert len(encode_notes(chord, vocab)) > 12
    with pytest.raises(MidiError, match="over 6 notes start in the 10 ms step 100"):
        encode_notes(chord + [Note(1.001, 2.0, 0, 50, 64)], vocab)


def test_note_bomb_file_is_a_clear_error_naming_the_file(tmp_path):
    from midi_fixtures import make_midi

    from musenet_hf.core.codec import encode_score
    from musenet_hf.core.errors import MidiError
    from musenet_hf.core.midi_io import read_midi
    from musenet_hf.core.vocabulary import EncodingConfig, Vocabulary

    vocab = Vocabulary(EncodingConfig())
    limit = vocab.config.limits.max_onsets_per_step
    path = tmp_path / "bomb.mid"
    # zero-length notes on one key, all on one tick: each becomes a one-step voice starting in step 0
    make_midi([(0.0, 0.0, 0, 60, 64)] * (limit + 1)).save(path)
    with pytest.raises(MidiError, match=f"bomb.mid: over {limit} notes start in the 10 ms step 0"):
        encode_score(read_midi(path, vocab=vocab), vocab)
    make_midi([(0.0, 0.0, 0, 60, 64)] * 8).save(path)
    assert len(encode_score(read_midi(path, vocab=vocab), vocab)) > 16


def test_drum_hits_are_not_voices_for_the_voice_limit():
    from musenet_hf.core.codec import encode_notes
    from musenet_hf.core.midi_io import Note

    vocab = _limited_vocab(max_voices_per_key=2)
    hits = [Note(0.1 * i, 0.1 * i, vocab.drum_index, 42, 90) for i in range(10)]  # one hi-hat, ten hits
    assert len(encode_notes(hits, vocab)) >= 10
