import torch

from musenet_hf import MuseNetTokenizer
from musenet_hf.core.logits_processors import NEG_INF, VoiceStateLogitsProcessor

TOK = MuseNetTokenizer()
V = TOK.musenet_vocab
PIANO, DRUMS = 0, V.drum_index


def allowed_after(*rows):
    """Token ids left open by the processor after each row of ids (rows padded to one width with <pad>)."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    scores = VoiceStateLogitsProcessor(V)(ids, torch.zeros(len(rows), V.size))
    return [set(torch.nonzero(row > NEG_INF).squeeze(1).tolist()) for row in scores]


def test_note_offs_only_for_sounding_keys():
    on60 = V.note_on_id(PIANO, 3, 60)
    (open_,) = allowed_after([1, on60])
    assert V.note_off_id(PIANO, 60) in open_ and V.note_off_id(PIANO, 62) not in open_
    (closed,) = allowed_after([1, on60, V.note_off_id(PIANO, 60)])
    assert V.note_off_id(PIANO, 60) not in closed
    assert V.note_on_id(DRUMS, 3, 36) in closed and V.wait_id(5) in closed  # everything else stays open


def test_skips_need_a_deeper_voice_and_lead_to_a_note_off():
    skip = V.token_to_id["<voice:skip>"]
    on = V.note_on_id(PIANO, 3, 60)
    one, two = allowed_after([1, on], [1, on, on])
    assert skip not in one and skip in two
    (after_skip,) = allowed_after([1, on, on, skip])
    assert after_skip == {V.note_off_id(PIANO, 60)}  # not a second skip (only two voices), nothing else


def test_a_skip_no_voice_can_honour_leaves_the_row_free():
    skip = V.token_to_id["<voice:skip>"]
    (row,) = allowed_after([1, V.note_on_id(PIANO, 3, 60), skip])  # e.g. a window that starts after a skip
    assert V.wait_id(1) in row and V.note_off_id(PIANO, 60) in row and skip not in row
