"""musenet_hf.hub.remote_config: config.json and tokenizer_config.json as uploaded."""

from __future__ import annotations

from musenet_hf.core.configuration_musenet_remote import REMOTE_PIPELINES_KEY
from musenet_hf.hub.remote_config import hub_config, hub_tokenizer_config


def test_hub_config_keeps_custom_pipelines_out_of_config_json():
    saved_by_a_pipeline = {"model_type": "gpt2", "custom_pipelines": {"midi-generation": {"impl": "old.Old"}},
                           "auto_map": {"AutoModelForCausalLM": "x.Y"}}
    config = hub_config(saved_by_a_pipeline)
    assert "custom_pipelines" not in config and config["model_type"] == "gpt2"
    spec = config[REMOTE_PIPELINES_KEY]["midi-generation"]
    assert spec["impl"] == "pipeline_midi_generation.MidiGenerationPipeline" and spec["pt"] == ["AutoModelForCausalLM"]
    assert "default" not in spec  # the registered default is a local path
    remote_config = "configuration_musenet_remote.MuseNetRemoteConfig"
    assert config["auto_map"] == {"AutoModelForCausalLM": "x.Y", "AutoConfig": remote_config}
    assert "custom_pipelines" in saved_by_a_pipeline  # the input is not modified


def test_hub_tokenizer_config_names_the_shipped_tokenizer():
    config = hub_tokenizer_config({"tokenizer_class": "MuseNetTokenizer", "auto_map": {"Other": "x.Y"}})
    assert config["auto_map"] == {"Other": "x.Y", "AutoTokenizer": [None, "tokenization_musenet.MuseNetTokenizer"]}
    assert config["tokenizer_class"] == "MuseNetTokenizer"
