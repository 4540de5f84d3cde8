"""Loading LoRA adapters: the pipeline finds the base, the base is checked, several adapters share one base."""

from __future__ import annotations

import json
import shutil

import mido
import pytest
import torch
from adapter_fixtures import save_tiny_adapter
from pipeline_fixtures import save_tiny_checkpoint
from transformers import AutoModelForCausalLM, pipeline

import musenet_hf
from musenet_hf import MuseNetTokenizer
from musenet_hf.cli import main as cli_main
from musenet_hf.modeling.adapters import (
    ADAPTER_WEIGHTS_FILE,
    BASE_RECORD_FILE,
    AdapterBaseError,
    adapter_pipelines,
    is_adapter,
    load_adapter_model,
    load_adapters,
    read_adapter_config,
    resolve_base,
)

peft = pytest.importorskip("peft")
IDS = [1, 5, 6, 7, 8, 9, 10]  # any ids of the base vocabulary (the style id is put in front)


def logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def manual_peft(base, adapter, tokenizer):
    """PEFT's documented way, by hand: base, resize to the adapter's tokenizer, PeftModel.from_pretrained."""
    model = AutoModelForCausalLM.from_pretrained(base)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return peft.PeftModel.from_pretrained(model, str(adapter)).eval()


def test_adapter_folder_holds_only_the_adapter(tiny_adapter_dir, tiny_base_dir):
    from safetensors.torch import load_file

    names = {p.name for p in tiny_adapter_dir.iterdir()}
    assert {"adapter_config.json", ADAPTER_WEIGHTS_FILE, BASE_RECORD_FILE, "tokenizer.json"} <= names
    assert "model.safetensors" not in names and "config.json" not in names
    weights = load_file(tiny_adapter_dir / ADAPTER_WEIGHTS_FILE)
    assert all("lora_" in k or "trainable_tokens_delta" in k for k in weights)  # no embedding matrix, no base weight
    (delta,) = [v for k, v in weights.items() if "trainable_tokens_delta" in k]
    assert delta.shape == (1, 32)  # one new style row of n_embd
    config = read_adapter_config(tiny_adapter_dir)
    assert config["base_model_name_or_path"] == str(tiny_base_dir.resolve())
    assert config["trainable_token_indices"] == [len(MuseNetTokenizer.from_pretrained(tiny_base_dir))]
    assert is_adapter(tiny_adapter_dir) and not is_adapter(tiny_base_dir)


def test_pipeline_finds_the_base_and_applies_the_adapter(tiny_adapter_dir, tiny_base_dir):
    gen = pipeline("midi-generation", model=str(tiny_adapter_dir))
    tok = MuseNetTokenizer.from_pretrained(tiny_adapter_dir)
    assert "lofi" in gen.tokenizer.styles and gen.model.config.vocab_size == len(tok)
    assert type(gen.model).__name__ == "GPT2LMHeadModel"  # merged: plain weights, the base's speed
    ids = [tok.musenet_vocab.style_id("lofi"), *IDS]
    expected = logits(manual_peft(tiny_base_dir, tiny_adapter_dir, tok), ids)
    torch.testing.assert_close(logits(gen.model, ids), expected, atol=1e-5, rtol=1e-5)
    base = AutoModelForCausalLM.from_pretrained(tiny_base_dir).eval()
    assert (logits(base, IDS) - logits(gen.model, IDS)[:, : base.config.vocab_size]).abs().max() > 1e-3  # it did change
    out = gen(style="lofi", seconds=2, seed=0)[0]
    assert out["ids"][1] == tok.musenet_vocab.style_id("lofi") and out["style"] == "lofi"
    assert isinstance(out["midi"], mido.MidiFile)


def test_unmerged_and_merged_loads_agree(tiny_adapter_dir):
    unmerged, tok = load_adapter_model(tiny_adapter_dir)
    merged, _ = load_adapter_model(tiny_adapter_dir, merge=True)
    assert isinstance(unmerged, peft.PeftModel) and not isinstance(merged, peft.PeftModel)
    ids = [tok.musenet_vocab.style_id("lofi"), *IDS]
    torch.testing.assert_close(logits(merged, ids), logits(unmerged, ids), atol=1e-5, rtol=1e-5)


def test_mismatched_base_gives_one_clear_error(tiny_adapter_dir, tmp_path, capsys):
    other = save_tiny_checkpoint(tmp_path / "other", seed=1)  # same shape and vocabulary, other weights
    with pytest.raises(AdapterBaseError, match=r"was trained on base .* not the base given .*weights_sha256"):
        load_adapter_model(tiny_adapter_dir, base=other)
    rc = cli_main(["generate", "--model", str(tiny_adapter_dir), "--base", str(other), "--seconds", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("error:") == 1 and "Traceback" not in err and "was trained on base" in err
    assert not list(tmp_path.glob("*.mid"))


def test_pipeline_refuses_a_base_replaced_since_training(tiny_base_dir, tmp_path):
    base = shutil.copytree(tiny_base_dir, tmp_path / "base")
    adapter = save_tiny_adapter(base, tmp_path / "adapter", ["lofi"])
    save_tiny_checkpoint(base, seed=2)  # someone retrained the base in place
    with pytest.raises(AdapterBaseError, match="was trained on base"):
        pipeline("midi-generation", model=str(adapter))


def test_adapter_trained_on_the_bundled_model_finds_it_after_the_copy_is_gone(tmp_path):
    copy = shutil.copytree(musenet_hf.DEFAULT_MODEL_DIR, tmp_path / "bundled-copy")
    adapter = save_tiny_adapter(copy, tmp_path / "adapter", ["lofi"], rank=2)
    shutil.rmtree(copy)
    assert resolve_base(adapter) == str(musenet_hf.DEFAULT_MODEL_DIR)


def test_a_tokenizer_that_does_not_extend_the_base_is_refused(tiny_adapter_dir, tiny_base_dir, tmp_path):
    adapter = shutil.copytree(tiny_adapter_dir, tmp_path / "adapter")
    # the tokenizer of a base with one more style: the adapter's new row now sits at another id
    tok = MuseNetTokenizer.from_pretrained(tiny_base_dir)
    tok.add_styles(["grunge", "lofi"])
    tok.save_pretrained(adapter)
    with pytest.raises(AdapterBaseError, match="no trained rows"):
        load_adapter_model(adapter)


def test_several_adapters_share_one_copy_of_the_base(tiny_base_dir, tiny_adapter_dir, tmp_path):
    second = save_tiny_adapter(tiny_base_dir, tmp_path / "grime", ["grime"], seed=1)
    pipes = adapter_pipelines({"lofi": tiny_adapter_dir, "grime": second})
    lofi, grime = pipes["lofi"], pipes["grime"]
    assert lofi.model is grime.model
    assert "lofi" in lofi.tokenizer.styles and "grime" in grime.tokenizer.styles and "grime" not in lofi.tokenizer.styles
    # each pipeline generates exactly what that adapter alone generates (both with float weights: an unmerged
    # adapter is never int8-quantized by default, the merged one loaded alone would be)
    for name, adapter in (("grime", second), ("lofi", tiny_adapter_dir)):
        alone = pipeline("midi-generation", model=str(adapter))
        # the shared base is a PeftModel, which generate() decodes; the lone merged adapter would take the lean loop
        want = alone(style=name, seconds=2, seed=3, quantize=False, lean_decoding=False)[0]["ids"]
        assert pipes[name](style=name, seconds=2, seed=3, quantize=False)[0]["ids"] == want
    model, tokenizers = load_adapters({"a": tiny_adapter_dir, "b": second})
    base_weight = model.get_base_model().transformer.h[0].attn.c_attn.base_layer.weight
    assert sum(1 for p in model.parameters() if p.data_ptr() == base_weight.data_ptr()) == 1  # one copy, not one per adapter
    assert set(model.peft_config) == {"a", "b"} and set(tokenizers) == {"a", "b"}


def test_adapters_of_different_bases_do_not_load_together(tiny_adapter_dir, tmp_path):
    other_base = save_tiny_checkpoint(tmp_path / "other", seed=1)
    other = save_tiny_adapter(other_base, tmp_path / "other-adapter", ["grime"])
    with pytest.raises(AdapterBaseError, match="was trained on base"):
        load_adapters({"lofi": tiny_adapter_dir, "grime": other})


def test_generate_command_takes_an_adapter(tiny_adapter_dir, tmp_path, capsys):
    rc = cli_main(["generate", "--model", str(tiny_adapter_dir), "--style", "lofi", "--seconds", "1", "--seed", "0",
                   "--out", str(tmp_path)])
    assert rc == 0
    assert abs(mido.MidiFile(tmp_path / "musenet-1.mid").length - 1.0) < 0.02


def test_full_checkpoints_load_as_before(tiny_base_dir):
    from musenet_hf.modeling.adapters import MuseNetModelForCausalLM

    model = MuseNetModelForCausalLM.from_pretrained(tiny_base_dir)
    reference = AutoModelForCausalLM.from_pretrained(tiny_base_dir)
    assert type(model) is type(reference)
    torch.testing.assert_close(logits(model.eval(), IDS), logits(reference.eval(), IDS))
    config = json.loads((tiny_base_dir / "config.json").read_text())
    assert config["vocab_size"] == model.config.vocab_size
