import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mido
import pytest
from conftest import REPO, shared_midi
from midi_fixtures import make_midi, to_bytes
from transformers import AutoTokenizer

from musenet_hf import MidiError, MuseNetTokenizer
from musenet_hf.evaluation.roundtrip import RoundTrip, roundtrip

BAND = make_midi([(0, 0.5, 0, 60, 90, 0), (0.25, 1, 1, 40, 70, 33), (0.5, 0.5, 9, 36, 110), (0.5, 2, 2, 67, 50, 40)])


def test_encode_midi_accepts_path_bytes_and_midifile(tmp_path, tokenizer):
    path = tmp_path / "band.mid"
    BAND.save(path)
    ids = tokenizer.encode_midi(path, style="rock")
    assert ids == tokenizer.encode_midi(to_bytes(BAND), style="rock") == tokenizer.encode_midi(BAND, style="rock")
    text = tokenizer.decode(ids)
    assert text.startswith("<bos> style:rock inst:piano inst:violin inst:bass inst:drums tempo:120 ")
    assert text.endswith(" <eos>")
    with pytest.raises(ValueError, match="valid styles"):
        tokenizer.encode_midi(path, style="nope")


def test_text_and_ids_round_trip(tokenizer):
    ids = tokenizer.encode_midi(BAND)
    assert tokenizer(tokenizer.decode(ids))["input_ids"] == ids


def test_decode_midi_with_and_without_header(tokenizer):
    ids = tokenizer.encode_midi(BAND, style="rock")
    full = tokenizer.read_score(tokenizer.decode_midi(ids))
    events_only = tokenizer.read_score(tokenizer.decode_midi(ids[6:]))
    assert len(full.notes) == len(events_only.notes) == 4
    assert isinstance(tokenizer.decode_midi(ids), mido.MidiFile)


def test_save_and_reload_exactly(tmp_path, tokenizer):
    tok = MuseNetTokenizer(musenet={"velocity_bins": 13, "styles": ["unknown", "chiptune"]})
    tok.add_styles(["lofi", "chiptune"])
    tok.save_pretrained(tmp_path)
    for loaded in (MuseNetTokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)):
        assert type(loaded) is MuseNetTokenizer
        assert loaded.get_vocab() == tok.get_vocab() and len(loaded) == len(tok)
        assert loaded.styles == ["unknown", "chiptune", "lofi"] and loaded.encoding_config == tok.encoding_config
        assert (loaded.pad_token_id, loaded.bos_token_id, loaded.eos_token_id) == (0, 1, 2)
        assert loaded.encode_midi(BAND, style="lofi") == tok.encode_midi(BAND, style="lofi")


def test_added_styles_append_ids_and_keep_old_ones(tokenizer):
    tok = MuseNetTokenizer()
    before = tok.get_vocab()
    assert tok.add_styles(["bach", "vaporwave"]) == ["vaporwave"]
    after = tok.get_vocab()
    assert after["style:vaporwave"] == len(before) and all(after[t] == i for t, i in before.items())


def test_tokenizer_files_is_the_default_vocabulary(tokenizer):
    shipped = AutoTokenizer.from_pretrained(REPO / "tokenizer_files")
    assert shipped.get_vocab() == tokenizer.get_vocab()
    config = json.loads((REPO / "tokenizer_files" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "MuseNetTokenizer" and "musenet" in config


def test_loads_as_plain_text_tokenizer_without_the_package(tmp_path, tokenizer):
    tokenizer.save_pretrained(tmp_path)
    ids = tokenizer.encode_midi(BAND)
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "musenet_hf":
                    raise ImportError("musenet_hf is blocked in this test")
        sys.meta_path.insert(0, Block())
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained({str(tmp_path)!r})
        print(type(tok).__name__, tok({tokenizer.decode(ids)!r})["input_ids"] == {ids!r})
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "True"


def test_bad_midi_raises_midi_error_naming_the_file(tmp_path, tokenizer):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(to_bytes(BAND)[:40])
    with pytest.raises(MidiError, match="bad.mid"):
        tokenizer.encode_midi(bad)


def _pop909_roundtrip(tokenizer, limit=None) -> RoundTrip:
    files = sorted(Path(shared_midi("pop909")).glob("*.mid"))[:limit]
    total = RoundTrip()
    for f in files:
        total += roundtrip(tokenizer, f, "pop")
    return total


def test_pop909_sample_round_trip_and_tokens_per_note(tokenizer):
    total = _pop909_roundtrip(tokenizer, limit=25)
    assert total.kept_fraction >= 0.995
    assert total.tokens / total.notes <= 3.3


@pytest.mark.slow
def test_pop909_full_round_trip(tokenizer):
    total = _pop909_roundtrip(tokenizer)
    assert total.notes > 1_000_000 * 0.4  # the whole collection, not a sample
    assert total.kept_fraction >= 0.995
    assert total.tokens / total.notes <= 3.3


def test_cli_tokenize_prints_summary_and_writes_file(tmp_path):
    from musenet_hf.cli import main

    src, out = tmp_path / "band.mid", tmp_path / "decoded.mid"
    BAND.save(src)
    assert main(["tokenize", str(src), "--style", "rock", "--out", str(out)]) == 0
    assert out.exists() and len(MuseNetTokenizer().read_score(out).notes) == 4
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"xx")
    assert main(["tokenize", str(bad)]) == 2
