"""musenet_hf.hub.checkpoint: what a checkpoint folder must hold before it goes to the Hub."""

from __future__ import annotations

import json
import re

import pytest
from hub_fixtures import RECORD, make_checkpoint

from musenet_hf.hub.checkpoint import TRAINING_RECORD, WEIGHTS_INDEX, trained_styles, validate_checkpoint
from musenet_hf.hub.errors import CheckpointIncompleteError


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json", "tokenizer.json", "generation_config.json",
                                     "training_record.json"])
def test_incomplete_checkpoint_names_the_missing_file(tmp_path, missing):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / missing).unlink()
    with pytest.raises(CheckpointIncompleteError, match=re.escape(missing)):
        validate_checkpoint(checkpoint)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(CheckpointIncompleteError, match="does not exist"):
        validate_checkpoint(tmp_path / "nowhere")


def test_validate_checkpoint_lists_only_safe_files(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    for pickle_file in ("optimizer.bin", "random_states_0.pkl", "pytorch_model.bin"):
        (checkpoint / pickle_file).write_bytes(b"not published")
    files = validate_checkpoint(checkpoint)
    assert "model.safetensors" in files and "training_record.json" in files
    assert not [f for f in files if f.endswith((".bin", ".pkl"))]
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointIncompleteError, match="pytorch_model.bin.*only safetensors"):
        validate_checkpoint(checkpoint)


def test_sharded_checkpoint_names_a_missing_shard(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / "model.safetensors").rename(checkpoint / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (checkpoint / WEIGHTS_INDEX).write_text(json.dumps(index))
    with pytest.raises(CheckpointIncompleteError, match="model-00002-of-00002.safetensors"):
        validate_checkpoint(checkpoint)
    (checkpoint / "model-00002-of-00002.safetensors").write_bytes(b"")
    files = validate_checkpoint(checkpoint)
    assert {WEIGHTS_INDEX, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} <= set(files)


def test_bad_training_record_is_named(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    (checkpoint / TRAINING_RECORD).write_text("{not json")
    with pytest.raises(CheckpointIncompleteError, match="training_record.json is not valid JSON"):
        validate_checkpoint(checkpoint)
    (checkpoint / TRAINING_RECORD).write_text("[1, 2]")
    with pytest.raises(CheckpointIncompleteError, match="must hold a JSON object"):
        validate_checkpoint(checkpoint)


def test_foreign_tokenizer_class_is_named(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt")
    config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    (checkpoint / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "GPT2Tokenizer"}))
    with pytest.raises(CheckpointIncompleteError, match="GPT2Tokenizer"):
        validate_checkpoint(checkpoint)


def test_trained_styles_sum_over_sources_most_frequent_first():
    record = {"corpus": {"sources": [{"styles": {"pop": 2, "jazz": 5}}, {"styles": ["pop", "bach"]}, "not a source"]}}
    assert list(trained_styles(record).items()) == [("jazz", 5), ("pop", 3), ("bach", 1)]
    assert trained_styles(RECORD) == {"pop": 8, "jazz": 4}
    assert trained_styles({}) == {}
