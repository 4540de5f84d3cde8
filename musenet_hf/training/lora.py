"""LoRA fine-tuning with PEFT on the training loop: wrapping the model, and what a run publishes.

``train.py --model_name_or_path BASE --data my_midi/ --style lofi --lora`` trains low-rank updates of
GPT-2's ``c_attn`` / ``c_proj`` / ``c_fc`` projections and nothing else of the base, except the embedding
rows of the styles the data adds: those rows are new (the base never saw them), so they are trained whole
with PEFT's ``trainable_token_indices`` (a ``[new ids, n_embd]`` parameter; the tied output head follows),
while every other row of the embedding matrix stays frozen. The loop, its data order, resume and DDP are
the same as for a full fine-tune: only the set of parameters that require gradients differs.

The run writes an adapter folder (see ``musenet_hf.modeling.adapters``), or with ``--merge`` a plain
checkpoint with the adapter folded in.
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers.utils import logging

from ..modeling.adapters import ADAPTER_WEIGHTS_FILE, LORA_EXTRA_HINT, BaseFingerprint, write_base_record

logger = logging.get_logger(__name__)

# GPT-2's projections: the fused query/key/value (c_attn), the attention and MLP output projections (both
# named c_proj) and the MLP input (c_fc): every matrix of every block, as the LoRA paper's best setting.
DEFAULT_TARGET_MODULES = "c_attn,c_proj,c_fc"
PEFT_README = "README.md"  # PEFT's placeholder card; push_to_hub.py writes the real one


def require_peft():
    """The ``peft`` module, or an ImportError naming the extra to install."""
    try:
        import peft
    except ImportError:
        raise ImportError(f"--lora needs PEFT: {LORA_EXTRA_HINT}") from None
    return peft


def target_modules(spec: str) -> list[str]:
    """``"c_attn,c_proj"`` -> ``["c_attn", "c_proj"]``."""
    return [name.strip() for name in spec.split(",") if name.strip()]


def new_token_ids(base_tokenizer, tokenizer) -> list[int]:
    """Ids the training tokenizer has past the base's (the styles the data adds), in order."""
    return list(range(len(base_tokenizer), len(tokenizer)))


def wrap_model(model, rank: int, alpha: float, dropout: float, modules: str, new_ids: list[int]):
    """``model`` as a ``peft.PeftModel`` whose only trainable parameters are LoRA matrices and new rows.

    Args:
        model (`GPT2LMHeadModel`): the base, its embeddings already grown to the training tokenizer.
        rank (`int`): LoRA rank r.
        alpha (`float`): LoRA scale numerator (updates are scaled by alpha / r).
        dropout (`float`): dropout on the LoRA branch's input.
        modules (`str`): comma-separated module names to adapt.
        new_ids (`list[int]`): embedding rows to train whole (the new styles); may be empty.
    """
    peft = require_peft()
    config = peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules(modules),
        fan_in_fan_out=True,  # GPT-2's Conv1D stores weights as [in, out]
        trainable_token_indices=list(new_ids) or None, task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, config)


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters of a model (a ``PeftModel`` counts its frozen base in the total)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def save_adapter(model, folder: Path, state_dict: dict | None, base: str | os.PathLike) -> None:
    """Write the adapter (config, safetensors) and the base's fingerprint into ``folder``.

    Args:
        model (`peft.PeftModel`): the unwrapped trained model.
        folder (`Path`): the output folder.
        state_dict (`dict`, *optional*): the full state dict gathered by Accelerate (PEFT keeps the adapter's keys).
        base (`str` or `os.PathLike`): the base checkpoint, recorded in ``adapter_config.json`` (a folder as an
            absolute path) and fingerprinted.
    """
    name = str(Path(base).resolve()) if Path(base).exists() else str(base)
    for config in model.peft_config.values():
        config.base_model_name_or_path = name
    # the resized embedding matrix is the base's plus rows the trainable tokens store: never save it whole
    model.save_pretrained(folder, state_dict=state_dict, save_embedding_layers=False)
    (Path(folder) / PEFT_README).unlink(missing_ok=True)
    fingerprint = BaseFingerprint.of(name)
    write_base_record(folder, fingerprint)


def save_merged(model, folder: Path, adapter_weights: Path | None = None):
    """Fold the adapter into the base's weights and ``save_pretrained`` a plain ``GPT2LMHeadModel``.

    Args:
        model (`peft.PeftModel`): the unwrapped trained model (merged in place: call last).
        folder (`Path`): the output folder.
        adapter_weights (`Path`, *optional*): an ``adapter_model.safetensors`` (best evaluation) to load first.

    Returns:
        The merged model.
    """
    if adapter_weights is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(adapter_weights))
    merged = model.merge_and_unload()
    merged.save_pretrained(folder)
    return merged


def weights_file(lora: bool) -> str:
    """The file a best-evaluation folder keeps: the adapter's for LoRA runs (merged only at the end)."""
    return ADAPTER_WEIGHTS_FILE if lora else "model.safetensors"


def is_peft_model(model) -> bool:
    """Whether ``model`` (unwrapped) is a ``peft.PeftModel``; False when PEFT is not even installed."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def save_weights(model, folder: Path, state_dict: dict | None) -> None:
    """``save_pretrained`` for a best-evaluation folder: the adapter alone for a ``PeftModel``, else the weights."""
    if is_peft_model(model):
        model.save_pretrained(folder, state_dict=state_dict, save_embedding_layers=False)
        (Path(folder) / PEFT_README).unlink(missing_ok=True)
    else:
        model.save_pretrained(folder, state_dict=state_dict)


def publish(model, out: Path, state_dict: dict | None, base: str, merge: bool, best_folder: Path | None) -> None:
    """Write the run's LoRA result into ``out``: the adapter, or with ``merge`` a plain merged checkpoint.

    Args:
        model (`peft.PeftModel`): the unwrapped trained model.
        out (`Path`): the output folder.
        state_dict (`dict`, *optional*): the gathered state dict (see ``save_adapter``).
        base (`str`): the base checkpoint the run started from.
        merge (`bool`): write merged weights (``model.safetensors``, ``config.json``) instead of the adapter.
        best_folder (`Path`, *optional*): a best-evaluation folder whose adapter weights are published instead
            of the last ones.
    """
    import shutil

    best = best_folder / ADAPTER_WEIGHTS_FILE if best_folder is not None else None
    if merge:
        save_merged(model, out, best)
        return
    save_adapter(model, out, state_dict, base)
    if best is not None:
        shutil.copy2(best, out / ADAPTER_WEIGHTS_FILE)


def lora_record(model_args, trainable: int, total: int, new_styles: list[str]) -> dict:
    """The ``lora`` section of ``training_record.json``."""
    return {
        "base": model_args.model_name_or_path, "rank": model_args.lora_rank, "alpha": model_args.lora_alpha,
        "dropout": model_args.lora_dropout, "target_modules": target_modules(model_args.lora_target_modules),
        "trainable_parameters": trainable, "total_parameters": total, "new_styles": new_styles,
        "merged": model_args.merge,
    }
