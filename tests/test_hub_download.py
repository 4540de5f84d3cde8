"""musenet_hf.hub.download: a repo's snapshot in the local cache, and the clear error when it cannot be
read (a child process talks to the local Hub; see hub_fixtures.py)."""

from __future__ import annotations

import pytest
from hub_fixtures import TOKEN, USER, child_env, run_child

PUBLIC, PRIVATE = f"{USER}/public-model", f"{USER}/private-model"
FILES = {"config.json": b'{"model_type": "gpt2"}\n', "README.md": b"# a model\n"}


@pytest.fixture(scope="module")
def repos(hub_server):
    """A public and a private repo of alice's, each with one commit on main."""
    for repo_id, private in ((PUBLIC, False), (PRIVATE, True)):
        if repo_id not in hub_server.state.repos:
            repo = hub_server.state.create_repo(USER, repo_id.split("/")[1], USER, private=private)
            hub_server.state.commit(repo, "main", "add files", FILES)
    return hub_server


def pull(server, home, repo_id: str, revision: str | None = None, token: str | None = None) -> dict:
    """download_checkpoint in a child (no HF_TOKEN: anonymous unless ``token``): the files it got, or the error."""
    code = f"""
        import json
        from musenet_hf.hub.download import download_checkpoint
        from musenet_hf.hub.errors import HubRepoNotFoundError
        try:
            folder = download_checkpoint({repo_id!r}, revision={revision!r}, token={token!r})
            print(json.dumps({{"files": {{p.name: p.read_text() for p in sorted(folder.iterdir())}}}}))
        except HubRepoNotFoundError as err:
            print(json.dumps({{"error": str(err)}}))
    """
    return run_child(code, child_env(server, home), home)


@pytest.mark.slow
@pytest.mark.parametrize("repo_id, revision, token, error", [
    (f"{USER}/does-not-exist", None, None, f"Hub repo {USER}/does-not-exist not found (or private and your token cannot read it)"),
    (PUBLIC, "no-such-branch", None, f"revision 'no-such-branch' not found in Hub repo {PUBLIC}"),
    (PRIVATE, None, None, f"Hub repo {PRIVATE} not found (or private and your token cannot read it)"),
])
def test_unreadable_repo_or_revision_is_named(repos, tmp_path, repo_id, revision, token, error):
    assert pull(repos, tmp_path, repo_id, revision, token) == {"error": error}


@pytest.mark.slow
@pytest.mark.parametrize("repo_id, token", [(PUBLIC, None), (PRIVATE, TOKEN)])
def test_readable_repo_downloads_its_files(repos, tmp_path, repo_id, token):
    files = pull(repos, tmp_path, repo_id, token=token)["files"]
    assert {name: files[name].encode() for name in FILES} == FILES
