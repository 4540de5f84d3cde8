"""Resumable training checkpoints: ``Accelerator.save_state`` plus a signed manifest, with rotation.

``save_state`` writes pickles (optimizer.bin, random_states_*.pkl), and loading a pickle runs code.
So a checkpoint is only ever loaded after its manifest checks out: the manifest lists the SHA-256 of
every file and is signed with HMAC-SHA256 under a key private to this user (a file created with mode
0600 under ``~/.cache/musenet_hf``, or ``$MUSENET_HF_CHECKPOINT_KEY_FILE``). A folder from anyone else,
or one edited since it was written, is refused before a byte of it is unpickled. Multi-node runs
need the same key file on every node (a shared home, or the environment variable).

Layout: ``OUTPUT_DIR/checkpoints/step-00000500/`` holding the accelerate state files and
``musenet_checkpoint.json`` (written last, so a folder without it is an interrupted save and ignored).

The manifest's state is the ``LoopState`` (where the loop is) and the resume key (the settings that
must not change for a resume to continue the same run exactly); ``save_checkpoint`` and
``load_checkpoint`` are the two calls the training loop makes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..utils import sha256_file

MANIFEST = "musenet_checkpoint.json"
CHECKPOINTS = "checkpoints"
PREFIX = "step-"
KEY_ENV = "MUSENET_HF_CHECKPOINT_KEY_FILE"
KEY_BYTES = 32  # HMAC-SHA256 key: as long as the digest
FORMAT = 1


class CheckpointError(ValueError):
    """A folder that may not be resumed from (not ours, altered, or incomplete)."""


def key_file() -> Path:
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "musenet_hf" / "checkpoint.key"


def _key(create: bool) -> bytes:
    path = key_file()
    if not path.is_file():
        if not create:
            raise CheckpointError(f"no checkpoint key at {path}: this machine wrote no checkpoint, so none can be trusted")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(KEY_BYTES))
        except FileExistsError:  # another process created it first: use that one
            pass
    return bytes.fromhex(path.read_text().strip())


def _signature(body: dict, key: bytes) -> str:
    return hmac.new(key, json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def checkpoint_dir(output_dir, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"{PREFIX}{step:08d}"


def write_manifest(folder: Path, state: dict) -> None:
    """Sign ``state`` (JSON-able loop state) together with the hashes of every file now in ``folder``."""
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    body = {"format": FORMAT, "state": state, "files": files}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({**body, "hmac": _signature(body, _key(create=True))}, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)  # atomic: a checkpoint either has its manifest or does not count


def verify(folder) -> dict:
    """The loop state of a checkpoint this user wrote; raises ``CheckpointError`` for anything else."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{folder} has no {MANIFEST}: not a checkpoint written by musenet_hf training (refusing to unpickle it)")
    try:
        manifest = json.loads(path.read_text())
        body = {k: manifest[k] for k in ("format", "state", "files")}
        claimed = manifest["hmac"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is malformed ({exc})") from None
    if not hmac.compare_digest(_signature(body, _key(create=False)), str(claimed)):
        raise CheckpointError(f"{folder} was not written by this user's musenet_hf training (signature mismatch); refusing to load it")
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    if present != set(body["files"]):
        raise CheckpointError(f"{folder}: files differ from its manifest (extra or missing: {sorted(present ^ set(body['files']))})")
    for name, digest in body["files"].items():
        if sha256_file(folder / name) != digest:
            raise CheckpointError(f"{folder / name} changed since the checkpoint was written; refusing to load it")
    return body["state"]


def list_checkpoints(output_dir) -> list[Path]:
    """Complete checkpoints (with a manifest) under ``output_dir``, oldest first."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def resolve(output_dir, spec: str) -> Path:
    """The folder ``--resume_from_checkpoint`` names: ``latest`` or a path."""
    if spec == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise CheckpointError(f"--resume_from_checkpoint latest: no complete checkpoint in {Path(output_dir) / CHECKPOINTS}")
        return found[-1]
    return Path(spec)


def rotate(output_dir, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints, and any interrupted save; returns what was removed."""
    root = Path(output_dir) / CHECKPOINTS
    complete = list_checkpoints(output_dir)
    removed = complete[:-keep] if keep else complete
    if root.is_dir():
        removed += [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and not (p / MANIFEST).is_file()]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


@dataclass
class LoopState:
    """Where the loop is; saved in every checkpoint manifest (JSON, never pickled)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    micro_in_epoch: int = 0  # micro-batches of this epoch this process has consumed
    tokens: int = 0  # real (non-padding) tokens trained on, all processes
    train_seconds: float = 0.0  # wall-clock time spent in the loop (evaluations included)
    total_steps: int = 0  # length of the learning-rate schedule
    best_step: int = -1  # step of the lowest validation loss so far (its weights are in OUTPUT_DIR/best-step-N)
    best_metrics: dict | None = None
    initial_metrics: dict | None = None  # validation before the first step (the base, for a LoRA fine-tune)


def resume_key(args, num_processes: int, context_length: int, vocab_size: int) -> dict:
    """What must not change across a resume for it to continue the same run exactly.

    Args:
        args (`TrainingArguments`): seed, batch size and gradient accumulation.
        num_processes (`int`): processes training together.
        context_length (`int`): tokens per training window.
        vocab_size (`int`): the tokenizer's size.
    """
    return {
        "seed": args.seed,
        "per_device_batch_size": args.per_device_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_processes": num_processes,
        "context_length": context_length,
        "vocab_size": vocab_size,
    }


def save_checkpoint(accelerator, args, state: LoopState, key: dict) -> Path:
    """``accelerator.save_state`` into the step's folder, then the signed manifest and rotation; every process calls it.

    Args:
        accelerator (`accelerate.Accelerator`): the run's accelerator.
        args (`TrainingArguments`): ``output_dir`` and ``save_total_limit``.
        state (`LoopState`): stored in the manifest.
        key (`dict`): the ``resume_key``, stored in the manifest.
    """
    from .record import remove_best_dirs

    folder = checkpoint_dir(args.output_dir, state.step)
    accelerator.save_state(str(folder))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_manifest(folder, {"loop": asdict(state), "resume_key": key})
        rotate(args.output_dir, args.save_total_limit)
        # only now may older best weights go: until this manifest, a resume would go back to them
        remove_best_dirs(Path(args.output_dir), keep=state.best_step)
    accelerator.wait_for_everyone()
    return folder


def load_checkpoint(accelerator, args, key: dict) -> LoopState:
    """Verify, then load the checkpoint ``args.resume_from_checkpoint`` names; returns its loop state.

    Args:
        accelerator (`accelerate.Accelerator`): loads the model, optimizer and RNG states.
        args (`TrainingArguments`): ``output_dir`` and ``resume_from_checkpoint``.
        key (`dict`): this run's ``resume_key``; it must equal the saved one.

    Raises:
        CheckpointError: the folder is not ours, was altered, or was saved with other settings.
    """
    folder = resolve(args.output_dir, args.resume_from_checkpoint)
    saved = verify(folder)  # before anything in the folder is unpickled
    if saved["resume_key"] != key:
        changed = {k: (saved["resume_key"].get(k), v) for k, v in key.items() if saved["resume_key"].get(k) != v}
        raise CheckpointError(f"cannot continue {folder} exactly: settings changed (saved, now): {changed}")
    accelerator.load_state(str(folder))
    return LoopState(**saved["loop"])
