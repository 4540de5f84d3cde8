"""Training arguments: every problem reported at once, help on every field, a lone .json is the config,
and the committed recipe config is the bundled model's and trains as written."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from musenet_hf.training.arguments import (
    DataArguments,
    ModelArguments,
    TrainingArguments,
    flat_config,
    parse_training_args,
    validate_arguments,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "recipes" / "configs" / "default_model.json"
MACHINE_FIELDS = {"data", "output_dir"}  # where the corpus and the run live on the training machine


def test_validation_reports_every_problem_at_once(tmp_path):
    with pytest.raises(ValueError) as info:
        validate_arguments(
            ModelArguments(preset="huge", dropout=1.5),
            DataArguments(data=str(tmp_path / "missing")),
            TrainingArguments(output_dir=str(tmp_path / "o"), per_device_batch_size=0, mixed_precision="fp8"),
        )
    text = str(info.value)
    for fragment in ("--preset 'huge'", "does not exist", "--dropout", "--per_device_batch_size", "--mixed_precision"):
        assert fragment in text


def test_every_option_has_help_text():
    for cls in (ModelArguments, DataArguments, TrainingArguments):
        missing = [f.name for f in fields(cls) if not f.metadata.get("help")]
        assert not missing, f"{cls.__name__} fields without help: {missing}"


def test_a_lone_json_argument_is_the_config(tmp_path, song_corpus):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"data": str(song_corpus), "output_dir": str(tmp_path / "o"), "preset": "tiny", "max_steps": 7}))
    model_args, data_args, args = parse_training_args([str(config)])
    assert (model_args.preset, data_args.data, args.max_steps) == ("tiny", str(song_corpus), 7)
    with pytest.raises(ValueError, match="--output_dir is required"):
        parse_training_args(["--data", str(song_corpus)])


def test_default_model_config_is_the_bundled_models_recipe_without_machine_paths():
    from musenet_hf import DEFAULT_MODEL_DIR

    config = json.loads(DEFAULT_CONFIG.read_text())
    trained = json.loads((DEFAULT_MODEL_DIR / "training_record.json").read_text())["training_args"]
    assert {k: v for k, v in config.items() if k not in MACHINE_FIELDS and k in trained} == {
        k: v for k, v in trained.items() if k not in MACHINE_FIELDS}
    assert config["save_dtype"] == "bfloat16"  # the bundled weights ship cast to bfloat16
    for name in MACHINE_FIELDS:
        assert not Path(config[name]).is_absolute() and not config[name].startswith("/tmp")


def test_default_model_config_validates_and_trains_a_step(tmp_path, song_corpus, private_checkpoint_key):
    """The committed file, with only the corpus, run folder and model size shrunk, through ``musenet-hf train``."""
    from safetensors import safe_open

    from musenet_hf.cli import main

    config = json.loads(DEFAULT_CONFIG.read_text())
    shrunk = {"data": str(song_corpus), "output_dir": str(tmp_path / "run"), "preset": "tiny", "context_length": 128,
              "per_device_batch_size": 4, "max_steps": 1, "max_eval_windows": 8, "report_to": "none"}
    path = tmp_path / "default_model.json"
    path.write_text(json.dumps({**config, **shrunk}))
    model_args, data_args, args = parse_training_args([str(path)])
    assert flat_config(model_args, data_args, args) == {**config, **shrunk}  # every key is an option, none ignored

    assert main(["train", str(path)]) == 0
    record = json.loads((tmp_path / "run" / "training_record.json").read_text())
    assert record["steps"] == 1 and record["training_args"]["augment"] is True
    assert record["metrics"]["bits_per_note"] > 0
    with safe_open(tmp_path / "run" / "model.safetensors", "pt") as weights:
        assert weights.get_tensor(next(iter(weights.keys()))).dtype.is_floating_point
        assert str(weights.get_tensor(next(iter(weights.keys()))).dtype) == "torch.bfloat16"
