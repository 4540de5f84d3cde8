"""Held-out likelihood: the shifted NLL counts only real targets and notes; the bigram baseline is a
distribution, beats a unigram on structured data, tunes its smoothing, and scores the model's positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musenet_hf.evaluation.likelihood import BITS_PER_NAT, BigramBaseline, EvalTotals, note_on_table, shifted_nll


def test_shifted_nll_counts_only_real_targets_and_notes(tokenizer):
    vocab = tokenizer.musenet_vocab
    note = vocab.note_on_id(0, 3, 60)
    ids = torch.tensor([[1, note, vocab.wait_id(5), note, 0, 0]])
    labels = ids.masked_fill(ids == 0, -100)
    logits = torch.zeros(1, 6, vocab.size)  # uniform: every target costs log V nats
    nll, tokens, notes = shifted_nll(logits, labels, torch.as_tensor(note_on_table(vocab))).tolist()
    assert tokens == 3 and notes == 2
    assert nll == pytest.approx(3 * math.log(vocab.size), rel=1e-5)
    m = EvalTotals(nll, 3, 2).metrics()
    assert m["bits_per_note"] == pytest.approx(nll * BITS_PER_NAT / 2)
    assert m["perplexity"] == pytest.approx(vocab.size, rel=1e-4)


PATTERN = [[1, 5, 6, 7, 5, 6, 7, 5, 6, 7, 2]] * 4
VOCAB = 10


def test_bigram_probabilities_after_any_context_sum_to_one():
    model = BigramBaseline.fit(PATTERN, vocab_size=VOCAB, alpha=1.0)
    no_notes = np.zeros(VOCAB, dtype=bool)
    for context in range(VOCAB):  # seen and unseen contexts alike
        probs = [math.exp(-model.totals([[context, nxt]], no_notes).nll_nats) for nxt in range(VOCAB)]
        assert sum(probs) == pytest.approx(1.0)


def test_bigram_beats_a_unigram_on_structured_data():
    model = BigramBaseline.fit(PATTERN, vocab_size=VOCAB, alpha=1.0)
    totals = model.totals(PATTERN[:1], np.ones(VOCAB, dtype=bool))
    counts = np.bincount(np.concatenate(PATTERN), minlength=VOCAB) + 1.0  # an add-one unigram of the same pieces
    unigram_nll = -np.log(counts / counts.sum())[PATTERN[0][1:]].sum()
    assert totals.tokens == len(PATTERN[0]) - 1
    assert totals.nll_nats < 0.5 * unigram_nll


def test_bigram_alpha_is_chosen_on_held_out_training_pieces():
    rng = np.random.default_rng(0)
    # strongly patterned pieces: little smoothing wins; pure noise: heavy smoothing (towards the unigram) wins
    patterned = [np.tile([5, 6, 7, 8], 50) for _ in range(30)]
    noise = [rng.integers(0, 50, size=200) for _ in range(30)]
    assert BigramBaseline.fit_tuned(patterned, 50).alpha < BigramBaseline.fit_tuned(noise, 50).alpha


def test_bigram_scores_the_same_positions_and_notes_as_the_model(tokenizer):
    from musenet_hf.data.windows import MidiCollator

    vocab = tokenizer.musenet_vocab
    notes = [vocab.note_on_id(0, 3, p) for p in (60, 64, 67)]
    windows = [[1, notes[0], vocab.wait_id(4), notes[1], notes[2]], [1, notes[2], vocab.wait_id(2)]]
    batch = MidiCollator(tokenizer.pad_token_id)([{"input_ids": w} for w in windows])
    note_on = note_on_table(vocab)
    logits = torch.zeros(*batch["input_ids"].shape, vocab.size)
    _, model_tokens, model_notes = shifted_nll(logits, batch["labels"], torch.as_tensor(note_on)).tolist()
    baseline = BigramBaseline.fit(windows, vocab.size).totals(windows, note_on)
    assert (baseline.tokens, baseline.notes) == (model_tokens, model_notes) == (6, 4)  # every id but the first of each window
