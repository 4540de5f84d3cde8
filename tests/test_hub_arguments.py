"""musenet_hf.hub.arguments: the push command line (positional folder, flags, or one .json file)."""

from __future__ import annotations

import json

import pytest

from musenet_hf.hub.arguments import parse_push_args
from musenet_hf.hub.sample import DEFAULT_SAMPLE_SECONDS


def test_positional_folder_and_flags():
    args = parse_push_args(["runs/x", "--repo-id", "a/b", "--private", "--revision", "dev", "--commit-message", "hi"])
    parsed = (args.checkpoint_dir, args.repo_id, args.private, args.revision, args.commit_message)
    assert parsed == ("runs/x", "a/b", True, "dev", "hi")
    assert args.sample_seconds == DEFAULT_SAMPLE_SECONDS and args.token is None


def test_a_lone_json_file_holds_every_option(tmp_path):
    config = tmp_path / "push.json"
    config.write_text(json.dumps({"checkpoint_dir": "runs/y", "repo_id": "a/c", "sample_seconds": 3}))
    args = parse_push_args([str(config)])
    assert (args.checkpoint_dir, args.repo_id, args.sample_seconds, args.private) == ("runs/y", "a/c", 3.0, False)


def test_missing_repo_id_is_a_usage_error_naming_the_program(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_push_args(["runs/x"], prog="musenet-hf push")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "musenet-hf push CHECKPOINT_DIR --repo-id NAME" in err and "repo_id" in err
