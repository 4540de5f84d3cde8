"""Logits processors for MuseNet event sequences: the grammar (which ids may follow the header), the
voices (note-offs only for sounding keys), the length of the piece, and an output layer restricted to the
allowed ids.

Units: time is counted in 10 ms steps (``wait:N`` advances the clock N steps); tensors are
``[batch, ...]``. This module travels to the Hub as remote code: package imports are relative only.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from transformers import LogitsProcessor

from .quantization import INT8_HEAD_ATTRIBUTE, int8_rows_linear
from .vocabulary import BOS, PAD, UNK, VOICE_FIFO, VOICE_SKIP, Vocabulary
from .voices import can_end, can_skip

NEG_INF = float("-inf")
# Compute logits only for the allowed ids when at most this fraction of the vocabulary is allowed: the output
# layer (vocab x n_embd) is about a third of a decoding step on CPU, and strict instruments leave 10-40% of it.
ALLOWED_HEAD_MAX_FRACTION = 0.8


def wait_steps(ids: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """10 ms steps each id advances the clock by (0 for non-wait ids); same shape as ``ids``."""
    return torch.from_numpy(vocab.wait_steps(ids.cpu().numpy())).to(ids.device)


def forbidden_event_mask(vocab: Vocabulary, size: int, families: list[int] | None = None) -> torch.Tensor:
    """Boolean mask ``[size]`` of the ids that may not follow the header.

    Header-only tokens (style, instrument, tempo, ``<voice:fifo>``, ``<bos>``, ``<pad>``, ``<unk>``) are always forbidden,
    and so is every id past the tokenizer's vocabulary (a model may have padded embeddings). With
    ``families`` (indices), note-ons and note-offs of every other family are forbidden too. ``<eos>``
    is left to ``MusicLengthLogitsProcessor``.
    """
    kinds = vocab.kinds(np.arange(vocab.size))
    forbidden = np.isin(kinds, [vocab.KIND_STYLE, vocab.KIND_INST, vocab.KIND_TEMPO])
    for token in (BOS, PAD, UNK, VOICE_FIFO):
        forbidden[vocab.token_to_id[token]] = True
    if families is not None:
        notes = np.isin(kinds, [vocab.KIND_ON, vocab.KIND_OFF])
        forbidden |= notes & ~vocab.family_token_mask(families)
    mask = torch.ones(max(size, vocab.size), dtype=torch.bool)
    mask[: vocab.size] = torch.from_numpy(forbidden)
    return mask[:size]


class EventMaskLogitsProcessor(LogitsProcessor):
    """Sets the logits of a fixed set of ids to -inf (see ``forbidden_event_mask``)."""

    def __init__(self, forbidden: torch.Tensor):
        self.forbidden = forbidden

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores.masked_fill(self.forbidden.to(scores.device), NEG_INF)


class MusicLengthLogitsProcessor(LogitsProcessor):
    """Makes every row end at ``target_steps`` of music.

    Counts the 10 ms steps of the wait tokens generated per row (starting from ``done_steps``). Until a row
    reaches its target, ``<eos>`` is forbidden (unless ``allow_early_end``); once it has, ``<eos>`` is the
    only choice, so a piece ends right after the wait that crosses the target (``trim_to_steps`` then cuts
    that wait's overshoot).

    Args:
        vocab: the event vocabulary.
        target_steps: ``[batch]`` steps each row must reach.
        done_steps: ``[batch]`` steps already in each row before this call of ``generate``.
        prompt_length: tokens in the prompt (the processor counts only what comes after).
        eos_token_id: the ``<eos>`` id.
        allow_early_end: let the model end a piece before its target.
        on_progress: called after every step with ``[batch]`` steps reached so far.
    """

    def __init__(self, vocab, target_steps, done_steps, prompt_length, eos_token_id, allow_early_end=False, on_progress=None):
        self.vocab = vocab
        self.target = torch.as_tensor(target_steps, dtype=torch.long)
        self.steps = torch.as_tensor(done_steps, dtype=torch.long).clone()
        self.seen = prompt_length
        self.eos = eos_token_id
        self.allow_early_end = allow_early_end
        self.on_progress = on_progress
        # id -> steps, one entry more for every id past the vocabulary (0): a numpy lookup of the one new id
        # per row costs a few microseconds, a tensor round trip through ``wait_steps`` ~50 (measured)
        self.wait_table = np.append(vocab.wait_steps(np.arange(vocab.size)), 0)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        new = input_ids[:, self.seen :].cpu().numpy()
        self.seen = input_ids.shape[1]
        if new.size:
            self.steps += torch.from_numpy(self.wait_table[np.minimum(new, self.vocab.size)].sum(axis=1))
        if self.on_progress is not None:
            self.on_progress(self.steps)
        reached = self.steps >= self.target
        scores = scores.clone()
        if not bool(reached.any()):  # the usual step: no row is done yet
            if not self.allow_early_end:
                scores[:, self.eos] = NEG_INF
            return scores
        reached = reached.to(scores.device)
        if not self.allow_early_end:
            scores[~reached, self.eos] = NEG_INF
        scores[reached] = NEG_INF
        scores[reached, self.eos] = 0.0
        return scores


class VoiceStateLogitsProcessor(LogitsProcessor):
    """Keeps generated note-offs meaningful: a note-off is allowed only for a key (family, pitch) that is
    sounding in that row, and ``<voice:skip>`` only where the key about to be ended has that many more
    voices; after a skip only another skip or a note-off may follow.

    Without it a model trained on windows cut mid-piece (whose first note-offs close notes it never saw)
    emits stray note-offs and runs of skips. State is rebuilt from the prompt on the first call (the window
    starts clean: notes from before a slide were closed), then updated with each new token.

    Args:
        vocab: the event vocabulary.
    """

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.seen = 0
        every = np.arange(vocab.size)
        kinds = vocab.kinds(every)
        self.key_of = vocab.key(every)  # id -> key slot (pitched family x pitch), -1 if none
        self.is_on = kinds == vocab.KIND_ON
        self.is_off = kinds == vocab.KIND_OFF
        self.skip = vocab.token_to_id[VOICE_SKIP]
        self.n_keys = vocab.num_keys
        # numpy, so that the usual one new token per row costs a few scalar updates instead of a dozen tensor
        # ops (0.3 ms per token, measured); each call reads them as tensors sharing the memory
        self.voices = None  # [batch, keys] sounding voices per key
        self.skips = None  # [batch] skips just emitted

    def _update(self, tokens: torch.Tensor) -> None:
        """Count the voices the new ``tokens`` (``[batch, n]``) start and end, and the skips just emitted."""
        tokens = tokens.cpu().clamp(0, self.vocab.size - 1).numpy()
        keys = self.key_of[tokens]
        for row in range(tokens.shape[0]):
            for token, key in zip(tokens[row].tolist(), keys[row].tolist()):
                if key >= 0:
                    if self.is_on[token]:
                        self.voices[row, key] += 1
                    elif self.is_off[token] and self.voices[row, key] > 0:
                        self.voices[row, key] -= 1
                self.skips[row] = self.skips[row] + 1 if token == self.skip else 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.voices is None:
            self.voices = np.zeros((input_ids.shape[0], self.n_keys), dtype=np.int64)
            self.skips = np.zeros(input_ids.shape[0], dtype=np.int64)
        self._update(input_ids[:, self.seen :])
        self.seen = input_ids.shape[1]
        v = self.vocab
        scores = scores.clone()
        if not self.skips.any():  # the usual step, no skip run going on: the same masks, from the numpy counts
            off = scores[:, v.note_off_range]  # a view: filled in place
            off.masked_fill_(torch.from_numpy(~can_end(self.voices, 0)).to(scores.device), NEG_INF)
            unskippable = ~can_skip(self.voices, 0).any(axis=1)
            if unskippable.any():
                scores[torch.from_numpy(unskippable).to(scores.device), self.skip] = NEG_INF
            return scores
        voices, skips = torch.from_numpy(self.voices), torch.from_numpy(self.skips)
        # skips the sounding voices cannot honour (a window that begins right after a skip) are dropped
        skips.masked_fill_(~can_end(voices.max(dim=1).values, skips), 0)  # in place: in the numpy counts
        deeper = can_end(voices, skips[:, None])  # keys whose voice at that skip depth exists
        off_ids = v.note_off_range
        scores[:, off_ids] = scores[:, off_ids].masked_fill(~deeper.to(scores.device), NEG_INF)
        skippable = can_skip(voices, skips[:, None]).any(dim=1)
        scores[~skippable.to(scores.device), self.skip] = NEG_INF
        mid_skip = (skips > 0).to(scores.device)
        if mid_skip.any():  # a skip must lead to a note-off (or a further skip)
            keep = scores[mid_skip][:, [self.skip]]
            offs = scores[mid_skip][:, off_ids]
            scores[mid_skip] = NEG_INF
            scores[mid_skip, self.skip] = keep.squeeze(1)
            scores[mid_skip, off_ids] = offs
        return scores


class AllowedVocabHead(torch.nn.Module):
    """An output layer that computes the logits of the allowed ids only; the others are -inf, as the
    ``EventMaskLogitsProcessor`` would make them. Same output shape as the layer it replaces:
    ``[..., vocab]`` from ``[..., n_embd]``.

    Args:
        head (`torch.nn.Linear`): the full output layer.
        allowed (`torch.Tensor`): ``[vocab]`` boolean, the ids to compute.
        int8 (`bool`, defaults to `False`): hold the kept rows as int8 (``quantization.int8_rows_linear``).
    """

    def __init__(self, head: torch.nn.Linear, allowed: torch.Tensor, int8: bool = False):
        super().__init__()
        index = allowed.nonzero().squeeze(1).to(head.weight.device)
        self.register_buffer("index", index, persistent=False)
        bias = getattr(head, "bias", None)
        weight = head.weight.detach()[index].contiguous()
        bias = None if bias is None else bias.detach()[index].contiguous()
        self.rows = int8_rows_linear(weight, bias) if int8 else None
        self.register_buffer("weight", None if int8 else weight, persistent=False)
        self.register_buffer("bias", None if int8 else bias, persistent=False)
        self.vocab_size = head.weight.shape[0]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = hidden.new_full((*hidden.shape[:-1], self.vocab_size), NEG_INF)
        kept = self.rows(hidden) if self.rows is not None else torch.nn.functional.linear(hidden, self.weight, self.bias)
        logits[..., self.index] = kept
        return logits


@contextlib.contextmanager
def allowed_vocab_head(model, forbidden: torch.Tensor):
    """Swap the model's output layer for an ``AllowedVocabHead`` while generating, when that saves work (int8
    rows on a ``quantize_int8`` copy)."""
    head = model.get_output_embeddings()
    allowed = ~forbidden
    if not isinstance(head, torch.nn.Linear) or head.weight.shape[0] != len(allowed) or (
        allowed.float().mean() > ALLOWED_HEAD_MAX_FRACTION
    ):
        yield
        return
    model.set_output_embeddings(AllowedVocabHead(head, allowed, int8=getattr(model, INT8_HEAD_ATTRIBUTE, False)))
    try:
        yield
    finally:
        model.set_output_embeddings(head)
