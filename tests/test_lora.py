"""``train.py --lora``: only the adapter and the new style's rows train, the base is untouched, merge and
resume are exact, and the options are checked up front."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_fixtures import tiny_args, train_cli, write_songs

import train
from musenet_hf import MuseNetTokenizer
from musenet_hf.modeling.adapters import ADAPTER_WEIGHTS_FILE, load_adapter_model
from musenet_hf.utils import sha256_file

peft = pytest.importorskip("peft")
RUN_TIMEOUT = 300  # seconds for a child training run (~15 s here, mostly imports)
LORA_FLAGS = {"lora": True, "lora_dropout": 0.0, "learning_rate": 1e-2, "max_steps": 16, "eval_steps": 8}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny model trained for 24 steps on arpeggios from C3 up (a random one predicts almost uniformly, and a
    rank-limited update of it learns too slowly to test)."""
    from training_fixtures import build_song_corpus

    root = tmp_path_factory.mktemp("base")
    assert train.main(tiny_args(build_song_corpus(root), root / "model", max_steps=24, save_steps=0)) == 0
    return root / "model"


@pytest.fixture(scope="module")
def corpus(base, tmp_path_factory) -> Path:
    """Patterned songs labelled with the new style ``lofi``, built with the base's tokenizer (30 % validation)."""
    from musenet_hf.data.corpus import build_corpus

    root = tmp_path_factory.mktemp("lofi")
    write_songs(root / "songs", 16, first_pitch=64)  # the same arpeggios, higher
    build_corpus([root / "songs"], root / "corpus", MuseNetTokenizer.from_pretrained(base),
                 styles={str(root / "songs"): "lofi"}, validation_fraction=0.3, test_fraction=0.0)
    return root / "corpus"


def lora_args(corpus: Path, out: Path, base: Path, **overrides) -> list[str]:
    argv = tiny_args(corpus, out, model_name_or_path=base, **{**LORA_FLAGS, **overrides})
    i = argv.index("--preset")
    return argv[:i] + argv[i + 2:]  # a fine-tune takes the checkpoint's shape


@pytest.fixture(scope="module")
def adapter_run(base, corpus, tmp_path_factory) -> dict:
    before = sha256_file(base / "model.safetensors")
    out = tmp_path_factory.mktemp("adapter") / "run"
    assert train.main(lora_args(corpus, out, base)) == 0
    return {"out": out, "base_sha_before": before}


def test_lora_run_lowers_the_loss_and_leaves_the_base_untouched(adapter_run, base):
    out = adapter_run["out"]
    assert sha256_file(base / "model.safetensors") == adapter_run["base_sha_before"]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [line["loss"] for line in lines if "loss" in line]
    assert len(losses) == 16 and sum(losses[-4:]) < sum(losses[:4])
    record = json.loads((out / "training_record.json").read_text())
    # the same validation windows before the first step (the base) and after the last
    assert record["metrics"]["eval_loss"] < record["initial_metrics"]["eval_loss"] - 0.05
    assert record["new_styles"] == ["lofi"] and record["lora"]["new_styles"] == ["lofi"]
    assert record["initial_metrics"]["bits_per_note"] > record["metrics"]["bits_per_note"]  # the base before, the adapter after
    assert record["lora"]["trainable_parameters"] < 0.05 * record["lora"]["total_parameters"]
    assert not (out / "model.safetensors").exists() and (out / ADAPTER_WEIGHTS_FILE).is_file()


def test_only_adapter_weights_and_the_new_row_change(adapter_run, base):
    from transformers import AutoModelForCausalLM

    merged, tok = load_adapter_model(adapter_run["out"], merge=True)
    original = AutoModelForCausalLM.from_pretrained(base).state_dict()
    n_base = original["transformer.wte.weight"].shape[0]
    assert len(tok) == n_base + 1 and tok.musenet_vocab.style_id("lofi") == n_base
    changed = set()
    for name, value in merged.state_dict().items():
        if name in ("transformer.wte.weight", "lm_head.weight"):
            assert torch.equal(value[:n_base], original[name]), name  # every old row frozen
            continue
        if not torch.equal(value, original[name]):
            changed.add(name)
    # LoRA updates exactly the weight matrices of c_attn, c_proj (attention and MLP) and c_fc, never a bias
    modules = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    expected = {f"transformer.h.{i}.{m}.weight" for i in range(merged.config.n_layer) for m in modules}
    assert changed == expected
    adapter = load_file(adapter_run["out"] / ADAPTER_WEIGHTS_FILE)
    (row,) = [v for k, v in adapter.items() if "trainable_tokens_delta" in k]
    torch.testing.assert_close(merged.state_dict()["transformer.wte.weight"][n_base:], row)


def test_merge_writes_a_plain_checkpoint_equal_to_the_adapter(adapter_run, base, corpus, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    assert train.main(lora_args(corpus, out, base, merge=True)) == 0
    assert (out / "model.safetensors").is_file() and not (out / ADAPTER_WEIGHTS_FILE).exists()
    plain = AutoModelForCausalLM.from_pretrained(out).eval()
    via_adapter, tok = load_adapter_model(adapter_run["out"], merge=True)
    assert plain.config.vocab_size == len(tok) == len(MuseNetTokenizer.from_pretrained(out))
    ids = torch.tensor([[tok.bos_token_id, tok.musenet_vocab.style_id("lofi"), 5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=ids).logits, via_adapter(input_ids=ids).logits, atol=1e-5, rtol=1e-5)


def test_adapter_generates_with_the_new_style(adapter_run):
    from transformers import pipeline

    gen = pipeline("midi-generation", model=str(adapter_run["out"]))
    piece = gen(style="lofi", seconds=2, seed=0)[0]
    assert piece["ids"][1] == gen.tokenizer.musenet_vocab.style_id("lofi") and piece["notes"] > 0


@pytest.mark.slow
def test_killed_lora_run_resumes_to_the_same_adapter(adapter_run, base, corpus, tmp_path):
    key_file = tmp_path / "checkpoint.key"
    reference = tmp_path / "reference"
    finish(train_cli(lora_args(corpus, reference, base), key_file))
    out = tmp_path / "run"
    proc = train_cli(lora_args(corpus, out, base), key_file)
    manifest = out / "checkpoints" / "step-00000004" / "musenet_checkpoint.json"
    deadline = time.monotonic() + RUN_TIMEOUT
    while not manifest.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    finish(proc, expect=-signal.SIGKILL)
    assert not (out / ADAPTER_WEIGHTS_FILE).exists()
    finish(train_cli(lora_args(corpus, out, base, resume_from_checkpoint="latest"), key_file))
    want, got = load_file(reference / ADAPTER_WEIGHTS_FILE), load_file(out / ADAPTER_WEIGHTS_FILE)
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    record = json.loads((out / "training_record.json").read_text())
    assert record["initial_metrics"] == json.loads((reference / "training_record.json").read_text())["initial_metrics"]


@pytest.mark.slow
def test_two_gloo_processes_train_one_adapter(base, corpus, tmp_path):
    import sys

    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    finish(train_cli(lora_args(corpus, out, base, per_device_batch_size=2, save_steps=8), tmp_path / "key", launcher=torchrun))
    record = json.loads((out / "training_record.json").read_text())
    assert record["hardware"].startswith("2 x CPU") and record["new_styles"] == ["lofi"]
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 16 and sum(losses[-4:]) < sum(losses[:4])


def finish(proc, expect: int = 0) -> str:
    output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == expect, output[-3000:]
    return output


@pytest.mark.parametrize("overrides, message", [
    ({"model_name_or_path": None}, "--lora fine-tunes a checkpoint"),
    ({"lora_rank": 0}, "--lora_rank must be >= 1"),
    ({"lora_target_modules": " , "}, "names no module"),
    ({"lora": False, "merge": True}, "--merge applies to --lora runs"),
])
def test_bad_lora_options_are_refused_before_any_work(base, corpus, tmp_path, capsys, overrides, message):
    argv = lora_args(corpus, tmp_path / "out", base, **{k: v for k, v in overrides.items() if v is not None})
    if overrides.get("model_name_or_path", 1) is None:
        i = argv.index("--model_name_or_path")
        argv = argv[:i] + argv[i + 2:]
    if overrides.get("lora") is False:
        i = argv.index("--lora")
        argv = argv[:i] + argv[i + 2:]
    assert train.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
