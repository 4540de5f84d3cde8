"""Generation of whole pieces with ``model.generate``: a sliding window that lets a piece run past the
model's context, style blending in embedding space, and the request a pipeline call becomes.

Units: time is counted in 10 ms steps (``wait:N`` advances the clock N steps); tensors are
``[batch, ...]``. This module travels to the Hub as remote code: package imports are relative only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList

from .decoding import lean_generate, lean_settings
from .logits_processors import (
    EventMaskLogitsProcessor,
    MusicLengthLogitsProcessor,
    VoiceStateLogitsProcessor,
    allowed_vocab_head,
    wait_steps,
)
from .vocabulary import EOS, PAD, VOICE_FIFO, VOICE_SKIP, Vocabulary
from .voices import VoiceStack

# Tokens generated per chunk once the window slides, as a fraction of the context: each slide re-reads
# the window (one prefill), so a larger stride costs fewer prefills but leaves the model less context.
DEFAULT_STRIDE_FRACTION = 0.25
# A safety stop for a model that keeps emitting notes without advancing the clock: no real music comes
# close (dense orchestral MIDI is ~100 tokens per second of music; a random model ~250).
MAX_TOKENS_PER_SECOND = 1000


def trim_to_steps(events: list[int], vocab: Vocabulary, target_steps: int) -> list[int]:
    """Cut ``events`` (no header) at ``target_steps``: tokens after it are dropped and the wait that
    crosses it is shortened, so the piece lasts exactly ``target_steps`` if it got that far."""
    now = 0
    for i, steps in enumerate(vocab.wait_steps(events).tolist()):
        if steps:
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
    (The sliding window keeps one ``VoicePairing`` per row and calls its ``close``, which reads only the
    events added since the last slide.)
    """
    return VoicePairing(vocab, fifo).close(events, before)


class VoicePairing:
    """Which note-on each note-off of a growing event list ends, as the decoder pairs them (``voices``), and
    the tail of the list rewritten so that a reader starting at the tail pairs its notes the same way.

    A window that starts mid-piece does not see the voices started before it. A note-off in it that ends
    one of those (a ``<voice:skip>`` run reaching past the window's voices of the key) would, read from the
    window alone, end one of the window's voices instead: the model, the voice processor and the guards
    (which all read the window) would take that voice for ended while the decoded piece holds it on, and
    the note-length guard could no longer end it. ``window`` drops such note-offs (and their skips) and
    rewrites the skip runs of the others to the depths the window's own voices give.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        fifo (`bool`, defaults to `False`): the sequence's voice order (``<voice:fifo>`` in its header).
    """

    def __init__(self, vocab: Vocabulary, fifo: bool = False):
        self.vocab, self.fifo = vocab, fifo
        self.skip = vocab.token_to_id[VOICE_SKIP]
        self.stacks: dict[int, VoiceStack] = {}  # key slot -> the indices of its sounding note-ons
        self.ends: dict[int, int | None] = {}  # note-off index -> the index of the note-on it ends (None: none)
        self.seen = 0
        self.skips = 0

    def update(self, events: list[int]) -> None:
        """Pair the note-offs of ``events`` not seen yet (``events`` only ever grows)."""
        new = events[self.seen :]
        kinds, keys = self.vocab.kinds(new).tolist(), self.vocab.key(new).tolist()
        for i, (tok, kind, key) in enumerate(zip(new, kinds, keys), start=self.seen):
            if tok == self.skip:
                self.skips += 1
                continue
            if kind == self.vocab.KIND_ON and key >= 0:
                self.stacks.setdefault(key, VoiceStack(self.fifo)).push(i)
            elif kind == self.vocab.KIND_OFF and key >= 0:
                stack = self.stacks.get(key)
                self.ends[i] = stack.end(self.skips) if stack is not None else None
            self.skips = 0
        self.seen = len(events)

    def close(self, events: list[int], before: int) -> list[int]:
        """The note-offs (with their skips) that end every voice still sounding at the end of ``events``
        whose note-on is at an index below ``before``; the caller appends them to ``events`` as they are
        (they are paired here already)."""
        self.update(events)
        out: list[int] = []
        for key, stack in self.stacks.items():
            # the stale voices are the oldest: first in line with fifo, else behind every newer voice
            while len(stack) and stack.oldest() < before:
                voice, depth = stack.end_oldest()
                out += [self.skip] * depth + [self.vocab.note_off_id_of_key(key)]
                self.ends[len(events) + len(out) - 1] = voice
        self.seen = len(events) + len(out)  # paired here, not read again
        if out:
            self.skips = 0  # the last one is a note-off
        return out

    def window(self, events: list[int], cut: int) -> list[int]:
        """``events[cut:]`` with its voices written for a reader that starts at ``cut`` (see the class).
        ``cut`` must not fall inside a skip run (a window starts right after a wait)."""
        self.update(events)
        kinds, keys = self.vocab.kinds(events[cut:]).tolist(), self.vocab.key(events[cut:]).tolist()
        local: dict[int, VoiceStack] = {}
        out, pending = [], []  # pending: a skip run waiting for the note-off it leads to
        for i, (tok, kind, key) in enumerate(zip(events[cut:], kinds, keys), start=cut):
            if tok == self.skip:
                pending.append(tok)
                continue
            if kind == self.vocab.KIND_ON and key >= 0:
                local.setdefault(key, VoiceStack(self.fifo)).push(i)
            elif kind == self.vocab.KIND_OFF and key >= 0:
                ended = self.ends.get(i)
                if ended is not None and ended < cut:
                    pending = []
                    continue  # it ends a voice the window never started
                if ended is not None:
                    pending = [self.skip] * local[key].end_voice(ended)
            out += pending
            out.append(tok)
            pending = []
        return out + pending


@dataclass
class MusicRequest:
    """One piece to generate (in ``num_return_sequences`` variations).

    ``header`` and ``events`` are ids (``events`` is the primer's music, possibly empty);
    ``target_steps`` is the whole piece's length in 10 ms steps; ``forbidden`` a ``[vocab]`` mask of ids the
    events may not contain; ``style_embedding`` (``[n_embd]``) replaces the embedding of the header's style
    token when styles are blended; ``primer_steps`` is the primer's length in 10 ms steps; ``style`` is what
    the caller asked for (a name or a blend), reported back with each result; ``guards`` makes the musical
    guards (``core/guards.py``) for one ``generate`` call from each row's events so far and each row's index
    in the batch of ``num_return_sequences`` pieces (they keep per-call state, so each chunk gets new ones; the
    index lets a piece keep what was drawn for it once rows that ended have left the batch).
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
    guards: Callable[[list[list[int]], list[int]], list] | None = None


class SlidingWindowGenerator:
    """Runs ``model.generate`` in chunks until every variation reaches its length.

    The window is the header plus as much recent music as fits in ``n_positions``; when it is full it
    slides, keeping the header and the last ``n_positions - stride`` tokens, cut at a step boundary.

    Args:
        model: a causal LM over the event vocabulary.
        vocab: the tokenizer's ``Vocabulary``.
        stride: new tokens per chunk once the window slides (default a quarter of the context).
        cache_implementation: passed to ``generate`` (``"static"`` or None for the dynamic cache).
        lean: decode with ``decoding.lean_generate`` where it can honour the call (a GPT-2 on CPU, sampling
            settings only, no cache implementation asked for), else ``generate``.
        kv_cache_dtype: the lean loop's key/value cache dtype (``decoding.resolve_kv_cache_dtype``); default the
            model's. ``generate`` keeps its own cache.
    """

    def __init__(self, model, vocab: Vocabulary, stride: int | None = None, cache_implementation: str | None = None,
                 lean: bool = True, kv_cache_dtype: torch.dtype | None = None):
        self.model, self.vocab, self.lean, self.kv_cache_dtype = model, vocab, lean, kv_cache_dtype
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
        pairings = [VoicePairing(self.vocab, fifo=self.vocab.token_to_id[VOICE_FIFO] in request.header) for _ in range(n)]
        steps = torch.full((n,), count_steps(request.events, self.vocab), dtype=torch.long)
        active = list(range(n))
        budget = len(request.events) + int(request.target_steps * self.vocab.config.step_seconds * MAX_TOKENS_PER_SECOND) + self.context
        with allowed_vocab_head(self.model, request.forbidden):
            while active and max(len(events[i]) for i in active) < budget:
                windows = [self._window(request.header, events[i], pairings[i]) for i in active]
                new, ended = self._chunk(request, windows, steps[active], on_progress, generate_kwargs, [events[i] for i in active],
                                         active)
                for row, i in enumerate(active):
                    events[i] += new[row]
                    steps[i] += count_steps(new[row], self.vocab)
                active = [i for row, i in enumerate(active) if not ended[row] and steps[i] < request.target_steps]
        return [trim_to_steps(e, self.vocab, request.target_steps) for e in events]

    def _window(self, header: list[int], events: list[int], pairing: VoicePairing) -> list[int]:
        """Header + the events that fit; when they do not, slide: keep the recent music from a step
        boundary, its voices written as the window alone can read them (``VoicePairing.window``; ``pairing``
        follows this row's ``events``). Notes whose note-on falls out get their note-offs appended to
        ``events`` (in place), after the window is taken: the model never sees them, the decoded piece has
        no stuck notes."""
        if len(header) + len(events) + self.stride <= self.context:
            return header + events
        keep = self.context - len(header) - self.stride
        cut = len(events) - keep
        # start the window right after a wait, so it begins on a step like a training window does
        waits = wait_steps(torch.tensor(events[cut:]), self.vocab).nonzero()
        if len(waits):
            cut += int(waits[0]) + 1
        window = header + pairing.window(events, cut)
        events += pairing.close(events, cut)
        return window

    def _chunk(self, request: MusicRequest, windows: list[list[int]], steps: torch.Tensor, on_progress, generate_kwargs,
               histories=None, pieces=None):
        """One ``generate`` call over left-padded windows; returns (new events per row, ended with ``<eos>``?).
        ``histories`` (each row's whole piece so far, of which its window is the tail) tell the guards what
        happened before the window, ``pieces`` which of the request's pieces each row is (default: 0, 1, ...)."""
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
        pieces = list(range(len(windows))) if pieces is None else list(pieces)
        guards = request.guards(histories or windows, pieces) if request.guards is not None else []
        # the length processor runs last: once a row reaches its target, <eos> overrides every guard
        processors = LogitsProcessorList([EventMaskLogitsProcessor(request.forbidden), VoiceStateLogitsProcessor(self.vocab), *guards, length])
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        if request.style_embedding is not None:
            inputs["inputs_embeds"] = self._blend(inputs["input_ids"], width - torch.tensor([len(w) for w in windows]), request)
        settings = lean_settings(self.model, generate_kwargs) if self.lean and self.cache_implementation is None else None
        if settings is not None:
            out = lean_generate(self.model, inputs["input_ids"], inputs["attention_mask"], processors, self.context - width,
                                self.eos, self.eos, settings, inputs_embeds=inputs.get("inputs_embeds"),
                                kv_cache_dtype=self.kv_cache_dtype)
        else:
            out = self.model.generate(
                **inputs,
                logits_processor=processors,
                max_new_tokens=self.context - width,
                eos_token_id=self.eos,
                # rows that have ended are filled with <eos> (cut at below), not <pad>: generate() drops an
                # all-ones attention mask, and a <pad> in a decoding step then makes transformers warn about
                # padding without a mask, for tokens no one reads
                pad_token_id=self.eos,
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
    return int(vocab.wait_steps(ids).sum()) if len(ids) else 0


def _context_length(model) -> int:
    config = model.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise ValueError(f"cannot tell the context length of {type(config).__name__}")
