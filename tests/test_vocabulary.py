import numpy as np
import pytest

from musenet_hf.core.vocabulary import NUM_PITCHES, EncodingConfig, Vocabulary


def test_token_strings_and_ids_agree():
    v = Vocabulary(EncodingConfig())
    assert v.tokens[v.note_on_id(v.family_id("violin"), 4, 60)] == f"violin:v{v.bin_velocity[4]}:60"
    assert v.tokens[v.note_off_id(v.family_id("cello"), 36)] == "cello:off:36"
    assert v.tokens[v.wait_id(1)] == "wait:1" and v.tokens[v.wait_id(100)] == "wait:100"
    assert v.tokens[v.tempo_id(97.4)] == "tempo:97"
    assert v.tokens[v.style_id("bach")] == "style:bach"
    assert len(set(v.tokens)) == v.size == len(v.tokens)


def test_kinds_and_families_are_vectorised_inverses():
    v = Vocabulary(EncodingConfig())
    ids = np.arange(v.size)
    fam = v.note_family(ids)
    kinds = v.kinds(ids)
    on = kinds == v.KIND_ON
    assert on.sum() == len(v.families) * v.nbins * NUM_PITCHES
    assert (kinds == v.KIND_OFF).sum() == (len(v.families) - 1) * NUM_PITCHES  # drums have no note-offs
    assert np.all(fam[on | (kinds == v.KIND_OFF)] >= 0) and np.all(fam[~(on | (kinds == v.KIND_OFF))] == -1)
    assert v.kinds([-1, v.size])[0] == v.KIND_SPECIAL  # out-of-range ids are harmless
    mask = v.family_token_mask([v.family_id("bass")])
    assert all(v.tokens[i].startswith("bass:") for i in np.flatnonzero(mask))


def test_velocity_bins_cover_range_and_reps_fall_in_their_bin():
    for nbins in (1, 8, 13, 32):
        bins, reps = Vocabulary(EncodingConfig(velocity_bins=nbins)).bin_of_velocity, Vocabulary(EncodingConfig(velocity_bins=nbins)).bin_velocity
        assert set(bins[1:].tolist()) == set(range(nbins))
        assert np.all(np.diff(bins[1:]) >= 0)
        assert [bins[r] for r in reps] == list(range(nbins))


def test_program_map_is_musenets():
    v = Vocabulary(EncodingConfig())
    name = lambda program: v.families[v.program_family[program]]  # noqa: E731
    assert [name(p) for p in (0, 40, 42, 33, 25, 73, 71, 56, 46, 48, 52)] == [
        "piano", "violin", "cello", "bass", "guitar", "flute", "clarinet", "trumpet", "harp", "violin", "piano"]


@pytest.mark.parametrize("bad", [
    {"styles": ["pop", "unknown"]},
    {"styles": ["unknown", "two words"]},
    {"families": ["piano", "piano", "drums"]},
    {"program_map": {"banjo": [105]}},
    {"velocity_bins": 0},
])
def test_invalid_configs_are_rejected(bad):
    with pytest.raises(ValueError):
        EncodingConfig(**bad)


def test_unknown_names_list_the_valid_ones():
    v = Vocabulary(EncodingConfig())
    with pytest.raises(ValueError, match="valid styles: unknown, bach"):
        v.style_id("chopinesque")
    with pytest.raises(ValueError, match="piano, violin"):
        v.family_id("kazoo")


def test_config_dict_round_trip():
    cfg = EncodingConfig(velocity_bins=13, styles=["unknown", "x"])
    assert EncodingConfig.from_dict(cfg.to_dict()) == cfg


def test_id_readers_invert_the_id_builders():
    vocab = Vocabulary(EncodingConfig())
    fam = vocab.family_id("bass")
    on, off = vocab.note_on_id(fam, 3, 40), vocab.note_off_id(fam, 40)
    drum = vocab.note_on_id(vocab.drum_index, 1, 36)
    ids = [vocab.wait_id(7), on, off, drum, vocab.tempo_id(96), vocab.style_id("pop"), vocab.inst_id(2)]
    assert vocab.wait_steps(ids).tolist() == [7, 0, 0, 0, 0, 0, 0]
    assert vocab.pitch(ids).tolist() == [-1, 40, 40, 36, -1, -1, -1]
    assert vocab.velocity_bin(ids).tolist() == [-1, 3, -1, 1, -1, -1, -1]
    keys = vocab.key(ids)
    assert keys[1] == keys[2] >= 0 and keys[3] == -1 and vocab.note_off_id_of_key(keys[1]) == off
    assert [vocab.header_value(i) for i in ids[4:]] == [96, "pop", 2]
    assert vocab.with_velocity_bin([on], [99]).tolist() == [vocab.note_on_id(fam, vocab.nbins - 1, 40)]
    assert sum(vocab.wait_steps(vocab.wait_ids(250))) == 250 and vocab.wait_ids(0) == []
    assert vocab.wait_steps([-5, vocab.size + 3]).tolist() == [0, 0]
