"""The sampling defaults: the one place they are defined.

Every checkpoint ``train.py`` writes carries them in its ``generation_config.json`` (transformers gives a
model's generation config priority over a pipeline's defaults, so that file is where a default must live to
take effect), the bundled model ships them, and ``pipeline("midi-generation")`` falls back to them for a
checkpoint whose generation config sets none. The CLI's help text is generated from them. The draw itself
(``sample_next``, used by the lean decoding loop) is here too.

This module travels to the Hub as remote code: it imports nothing from the package.
"""

from __future__ import annotations

import torch

# Sampling, not argmax: greedy decoding loops on one phrase, and MuseNet itself sampled. The cuts keep the
# far tail (odd families, extreme pitches, stray note-offs) out: top_k bounds it in ids, top_p in mass.
# Chosen with the evaluator over six settings (bench/results/sampling_sweep.md): lower temperatures narrow the
# pitch content, and top-p 0.9 or no top-k each left an asked instrument nearly silent in one piece of 36.
# Confirmed at 24 pieces a case with every guard: top-p off, temperature 1.05 and 0.95 each raised the mean
# overlap shortfall (0.077 -> 0.101, 0.087, 0.085).
SAMPLING_DEFAULTS = {
    "do_sample": True,
    "temperature": 1.0,
    "top_k": 64,
    "top_p": 0.95,
}


def describe(name: str) -> str:
    """The default of one sampling setting as help text says it (``"off"`` for a cut that is disabled)."""
    value = SAMPLING_DEFAULTS[name]
    disabled = (name == "top_k" and value == 0) or (name == "top_p" and value >= 1.0)
    return "off" if disabled else str(value)


def sampling_candidates(scores: torch.Tensor, temperature: float | None = 1.0, top_k: int | None = 0,
                        top_p: float | None = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The ids a sampling step can draw and their probabilities, as transformers' warpers leave them.

    Temperature, then top-k, then top-p, in the order ``generate()`` applies them; the rest of the vocabulary
    has probability 0 and is left out, so a draw over these candidates has the same distribution as
    ``generate()``'s draw over the whole vocabulary at a fraction of its cost (12k ids, k of them kept).

    Args:
        scores (`torch.Tensor`): ``[batch, vocab]`` logits after the logits processors.
        temperature (`float`, *optional*, defaults to 1.0): divides the logits (None or 1.0: unchanged).
        top_k (`int`, *optional*, defaults to 0): keep the k largest logits (None or 0: all).
        top_p (`float`, *optional*, defaults to 1.0): keep the smallest set of the most likely ids whose
            probability reaches ``top_p`` (None or 1.0: all).

    Returns:
        (probabilities, ids), both ``[batch, k]``, most likely first.
    """
    if temperature is not None and temperature != 1.0:
        scores = scores / temperature
    k = scores.shape[-1] if not top_k else min(int(top_k), scores.shape[-1])
    values, index = scores.topk(k, dim=-1)  # descending
    if top_p is not None and top_p < 1.0:
        probs = values.softmax(dim=-1)
        # an id stays while the mass of the ids ranked above it is under top_p (transformers' rule), the first always
        remove = probs.cumsum(dim=-1) - probs >= top_p
        remove[..., 0] = False
        values = values.masked_fill(remove, float("-inf"))
    return values.softmax(dim=-1), index


def sample_next(scores: torch.Tensor, do_sample: bool = True, temperature: float | None = 1.0, top_k: int | None = 0,
                top_p: float | None = 1.0) -> torch.Tensor:
    """The next id of every row: one draw from ``sampling_candidates``, or the argmax when not sampling.

    Args:
        scores (`torch.Tensor`): ``[batch, vocab]`` logits after the logits processors.
        do_sample (`bool`, defaults to `True`): sample; else take the argmax (greedy).
        temperature, top_k, top_p: see ``sampling_candidates``.

    Returns:
        `torch.LongTensor` of shape ``[batch]``.
    """
    if not do_sample:
        return scores.argmax(dim=-1)
    probs, index = sampling_candidates(scores, temperature, top_k, top_p)
    return index.gather(-1, torch.multinomial(probs, num_samples=1)).squeeze(-1)
