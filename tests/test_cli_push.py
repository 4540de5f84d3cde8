"""``musenet-hf push``: the options of push_to_hub.py, the same one-line errors (the upload itself is
tested through push_to_hub.py and this command in test_hub_push.py)."""

from __future__ import annotations

import pytest
from hub_fixtures import make_checkpoint

from musenet_hf.cli import main as cli_main


def test_help_lists_the_push_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["push", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "musenet-hf push CHECKPOINT_DIR --repo-id NAME" in out
    assert "--sample_seconds" in out and "--private" in out


def test_options_before_the_folder_and_a_one_line_error(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / "tokenizer.json").unlink()
    capsys.readouterr()  # drop save_pretrained's progress bar
    # The checkpoint is checked before any token lookup or network call.
    assert cli_main(["push", "--repo-id", "a/b", "--checkpoint_dir", str(checkpoint)]) == 1
    assert cli_main(["push", str(checkpoint), "--repo-id", "a/b"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("musenet-hf push: error: ") for line in err)
    assert all("tokenizer.json is missing" in line for line in err)


def test_missing_repo_id_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["push", str(tmp_path)])
    assert exc.value.code == 2 and "repo_id" in capsys.readouterr().err
