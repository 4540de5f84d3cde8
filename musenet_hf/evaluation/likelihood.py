"""Held-out likelihood of event sequences: loss, perplexity, bits per note, and a bigram baseline.

Bits per note = (summed next-token negative log-likelihood over the evaluated tokens, in bits) /
(number of note-on tokens among those tokens). Every encoding spends its bits on the same notes, so
the figure compares runs with different vocabularies (velocity bins, BPE merges), which loss per
token cannot. Both the model and the baseline score exactly the same positions: every token of a
window but the first (which has no context).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.windows import LABEL_IGNORE

BITS_PER_NAT = 1.0 / math.log(2.0)
# Weight of the unigram distribution in the bigram's interpolation, in pseudo-counts. It matters (on 200
# POP909 pieces: 20.2 bits per note at 0.1, 19.1 at 100, 19.9 at 3000), so ``fit_tuned`` picks it from
# this grid on training pieces held out from the counts; the validation split is never looked at.
BIGRAM_ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
BIGRAM_ALPHA = 100.0  # the grid's winner on POP909, for ``fit`` without tuning
HELDOUT_EVERY = 10  # every 10th training piece is held out while choosing alpha


def note_on_table(vocab) -> np.ndarray:
    """Boolean ``[vocab.size]``: which ids are note-ons (the notes that bits per note divides by)."""
    return vocab.kinds(np.arange(vocab.size)) == vocab.KIND_ON


@dataclass
class EvalTotals:
    """Sums over evaluated positions; add them across batches and processes, then call ``metrics``."""

    nll_nats: float = 0.0
    tokens: int = 0  # predicted positions
    notes: int = 0  # note-on tokens among the predicted positions

    def __iadd__(self, other: "EvalTotals") -> "EvalTotals":
        self.nll_nats += other.nll_nats
        self.tokens += other.tokens
        self.notes += other.notes
        return self

    def metrics(self, prefix: str = "eval_") -> dict[str, float]:
        loss = self.nll_nats / max(self.tokens, 1)
        return {
            f"{prefix}loss": loss,
            "perplexity": math.exp(min(loss, 700.0)),  # exp overflows float64 past ~709
            "bits_per_note": self.nll_nats * BITS_PER_NAT / self.notes if self.notes else float("nan"),
            "bits_per_token": loss * BITS_PER_NAT,
            "eval_tokens": float(self.tokens),
            "eval_notes": float(self.notes),
        }


def next_token_targets(labels: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` targets for every position: label t+1, and ``LABEL_IGNORE`` at the last position.

    Shifting the labels rather than slicing the logits (``logits[:, :-1]``) avoids copying the
    ``[B, T, V]`` logits into a contiguous tensor: ~100 MB per step for a batch of 8 x 256 windows.
    """
    return F.pad(labels[:, 1:], (0, 1), value=LABEL_IGNORE)


def summed_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token NLL in nats (a scalar) of ``logits [B, T, V]`` against ``labels [B, T]``."""
    return F.cross_entropy(logits.flatten(0, 1).float(), next_token_targets(labels).flatten(), ignore_index=LABEL_IGNORE, reduction="sum")


def shifted_nll(logits: torch.Tensor, labels: torch.Tensor, note_on: torch.Tensor) -> torch.Tensor:
    """Summed next-token NLL and counts for one batch, as a float64 tensor ``[nll_nats, tokens, notes]``.

    ``logits``: ``[B, T, V]``; ``labels``: ``[B, T]`` (``LABEL_IGNORE`` at padding); ``note_on``: bool ``[V]``
    on the logits' device. Position t's logits predict label t+1.
    """
    targets = next_token_targets(labels)
    nll = summed_nll(logits, labels)
    valid = targets != LABEL_IGNORE
    notes = (note_on[targets.clamp_min(0)] & valid).sum()
    return torch.stack([nll.double(), valid.sum().double(), notes.double()])


class BigramBaseline:
    """p(b | a) = (c(a, b) + alpha * u(b)) / (c(a) + alpha), with u the add-one unigram distribution.

    Counts are sparse (sorted pair keys ``a * V + b``): a dense V x V table would take ~1 GB.
    """

    def __init__(self, pair_keys: np.ndarray, pair_counts: np.ndarray, unigram: np.ndarray, alpha: float = BIGRAM_ALPHA):
        self.vocab_size = len(unigram)
        self.keys, self.counts = pair_keys, pair_counts
        self.context_counts = np.bincount(pair_keys // self.vocab_size, weights=pair_counts, minlength=self.vocab_size)
        self.unigram = unigram
        self.alpha = alpha

    @classmethod
    def fit(cls, sequences, vocab_size: int, alpha: float = BIGRAM_ALPHA) -> "BigramBaseline":
        """Counts adjacent pairs inside each sequence (never across two pieces)."""
        keys, tokens = [], np.zeros(vocab_size, dtype=np.float64)
        for seq in sequences:
            ids = np.asarray(seq, dtype=np.int64)
            tokens += np.bincount(ids, minlength=vocab_size)
            keys.append(ids[:-1] * vocab_size + ids[1:])
        flat = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        pair_keys, pair_counts = np.unique(flat, return_counts=True)
        unigram = (tokens + 1.0) / (tokens.sum() + vocab_size)
        return cls(pair_keys, pair_counts.astype(np.float64), unigram, alpha)

    @classmethod
    def fit_tuned(cls, sequences, vocab_size: int) -> "BigramBaseline":
        """``fit`` with alpha chosen from ``BIGRAM_ALPHAS`` by the NLL of held-out training pieces."""
        seqs = list(sequences)
        held = seqs[::HELDOUT_EVERY]
        rest = [s for i, s in enumerate(seqs) if i % HELDOUT_EVERY]
        if not held or not rest:
            return cls.fit(seqs, vocab_size)
        probe = cls.fit(rest, vocab_size)
        no_notes = np.zeros(vocab_size, dtype=bool)

        def heldout_nll(alpha: float) -> float:
            probe.alpha = alpha
            return probe.totals(held, no_notes).nll_nats

        return cls.fit(seqs, vocab_size, alpha=min(BIGRAM_ALPHAS, key=heldout_nll))

    def totals(self, windows, note_on: np.ndarray) -> EvalTotals:
        """NLL of every token but the first of each window (the positions the model is scored on)."""
        out = EvalTotals()
        for seq in windows:
            ids = np.asarray(seq, dtype=np.int64)
            prev, nxt = ids[:-1], ids[1:]
            key = prev * self.vocab_size + nxt
            pos = np.searchsorted(self.keys, key).clip(max=max(len(self.keys) - 1, 0))
            pair = np.where(self.keys[pos] == key, self.counts[pos], 0.0) if len(self.keys) else np.zeros(len(key))
            p = (pair + self.alpha * self.unigram[nxt]) / (self.context_counts[prev] + self.alpha)
            out += EvalTotals(float(-np.log(p).sum()), len(nxt), int(note_on[nxt].sum()))
        return out
