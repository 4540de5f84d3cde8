"""A tiny randomly initialised checkpoint in the layout train.py writes (the ``tiny_model_dir`` fixture of conftest.py)."""

from pathlib import Path

import torch

import musenet_hf  # noqa: F401  (registers the tokenizer and the pipeline)
from musenet_hf import MuseNetTokenizer

# Small enough to generate hundreds of tokens per second on one core; 64 positions so a few seconds of
# music already slide the window several times.
TINY_CONTEXT = 64


def save_tiny_checkpoint(path: Path, n_positions: int = TINY_CONTEXT, seed: int = 0) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = MuseNetTokenizer()
    config = GPT2Config(
        vocab_size=len(tok), n_positions=n_positions, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path
