"""int8 weights for CPU decoding: the Conv1D -> Linear conversion is exact, quantization leaves the original
model alone and stays close to it, and the pipeline decodes with the int8 copy by default on CPU and with
the float weights when asked."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, pipeline
from transformers.pytorch_utils import Conv1D

from musenet_hf.core.quantization import conv1d_to_linear, int8_available, quantize_int8

needs_int8 = pytest.mark.skipif(not int8_available(), reason="this torch build has no quantized CPU engine")
QLinear = torch.ao.nn.quantized.dynamic.Linear


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


@pytest.fixture(scope="module")
def ids():
    torch.manual_seed(0)
    return torch.randint(100, 3000, (2, 40))


def test_conv1d_to_linear_keeps_the_outputs(model, ids):
    import copy

    converted = conv1d_to_linear(copy.deepcopy(model))
    assert not any(isinstance(m, Conv1D) for m in converted.modules())
    assert any(isinstance(m, Conv1D) for m in model.modules())  # the original is untouched
    with torch.no_grad():
        torch.testing.assert_close(converted(ids).logits, model(ids).logits, rtol=1e-5, atol=1e-5)


@needs_int8
def test_quantize_int8_copies_and_keeps_the_head_float(model, ids):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_int8(model)
    blocks = [m for m in q.transformer.h.modules() if isinstance(m, QLinear)]
    assert len(blocks) == 4 * model.config.n_layer  # c_attn, attn c_proj, c_fc, mlp c_proj
    assert type(q.get_output_embeddings()) is torch.nn.Linear
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        ref, out = model(ids).logits, q(ids).logits
    assert not torch.equal(ref, out)  # the weights really changed
    # int8 rounding moves logits by a small fraction of their spread
    assert (out - ref).abs().mean() < 0.05 * ref.std()


@needs_int8
def test_quantize_int8_with_head(model):
    q = quantize_int8(model, include_head=True, per_channel=True)
    assert isinstance(q.get_output_embeddings(), QLinear)
    assert type(model.get_output_embeddings()) is torch.nn.Linear


@needs_int8
def test_pipeline_decodes_int8_by_default_on_cpu_and_float_on_request(tiny_model_dir):
    gen = pipeline("midi-generation", model=str(tiny_model_dir))
    call = dict(style="pop", instruments=["piano"], seconds=2.0, seed=0)
    plain = gen(**call, quantize=False)[0]["ids"]
    assert gen._int8_model is None  # quantize=False never builds the copy
    int8 = gen(**call)[0]["ids"]
    assert gen._int8_model is not None and gen._int8_model is not gen.model
    assert gen(**call)[0]["ids"] == int8  # same seed, same music with the int8 copy
    assert gen(**call, quantize=False)[0]["ids"] == plain  # the float model is unchanged by quantizing
    fp32_pipe = pipeline("midi-generation", model=str(tiny_model_dir), quantize=False)
    assert fp32_pipe(**call)[0]["ids"] == plain
    assert fp32_pipe._int8_model is None


@needs_int8
def test_trimmed_head_of_an_int8_copy_is_int8_per_row(model):
    from musenet_hf.core.logits_processors import AllowedVocabHead, allowed_vocab_head
    from musenet_hf.core.quantization import int8_rows_linear

    int8 = quantize_int8(model)
    full = int8.get_output_embeddings()
    allowed = torch.zeros(full.weight.shape[0], dtype=torch.bool)
    allowed[100:900] = True
    hidden = torch.randn(2, 3, model.config.n_embd)
    with allowed_vocab_head(int8, ~allowed), torch.no_grad():
        head = int8.get_output_embeddings()
        assert isinstance(head, AllowedVocabHead) and isinstance(head.rows, QLinear)
        trimmed = head(hidden)
    # one scale per row: a kept row's logit is the one the whole head quantized per row gives
    with torch.no_grad():
        whole = int8_rows_linear(full.weight.detach())(hidden)
        exact = full(hidden)
    torch.testing.assert_close(trimmed[..., allowed], whole[..., allowed])
    assert torch.isinf(trimmed[..., ~allowed]).all()
    assert (trimmed[..., allowed] - exact[..., allowed]).abs().max() < 0.05 * exact.abs().max()
    with allowed_vocab_head(model, ~allowed):  # a float model keeps a float trimmed head
        assert model.get_output_embeddings().rows is None
