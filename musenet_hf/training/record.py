"""What a run leaves in its output folder besides checkpoints: the best-weights folders, the published
model (optionally cast to a smaller dtype) and ``training_record.json``.

Layout of ``OUTPUT_DIR``::

    model.safetensors, config.json, generation_config.json, tokenizer files   the published model
    training_record.json       corpus, arguments, metrics, steps, tokens, hardware (``training_record``)
    metrics.jsonl              every logged value (``metrics.MetricsLog``)
    best-step-00000500/        save_pretrained weights of the best evaluation so far (removed at the end)
    checkpoints/, corpus/, runs/   resumable state, a MIDI folder's built corpus, TensorBoard logs
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .accelerator import hardware_description
from .arguments import flat_config
from .checkpointing import CHECKPOINTS

RECORD_FILE = "training_record.json"
BEST_PREFIX = "best-step-"  # OUTPUT_DIR/best-step-N: save_pretrained weights of the best evaluation so far
RECORD_METRICS = ("eval_loss", "perplexity", "bits_per_note", "baseline_bits_per_note")
RECORD_EVAL = ("eval_tokens", "eval_notes", "bits_per_token")


def prepare_output_dir(out: Path) -> None:
    """Create ``out`` with a ``.gitignore`` for what must never be published with the model.

    Resumable state and caches hold pickles or copies of the data.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / ".gitignore").write_text(f"{CHECKPOINTS}/\n{BEST_PREFIX}*/\ncorpus/\nruns/\n")


def best_dir(out: Path, step: int) -> Path:
    """The folder holding the weights of the evaluation at ``step``."""
    return out / f"{BEST_PREFIX}{step:08d}"


def remove_best_dirs(out: Path, keep: int | None) -> None:
    """Delete every best-weights folder but the one of step ``keep`` (all of them when ``keep`` is ``None``)."""
    for folder in out.glob(f"{BEST_PREFIX}*"):
        if keep is None or folder != best_dir(out, keep):
            shutil.rmtree(folder, ignore_errors=True)


def training_record(model_args, data_args, args, corpus: dict, metrics: dict, state, accelerator, tokenizer) -> dict:
    """``training_record.json``: what was trained on, how, and how well.

    Args:
        model_args, data_args, args: the run's three argument dataclasses (stored flat).
        corpus (`dict`): the corpus card (or ``{"path": ...}``) the run trained on.
        metrics (`dict`): the published weights' validation metrics, with ``baseline_bits_per_note``.
        state (`LoopState`): steps, tokens and seconds trained.
        accelerator (`accelerate.Accelerator`): for the hardware description.
        tokenizer (`MuseNetTokenizer`): its styles and instruments are recorded.
    """
    return {
        "corpus": corpus,
        "training_args": flat_config(model_args, data_args, args),
        "preset": model_args.preset if model_args.model_name_or_path is None else f"fine-tuned from {model_args.model_name_or_path}",
        "metrics": {k: metrics.get(k) for k in RECORD_METRICS},
        "eval": {k: metrics.get(k) for k in RECORD_EVAL},
        "train_seconds": round(state.train_seconds, 1),
        "steps": state.step,
        "tokens": state.tokens,
        "hardware": hardware_description(accelerator),
        "styles": tokenizer.styles,
        "instruments": tokenizer.instruments,
    }


def cast_saved_weights(out: Path, dtype: str) -> None:
    """Rewrite ``out/model.safetensors`` in ``dtype`` (e.g. bfloat16: half the bytes) and say so in config.json.

    Args:
        out (`Path`): a ``save_pretrained`` folder.
        dtype (`str`): a torch dtype name, e.g. ``"bfloat16"``.
    """
    from safetensors.torch import load_file, save_file

    path = out / "model.safetensors"
    save_file({k: v.to(getattr(torch, dtype)) for k, v in load_file(path).items()}, path, metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["dtype"] = dtype
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def publish_model(accelerator, model, tokenizer, out: Path, record: dict, best_step: int | None, save_dtype: str,
                  lora_base: str | None = None, merge: bool = False) -> None:
    """Write the final model, tokenizer and record into ``out``; every process must call it.

    Args:
        accelerator (`accelerate.Accelerator`): gathers the weights (a collective under FSDP/DeepSpeed).
        model: the prepared model.
        tokenizer (`MuseNetTokenizer`): saved beside the weights.
        out (`Path`): the output folder.
        record (`dict`): the training record, written as ``training_record.json``.
        best_step (`int`, *optional*): publish the weights saved at this step's evaluation instead of the
            last ones (they were better on validation).
        save_dtype (`str`): dtype of the published ``model.safetensors`` (``float32`` keeps them as trained;
            a LoRA adapter is always saved as trained).
        lora_base (`str`, *optional*): for a LoRA run, the base checkpoint: the adapter is published (see
            ``training.lora.publish``).
        merge (`bool`, defaults to `False`): for a LoRA run, publish the merged weights instead of the adapter.
    """
    weights = accelerator.get_state_dict(model)  # a collective under FSDP/DeepSpeed: every process calls it
    if not accelerator.is_main_process:
        return
    if lora_base is not None:
        from .lora import publish

        best = best_dir(out, best_step) if best_step is not None else None
        publish(accelerator.unwrap_model(model), out, weights, lora_base, merge, best)
    else:
        accelerator.unwrap_model(model).save_pretrained(out, state_dict=weights)
        if best_step is not None:
            shutil.copy2(best_dir(out, best_step) / "model.safetensors", out / "model.safetensors")
    if save_dtype != "float32" and (lora_base is None or merge):
        cast_saved_weights(out, save_dtype)
    tokenizer.save_pretrained(out)
    (out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    remove_best_dirs(out, keep=record["saved_step"])  # kept so that a longer continuation can still fall back to it
