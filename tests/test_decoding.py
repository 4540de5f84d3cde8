"""The lean decoding loop (musenet_hf/core/decoding.py) computes what generate() computes: the same ids under
greedy decoding (padded batches, input embeddings, logits processors, an end id, the whole pipeline with its
guards and sliding window), the same sampling distribution, and it steps aside for what it does not handle."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, pipeline
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from musenet_hf.core.decoding import _Blocks, fast_bf16, lean_generate, lean_settings, resolve_kv_cache_dtype
from musenet_hf.core.logits_processors import EventMaskLogitsProcessor
from musenet_hf.core.quantization import quantize_int8
from musenet_hf.core.sampling import sample_next, sampling_candidates

GREEDY = {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
EOS, PAD = 2, 0


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=97, n_positions=96, n_embd=48, n_layer=3, n_head=4, bos_token_id=1,
                        eos_token_id=EOS, pad_token_id=PAD)
    return GPT2LMHeadModel(config).eval()


def left_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    return ids, mask


def generate_ids(model, ids, mask, processors, new, **kwargs):
    return model.generate(input_ids=ids, attention_mask=mask, logits_processor=processors, max_new_tokens=new,
                          eos_token_id=EOS, pad_token_id=PAD, do_sample=False, **kwargs)


@pytest.mark.parametrize("rows", [[[1, 5, 9, 13]], [[1, 5, 9, 13, 17, 21, 4], [1, 8, 3], [1, 30, 31, 32, 33]]])
def test_greedy_ids_match_generate_on_padded_batches(model, rows):
    ids, mask = left_padded(rows)
    forbid = torch.zeros(97, dtype=torch.bool)
    forbid[[EOS, 40, 41]] = True  # no row may end, and a few ids are masked: 40 new ids each
    processors = [EventMaskLogitsProcessor(forbid)]
    expected = generate_ids(model, ids, mask, processors, 40)
    lean = lean_generate(model, ids, mask, processors, 40, EOS, PAD, GREEDY)
    assert lean.shape == expected.shape == (len(rows), ids.shape[1] + 40)
    assert torch.equal(lean, expected)


def test_a_row_that_ends_is_padded_and_all_ended_stops(model):
    ids, mask = left_padded([[1, 5, 9], [1, 6]])
    expected = generate_ids(model, ids, mask, [], 60)
    lean = lean_generate(model, ids, mask, [], 60, EOS, PAD, GREEDY)
    assert torch.equal(lean, expected)


def test_prompt_embeddings_replace_the_ids_embeddings(model):
    ids, mask = left_padded([[1, 5, 9, 13], [1, 7]])
    torch.manual_seed(2)
    embeds = torch.randn(*ids.shape, 48)  # a prompt no ids spell
    forbid = torch.zeros(97, dtype=torch.bool)
    forbid[EOS] = True
    processors = [EventMaskLogitsProcessor(forbid)]
    expected = generate_ids(model, ids, mask, processors, 20, inputs_embeds=embeds)[:, -20:]
    lean = lean_generate(model, ids, mask, processors, 20, EOS, PAD, GREEDY, inputs_embeds=embeds)
    assert torch.equal(lean[:, -20:], expected)
    plain = lean_generate(model, ids, mask, processors, 20, EOS, PAD, GREEDY)
    assert not torch.equal(plain, lean)


def test_int8_model_decodes_with_the_loop(model):
    ids, mask = left_padded([[1, 5, 9, 13]])
    int8 = quantize_int8(model)
    assert lean_settings(int8, {}) is not None
    assert torch.equal(lean_generate(int8, ids, mask, [], 30, EOS, PAD, GREEDY), generate_ids(int8, ids, mask, [], 30))


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 64, 0.95), (0.7, 0, 0.9), (1.3, 5, 1.0), (1.0, 0, 1.0), (1.0, 10, 0.0)])
def test_sampling_candidates_are_the_distribution_generate_samples_from(temperature, top_k, top_p):
    torch.manual_seed(1)
    scores = torch.randn(3, 500) * 3
    scores[0, 100:] = float("-inf")  # a row with fewer allowed ids than top_k
    warped = scores
    for warper in (TemperatureLogitsWarper(temperature) if temperature != 1.0 else None,
                   TopKLogitsWarper(top_k) if top_k else None, TopPLogitsWarper(top_p) if top_p < 1.0 else None):
        if warper is not None:
            warped = warper(None, warped)
    expected = warped.softmax(dim=-1)
    probs, index = sampling_candidates(scores, temperature, top_k, top_p)
    ours = torch.zeros_like(expected).scatter_(1, index, probs)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_sample_next_draws_by_the_probabilities():
    scores = torch.log(torch.tensor([[0.7, 0.2, 0.1, 0.0]])).repeat(20_000, 1)
    torch.manual_seed(0)
    draws = sample_next(scores, temperature=1.0, top_k=3, top_p=1.0)
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.015, rtol=0)
    assert torch.equal(sample_next(scores[:2], do_sample=False), torch.tensor([0, 0]))


def test_settings_come_from_the_generation_config_under_the_call(model):
    model.generation_config.update(do_sample=True, temperature=0.8, top_k=12, top_p=0.9)
    try:
        assert lean_settings(model, {}) == {"do_sample": True, "temperature": 0.8, "top_k": 12, "top_p": 0.9}
        assert lean_settings(model, {"top_k": 3})["top_k"] == 3
        # anything else the loop does not do: generate() takes the call
        assert lean_settings(model, {"repetition_penalty": 1.2}) is None
        model.generation_config.update(no_repeat_ngram_size=3)
        assert lean_settings(model, {}) is None
    finally:
        model.generation_config.update(do_sample=False, temperature=None, top_k=None, top_p=None, no_repeat_ngram_size=None)
    model.train()
    try:
        assert lean_settings(model, {}) is None
    finally:
        model.eval()


def test_the_pipeline_gives_generate_s_ids_with_guards_and_slides(tiny_model_dir):
    pipe = pipeline("midi-generation", model=str(tiny_model_dir))
    call = dict(style="pop", instruments=["piano", "bass", "drums"], seconds=16.0, num_return_sequences=2, seed=0,
                do_sample=False, quantize=False, kv_cache_dtype="float32")  # generate()'s cache is float32
    lean = pipe(**call)
    plain = pipe(**call, lean_decoding=False)
    assert [r["ids"] for r in lean] == [r["ids"] for r in plain]
    assert len(lean[0]["ids"]) > 3 * 64  # the 64-position window slid several times
    blend = dict(call, style={"pop": 0.5, "jazz": 0.5})
    assert [r["ids"] for r in pipe(**blend)] == [r["ids"] for r in pipe(**blend, lean_decoding=False)]


def test_a_bf16_cache_stores_bf16_keys_and_gives_close_logits(model):
    ids, mask = left_padded([[1, 5, 9, 13, 17, 21], [1, 8, 3]])
    valid = mask.bool()
    causal = torch.ones((6, 6), dtype=torch.bool).tril()
    attend = (causal & (valid[:, None, :] | torch.eye(6, dtype=torch.bool)))[:, None]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = {}
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            blocks = _Blocks(model, 2, 8, dtype)
            assert all(c.dtype == dtype for c in blocks.cache)
            logits[dtype] = blocks.logits(blocks.wte(ids) + blocks.wpe(positions), 0, attend)
            assert logits[dtype].dtype == torch.float32  # attention's output returns to the model's dtype
    assert not torch.equal(logits[torch.float32], logits[torch.bfloat16])  # the cache really was bf16
    assert torch.allclose(logits[torch.float32], logits[torch.bfloat16], atol=0.05)


def test_lean_generate_decodes_padded_batches_with_a_bf16_cache(model):
    ids, mask = left_padded([[1, 5, 9, 13, 17, 21, 4], [1, 8, 3]])
    forbid = torch.zeros(97, dtype=torch.bool)
    forbid[EOS] = True
    out = lean_generate(model, ids, mask, [EventMaskLogitsProcessor(forbid)], 30, EOS, PAD, GREEDY,
                        kv_cache_dtype=torch.bfloat16)
    assert out.shape == (2, ids.shape[1] + 30)
    assert torch.equal(out[:, : ids.shape[1]], ids) and not (out[:, ids.shape[1]:] == EOS).any()


def test_kv_cache_dtype_names():
    assert resolve_kv_cache_dtype("float32") is torch.float32
    assert resolve_kv_cache_dtype("bfloat16") is torch.bfloat16
    assert resolve_kv_cache_dtype("auto") is (torch.bfloat16 if fast_bf16() else torch.float32)
    with pytest.raises(ValueError, match="kv_cache_dtype must be one of"):
        resolve_kv_cache_dtype("float16")


def test_the_pipeline_decodes_with_the_kv_cache_dtype_asked_for(tiny_model_dir, monkeypatch):
    pipe = pipeline("midi-generation", model=str(tiny_model_dir))
    call = dict(style="pop", instruments=["piano", "bass", "drums"], seconds=8.0, num_return_sequences=2, seed=0, quantize=False)
    caches = []
    original = _Blocks.__init__

    def recording(self, *args, **kwargs):  # the real constructor, noting each chunk's cache dtype
        original(self, *args, **kwargs)
        caches.append(self.cache[0].dtype)

    monkeypatch.setattr(_Blocks, "__init__", recording)
    ids = {}
    for name in ("float32", "bfloat16", "auto"):
        caches.clear()
        ids[name] = [r["ids"] for r in pipe(**call, kv_cache_dtype=name)]
        assert len(caches) > 1  # the window slid: every chunk's cache follows the call's choice
        assert set(caches) == {resolve_kv_cache_dtype(name)}
    assert ids["auto"] == ids["bfloat16" if fast_bf16() else "float32"]
    assert all(len(row) > 64 for row in ids["bfloat16"])
    with pytest.raises(ValueError, match="kv_cache_dtype"):
        pipe(**call, kv_cache_dtype="float16")
