"""LoRA adapters of the tiny test checkpoint, with random non-zero weights (as after training)."""

from __future__ import annotations

from pathlib import Path

import torch

from musenet_hf import MuseNetTokenizer


def save_tiny_adapter(base: Path, out: Path, styles: list[str], seed: int = 0, rank: int = 4) -> Path:
    """An adapter folder for ``base`` adding ``styles``: LoRA B matrices and the new rows drawn at random, so
    that the adapter visibly changes the model (PEFT initialises B to zero, i.e. no change)."""
    from transformers import AutoModelForCausalLM

    from musenet_hf.training.lora import new_token_ids, save_adapter, wrap_model

    base_tok = MuseNetTokenizer.from_pretrained(base)
    tok = MuseNetTokenizer.from_pretrained(base)
    tok.add_styles(styles)
    model = AutoModelForCausalLM.from_pretrained(base)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    peft_model = wrap_model(model, rank, 2.0 * rank, 0.0, "c_attn,c_proj,c_fc", new_token_ids(base_tok, tok))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * (0.5 if "lora_B" in name else 1.0))
    save_adapter(peft_model, out, None, base)
    tok.save_pretrained(out)
    return out
