"""The run folder's published model: weights cast to a smaller dtype still load; best-weights folders are cleaned."""

from __future__ import annotations

import json

import torch

from musenet_hf.training.record import best_dir, cast_saved_weights, prepare_output_dir, remove_best_dirs


def test_cast_saved_weights_halves_the_checkpoint_and_still_loads(tmp_path, tokenizer):
    from transformers import AutoModelForCausalLM

    from musenet_hf.modeling.presets import build_model

    model = build_model("tiny", tokenizer)
    model.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").stat().st_size
    cast_saved_weights(tmp_path, "bfloat16")
    assert (tmp_path / "model.safetensors").stat().st_size < 0.6 * before
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "bfloat16"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype="auto")
    assert loaded.dtype == torch.bfloat16
    ref = model.state_dict()["transformer.wte.weight"].to(torch.bfloat16)
    assert torch.equal(loaded.state_dict()["transformer.wte.weight"], ref)


def test_best_dirs_are_removed_except_the_kept_step_and_git_ignores_them(tmp_path):
    import subprocess

    prepare_output_dir(tmp_path)
    for step in (4, 8, 12):
        best_dir(tmp_path, step).mkdir()
        (best_dir(tmp_path, step) / "model.safetensors").write_bytes(b"w")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", best_dir(tmp_path, 8).name + "/model.safetensors",
                              "checkpoints/step-00000004/optimizer.bin"], capture_output=True, text=True)
    assert len(ignored.stdout.split()) == 2  # neither best weights nor resumable state get committed with the model
    remove_best_dirs(tmp_path, keep=8)
    assert [p.name for p in tmp_path.glob("best-step-*")] == [best_dir(tmp_path, 8).name]
    remove_best_dirs(tmp_path, keep=None)
    assert not list(tmp_path.glob("best-step-*"))
