"""``musenet-hf statistics``: learned guard limits written into a checkpoint's config.json, read back by the pipeline."""

import json
import shutil

from musenet_hf.cli import main
from musenet_hf.core.guards import CONFIG_KEY, MusicStatistics


def test_statistics_command_writes_limits_the_pipeline_reads(song_corpus, tiny_model_dir, tmp_path, capsys):
    from transformers import AutoConfig

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = json.loads((model / "config.json").read_text())
    before.pop(CONFIG_KEY, None)
    (model / "config.json").write_text(json.dumps(before))
    assert main(["statistics", str(song_corpus), "--model", str(model)]) == 0
    after = json.loads((model / "config.json").read_text())
    assert {k: v for k, v in after.items() if k != CONFIG_KEY} == before  # nothing else touched
    stats = MusicStatistics.from_config(AutoConfig.from_pretrained(model))
    assert stats.source.endswith("training pieces") and stats.notes  # learned, not the defaults
    assert "wrote" in capsys.readouterr().out


def test_statistics_dry_run_writes_nothing(song_corpus, tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    text = (model / "config.json").read_text()
    assert main(["statistics", str(song_corpus), "--model", str(model), "--dry-run"]) == 0
    assert (model / "config.json").read_text() == text
