"""Generation of MuseNet event sequences with ``model.generate``: logits processors for the grammar,
the instruments and the length of the piece, style blending in embedding space, and a sliding window
that lets a piece run past the model's context.

Units: time is counted in 10 ms steps (``wait:N`` advances the clock N steps); tensors are
``[batch, ...]``. This module travels to the Hub as remote code: package imports are relative only.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from .vocabulary import BOS, EOS, NUM_PITCHES, PAD, UNK, VOICE_FIFO, VOICE_SKIP, Vocabulary

NEG_INF = float("-inf")
# Tokens generated per chunk once the window slides, as a fraction of the context: each slide re-reads
# the window (one prefill), so a larger stride costs fewer prefills but leaves the model less context.
DEFAULT_STRIDE_FRACTION = 0.25
# Compute logits only for the allowed ids when at most this fraction of the vocabulary is allowed: the output
# layer (vocab x n_embd) is about a third of a decoding step on CPU, and strict instruments leave 10-40% of it.
ALLOWED_HEAD_MAX_FRACTION = 0.8
# A safety stop for a model that keeps emitting notes without advancing the clock: no real music comes
# close (dense orchestral MIDI is ~100 tokens per second of music; a random model ~250).
MAX_TOKENS_PER_SECOND = 1000


def wait_steps(ids: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """10 ms steps each id advances the clock by (0 for non-wait ids); same shape as ``ids``."""
    is_wait = (ids >= vocab.wait_start) & (ids < vocab.tempo_start)
    return torch.where(is_wait, ids - vocab.wait_start + 1, torch.zeros_like(ids))


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

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        new = input_ids[:, self.seen :]
        self.seen = input_ids.shape[1]
        self.steps += wait_steps(new, self.vocab).sum(dim=1).cpu()
        if self.on_progress is not None:
            self.on_progress(self.steps)
        reached = (self.steps >= self.target).to(scores.device)
        scores = scores.clone()
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
        keys = torch.full((vocab.size,), -1, dtype=torch.long)  # id -> key slot (pitched family x pitch)
        ids = torch.arange(vocab.size)
        fam = torch.from_numpy(vocab.note_family(ids.numpy()))
        kinds = torch.from_numpy(vocab.kinds(ids.numpy()))
        slot = torch.from_numpy(vocab.off_slot)[fam.clamp(min=0)]
        pitched = (fam >= 0) & (slot >= 0)
        keys[pitched] = slot[pitched] * NUM_PITCHES + (ids[pitched] - vocab.on_start) % NUM_PITCHES
        keys[kinds == vocab.KIND_OFF] = ids[kinds == vocab.KIND_OFF] - vocab.off_start
        self.key_of = keys
        self.is_on = kinds == vocab.KIND_ON
        self.is_off = kinds == vocab.KIND_OFF
        self.skip = vocab.token_to_id[VOICE_SKIP]
        self.n_keys = len(vocab.pitched) * NUM_PITCHES
        self.voices = None  # [batch, keys] sounding voices per key
        self.skips = None  # [batch] skips just emitted

    def _update(self, tokens: torch.Tensor) -> None:
        tokens = tokens.cpu().clamp(0, self.vocab.size - 1)
        rows = torch.arange(tokens.shape[0])
        for col in tokens.T:
            key = self.key_of[col]
            on, off = self.is_on[col] & (key >= 0), self.is_off[col]
            self.voices[rows[on], key[on]] += 1
            self.voices[rows[off], key[off]] = (self.voices[rows[off], key[off]] - 1).clamp(min=0)
            self.skips = torch.where(col == self.skip, self.skips + 1, torch.zeros_like(self.skips))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.voices is None:
            self.voices = torch.zeros((input_ids.shape[0], self.n_keys), dtype=torch.long)
            self.skips = torch.zeros(input_ids.shape[0], dtype=torch.long)
        self._update(input_ids[:, self.seen :])
        self.seen = input_ids.shape[1]
        v = self.vocab
        scores = scores.clone()
        # skips the sounding voices cannot honour (a window that begins right after a skip) are dropped
        self.skips = torch.where(self.voices.max(dim=1).values > self.skips, self.skips, torch.zeros_like(self.skips))
        deeper = self.voices > self.skips[:, None]  # keys whose voice at that skip depth exists
        scores[:, v.off_start : v.style_start] = scores[:, v.off_start : v.style_start].masked_fill(~deeper.to(scores.device), NEG_INF)
        can_skip = (self.voices > self.skips[:, None] + 1).any(dim=1)
        scores[~can_skip.to(scores.device), self.skip] = NEG_INF
        mid_skip = (self.skips > 0).to(scores.device)
        if mid_skip.any():  # a skip must lead to a note-off (or a further skip)
            keep = scores[mid_skip][:, [self.skip]]
            offs = scores[mid_skip][:, v.off_start : v.style_start]
            scores[mid_skip] = NEG_INF
            scores[mid_skip, self.skip] = keep.squeeze(1)
            scores[mid_skip, v.off_start : v.style_start] = offs
        return scores


class AllowedVocabHead(torch.nn.Module):
    """An output layer that computes the logits of the allowed ids only; the others are -inf, as the
    ``EventMaskLogitsProcessor`` would make them. Same output shape as the layer it replaces:
    ``[..., vocab]`` from ``[..., n_embd]``."""

    def __init__(self, head: torch.nn.Linear, allowed: torch.Tensor):
        super().__init__()
        index = allowed.nonzero().squeeze(1).to(head.weight.device)
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("weight", head.weight.detach()[index].contiguous(), persistent=False)
        bias = getattr(head, "bias", None)
        self.register_buffer("bias", None if bias is None else bias.detach()[index].contiguous(), persistent=False)
        self.vocab_size = head.weight.shape[0]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = hidden.new_full((*hidden.shape[:-1], self.vocab_size), NEG_INF)
        logits[..., self.index] = torch.nn.functional.linear(hidden, self.weight, self.bias)
        return logits


@contextlib.contextmanager
def allowed_vocab_head(model, forbidden: torch.Tensor):
    """Swap the model's output layer for an ``AllowedVocabHead`` while generating, when that saves work."""
    head = model.get_output_embeddings()
    allowed = ~forbidden
    if not isinstance(head, torch.nn.Linear) or head.weight.shape[0] != len(allowed) or (
        allowed.float().mean() > ALLOWED_HEAD_MAX_FRACTION
    ):
        yield
        return
    model.set_output_embeddings(AllowedVocabHead(head, allowed))
    try:
        yield
    finally:
        model.set_output_embeddings(head)


def trim_to_steps(events: list[int], vocab: Vocabulary, target_steps: int) -> list[int]:
    """Cut ``events`` (no header) at ``target_steps``: tokens after it are dropped and the wait that
    crosses it is shortened, so the piece lasts exactly ``target_steps`` if it got that far."""
    now = 0
    for i, tok in enumerate(events):
        if vocab.wait_start <= tok < vocab.tempo_start:
            steps = tok - vocab.wait_start + 1
            if now + steps >= target_steps:
                left = target_steps - now
                return events[:i] + ([vocab.wait_id(left)] if left > 0 else [])
            now += steps
    return events


def blended_style_embedding(model, vocab: Vocabulary, weights: dict[str, float]) -> torch.Tensor:
    """The weighted mean ``[n_embd]`` of the input embeddings of the given styles (MuseNet trained with
    mixup of style embeddings, so points between styles are meaningful). Weights are normalised."""
    total = sum(weights.values())
    if not weights or total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"style weights must be non-negative and sum to more than 0, got {weights}")
    ids = torch.tensor([vocab.style_id(name) for name in weights])
    w = torch.tensor([weights[name] / total for name in weights], dtype=torch.float32)
    table = model.get_input_embeddings().weight
    return (w.to(table.device, table.dtype)[:, None] * table[ids.to(table.device)]).sum(dim=0).detach()


def unfinished_voices(events: list[int], vocab: Vocabulary, before: int, fifo: bool = False) -> list[int]:
    """Note-off tokens (with ``<voice:skip>`` where needed) that end, at the current time, every note
    still sounding at the end of ``events`` whose note-on is at an index below ``before``.

    ``fifo`` is the sequence's voice order (``<voice:fifo>`` in the header: a note-off ends a key's
    earliest voice, else its latest). Used when the window slides: a note whose note-on leaves the
    context would never be ended by the model, and the decoder would hold it to the end of the piece.
    """
    voices: dict[int, list[int]] = {}  # note-off id of the key -> indices of its sounding note-ons, oldest first
    fam = vocab.note_family(events)
    kinds = vocab.kinds(events)
    skips = 0
    skip_id = vocab.token_to_id[VOICE_SKIP]
    for i, (tok, kind) in enumerate(zip(events, kinds.tolist())):
        if tok == skip_id:
            skips += 1
            continue
        if kind == vocab.KIND_ON and fam[i] != vocab.drum_index:
            voices.setdefault(vocab.note_off_id(int(fam[i]), _pitch(tok, vocab)), []).append(i)
        elif kind == vocab.KIND_OFF and voices.get(tok):
            stack = voices[tok]
            n = min(skips, len(stack) - 1)
            stack.pop(n if fifo else len(stack) - 1 - n)
        skips = 0
    out: list[int] = []
    for off_id, stack in voices.items():
        for _ in range(sum(1 for i in stack if i < before)):
            # the stale voices are the oldest: first in line with fifo, else behind every newer voice
            out += [skip_id] * (0 if fifo else len(stack) - 1) + [off_id]
            stack.pop(0)
    return out


def _pitch(note_on_id: int, vocab: Vocabulary) -> int:
    return (note_on_id - vocab.on_start) % NUM_PITCHES


@dataclass
class MusicRequest:
    """One piece to generate (in ``num_return_sequences`` variations).

    ``header`` and ``events`` are ids (``events`` is the primer's music, possibly empty);
    ``target_steps`` is the whole piece's length in 10 ms steps; ``forbidden`` a ``[vocab]`` mask of ids the
    events may not contain; ``style_embedding`` (``[n_embd]``) replaces the embedding of the header's style
    token when styles are blended; ``primer_steps`` is the primer's length in 10 ms steps; ``style`` is what
    the caller asked for (a name or a blend), reported back with each result.
    """

    header: list[int]
    events: list[int]
    target_steps: int
    forbidden: torch.Tensor
    num_return_sequences: int = 1
    allow_early_end: bool = False
    style_embedding: torch.Tensor | None = None
    primer_steps: int = 0
    style: str | dict = "unknown"


class SlidingWindowGenerator:
    """Runs ``model.generate`` in chunks until every variation reaches its length.

    The window is the header plus as much recent music as fits in ``n_positions``; when it is full it
    slides, keeping the header and the last ``n_positions - stride`` tokens, cut at a step boundary.

    Args:
        model: a causal LM over the event vocabulary.
        vocab: the tokenizer's ``Vocabulary``.
        stride: new tokens per chunk once the window slides (default a quarter of the context).
        cache_implementation: passed to ``generate`` (``"static"`` or None for the dynamic cache).
    """

    def __init__(self, model, vocab: Vocabulary, stride: int | None = None, cache_implementation: str | None = None):
        self.model, self.vocab = model, vocab
        self.context = _context_length(model)
        self.stride = stride or max(1, int(self.context * DEFAULT_STRIDE_FRACTION))
        self.cache_implementation = cache_implementation
        self.eos = vocab.token_to_id[EOS]
        self.pad = vocab.token_to_id[PAD]

    def generate(self, request: MusicRequest, on_progress: Callable[[torch.Tensor], None] | None = None, **generate_kwargs) -> list[list[int]]:
        """Generate ``request.num_return_sequences`` pieces as one batch; returns each one's events
        (primer included, header and ``<eos>`` not), trimmed to the target length."""
        if len(request.header) + self.stride > self.context:
            raise ValueError(f"the header ({len(request.header)} tokens) leaves no room in a context of {self.context}")
        n = request.num_return_sequences
        events = [list(request.events) for _ in range(n)]
        steps = torch.full((n,), count_steps(request.events, self.vocab), dtype=torch.long)
        active = list(range(n))
        budget = len(request.events) + int(request.target_steps * self.vocab.config.step_seconds * MAX_TOKENS_PER_SECOND) + self.context
        with allowed_vocab_head(self.model, request.forbidden):
            while active and max(len(events[i]) for i in active) < budget:
                windows = [self._window(request.header, events[i]) for i in active]
                new, ended = self._chunk(request, windows, steps[active], on_progress, generate_kwargs)
                for row, i in enumerate(active):
                    events[i] += new[row]
                    steps[i] += count_steps(new[row], self.vocab)
                active = [i for row, i in enumerate(active) if not ended[row] and steps[i] < request.target_steps]
        return [trim_to_steps(e, self.vocab, request.target_steps) for e in events]

    def _window(self, header: list[int], events: list[int]) -> list[int]:
        """Header + the events that fit; when they do not, slide: keep the recent music from a step
        boundary. Notes whose note-on falls out get their note-offs appended to ``events`` (in place),
        after the window is taken: the model never sees them, the decoded piece has no stuck notes."""
        if len(header) + len(events) + self.stride <= self.context:
            return header + events
        keep = self.context - len(header) - self.stride
        cut = len(events) - keep
        # start the window right after a wait, so it begins on a step like a training window does
        waits = wait_steps(torch.tensor(events[cut:]), self.vocab).nonzero()
        if len(waits):
            cut += int(waits[0]) + 1
        window = header + events[cut:]
        events += unfinished_voices(events, self.vocab, cut, fifo=self.vocab.token_to_id[VOICE_FIFO] in header)
        return window

    def _chunk(self, request: MusicRequest, windows: list[list[int]], steps: torch.Tensor, on_progress, generate_kwargs):
        """One ``generate`` call over left-padded windows; returns (new events per row, ended with ``<eos>``?)."""
        width = max(len(w) for w in windows)
        input_ids = torch.full((len(windows), width), self.pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, w in enumerate(windows):
            input_ids[row, width - len(w) :] = torch.tensor(w)
            attention_mask[row, width - len(w) :] = 1
        device = self.model.device
        length = MusicLengthLogitsProcessor(
            self.vocab, torch.full_like(steps, request.target_steps), steps, width, self.eos,
            request.allow_early_end, on_progress=on_progress,
        )
        processors = LogitsProcessorList([EventMaskLogitsProcessor(request.forbidden), VoiceStateLogitsProcessor(self.vocab), length])
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        if request.style_embedding is not None:
            inputs["inputs_embeds"] = self._blend(inputs["input_ids"], width - torch.tensor([len(w) for w in windows]), request)
        out = self.model.generate(
            **inputs,
            logits_processor=processors,
            max_new_tokens=self.context - width,
            eos_token_id=self.eos,
            pad_token_id=self.pad,
            cache_implementation=self.cache_implementation,
            **generate_kwargs,
        )
        new, ended = [], []
        for row in out[:, width:].tolist():
            end = row.index(self.eos) if self.eos in row else len(row)
            new.append(row[:end])
            ended.append(end < len(row))
        return new, ended

    def _blend(self, input_ids: torch.Tensor, pad_lengths: torch.Tensor, request: MusicRequest) -> torch.Tensor:
        """Input embeddings ``[batch, width, n_embd]`` with the header's style token (right after ``<bos>``)
        replaced by the blended style embedding."""
        embeds = self.model.get_input_embeddings()(input_ids).detach()
        rows = torch.arange(input_ids.shape[0])
        embeds[rows, pad_lengths + 1] = request.style_embedding.to(embeds.dtype)
        return embeds


def count_steps(ids: list[int], vocab: Vocabulary) -> int:
    """Length of ``ids`` in 10 ms steps (the sum of its waits)."""
    return int(wait_steps(torch.tensor(ids, dtype=torch.long), vocab).sum()) if ids else 0


def _context_length(model) -> int:
    config = model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise ValueError(f"cannot tell the context length of {type(config).__name__}")
