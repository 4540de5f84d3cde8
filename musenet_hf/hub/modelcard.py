"""README.md of a pushed repo: Hub metadata (licence, tags, datasets, model-index results) and the
``modelcard_template.md`` text filled from the checkpoint's training record."""

from __future__ import annotations

import json
import math
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult

from ..data.corpus import format_card_table
from .audit import remote_code_files
from .checkpoint import corpus_sources, trained_styles
from .sample import SampleInfo

MODEL_CARD_TEMPLATE = Path(__file__).with_name("modelcard_template.md")
HUB_TAGS = ["music", "midi", "symbolic-music", "music-generation", "midi-generation", "musenet", "gpt2"]
# Hub licence ids a corpus licence may map to; anything else is published as "other".
HUB_LICENSES = ("mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0",
                "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-4.0", "gpl-3.0", "lgpl-3.0", "odc-by")
# Training arguments the card lists (those the record has): the ones that shape the model. The rest
# (paths on the trainer's machine, logging, checkpoint cadence) stay in training_record.json.
CARD_TRAINING_ARGS = ("preset", "context_length", "dropout", "learning_rate", "min_lr_ratio", "warmup_steps",
                      "weight_decay", "adam_beta1", "adam_beta2", "max_grad_norm", "per_device_batch_size",
                      "gradient_accumulation_steps", "max_steps", "num_train_epochs", "mixed_precision", "augment",
                      "transpose", "seed")
SECONDS_AS_MINUTES = 120  # the card writes training times from 2 minutes on in minutes...
SECONDS_AS_HOURS = 7200  # ...and from 2 hours on in hours


def card_license(record: dict, override: str | None = None) -> str:
    """The model's Hub licence id: ``override``, else the one licence all corpus sources share, else "other".

    Args:
        record (`dict`): the checkpoint's training record.
        override (`str`, *optional*): a licence id chosen by the pusher.
    """
    if override:
        return override
    licences = {str(s.get("licence", "")).strip().lower() for s in corpus_sources(record)}
    return licences.pop() if len(licences) == 1 and licences <= set(HUB_LICENSES) else "other"


def fmt(value, digits: int = 3) -> str:
    """A metric or count for the card: floats rounded to ``digits`` places, missing values spelled out."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not recorded"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def duration(seconds) -> str:
    """Training time for the card (from a number of seconds): seconds, minutes or hours, whichever reads best."""
    if not isinstance(seconds, (int, float)):
        return "not recorded"
    if seconds < SECONDS_AS_MINUTES:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < SECONDS_AS_HOURS else f"{seconds / 3600:.2f} h"


def arg_value(value) -> str:
    """A training argument's value for the card's table (floats in their shortest form)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def corpus_table(record: dict) -> str:
    """The training data section: the corpus card's own table, or what the record says instead."""
    corpus = record.get("corpus") or {}
    if {"sources", "totals", "rows", "skipped"} <= set(corpus):
        return format_card_table(corpus)
    return f"The training record names no corpus card (corpus: {corpus.get('path', 'not recorded')})."


def eval_results(metrics: dict, dataset_name: str) -> list[EvalResult]:
    """model-index entries for the recorded (finite) validation metrics.

    Args:
        metrics (`dict`): the training record's ``metrics``.
        dataset_name (`str`): the evaluation data's name on the card.
    """
    names = {"eval_loss": "validation loss (nats/token)", "perplexity": "perplexity", "bits_per_note": "bits per note"}
    return [EvalResult(task_type="text-generation", task_name="MIDI generation", dataset_type="midi", dataset_name=dataset_name,
                       dataset_split="validation", metric_type=key, metric_name=name, metric_value=float(metrics[key]))
            for key, name in names.items()
            if isinstance(metrics.get(key), (int, float)) and math.isfinite(metrics[key])]


def build_model_card(record: dict, config: dict, repo_id: str, sample: SampleInfo, num_parameters: int,
                     license: str | None = None) -> ModelCard:
    """README.md for the repo: Hub metadata plus the template filled from the training record.

    Args:
        record (`dict`): the checkpoint's training record.
        config (`dict`): the checkpoint's config.json (the architecture line).
        repo_id (`str`): "namespace/name", used in the card's code snippets.
        sample (`SampleInfo`): what ``sample.mid`` is.
        num_parameters (`int`): the model's parameter count.
        license (`str`, *optional*): the Hub licence id; default derived from the corpus (``card_license``).
    """
    metrics = record.get("metrics") or {}
    dataset_names = [str(s["name"]) for s in corpus_sources(record) if s.get("name")]
    card_data = ModelCardData(
        license=card_license(record, license), library_name="transformers", tags=list(HUB_TAGS),
        datasets=dataset_names or None, metrics=["perplexity", "bits_per_note"], model_name=repo_id.split("/")[-1],
        eval_results=eval_results(metrics, ", ".join(dataset_names) or "validation split") or None,
    )
    args = record.get("training_args") or {}
    context = {
        "repo_id": repo_id,
        "model_name": repo_id.split("/")[-1],
        "architecture": f"{config.get('n_layer')} layers, width {config.get('n_embd')}, {config.get('n_head')} heads, "
                        f"{num_parameters / 1e6:.1f}M parameters, context {config.get('n_positions')} tokens",
        "context_length": config.get("n_positions"),
        "usage_style": sample.style,
        "usage_instruments": json.dumps(sample.instruments or ["piano"]),
        "remote_files": ", ".join(f"`{p.name}`" for p in remote_code_files()),
        "sample_description": (f"{sample.seconds:.1f} s, {sample.notes} notes, style {sample.style}, instruments "
                               f"{', '.join(sample.instruments) or 'none'}; generated by this model with seed {sample.seed}."),
        "trained_styles": ", ".join(f"{k} ({v})" for k, v in trained_styles(record).items()) or "not recorded",
        "styles": record.get("styles") or [],
        "instruments": record.get("instruments") or [],
        "corpus_table": corpus_table(record),
        "preset": fmt(record.get("preset")),
        "hardware": fmt(record.get("hardware")),
        "train_time": duration(record.get("train_seconds")),
        "steps": fmt(record.get("steps")),
        "tokens": f"{record['tokens']:,}" if isinstance(record.get("tokens"), int) else "not recorded",
        "training_args": [(k, arg_value(args[k])) for k in CARD_TRAINING_ARGS if args.get(k) is not None],
        "metrics": [("validation loss (nats/token)", fmt(metrics.get("eval_loss"))),
                    ("perplexity", fmt(metrics.get("perplexity"))),
                    ("bits per note", fmt(metrics.get("bits_per_note"))),
                    ("bigram baseline, bits per note", fmt(metrics.get("baseline_bits_per_note")))],
    }
    return ModelCard.from_template(card_data, template_path=str(MODEL_CARD_TEMPLATE), **context)
