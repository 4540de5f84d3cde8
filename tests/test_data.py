"""Training windows (header on every window, lengths, coverage, epochs) and the collator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset

from musenet_hf.core.codec import Header, encode_notes
from musenet_hf.core.midi_io import Note
from musenet_hf.core.tokenization_musenet import MuseNetTokenizer
from musenet_hf.data.augmentation import AugmentConfig
from musenet_hf.data.windows import MidiCollator, MidiWindows, header_lengths

CONTEXT = 64


@pytest.fixture(scope="module")
def tok():
    return MuseNetTokenizer()


def _piece(vocab, n_notes, style="pop", families=("piano",)):
    fams = [vocab.family_index[f] for f in families]
    notes = [Note(0.1 * i, 0.1 * i + 0.05, fams[i % len(fams)], 40 + i % 40, 90) for i in range(n_notes)]
    return encode_notes(notes, vocab, Header(style, fams, 120))


@pytest.fixture(scope="module")
def pieces(tok):
    v = tok.musenet_vocab
    return [_piece(v, 3), _piece(v, 60, "jazz", ("piano", "bass", "drums")), _piece(v, 200, "bach", ("violin", "cello"))]


@pytest.fixture(scope="module")
def windows(tok, pieces):
    return MidiWindows(Dataset.from_dict({"input_ids": pieces}), tok, CONTEXT, seed=3)


def test_header_lengths(tok, pieces):
    assert header_lengths(Dataset.from_dict({"input_ids": pieces}), tok.musenet_vocab).tolist() == [4, 6, 5]


def test_every_window_starts_with_its_header_and_fits(windows, pieces):
    assert len(windows) == len(windows.lengths)
    for i in range(len(windows)):
        ids = windows[i]["input_ids"]
        p = int(windows.piece_of[i])
        h = int(windows.header[p])
        assert ids[:h] == pieces[p][:h]
        assert len(ids) == windows.lengths[i] <= CONTEXT
    assert windows[0]["input_ids"] == pieces[0]  # a short piece is one window, whole


def test_windows_cover_every_id_and_move_between_epochs(windows, pieces):
    seen_starts = []
    for epoch in range(4):
        windows.set_epoch(epoch)
        count = len(windows)
        for p, piece in enumerate(pieces):
            h = int(windows.header[p])
            covered = np.zeros(len(piece) - h, dtype=bool)
            for i in np.flatnonzero(windows.piece_of == p):
                s = int(windows.starts[i])
                covered[s : s + len(windows[int(i)]["input_ids"]) - h] = True
                assert windows[int(i)]["input_ids"][h:] == piece[h + s : h + s + windows.lengths[i] - h]
            assert covered.all()
        seen_starts.append(tuple(windows.starts))
        assert len(windows) == count
    assert len(set(seen_starts)) == 4
    windows.set_epoch(1)
    again = tuple(windows.starts)
    assert again == seen_starts[1]  # deterministic from (seed, epoch)


def test_augmented_windows_are_seeded_and_fit(tok, pieces):
    ds = Dataset.from_dict({"input_ids": pieces})
    cfg = AugmentConfig(probability=1.0, time_stretch=0.3)
    a = MidiWindows(ds, tok, CONTEXT, seed=5, augment=cfg)
    b = MidiWindows(ds, tok, CONTEXT, seed=5, augment=cfg)
    assert all(a[i] == b[i] for i in range(len(a)))
    assert all(len(a[i]["input_ids"]) <= CONTEXT for i in range(len(a)))
    plain = MidiWindows(ds, tok, CONTEXT, seed=5)
    assert any(a[i] != plain[i] for i in range(len(a)))


def test_context_too_small_for_header(tok, pieces):
    with pytest.raises(ValueError, match="no room"):
        MidiWindows(Dataset.from_dict({"input_ids": pieces}), tok, 6)


def test_collator_pads_masks_and_labels(tok):
    collate = MidiCollator(pad_token_id=tok.pad_token_id, pad_to_multiple_of=8)
    batch = collate([{"input_ids": [1, 20, 30]}, {"input_ids": list(range(1, 11))}])
    assert batch["input_ids"].shape == (2, 16) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].sum(1).tolist() == [3, 10]
    assert batch["input_ids"][0, 3:].eq(tok.pad_token_id).all()
    assert batch["labels"][0].tolist() == [1, 20, 30] + [-100] * 13
    assert torch.equal(batch["labels"][1, :10], batch["input_ids"][1, :10])


def test_empty_splits_and_index_views(tok, pieces):
    ds = Dataset.from_dict({"input_ids": pieces})
    assert len(MidiWindows(ds.select([]), tok, CONTEXT)) == 0
    view = MidiWindows(ds.select([2, 0]), tok, CONTEXT)  # a select() view: rows are read through its indices
    assert view[len(view) - 1]["input_ids"] == pieces[0]
    assert view[0]["input_ids"][:5] == pieces[2][:5]


def test_to_device_drops_the_mask_only_for_right_padding():
    from musenet_hf.data.windows import to_device

    batch = MidiCollator(pad_token_id=0)([{"input_ids": [5, 6, 7]}, {"input_ids": [5]}])
    input_ids, mask, labels = to_device(batch, torch.device("cpu"))
    assert mask is None and torch.equal(input_ids, batch["input_ids"]) and torch.equal(labels, batch["labels"])
    left = dict(batch, attention_mask=batch["attention_mask"].flip(1))
    assert torch.equal(to_device(left, torch.device("cpu"))[1], left["attention_mask"])
