"""``modeling.presets``: a checkpoint is fine-tuned on float32 master weights, whatever dtype it was saved in."""

import torch

from musenet_hf import MuseNetTokenizer
from musenet_hf.modeling.presets import model_for_training


def save_bf16_checkpoint(path):
    from pipeline_fixtures import save_tiny_checkpoint
    from transformers import AutoModelForCausalLM

    save_tiny_checkpoint(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(path)  # as the bundled model ships: bf16 weights, config dtype bfloat16
    return path


def test_bf16_checkpoint_trains_in_float32(tmp_path):
    path = save_bf16_checkpoint(tmp_path / "bf16")
    tok = MuseNetTokenizer.from_pretrained(path)
    kept = model_for_training(tok, model_name_or_path=str(path), dtype="auto")
    model = model_for_training(tok, model_name_or_path=str(path))
    assert kept.dtype == torch.bfloat16  # "auto" keeps the checkpoint's dtype: what transformers does unasked
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    for (name, a), (_, b) in zip(kept.named_parameters(), model.named_parameters()):
        assert torch.equal(a.float(), b), name  # an exact upcast: the same weights
    # why it matters: a small update survives on the float32 weights and vanishes on the bf16 ones
    with torch.no_grad():
        w32, w16 = model.transformer.wte.weight, kept.transformer.wte.weight
        before32, before16 = w32.clone(), w16.clone()
        w32.add_(w32.abs().max() * 1e-3)
        w16.add_(w16.abs().max() * 1e-3)
    assert (w32 != before32).float().mean() > 0.99
    assert (w16 != before16).float().mean() < 0.9
