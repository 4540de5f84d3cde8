"""Sharing checkpoints on the Hugging Face Hub: ``push_checkpoint`` (what ``push_to_hub.py`` runs) and
``download_checkpoint``.

A pushed repo holds the ``save_pretrained`` files of a checkpoint (safetensors weights, config,
generation config, tokenizer), its ``training_record.json``, a model card generated from that record
(README.md), a short generated ``sample.mid``, and the package modules the pipeline and tokenizer need,
so that users without ``musenet_hf`` can load it with ``trust_remote_code=True``.

How one repo serves both kinds of users (the ``custom_pipelines`` pitfall): transformers refuses to build
a pipeline named in config.json's ``custom_pipelines`` unless the caller passes ``trust_remote_code=True``,
even when the caller has the package and its registered pipeline. So the uploaded config.json carries no
``custom_pipelines``. It keeps ``model_type: "gpt2"`` (plain ``GPT2Config`` / ``GPT2LMHeadModel`` for
everybody who does not trust remote code: package users get the registered pipeline and tokenizer), and
adds ``auto_map["AutoConfig"]`` naming ``MuseNetRemoteConfig`` plus the pipeline spec under
``REMOTE_PIPELINES_KEY``. transformers loads an ``auto_map`` config class only for callers who pass
``trust_remote_code=True``; that class turns the spec into ``custom_pipelines``, so exactly those callers
get the pipeline from the repo's code. tokenizer_config.json gets ``auto_map["AutoTokenizer"]`` the usual
way (a registered local class wins when the package is imported).
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import huggingface_hub
from huggingface_hub import HfApi, ModelCard, ModelCardData
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.repocard_data import EvalResult
from transformers import HfArgumentParser, Pipeline, pipeline
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.pipelines import PIPELINE_REGISTRY

from ..core.configuration_musenet_remote import REMOTE_PIPELINES_KEY, MuseNetRemoteConfig
from ..data.corpus import format_card_table
from ..core.tokenization_musenet import MuseNetTokenizer

TASK = "midi-generation"
MODEL_CARD_TEMPLATE = Path(__file__).with_name("modelcard_template.md")
SAMPLE_FILENAME = "sample.mid"
TRAINING_RECORD = "training_record.json"
# What a checkpoint folder must hold, with the writer to name when one is missing. Weights are checked
# separately: model.safetensors, or a sharded index plus the shards it lists.
REQUIRED_FILES = {
    "config.json": "model.save_pretrained",
    "generation_config.json": "model.save_pretrained",
    "tokenizer.json": "tokenizer.save_pretrained",
    "tokenizer_config.json": "tokenizer.save_pretrained",
    TRAINING_RECORD: "train.py",
}
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
# Third-party imports remote code may use: what a user without the package is told to install.
REMOTE_CODE_DEPENDENCIES = ("transformers", "tokenizers", "torch", "numpy", "mido")
DEFAULT_SAMPLE_SECONDS = 20.0  # long enough to hear a phrase, short enough to generate on a CPU in seconds
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


class CheckpointIncompleteError(FileNotFoundError):
    """A checkpoint folder lacks a file the Hub repo needs; the message names it and who writes it."""


class HubTokenError(PermissionError):
    """No Hugging Face token, or the Hub rejected it (invalid, or no write access to the repo)."""


class HubRepoNotFoundError(LookupError):
    """The repo (or the revision) does not exist, or is private and the token cannot see it."""


# What push_to_hub.py reports as a one-line error instead of a traceback.
PUSH_ERRORS = (CheckpointIncompleteError, HubTokenError, HubRepoNotFoundError)


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit_oid: str
    commit_url: str
    files: list[str]


@dataclass
class SampleOptions:
    """How ``sample.mid`` is made: seconds of music, seed, style (None: the training data's most frequent)
    and instrument families (None: the pipeline's default)."""

    seconds: float = DEFAULT_SAMPLE_SECONDS
    seed: int = 0
    style: str | None = None
    instruments: list[str] | None = None


@dataclass
class SampleInfo:
    """What the card says about ``sample.mid``: its length (seconds), notes and the call that made it."""

    seconds: float
    notes: int
    instruments: list[str]
    style: str
    seed: int


@dataclass
class PushArguments:
    """``push_to_hub.py CHECKPOINT_DIR --repo-id NAME [options]`` (or one .json file with these keys)."""

    checkpoint_dir: str = field(metadata={"help": "checkpoint folder written by train.py"})
    repo_id: str = field(metadata={"help": "Hub repo to push to: user/name or org/name (created if missing)"})
    private: bool = field(default=False, metadata={"help": "create the repo private (an existing repo keeps its visibility)"})
    revision: str | None = field(default=None, metadata={"help": "branch to commit to, created from main if missing"})
    commit_message: str | None = field(default=None, metadata={"help": "commit message; unset: names the checkpoint folder"})
    token: str | None = field(
        default=None, metadata={"help": "write token; unset: HF_TOKEN or `hf auth login` (which keep it out of shell history)"})
    sample_seconds: float = field(default=DEFAULT_SAMPLE_SECONDS, metadata={"help": "seconds of music in sample.mid"})
    sample_seed: int = field(default=0, metadata={"help": "seed of sample.mid"})
    sample_style: str | None = field(default=None, metadata={"help": "style of sample.mid; unset: the training data's most frequent"})
    sample_instruments: str | None = field(
        default=None, metadata={"help": "comma-separated instrument families of sample.mid; unset: the pipeline's default"})
    license: str | None = field(
        default=None, metadata={"help": "Hub licence id for the card; unset: the corpus sources' shared licence, else 'other'"})


def parse_push_args(argv: list[str] | None = None) -> PushArguments:
    """``PushArguments`` from the command line: a leading CHECKPOINT_DIR is positional, a lone .json
    file holds all arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(PushArguments)
    parser.usage = "push_to_hub.py CHECKPOINT_DIR --repo-id NAME [--private] [--revision R] [--commit-message M] [options]"
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])[0]
    if argv and not argv[0].startswith("-"):
        argv = ["--checkpoint_dir", *argv]
    return parser.parse_args_into_dataclasses(argv, look_for_args_file=False)[0]


# --- checking a checkpoint ------------------------------------------------------------------------
def validate_checkpoint(checkpoint_dir: str | os.PathLike) -> list[str]:
    """The checkpoint's files that go to the Hub (relative names); raises ``CheckpointIncompleteError``.

    Only ``save_pretrained`` output and the training record are listed: optimizer and RNG states
    (pickles) never leave the machine.
    """
    root = Path(checkpoint_dir)
    if not root.is_dir():
        raise CheckpointIncompleteError(f"checkpoint folder {root} does not exist")
    for name, writer in REQUIRED_FILES.items():
        if not (root / name).is_file():
            raise CheckpointIncompleteError(f"checkpoint folder {root} is incomplete: {name} is missing (written by {writer})")
    weights = weight_files(root)
    try:
        record = json.loads((root / TRAINING_RECORD).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointIncompleteError(f"checkpoint folder {root}: {TRAINING_RECORD} is not valid JSON ({err})") from err
    if not isinstance(record, dict):
        raise CheckpointIncompleteError(f"checkpoint folder {root}: {TRAINING_RECORD} must hold a JSON object")
    tokenizer_class = json.loads((root / "tokenizer_config.json").read_text(encoding="utf-8")).get("tokenizer_class")
    if tokenizer_class != MuseNetTokenizer.__name__:
        raise CheckpointIncompleteError(
            f"checkpoint folder {root}: tokenizer_config.json names tokenizer_class {tokenizer_class!r}, "
            f"expected {MuseNetTokenizer.__name__!r} (save the tokenizer with MuseNetTokenizer.save_pretrained)"
        )
    return list(REQUIRED_FILES) + weights


def weight_files(root: Path) -> list[str]:
    """``model.safetensors``, or the index and every shard it lists; names the first one missing."""
    if (root / WEIGHTS_FILE).is_file():
        return [WEIGHTS_FILE]
    if not (root / WEIGHTS_INDEX).is_file():
        pickled = [p.name for p in root.glob("*.bin")]
        hint = f" (found {', '.join(pickled)}: only safetensors weights are published)" if pickled else ""
        raise CheckpointIncompleteError(f"checkpoint folder {root} is incomplete: {WEIGHTS_FILE} is missing{hint}")
    shards = sorted(set(json.loads((root / WEIGHTS_INDEX).read_text(encoding="utf-8"))["weight_map"].values()))
    for shard in shards:
        if not (root / shard).is_file():
            raise CheckpointIncompleteError(
                f"checkpoint folder {root} is incomplete: {shard} (listed in {WEIGHTS_INDEX}) is missing")
    return [WEIGHTS_INDEX] + shards


# --- remote code ----------------------------------------------------------------------------------
def registered_pipeline_class() -> type[Pipeline]:
    """The pipeline class ``import musenet_hf`` registered for ``TASK``."""
    return PIPELINE_REGISTRY.supported_tasks[TASK]["impl"]


def remote_pipeline_spec() -> dict:
    """The registered ``midi-generation`` task as config.json stores a custom pipeline (class names)."""
    info = PIPELINE_REGISTRY.supported_tasks[TASK]
    # No "default": the registered default model is a local path that means nothing on another machine.
    return {TASK: {"impl": qualified_name(info["impl"]), "pt": [getattr(cls, "hub_class_name", cls.__name__) for cls in info["pt"]], "type": info["type"]}}


def remote_code_files() -> list[Path]:
    """The package modules a repo needs for ``trust_remote_code`` loading: the pipeline, tokenizer and
    config modules and everything they import relatively; each is checked by ``check_remote_module``."""
    roots = [registered_pipeline_class(), MuseNetTokenizer, MuseNetRemoteConfig]
    files: dict[str, Path] = {}
    for cls in roots:
        root = Path(sys.modules[cls.__module__].__file__)
        for path in [root, *map(Path, get_relative_import_files(str(root)))]:
            files[path.name] = path
    for path in files.values():
        check_remote_module(path)
    return [files[name] for name in sorted(files)]


def check_remote_module(path: Path) -> None:
    """Raise ``ValueError`` if a module would not load as remote code: transformers follows only
    ``from .module import name``, and the user may lack the package and anything beyond
    ``REMOTE_CODE_DEPENDENCIES``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        problem = remote_import_problem(node) if isinstance(node, (ast.Import, ast.ImportFrom)) else None
        if problem:
            raise ValueError(f"{path.name}:{node.lineno} cannot travel as remote code: {problem}")


def remote_import_problem(node: ast.Import | ast.ImportFrom) -> str | None:
    if isinstance(node, ast.ImportFrom) and node.level:
        if node.module is None:
            return "`from . import ...` is not followed by transformers' remote-code loader; use `from .module import name`"
        return None
    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
    bad = {name.split(".")[0] for name in names} - set(REMOTE_CODE_DEPENDENCIES) - set(sys.stdlib_module_names)
    if not bad:
        return None
    if __name__.split(".")[0] in bad:
        return "imports the package by absolute name; remote code may import it only relatively"
    return f"imports {', '.join(sorted(bad))}, not among {', '.join(REMOTE_CODE_DEPENDENCIES)}"


def hub_config(config: dict) -> dict:
    """config.json as uploaded: pipeline spec under ``REMOTE_PIPELINES_KEY`` and the ``auto_map`` config
    class that reads it; any ``custom_pipelines`` (from ``Pipeline.save_pretrained``) moves there too."""
    config = dict(config)
    specs = {**config.pop("custom_pipelines", {}), **remote_pipeline_spec()}
    config[REMOTE_PIPELINES_KEY] = specs
    config["auto_map"] = {**config.get("auto_map", {}), "AutoConfig": qualified_name(MuseNetRemoteConfig)}
    return config


def hub_tokenizer_config(tokenizer_config: dict) -> dict:
    """tokenizer_config.json as uploaded: ``auto_map`` names the tokenizer module shipped in the repo."""
    auto_map = {**tokenizer_config.get("auto_map", {}), "AutoTokenizer": [None, qualified_name(MuseNetTokenizer)]}
    return {**tokenizer_config, "auto_map": auto_map}


def qualified_name(cls: type) -> str:
    """``module.Class`` as auto_map wants it: the module's file name inside the repo."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


# --- sample and model card ------------------------------------------------------------------------
def load_pipeline(checkpoint_dir: str | os.PathLike) -> Pipeline:
    """The package's ``midi-generation`` pipeline on a local checkpoint. ``pipeline_class`` is explicit
    because a config.json saved by ``Pipeline.save_pretrained`` would otherwise demand trust_remote_code."""
    return pipeline(TASK, model=str(checkpoint_dir), pipeline_class=registered_pipeline_class())


def generate_sample(pipe: Pipeline, out_path: str | os.PathLike, record: dict, options: SampleOptions) -> SampleInfo:
    """Write a short piece to ``out_path`` (see ``SampleOptions``) and describe it."""
    style = options.style or sample_style(record, pipe.tokenizer.styles)
    piece = pipe(style=style, instruments=options.instruments, seconds=options.seconds, seed=options.seed)[0]
    piece["midi"].save(str(out_path))
    return SampleInfo(seconds=float(piece["seconds"]), notes=int(piece["notes"]),
                      instruments=list(piece["instruments"]), style=style, seed=options.seed)


def trained_styles(record: dict) -> dict[str, int]:
    """Pieces per style over the corpus sources, most frequent first (the corpus card counts them)."""
    counts: dict[str, int] = {}
    for source in corpus_sources(record):
        styles = source.get("styles") or {}
        for name, count in (styles.items() if isinstance(styles, dict) else ((name, 1) for name in styles)):
            counts[name] = counts.get(name, 0) + int(count)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def sample_style(record: dict, known: list[str]) -> str:
    """The style the training data has most pieces of (a header the model has seen), else "unknown"."""
    return next((name for name in trained_styles(record) if name in known), "unknown")


def card_license(record: dict, override: str | None = None) -> str:
    """The model's Hub licence id: ``override``, else the one licence all corpus sources share, else "other"."""
    if override:
        return override
    licences = {str(s.get("licence", "")).strip().lower() for s in corpus_sources(record)}
    return licences.pop() if len(licences) == 1 and licences <= set(HUB_LICENSES) else "other"


def corpus_sources(record: dict) -> list[dict]:
    corpus = record.get("corpus") or {}
    return [s for s in corpus.get("sources", []) if isinstance(s, dict)]


def fmt(value, digits: int = 3) -> str:
    """A metric or count for the card: floats rounded, missing values spelled out."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not recorded"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def duration(seconds) -> str:
    """Training time for the card: seconds, minutes or hours, whichever reads best."""
    if not isinstance(seconds, (int, float)):
        return "not recorded"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def arg_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def corpus_table(record: dict) -> str:
    """The training data section: the corpus card's own table, or what the record says instead."""
    corpus = record.get("corpus") or {}
    if {"sources", "totals", "rows", "skipped"} <= set(corpus):
        return format_card_table(corpus)
    return f"The training record names no corpus card (corpus: {corpus.get('path', 'not recorded')})."


def eval_results(metrics: dict, dataset_name: str) -> list[EvalResult]:
    """model-index entries for the recorded (finite) validation metrics."""
    names = {"eval_loss": "validation loss (nats/token)", "perplexity": "perplexity", "bits_per_note": "bits per note"}
    return [EvalResult(task_type="text-generation", task_name="MIDI generation", dataset_type="midi", dataset_name=dataset_name,
                       dataset_split="validation", metric_type=key, metric_name=name, metric_value=float(metrics[key]))
            for key, name in names.items()
            if isinstance(metrics.get(key), (int, float)) and math.isfinite(metrics[key])]


def build_model_card(record: dict, config: dict, repo_id: str, sample: SampleInfo, num_parameters: int,
                     license: str | None = None) -> ModelCard:
    """README.md for the repo: Hub metadata plus the template filled from the training record."""
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


# --- staging and pushing --------------------------------------------------------------------------
def stage_repo(checkpoint_dir: str | os.PathLike, out_dir: str | os.PathLike, repo_id: str,
               sample: SampleOptions | None = None, license: str | None = None) -> list[str]:
    """Write into ``out_dir`` (new or empty) exactly what ``push_checkpoint`` uploads; returns the file
    names. The checkpoint folder itself is only read."""
    root, out = Path(checkpoint_dir), Path(out_dir)
    files = validate_checkpoint(root)
    code = remote_code_files()
    out.mkdir(parents=True, exist_ok=True)
    for name in files:
        link_or_copy(root / name, out / name)
    write_json(out / "config.json", hub_config(read_json(root / "config.json")))
    write_json(out / "tokenizer_config.json", hub_tokenizer_config(read_json(root / "tokenizer_config.json")))
    for path in code:
        shutil.copyfile(path, out / path.name)
    record = read_json(root / TRAINING_RECORD)
    pipe = load_pipeline(root)
    info = generate_sample(pipe, out / SAMPLE_FILENAME, record, sample or SampleOptions())
    card = build_model_card(record, read_json(root / "config.json"), repo_id, info, pipe.model.num_parameters(), license)
    card.save(out / "README.md")
    return sorted([*files, *(p.name for p in code), SAMPLE_FILENAME, "README.md"])


def push_checkpoint(checkpoint_dir: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None,
                    commit_message: str | None = None, token: str | None = None,
                    sample_seconds: float = DEFAULT_SAMPLE_SECONDS, sample_seed: int = 0, sample_style: str | None = None,
                    sample_instruments: str | list[str] | None = None, license: str | None = None) -> PushResult:
    """Create ``repo_id`` if needed and upload the checkpoint, remote code, model card and sample.

    Args:
        checkpoint_dir: a folder written by train.py (see ``validate_checkpoint``).
        repo_id: "user/name" or "org/name" ("name" alone: the token owner's namespace).
        private: create the repo private (an existing repo keeps its visibility).
        revision: branch to commit to; created from main if missing.
        token: a write token; default ``HF_TOKEN`` or the one saved by ``hf auth login``.
        sample_seconds, sample_seed, sample_style, sample_instruments: ``sample.mid`` (see ``SampleOptions``;
            instruments as a list or a comma-separated string).
        license: the card's Hub licence id (default: derived from the corpus licences).

    Raises ``CheckpointIncompleteError``, ``HubTokenError``, ``HubRepoNotFoundError``.
    """
    validate_checkpoint(checkpoint_dir)  # before any network call or generation
    if isinstance(sample_instruments, str):
        sample_instruments = [name.strip() for name in sample_instruments.split(",") if name.strip()]
    sample = SampleOptions(sample_seconds, sample_seed, sample_style, sample_instruments or None)
    token = token or huggingface_hub.get_token()
    if not token:
        raise HubTokenError("pushing needs a Hugging Face write token: pass --token, set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    with hub_errors(repo_id, revision):
        if "/" not in repo_id:  # the card's snippets need the full id
            repo_id = f"{api.whoami()['name']}/{repo_id}"
        with tempfile.TemporaryDirectory(prefix="musenet-hub-") as staging:
            files = stage_repo(checkpoint_dir, staging, repo_id, sample, license)
            # None, not False: without --private the Hub's default visibility for the namespace applies.
            api.create_repo(repo_id, private=True if private else None, exist_ok=True)
            if revision and revision != huggingface_hub.constants.DEFAULT_REVISION:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            message = commit_message or f"Upload {Path(checkpoint_dir).resolve().name} with musenet_hf"
            info = api.upload_folder(repo_id=repo_id, folder_path=staging, revision=revision, commit_message=message)
    return PushResult(repo_id, revision or huggingface_hub.constants.DEFAULT_REVISION, info.oid, info.commit_url, files)


def download_checkpoint(repo_id: str, revision: str | None = None, token: str | None = None,
                        cache_dir: str | os.PathLike | None = None) -> Path:
    """The repo's snapshot folder in the local cache (downloaded if needed; offline with HF_HUB_OFFLINE=1).

    Raises ``HubRepoNotFoundError`` with the repo and revision named.
    """
    with hub_errors(repo_id, revision):
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir))


@contextmanager
def hub_errors(repo_id: str, revision: str | None):
    """Turn huggingface_hub's HTTP errors into this module's clear ones, naming the repo and revision."""
    try:
        yield
    except RevisionNotFoundError as err:
        raise HubRepoNotFoundError(f"revision {revision!r} not found in Hub repo {repo_id}") from err
    except RepositoryNotFoundError as err:
        raise HubRepoNotFoundError(f"Hub repo {repo_id} not found (or private and your token cannot read it)") from err
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status not in (401, 403):
            raise
        reason = "was rejected (invalid or expired)" if status == 401 else "has no write access"
        raise HubTokenError(f"your Hugging Face token {reason} for {repo_id}: {err.server_message or err}") from err


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: dict) -> None:
    path.unlink(missing_ok=True)  # may be a hard link to the checkpoint's own file
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link big weight files into the staging folder when the filesystem allows, else copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
