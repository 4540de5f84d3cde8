"""Named model sizes for ``GPT2LMHeadModel`` and the one place a model is built from a tokenizer.

A preset fixes depth, width, heads and context (tokens); the vocabulary always comes from the
tokenizer, so a preset works for any ``EncodingConfig`` and for tokenizers grown by ``add_styles``.
Parameter counts below are for the default vocabulary (11,813 ids, embeddings tied to the head).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

from ..core.sampling import SAMPLING_DEFAULTS

ATTENTION = "sdpa"  # torch's fused scaled-dot-product attention: flash/memory-efficient kernels on GPU, no extra dependency


@dataclass(frozen=True)
class ModelPreset:
    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int  # context length in tokens (MuseNet: 4096)
    purpose: str

    @property
    def non_embedding_params(self) -> int:
        """Weights in the transformer blocks (attention 4*d^2 + MLP 8*d^2 per layer), biases ignored."""
        return 12 * self.n_layer * self.n_embd**2


MODEL_PRESETS: dict[str, ModelPreset] = {
    # 0.9M params: a few optimizer steps per second on one CPU core
    "tiny": ModelPreset(2, 64, 2, 256, "tests and smoke runs"),
    # 6.3M params: sized for about an hour on 2 CPU cores (a few million tokens, about one POP909 pass)
    "small": ModelPreset(4, 256, 4, 512, "a CPU-only run of about an hour"),
    # ~15.5M params at 1024 tokens: the bundled default model. Minutes on one H100/H200; small enough that a
    # 4-minute piece generates in about a minute on 2 CPU cores and the bf16 weights ship in ~31 MB
    "default": ModelPreset(6, 384, 6, 1024, "the bundled default model (one GPU for minutes, fast on CPU)"),
    # 31.8M params at 1024 tokens
    "base": ModelPreset(8, 512, 8, 1024, "one GPU for tens of minutes"),
    # 95.7M params at 2048 tokens (GPT-2 small's shape)
    "medium": ModelPreset(12, 768, 12, 2048, "one or a few GPUs for hours"),
    # 318.6M params at MuseNet's 4096-token context
    "large": ModelPreset(24, 1024, 16, 4096, "multi-GPU runs with MuseNet's 4096-token context"),
}


def preset_names() -> list[str]:
    return list(MODEL_PRESETS)


def model_config(preset: str, tokenizer, dropout: float = 0.1, context_length: int | None = None) -> GPT2Config:
    """A ``GPT2Config`` for ``preset`` with the tokenizer's vocabulary and special ids.

    ``context_length`` (tokens) overrides the preset's ``n_positions``.
    """
    if preset not in MODEL_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(MODEL_PRESETS)}")
    p = MODEL_PRESETS[preset]
    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=context_length or p.n_positions,
        n_embd=p.n_embd,
        n_layer=p.n_layer,
        n_head=p.n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
        musenet_preset=preset,
        musenet_preset_shape=asdict(p),
    )


def build_model(preset: str, tokenizer, dropout: float = 0.1, context_length: int | None = None) -> GPT2LMHeadModel:
    """A freshly initialised model (SDPA attention) sized by ``preset`` for ``tokenizer``."""
    config = model_config(preset, tokenizer, dropout, context_length)
    return GPT2LMHeadModel._from_config(config, attn_implementation=ATTENTION)



def base_tokenizer(model_name_or_path: str | None = None, tokenizer_name_or_path: str | None = None):
    """The encoding a run starts from: a checkpoint's tokenizer, a named tokenizer folder, or the built-in one.

    Args:
        model_name_or_path (`str`, *optional*): a checkpoint folder (its tokenizer wins).
        tokenizer_name_or_path (`str`, *optional*): a tokenizer folder, used when no checkpoint is given.
    """
    from ..core.tokenization_musenet import MuseNetTokenizer

    source = model_name_or_path or tokenizer_name_or_path
    return MuseNetTokenizer.from_pretrained(source) if source else MuseNetTokenizer()


TRAINING_DTYPE = "float32"  # master weights: bf16 keeps 8 mantissa bits, so a step below ~1/256 of a weight is lost


def model_for_training(tokenizer, preset: str = "small", dropout: float = 0.1, context_length: int | None = None,
                       model_name_or_path: str | None = None, seed: int = 0, dtype: str = TRAINING_DTYPE):
    """A new model from ``preset``, or the checkpoint ``model_name_or_path`` with its embeddings grown to the tokenizer.

    Args:
        tokenizer (`MuseNetTokenizer`): the training corpus's tokenizer (vocabulary size, special ids).
        preset (`str`, defaults to `"small"`): a ``MODEL_PRESETS`` name, for a model trained from scratch.
        dropout (`float`, defaults to 0.1): dropout of a model trained from scratch.
        context_length (`int`, *optional*): ``n_positions`` in tokens instead of the preset's.
        model_name_or_path (`str`, *optional*): a checkpoint folder to fine-tune.
        seed (`int`, defaults to 0): seeds the initial weights (identical on every process and run).
        dtype (`str`, defaults to ``TRAINING_DTYPE``): the dtype a checkpoint's weights are loaded in. A checkpoint
            saved in bfloat16 (the bundled model) is upcast, so the optimizer updates float32 master weights;
            ``--mixed_precision bf16`` still computes in bf16 where the hardware has it. ``"auto"`` keeps the
            checkpoint's own dtype.
    """
    from transformers import AutoModelForCausalLM, set_seed

    set_seed(seed)
    if model_name_or_path is None:
        return build_model(preset, tokenizer, dropout, context_length)
    # transformers >= 5 loads a checkpoint in its saved dtype by default ("auto"): bf16 for the bundled model
    model = AutoModelForCausalLM.from_pretrained(model_name_or_path, attn_implementation=ATTENTION,
                                                 dtype=dtype if dtype == "auto" else getattr(torch, dtype))
    if len(tokenizer) > model.config.vocab_size:
        # new style ids start from the mean embedding (transformers' mean_resizing), not from noise
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return model

DEFAULT_MAX_NEW_TOKENS = 1024  # ~30 s of music at the ~30 tokens/s typical of pop piano


def default_generation_config(tokenizer, context_length: int) -> GenerationConfig:
    """The sampling defaults (``core/sampling.py``) and ids; ``max_new_tokens`` leaves room for a header inside ``context_length`` positions."""
    from ..data.windows import MAX_HEADER_IDS

    return GenerationConfig(
        **SAMPLING_DEFAULTS,
        max_new_tokens=min(DEFAULT_MAX_NEW_TOKENS, context_length - MAX_HEADER_IDS),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
