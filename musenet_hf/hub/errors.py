"""The errors a push or a download raises, each naming what is wrong and what to do, and ``hub_errors``,
which turns huggingface_hub's HTTP errors into them."""

from __future__ import annotations

from contextlib import contextmanager

from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError


class CheckpointIncompleteError(FileNotFoundError):
    """A checkpoint folder lacks a file the Hub repo needs; the message names it and who writes it."""


class CheckpointLoadError(Exception):
    """A local checkpoint folder cannot be loaded: a weights file is missing or truncated, or config.json, the
    weights and the tokenizer disagree on the vocabulary size; the message names the file and the problem.

    Deliberately not an ``OSError`` / ``ValueError``: ``transformers.pipeline`` catches those from the first
    model class it tries and retries the next, then reports every class's traceback in one long error.
    """


class HubTokenError(PermissionError):
    """No Hugging Face token, or the Hub rejected it (invalid, or no write access to the repo)."""


class HubRepoNotFoundError(LookupError):
    """The repo (or the revision) does not exist, or is private and the token cannot see it."""


# What push_to_hub.py and `musenet-hf push` report as a one-line error instead of a traceback.
PUSH_ERRORS = (CheckpointIncompleteError, HubTokenError, HubRepoNotFoundError)


@contextmanager
def hub_errors(repo_id: str, revision: str | None):
    """Turn huggingface_hub's HTTP errors inside the block into this module's clear ones.

    Args:
        repo_id (`str`): the repo the block talks to, named in the messages.
        revision (`str`, *optional*): the branch, tag or commit the block asks for, named when it is missing.
    """
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
