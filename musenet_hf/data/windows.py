"""Training samples: context-length windows over tokenized pieces, and the collator that batches them.

``MidiWindows`` cuts each piece (a corpus row: header + events + ``<eos>``) into windows of at most
``context_length`` ids. Every window starts with the piece's header (``<bos> style inst... tempo``),
as MuseNet did, so every window teaches the model to follow its conditioning.

Window placement, for a piece whose header has ``h`` ids and whose body (events + ``<eos>``) has
``B`` ids, with ``L = context_length - h`` body ids per window:

- ``B <= L``: one window, the whole piece.
- otherwise ``ceil(B / L) + 1`` windows at body offsets ``clip(k * L - r, 0, B - L)``, ``k = 0, 1, ...``,
  with a phase ``r`` drawn per piece from ``(seed, epoch)``. The first window starts at the piece's
  beginning and the last ends at its end, so every epoch covers every id, while the cut points move
  from epoch to epoch. The one extra window per long piece is the price of a fixed ``len()``; when a
  phase does not need it, it becomes a random crop of the piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .augmentation import AugmentConfig, augment_ids

MAX_HEADER_IDS = 16  # <bos> + style + up to 10 instruments + tempo = 13; a little slack
LABEL_IGNORE = -100  # the index torch's cross-entropy (and transformers' causal LM loss) skips


def flat_ids(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(every row's ids concatenated, row offsets of shape ``[rows + 1]``): O(1) slicing per window.

    Costs the ids once in memory (2 bytes each for an int16 corpus), shared by forked DataLoader workers.
    """
    import pyarrow as pa

    if dataset._indices is not None:  # a select/shuffle/filter view: materialise the rows it points to
        dataset = dataset.flatten_indices()
    col = dataset.data.column("input_ids").combine_chunks()
    if isinstance(col, pa.ChunkedArray):  # an empty column stays chunked
        col = pa.concat_arrays(col.chunks) if col.num_chunks else pa.array([], type=col.type)
    offsets = col.offsets.to_numpy().astype(np.int64)
    values = col.values.to_numpy(zero_copy_only=False)
    return values[offsets[0] :], offsets - offsets[0]


def header_lengths(dataset, vocab) -> np.ndarray:
    """Ids before the first event (wait / note-on / note-off / voice marker) of every row (shape ``[rows]``)."""
    import pyarrow.compute as pc

    col = dataset.with_format("arrow").select_columns(["input_ids"])[:]["input_ids"]
    heads = pc.list_slice(col, 0, MAX_HEADER_IDS)
    counts = pc.list_value_length(heads).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(heads).to_numpy(zero_copy_only=False).astype(np.int64)
    kinds = vocab.kinds(values)
    header_kinds = (vocab.KIND_STYLE, vocab.KIND_INST, vocab.KIND_TEMPO)
    in_header = np.isin(kinds, header_kinds) | (values == vocab.token_to_id["<bos>"])
    out = np.zeros(len(counts), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for row, (s, n) in enumerate(zip(starts, counts)):
        stop = np.flatnonzero(~in_header[s : s + n])
        out[row] = stop[0] if len(stop) else n
    return out


class MidiWindows(torch.utils.data.Dataset):
    """Header-prefixed windows over a split of a built corpus (a map-style torch Dataset).

    Args:
        dataset: a ``datasets.Dataset`` with an ``input_ids`` column (one split of ``load_corpus``).
        tokenizer: the corpus's ``MuseNetTokenizer`` (its vocabulary classifies ids).
        context_length: the longest window, in ids (the model's ``n_positions``).
        seed: with the epoch, fixes the window phases and the augmentation draws.
        augment: ``AugmentConfig`` for on-the-fly augmentation, or ``None`` for none.

    ``self[i]`` is ``{"input_ids": list[int]}``; ``self.lengths[i]`` its length before augmentation
    (a time stretch may change it by a few percent; the result is always cut to ``context_length``).
    """

    def __init__(self, dataset, tokenizer, context_length: int, seed: int = 0, augment: AugmentConfig | None = None):
        self.vocab = tokenizer.musenet_vocab
        self.context_length = int(context_length)
        self.seed = int(seed)
        self.augment = augment
        self.values, self.offsets = flat_ids(dataset)
        self.piece_lengths = np.diff(self.offsets)
        self.header = header_lengths(dataset, self.vocab)
        too_long = int(self.header.max(initial=0))
        if too_long >= self.context_length:
            raise ValueError(f"context_length {self.context_length} leaves no room after a {too_long}-id header")
        self.body = self.piece_lengths - self.header
        self.span = self.context_length - self.header  # body ids per window
        long = self.body > self.span
        self.windows_per_piece = np.where(long, -(-self.body // self.span) + 1, 1)
        self.piece_of = np.repeat(np.arange(len(self.body)), self.windows_per_piece)
        first = np.concatenate([[0], np.cumsum(self.windows_per_piece)[:-1]])
        self.index_in_piece = np.arange(len(self.piece_of)) - first[self.piece_of]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Place this epoch's windows: new phases from ``(seed, epoch)``, same count."""
        self.epoch = int(epoch)
        rng = np.random.default_rng([self.seed, self.epoch])
        phase = (rng.random(len(self.body)) * self.span).astype(np.int64)
        p = self.piece_of
        last = np.maximum(self.body[p] - self.span[p], 0)  # the start of the window that ends the piece
        start = self.index_in_piece * self.span[p] - phase[p]
        # a phase that needs one window less leaves a second window at the end: make it a random crop instead
        redundant = start - self.span[p] >= last
        start[redundant] = (rng.random(int(redundant.sum())) * (last[redundant] + 1)).astype(np.int64)
        self.starts = np.clip(start, 0, last)
        self.lengths = (self.header[p] + np.minimum(self.span[p], self.body[p] - self.starts)).tolist()

    def __len__(self) -> int:
        return len(self.piece_of)

    def __getitem__(self, i: int) -> dict:
        p = int(self.piece_of[i])
        ids = self.values[self.offsets[p] : self.offsets[p + 1]]
        h, s = int(self.header[p]), int(self.starts[i])
        window = np.concatenate([ids[:h], ids[h + s : h + s + int(self.span[p])]]).astype(np.int64)
        if self.augment is None:
            return {"input_ids": window.tolist()}
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        return {"input_ids": augment_ids(window, self.vocab, rng, self.augment)[: self.context_length]}


@dataclass
class MidiCollator:
    """Right-pads windows into a batch; ``labels`` are the ids with ``-100`` on padding.

    Returns ``input_ids``, ``attention_mask`` (1 on real ids) and ``labels``, each a ``LongTensor[B, T]``,
    ``T`` the longest window rounded up to ``pad_to_multiple_of``. Pair with length-grouped sampling
    (``MidiWindows.lengths``) so little of each batch is padding.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(f["input_ids"]) for f in features]
        width = max(lengths, default=0)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, (f, n) in enumerate(zip(features, lengths)):
            input_ids[row, :n] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            attention_mask[row, :n] = 1
        labels = input_ids.masked_fill(attention_mask == 0, LABEL_IGNORE)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def to_device(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A ``MidiCollator`` batch on ``device`` as ``(input_ids, attention_mask or None, labels)``, each ``[B, T]``.

    The mask is ``None`` when padding is only on the right (always so for ``MidiCollator``): causal
    attention then needs no mask, and SDPA takes its fused causal kernels instead of a
    materialised ``[B, 1, T, T]`` mask.

    Args:
        batch (`dict`): ``input_ids``, ``attention_mask`` and ``labels`` tensors from the collator.
        device (`torch.device`): where the model runs.
    """
    mask = batch["attention_mask"]
    right_padded = not bool((mask[:, 1:] > mask[:, :-1]).any())

    def move(t: torch.Tensor) -> torch.Tensor:
        return t.to(device, non_blocking=True)

    return move(batch["input_ids"]), None if right_padded else move(mask), move(batch["labels"])
