"""Pushing a LoRA adapter folder (``train.py --lora``): the adapter, its base fingerprint, the tokenizer with
the new styles, the training record, a sample generated with the adapter and a model card that names the
base, the data, the new styles and the metrics before and after. ``push_checkpoint`` dispatches here.

The adapter's config names its base as the trainer saw it (often a local folder). On the Hub it must name
a repo: ``base_repo_id`` (the repo the base was pushed to) replaces it in the uploaded config, after
checking that this repo holds the very weights the adapter was trained on (their sha256).
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from .. import load_pipeline
from ..modeling.adapters import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    BASE_RECORD_FILE,
    AdapterBaseError,
    BaseFingerprint,
    read_base_record,
)
from .audit import remote_code_files
from .checkpoint import TRAINING_RECORD, read_json
from .errors import CheckpointIncompleteError
from .modelcard import CARD_TRAINING_ARGS, HUB_TAGS, arg_value, card_license, corpus_table, duration, fmt
from .remote_config import hub_tokenizer_config
from .sample import SAMPLE_FILENAME, SampleOptions, generate_sample

ADAPTER_CARD_TEMPLATE = Path(__file__).with_name("adapter_card_template.md")
# What an adapter folder must hold, with the writer to name when one is missing.
ADAPTER_FILES = {
    ADAPTER_CONFIG_FILE: "train.py --lora (PEFT save_pretrained)",
    ADAPTER_WEIGHTS_FILE: "train.py --lora (PEFT save_pretrained)",
    BASE_RECORD_FILE: "train.py --lora",
    "tokenizer.json": "tokenizer.save_pretrained",
    "tokenizer_config.json": "tokenizer.save_pretrained",
    TRAINING_RECORD: "train.py",
}
ADAPTER_TAGS = [*HUB_TAGS, "lora", "peft"]


def validate_adapter(adapter_dir: str | os.PathLike) -> list[str]:
    """The adapter folder's files that go to the Hub; raises ``CheckpointIncompleteError`` naming a missing one.

    Args:
        adapter_dir (`str` or `os.PathLike`): a folder written by ``train.py --lora``.
    """
    root = Path(adapter_dir)
    for name, writer in ADAPTER_FILES.items():
        if not (root / name).is_file():
            raise CheckpointIncompleteError(f"adapter folder {root} is incomplete: {name} is missing (written by {writer})")
    return list(ADAPTER_FILES)


def hub_base(adapter_dir: Path, base_repo_id: str | None) -> str:
    """The Hub repo of the adapter's base, checked to hold the weights the adapter was trained on.

    Raises:
        CheckpointIncompleteError: the base is a local folder and no ``base_repo_id`` was given.
        AdapterBaseError: ``base_repo_id`` holds other weights.
    """
    record = read_base_record(adapter_dir)
    named = read_json(adapter_dir / ADAPTER_CONFIG_FILE).get("base_model_name_or_path")
    repo = base_repo_id or named
    if base_repo_id is None and (named is None or os.path.exists(named) or os.path.isabs(named)):
        raise CheckpointIncompleteError(
            f"the adapter's base is the local folder {named}: push that base first (push_to_hub.py {named} --repo-id NAME) "
            "and pass its repo with --base-repo-id")
    differences = record.differences(BaseFingerprint.of(repo)) if record is not None else []
    if differences:
        raise AdapterBaseError(f"Hub repo {repo} is not the base adapter {adapter_dir} was trained on: " + "; ".join(differences))
    return repo


def stage_adapter(adapter_dir: str | os.PathLike, out_dir: str | os.PathLike, repo_id: str, base_repo_id: str | None = None,
                  sample: SampleOptions | None = None, license: str | None = None) -> list[str]:
    """Write into ``out_dir`` what ``push_checkpoint`` uploads for an adapter; returns the file names, sorted.

    Args:
        adapter_dir (`str` or `os.PathLike`): a folder written by ``train.py --lora`` (only read).
        out_dir (`str` or `os.PathLike`): a new or empty folder.
        repo_id (`str`): "namespace/name" of the adapter repo (the card's snippets).
        base_repo_id (`str`, *optional*): the Hub repo of the base; needed when the adapter names a local folder.
        sample (`SampleOptions`, *optional*): how ``sample.mid`` is made (default style: the data's most frequent).
        license (`str`, *optional*): the card's Hub licence id; default derived from the corpus licences.
    """
    from .push import link_or_copy, write_json

    root, out = Path(adapter_dir), Path(out_dir)
    files = validate_adapter(root)
    base = hub_base(root, base_repo_id)
    code = remote_code_files()
    out.mkdir(parents=True, exist_ok=True)
    for name in files:
        link_or_copy(root / name, out / name)
    write_json(out / ADAPTER_CONFIG_FILE, {**read_json(root / ADAPTER_CONFIG_FILE), "base_model_name_or_path": base})
    write_json(out / BASE_RECORD_FILE, {**read_json(root / BASE_RECORD_FILE), "name_or_path": base})
    write_json(out / "tokenizer_config.json", hub_tokenizer_config(read_json(root / "tokenizer_config.json")))
    for path in code:
        out.joinpath(path.name).write_bytes(path.read_bytes())
    record = read_json(root / TRAINING_RECORD)
    pipe = load_pipeline(root)  # the local base, as trained
    info = generate_sample(pipe, out / SAMPLE_FILENAME, record, sample or SampleOptions())
    build_adapter_card(record, repo_id, base, info, (root / ADAPTER_WEIGHTS_FILE).stat().st_size, license).save(out / "README.md")
    return sorted([*files, *(p.name for p in code), SAMPLE_FILENAME, "README.md"])


def build_adapter_card(record: dict, repo_id: str, base_repo_id: str, sample, adapter_bytes: int,
                       license: str | None = None) -> ModelCard:
    """README.md of an adapter repo: ``base_model`` metadata plus ``adapter_card_template.md`` from the record.

    Args:
        record (`dict`): the run's training record (with its ``lora`` and ``initial_metrics`` sections).
        repo_id (`str`): the adapter repo.
        base_repo_id (`str`): the base's repo (metadata ``base_model``, links).
        sample (`SampleInfo`): what ``sample.mid`` is.
        adapter_bytes (`int`): size of ``adapter_model.safetensors``.
        license (`str`, *optional*): the Hub licence id (default: from the corpus licences).
    """
    lora = record.get("lora") or {}
    before, after = record.get("initial_metrics") or {}, record.get("metrics") or {}
    args = record.get("training_args") or {}
    names = [str(s["name"]) for s in (record.get("corpus") or {}).get("sources", []) if isinstance(s, dict) and s.get("name")]
    card_data = ModelCardData(license=card_license(record, license), library_name="peft", base_model=base_repo_id,
                              tags=list(ADAPTER_TAGS), datasets=names or None, model_name=repo_id.split("/")[-1])
    context = {
        "repo_id": repo_id, "model_name": repo_id.split("/")[-1], "base_repo_id": base_repo_id,
        "target_modules": ", ".join(f"`{m}`" for m in lora.get("target_modules", [])) or "no",
        "rank": fmt(lora.get("rank")), "alpha": arg_value(lora.get("alpha")),
        "new_styles": lora.get("new_styles") or record.get("new_styles") or [],
        "trainable": f"{lora['trainable_parameters']:,}" if "trainable_parameters" in lora else "not recorded",
        "total": f"{lora['total_parameters']:,}" if "total_parameters" in lora else "not recorded",
        "adapter_size": f"{adapter_bytes / 2**20:.2f} MB",
        "usage_style": sample.style,
        "remote_files": ", ".join(f"`{p.name}`" for p in remote_code_files()),
        "sample_description": (f"{sample.seconds:.1f} s, {sample.notes} notes, style {sample.style}, instruments "
                               f"{', '.join(sample.instruments) or 'none'}; generated with this adapter, seed {sample.seed}."),
        "corpus_table": corpus_table(record),
        "hardware": fmt(record.get("hardware")), "train_time": duration(record.get("train_seconds")),
        "steps": fmt(record.get("steps")),
        "tokens": f"{record['tokens']:,}" if isinstance(record.get("tokens"), int) else "not recorded",
        "training_args": [(k, arg_value(args[k])) for k in CARD_TRAINING_ARGS if args.get(k) is not None],
        "metrics": [(name, fmt(before.get(key)), fmt(after.get(key))) for key, name in
                    (("eval_loss", "validation loss (nats/token)"), ("perplexity", "perplexity"), ("bits_per_note", "bits per note"))],
    }
    return ModelCard.from_template(card_data, template_path=str(ADAPTER_CARD_TEMPLATE), **context)


def is_adapter_folder(path: str | os.PathLike) -> bool:
    """Whether a local folder is an adapter (``adapter_config.json``, no ``config.json``)."""
    return (Path(path) / ADAPTER_CONFIG_FILE).is_file() and not (Path(path) / "config.json").is_file()

