"""Pushing a checkpoint: ``stage_repo`` writes the repo folder (checkpoint files, rewritten configs, remote
code, sample, model card) and ``push_checkpoint`` (what ``push_to_hub.py`` and ``musenet-hf push`` run)
uploads it as one commit."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
from huggingface_hub import HfApi
from transformers.utils import logging

from .. import load_pipeline
from ..core.pipeline_midi_generation import split_instruments
from .adapter import is_adapter_folder, stage_adapter, validate_adapter
from .audit import remote_code_files
from .checkpoint import TRAINING_RECORD, read_json, validate_checkpoint
from .errors import HubTokenError, hub_errors
from .modelcard import build_model_card
from .remote_config import hub_config, hub_tokenizer_config
from .sample import DEFAULT_SAMPLE_SECONDS, SAMPLE_FILENAME, SampleOptions, generate_sample

logger = logging.get_logger(__name__)


@dataclass
class PushResult:
    """Where a push landed: the repo, the branch, the commit (id and URL) and the files uploaded."""

    repo_id: str
    revision: str
    commit_oid: str
    commit_url: str
    files: list[str]


def stage_repo(checkpoint_dir: str | os.PathLike, out_dir: str | os.PathLike, repo_id: str,
               sample: SampleOptions | None = None, license: str | None = None) -> list[str]:
    """Write into ``out_dir`` exactly what ``push_checkpoint`` uploads; returns the file names, sorted.
    The checkpoint folder itself is only read.

    Args:
        checkpoint_dir (`str` or `os.PathLike`): a folder written by train.py (see ``validate_checkpoint``).
        out_dir (`str` or `os.PathLike`): a new or empty folder.
        repo_id (`str`): "namespace/name", used in the model card's snippets.
        sample (`SampleOptions`, *optional*): how ``sample.mid`` is made; default ``SampleOptions()``.
        license (`str`, *optional*): the card's Hub licence id; default derived from the corpus licences.
    """
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
    staged = sorted([*files, *(p.name for p in code), SAMPLE_FILENAME, "README.md"])
    logger.info(f"staged {len(staged)} files for {repo_id} in {out}")
    return staged


def push_checkpoint(checkpoint_dir: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None,
                    commit_message: str | None = None, token: str | None = None,
                    sample_seconds: float = DEFAULT_SAMPLE_SECONDS, sample_seed: int = 0, sample_style: str | None = None,
                    sample_instruments: str | list[str] | None = None, license: str | None = None,
                    base_repo_id: str | None = None) -> PushResult:
    """Create ``repo_id`` if needed and upload the checkpoint, remote code, model card and sample.

    Args:
        checkpoint_dir (`str` or `os.PathLike`): a folder written by train.py (see ``validate_checkpoint``).
        repo_id (`str`): "user/name" or "org/name" ("name" alone: the token owner's namespace).
        private (`bool`, *optional*, defaults to False): create the repo private (an existing repo keeps its visibility).
        revision (`str`, *optional*): branch to commit to; created from main if missing.
        commit_message (`str`, *optional*): default "Upload <checkpoint folder name> with musenet_hf".
        token (`str`, *optional*): a write token; default ``HF_TOKEN`` or the one saved by ``hf auth login``.
        sample_seconds (`float`, *optional*, defaults to ``DEFAULT_SAMPLE_SECONDS``): seconds of ``sample.mid``.
        sample_seed (`int`, *optional*, defaults to 0): seed of ``sample.mid``.
        sample_style (`str`, *optional*): style of ``sample.mid``; default the training data's most frequent.
        sample_instruments (`str` or `list[str]`, *optional*): families of ``sample.mid`` (a list or a
            comma-separated string); default the pipeline's.
        license (`str`, *optional*): the card's Hub licence id; default derived from the corpus licences.
        base_repo_id (`str`, *optional*): for a LoRA adapter folder (``train.py --lora``), the Hub repo of its
            base (see ``musenet_hf.hub.adapter``).

    Raises:
        `CheckpointIncompleteError`, `HubTokenError`, `HubRepoNotFoundError` (see ``musenet_hf.hub.errors``).
    """
    adapter = is_adapter_folder(checkpoint_dir)
    (validate_adapter if adapter else validate_checkpoint)(checkpoint_dir)  # before any network call or generation
    if isinstance(sample_instruments, str):
        sample_instruments = split_instruments(sample_instruments)
    sample = SampleOptions(sample_seconds, sample_seed, sample_style, sample_instruments or None)
    token = token or huggingface_hub.get_token()
    if not token:
        raise HubTokenError("pushing needs a Hugging Face write token: pass --token, set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    with hub_errors(repo_id, revision):
        if "/" not in repo_id:  # the card's snippets need the full id
            repo_id = f"{api.whoami()['name']}/{repo_id}"
        with tempfile.TemporaryDirectory(prefix="musenet-hub-") as staging:
            if adapter:
                files = stage_adapter(checkpoint_dir, staging, repo_id, base_repo_id, sample, license)
            else:
                files = stage_repo(checkpoint_dir, staging, repo_id, sample, license)
            # None, not False: without --private the Hub's default visibility for the namespace applies.
            api.create_repo(repo_id, private=True if private else None, exist_ok=True)
            if revision and revision != huggingface_hub.constants.DEFAULT_REVISION:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            message = commit_message or f"Upload {Path(checkpoint_dir).resolve().name} with musenet_hf"
            info = api.upload_folder(repo_id=repo_id, folder_path=staging, revision=revision, commit_message=message)
    return PushResult(repo_id, revision or huggingface_hub.constants.DEFAULT_REVISION, info.oid, info.commit_url, files)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented, key-sorted JSON, replacing (never writing through) a hard link."""
    path.unlink(missing_ok=True)  # may be a hard link to the checkpoint's own file
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link big weight files into the staging folder when the filesystem allows, else copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
