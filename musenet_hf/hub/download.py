"""A pushed repo back on this machine: its snapshot folder in the local Hugging Face cache."""

from __future__ import annotations

import os
from pathlib import Path

import huggingface_hub

from .errors import hub_errors


def download_checkpoint(repo_id: str, revision: str | None = None, token: str | None = None,
                        cache_dir: str | os.PathLike | None = None) -> Path:
    """The repo's snapshot folder in the local cache (downloaded if needed; offline with HF_HUB_OFFLINE=1).

    Args:
        repo_id (`str`): "namespace/name".
        revision (`str`, *optional*): branch, tag or commit; default the main branch.
        token (`str`, *optional*): a read token for private repos; default HF_TOKEN or the saved login (huggingface_hub decides).
        cache_dir (`str` or `os.PathLike`, *optional*): the cache; default huggingface_hub's (under HF_HOME).

    Raises:
        `HubRepoNotFoundError`: the repo or revision does not exist or cannot be read; both are named.
    """
    with hub_errors(repo_id, revision):
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir))
