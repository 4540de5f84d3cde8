"""musenet_hf.hub.adapter: pushing a LoRA adapter to the local Hub of ``hub_server.py`` and loading it back by
repo id in a fresh process (the base found on the Hub, the new style usable)."""

from __future__ import annotations

import json

import pytest
from adapter_fixtures import save_tiny_adapter
from hub_fixtures import RECORD, REPO_ROOT, SAMPLE_SECONDS, TOKEN, USER, child_env, make_checkpoint, run_child
from huggingface_hub import ModelCard

from musenet_hf.hub.adapter import stage_adapter
from musenet_hf.hub.errors import CheckpointIncompleteError

pytest.importorskip("peft")
BASE_REPO, OTHER_REPO, ADAPTER_REPO = f"{USER}/tiny-base", f"{USER}/tiny-other", f"{USER}/tiny-lofi"
ADAPTER_RECORD = {
    **RECORD, "styles": [*RECORD["styles"], "lofi"], "new_styles": ["lofi"],
    "corpus": {**RECORD["corpus"], "sources": [{**RECORD["corpus"]["sources"][0], "name": "LofiLoops", "styles": {"lofi": 12}}]},
    "initial_metrics": {"eval_loss": 3.5, "perplexity": 33.1, "bits_per_note": 15.25},
    "lora": {"rank": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["c_attn", "c_proj", "c_fc"],
             "trainable_parameters": 4128, "total_parameters": 409888, "new_styles": ["lofi"], "merged": False},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub-adapter")
    base, other = make_checkpoint(root / "base"), make_checkpoint(root / "other", seed=1)
    adapter = save_tiny_adapter(base, root / "adapter", ["lofi"])
    (adapter / "training_record.json").write_text(json.dumps(ADAPTER_RECORD))
    return {"root": root, "base": base, "other": other, "adapter": adapter}


def test_an_adapter_of_a_local_base_needs_the_base_repo(folders, tmp_path):
    with pytest.raises(CheckpointIncompleteError, match="--base-repo-id"):
        stage_adapter(folders["adapter"], tmp_path / "staged", ADAPTER_REPO)


@pytest.fixture(scope="module")
def pushed(hub_server, folders):
    root = folders["root"]
    code = f"""
        import json, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from push_to_hub import main
        common = ["--sample-seconds", "{SAMPLE_SECONDS}"]
        codes = [main([{str(folders['base'])!r}, "--repo-id", {BASE_REPO!r}, *common]),
                 main([{str(folders['other'])!r}, "--repo-id", {OTHER_REPO!r}, *common]),
                 main([{str(folders['adapter'])!r}, "--repo-id", {ADAPTER_REPO!r}, "--base-repo-id", {OTHER_REPO!r}, *common]),
                 main([{str(folders['adapter'])!r}, "--repo-id", {ADAPTER_REPO!r}, "--base-repo-id", {BASE_REPO!r}, *common])]
        print(json.dumps(codes))
    """
    codes = run_child(code, child_env(hub_server, root / "home", TOKEN), root)
    return {"codes": codes, "files": hub_server.state.repos[ADAPTER_REPO].resolve("main").files}


def test_push_checks_the_base_repo_and_uploads_the_adapter(pushed):
    assert pushed["codes"] == [0, 0, 1, 0]  # the adapter was refused for the other base's repo
    files = pushed["files"]
    assert {"adapter_config.json", "adapter_model.safetensors", "musenet_base.json", "tokenizer.json", "sample.mid",
            "README.md", "training_record.json"} <= set(files)
    assert "model.safetensors" not in files and "config.json" not in files
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == BASE_REPO
    assert json.loads(files["musenet_base.json"])["name_or_path"] == BASE_REPO
    assert len(files["sample.mid"]) > 0


def test_adapter_card_names_base_data_styles_metrics_and_sample(pushed, tmp_path):
    (tmp_path / "README.md").write_bytes(pushed["files"]["README.md"])
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model == BASE_REPO and card.data.library_name == "peft" and "lora" in card.data.tags
    assert card.data.datasets == ["LofiLoops"]
    text = card.text
    assert "**lofi**" in text and f"[{BASE_REPO}]" in text and "LofiLoops" in text
    assert "| bits per note | 15.250 | 12.340 |" in text  # before (the base) and after
    assert "4,128 trainable parameters" in text and "style lofi" in text  # the sample is in the new style


def test_a_fresh_user_loads_the_adapter_by_repo_id(hub_server, pushed, tmp_path):
    code = f"""
        import json
        from transformers import pipeline
        import musenet_hf
        gen = pipeline("midi-generation", model={ADAPTER_REPO!r})
        piece = gen(style="lofi", seconds=1, seed=0)[0]
        styled = piece["ids"][1] == gen.tokenizer.musenet_vocab.style_id("lofi")
        print(json.dumps([gen.model.config.vocab_size, len(gen.tokenizer), styled]))
    """
    env = child_env(hub_server, tmp_path / "home")
    vocab, tokens, styled = run_child(code, env, tmp_path)
    assert vocab == tokens and styled
