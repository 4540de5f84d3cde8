"""Building corpora from fixture folders: rows, labels, splits, skip report, duplicates, cache, CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from corpus_fixtures import make_tree, write_song

from musenet_hf.cli import main as cli_main
from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
from musenet_hf.data.corpus import SPLITS, build_corpus, load_corpus, load_style_map, split_of


@pytest.fixture(scope="module")
def tok():
    return MuseNetTokenizer()


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "songs"
    return root, make_tree(root)


def _rows(ds):
    return {r["path"]: r for split in SPLITS for r in ds[split]}


def test_rows_labels_and_skip_report(tree, tmp_path, tok):
    root, files = tree
    styles = {"songs/folk": "folk", "songs/folk/b.mid": "irish", "band": "newband"}
    result = build_corpus([root], tmp_path / "out", tok, styles=styles)
    ds, saved_tok = load_corpus(tmp_path / "out")
    rows = _rows(ds)
    assert sorted(rows) == sorted(f"songs/{k}" for k in files if not k.endswith("c.mid")) + ["songs/folk/deep/c.MID"]
    assert rows["songs/folk/a.mid"]["style"] == "folk"
    assert rows["songs/folk/b.mid"]["style"] == "irish"  # a file entry beats its folder's
    assert rows["songs/folk/deep/c.MID"]["style"] == "folk"  # sub-folders inherit
    assert rows["songs/band/d.mid"]["style"] == "newband"  # key relative to the input folder
    band = rows["songs/band/d.mid"]
    assert band["instruments"] == ["violin", "bass", "drums"]
    assert band["notes"] == 48 and band["seconds"] == pytest.approx(8.0, abs=0.02)
    assert rows["songs/folk/deep/c.MID"]["instruments"] == ["guitar"]
    # the stored ids are exactly the tokenizer's encoding of the file with its style
    assert band["input_ids"] == saved_tok.encode_midi(files["band/d.mid"], style="newband")
    assert ds["train"].features["input_ids"].feature.dtype == "int16"
    skipped = {json.loads(line)["path"]: json.loads(line)["reason"] for line in (tmp_path / "out" / "skipped.jsonl").open()}
    assert skipped["songs/folk/zz_copy_of_a.mid"] == "duplicate of songs/folk/a.mid"
    assert "not a readable MIDI file" in skipped["songs/band/broken.mid"]
    assert skipped["songs/band/empty.mid"] == "file is empty"
    assert skipped["songs/band/silent.mid"] == "no notes"
    assert result.skipped == 4 and result.total == 5
    card = json.loads((tmp_path / "out" / "corpus_card.json").read_text())
    assert card["totals"]["files"] == 5 and card["skipped"] == 4
    assert card["sources"][0]["styles"] == {"folk": 2, "newband": 2, "irish": 1}


def test_new_styles_are_appended_and_saved(tree, tmp_path, tok):
    root, _ = tree
    result = build_corpus([root], tmp_path / "out", tok, styles={"folk": "sea-shanty"})
    _, saved = load_corpus(tmp_path / "out")
    assert result.added_styles == ["sea-shanty"]
    assert saved.styles[: len(tok.styles)] == tok.styles  # existing ids untouched
    assert saved.styles[-1] == "sea-shanty" and len(saved) == len(tok) + 1
    assert "sea-shanty" not in tok.styles  # the caller's tokenizer is not modified


def test_style_map_files(tmp_path):
    (tmp_path / "m.csv").write_text("path,style\nsongs/folk,folk\n# comment\nx.mid,irish\n")
    assert load_style_map(tmp_path / "m.csv") == {"songs/folk": "folk", "x.mid": "irish"}
    (tmp_path / "m.json").write_text(json.dumps({"a/": "pop"}))
    assert load_style_map(tmp_path / "m.json") == {"a": "pop"}
    with pytest.raises(ValueError, match="without spaces"):
        load_style_map({"a": "two words"})


def test_split_is_by_content_and_stable_when_files_are_added(tree, tmp_path, tok):
    root, _ = tree
    first = build_corpus([root], tmp_path / "one", tok, validation_fraction=0.3, test_fraction=0.3)
    for i in range(12):
        write_song(root / "more" / f"{i}.mid", [50 + i, 55 + i, 60 + i])
    second = build_corpus([root], tmp_path / "two", tok, validation_fraction=0.3, test_fraction=0.3)
    assert second.total == first.total + 12
    before = {r["sha256"]: s for s in SPLITS for r in load_corpus(tmp_path / "one")[0][s]}
    after = {r["sha256"]: s for s in SPLITS for r in load_corpus(tmp_path / "two")[0][s]}
    assert all(after[sha] == split for sha, split in before.items())
    assert all(split_of(sha, 0.3, 0.3) == split for sha, split in after.items())
    assert set(after.values()) == set(SPLITS)  # 17 pieces at 40/30/30: every split used


def test_rebuild_reuses_and_parallel_matches_serial(tree, tmp_path, tok):
    root, _ = tree
    serial = build_corpus([root], tmp_path / "out", tok, styles={"folk": "folk"}, num_proc=1)
    again = build_corpus([root], tmp_path / "out", tok, styles={"folk": "folk"}, num_proc=1)
    assert not serial.reused and again.reused and again.rows == serial.rows
    changed = build_corpus([root], tmp_path / "out", tok, styles={"folk": "irish"}, num_proc=1)
    assert not changed.reused  # a different label is a different corpus
    build_corpus([root], tmp_path / "par", tok, styles={"folk": "irish"}, num_proc=2)
    assert _rows(load_corpus(tmp_path / "out")[0]) == _rows(load_corpus(tmp_path / "par")[0])


def test_nothing_usable_fails_with_report(tmp_path, tok):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mid").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no usable MIDI"):
        build_corpus([bad], tmp_path / "out", tok)
    assert "x.mid" in (tmp_path / "out" / "skipped.jsonl").read_text()
    with pytest.raises(ValueError, match="no MIDI files"):
        build_corpus([tmp_path / "nothing-here"], tmp_path / "out2", tok)


def test_cli_build_and_info(tree, tmp_path, capsys):
    root, _ = tree
    (tmp_path / "styles.json").write_text(json.dumps({"folk": "folk"}))
    out = tmp_path / "out"
    args = ["corpus", "build", str(root), "--out", str(out), "--styles", str(tmp_path / "styles.json"), "--num-proc", "2"]
    assert cli_main(args) == 0
    text = capsys.readouterr().out
    assert "| songs | 5 |" in text and "4 skipped" in text
    assert cli_main(["corpus", "info", str(out)]) == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mid").write_bytes(b"garbage")
    assert cli_main(["corpus", "build", str(bad), "--out", str(tmp_path / "o2")]) == 1
    shutil.rmtree(out / "dataset")
    with pytest.raises(FileNotFoundError, match="not a built corpus"):
        load_corpus(out)


def test_linked_files_are_named_where_they_are_linked(tree, tmp_path, tok):
    root, files = tree
    links = tmp_path / "links"
    links.mkdir()
    (links / "tune.mid").symlink_to(files["folk/a.mid"])
    result = build_corpus([links], tmp_path / "out", tok, styles={"links": "folk"})
    (row,) = [r for s in SPLITS for r in load_corpus(tmp_path / "out")[0][s]]
    assert (row["path"], row["style"]) == ("links/tune.mid", "folk") and result.card["sources"][0]["name"] == "links"


def test_a_changed_encoder_is_not_reused(tree, tmp_path, tok, monkeypatch):
    import musenet_hf.data.corpus as corpus_module

    root, _ = tree
    assert not build_corpus([root], tmp_path / "out", tok).reused
    assert build_corpus([root], tmp_path / "out", tok).reused
    # the same config with different encoder code (e.g. a new special token) must re-tokenize
    monkeypatch.setattr(corpus_module, "_encoder_source_hash", lambda: "another encoder")
    assert not build_corpus([root], tmp_path / "out", tok).reused


def test_corpus_for_training_builds_a_midi_folder_once_and_refuses_another_encoding(tmp_path):
    from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
    from musenet_hf.data.corpus import corpus_for_training, is_corpus_dir

    for k in range(4):
        write_song(tmp_path / "midi" / f"s{k}.mid", [60 + k, 64 + k, 67 + k])
    cache = tmp_path / "cache"
    splits, tok, card = corpus_for_training(tmp_path / "midi", cache, MuseNetTokenizer(), style="lofi")
    assert is_corpus_dir(cache) and sum(len(s) for s in splits.values()) == 4
    assert "lofi" in tok.styles and set(splits["train"]["style"]) <= {"lofi"}
    again = corpus_for_training(cache, tmp_path / "unused", MuseNetTokenizer())
    assert not (tmp_path / "unused").exists() and sum(len(s) for s in again[0].values()) == 4
    other = MuseNetTokenizer(musenet={"velocity_bins": 4})
    with pytest.raises(ValueError, match="different encoding"):
        corpus_for_training(cache, tmp_path / "unused", other, pinned="my-checkpoint")


def _long_running_status_piece(count: int) -> bytes:
    """A type-0 file of ``count`` notes one after another on 48 keys, 10 ticks apart, in running status: a long
    but well-formed piece at 2 messages a note."""
    body = bytearray(b"\x00\x90\x3c\x40")
    for i in range(count):
        body += bytes([5, 36 + i % 48, 0x40, 5, 36 + i % 48, 0])
    body += b"\x00\xff\x2f\x00"
    return b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def test_files_over_a_limit_or_the_time_bound_are_skipped_and_the_build_goes_on(tmp_path):
    from bench.fuzz import flood_bytes
    from musenet_hf.core.vocabulary import EncodingConfig, MidiLimits

    root = tmp_path / "songs"
    write_song(root / "a.mid", [60, 62, 64, 65, 67])
    write_song(root / "b.mid", [72, 71, 69, 67], program=40)
    (root / "bomb.mid").write_bytes(flood_bytes(200_000))  # issue 14's 1.2 MB bomb
    # 20,000 notes (40,002 messages) under every count limit: only the time bound can stop it. Parsing alone
    # takes ~0.2 s of CPU on any machine, so a 0.05 s bound stops it for sure, while the two small songs (under
    # the 1,024 units between two clock checks) never meet the clock.
    (root / "slow.mid").write_bytes(_long_running_status_piece(20_000))
    tight = MuseNetTokenizer(musenet=EncodingConfig(limits=MidiLimits(max_cpu_seconds=0.05)).to_dict())
    result = build_corpus([root], tmp_path / "out", tight)
    skipped = {json.loads(line)["path"]: json.loads(line)["reason"] for line in (tmp_path / "out" / "skipped.jsonl").open()}
    assert skipped == {
        "songs/bomb.mid": "file is 1200030 bytes, over the limit of 1000000",
        "songs/slow.mid": "took over 0.05 s of CPU time (the per-file time limit)",
    }
    ds, _ = load_corpus(tmp_path / "out")
    assert sorted(_rows(ds)) == ["songs/a.mid", "songs/b.mid"]  # the build went on past both
    assert result.skipped == 2
