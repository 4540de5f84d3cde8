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


# --- load-time errors: one clear error for a checkpoint folder that cannot be loaded (issue 14) ----------
def _broken_copy(tiny_model_dir, tmp_path, problem: str):
    """A copy of the tiny checkpoint with one problem; returns (folder, regex the error must match)."""
    import shutil

    folder = shutil.copytree(tiny_model_dir, tmp_path / problem)
    weights = folder / "model.safetensors"
    if problem == "missing-weights":
        weights.unlink()
        return folder, re.escape(f"{folder} is incomplete: model.safetensors is missing")
    if problem == "truncated-weights":  # an interrupted download: the header is whole, the tensors are cut
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) * 2 // 3])
        return folder, re.escape(f"{weights} is not a complete safetensors file ({len(data) * 2 // 3} bytes")
    if problem == "weights-cut-in-header":
        weights.write_bytes(weights.read_bytes()[:5])
        return folder, re.escape(f"{weights} is not a complete safetensors file (5 bytes")
    if problem == "tokenizer-with-an-extra-style":  # another vocabulary: one id more than the model has
        from musenet_hf import MuseNetTokenizer

        tokenizer = MuseNetTokenizer.from_pretrained(str(folder))
        tokenizer.add_styles(["vaporwave"])
        tokenizer.save_pretrained(folder)
        size = json.loads((folder / "config.json").read_text())["vocab_size"]
        return folder, re.escape(f"the tokenizer in {folder} (tokenizer.json, tokenizer_config.json) has {size + 1} tokens "
                                 f"but {folder / 'config.json'} says vocab_size {size}")
    if problem == "config-vocab-size-edited":
        config = json.loads((folder / "config.json").read_text())
        config["vocab_size"] -= 10
        (folder / "config.json").write_text(json.dumps(config))
        return folder, re.escape(f"config.json says vocab_size {config['vocab_size']} but the weights' token embeddings "
                                 f"(transformer.wte.weight) have {config['vocab_size'] + 10} rows")
    raise AssertionError(problem)


LOAD_PROBLEMS = ["missing-weights", "truncated-weights", "weights-cut-in-header", "tokenizer-with-an-extra-style",
                 "config-vocab-size-edited"]


@pytest.mark.parametrize("problem", LOAD_PROBLEMS)
def test_broken_checkpoint_gives_one_clear_error_through_the_pipeline(tiny_model_dir, tmp_path, problem):
    from transformers import pipeline

    from musenet_hf.hub.errors import CheckpointLoadError

    folder, message = _broken_copy(tiny_model_dir, tmp_path, problem)
    with pytest.raises(CheckpointLoadError, match=message) as info:
        pipeline("midi-generation", model=str(folder))
    assert "Traceback" not in str(info.value)  # not transformers' report of every model class it tried


@pytest.mark.parametrize("problem", ["truncated-weights", "tokenizer-with-an-extra-style"])
def test_broken_checkpoint_error_through_load_pipeline(tiny_model_dir, tmp_path, problem):
    from musenet_hf import load_pipeline
    from musenet_hf.hub.errors import CheckpointLoadError

    folder, message = _broken_copy(tiny_model_dir, tmp_path, problem)
    with pytest.raises(CheckpointLoadError, match=message):
        load_pipeline(folder)


@pytest.mark.parametrize("problem", ["missing-weights", "config-vocab-size-edited"])
def test_broken_checkpoint_error_through_the_cli(tiny_model_dir, tmp_path, capsys, problem):
    from musenet_hf.cli import main as cli_main

    folder, message = _broken_copy(tiny_model_dir, tmp_path, problem)
    rc = cli_main(["generate", "--model", str(folder), "--seconds", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert re.search(message, err) and err.count("\n") == 1, err  # one line, no traceback
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sound_checkpoint_passes_the_load_check_and_loads(tiny_model_dir):
    from musenet_hf import load_pipeline
    from musenet_hf.hub.checkpoint import check_loadable

    check_loadable(tiny_model_dir)  # raises on any problem
    vocab_size = json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
    assert len(load_pipeline(tiny_model_dir).tokenizer) == vocab_size
