"""A lean decoding loop for GPT-2 checkpoints on CPU: what ``model.generate`` does for one sliding-window
chunk, with a fraction of its per-token overhead.

At batch 1 the bundled 6-layer, 384-wide model spends most of a ``generate()`` step outside its matmuls. A
profile of a 20-second band piece on one core (int8 blocks) gave 12.4 ms per token: the int8 matmuls 1.8 ms,
the output layer 0.9 ms, attention 0.9 ms, the dynamic cache's concatenations 1.1 ms, and Python around the
modules, the cache and the logits processors most of the rest. This loop computes the same thing:

- the same modules (so int8 layers, float layers or a trimmed output layer all work unchanged), called in
  the order ``GPT2LMHeadModel`` calls them, with the positions ``generate()`` derives from the mask;
- a key/value cache allocated once for the whole chunk, written in place;
- the output layer on the last position only;
- the same logits processors, called with the ids so far, then ``sampling.sample_next`` (temperature, top-k,
  top-p, as transformers orders them).

It handles what the sliding window asks of ``generate()`` (sampling or greedy decoding with those settings,
left-padded batches, a prefill from input embeddings for blended styles, an end id) and nothing else: any
other generation setting, a model that is not a ``GPT2LMHeadModel``, or a model off the CPU goes to
``generate()`` (``lean_settings`` returns None). Units: tensors are ``[batch, ...]``; positions count tokens.

This module travels to the Hub as remote code: package imports are relative only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from .sampling import sample_next

# The generate() arguments the loop honours; any other one sends the call to generate().
LEAN_GENERATE_KWARGS = ("do_sample", "temperature", "top_k", "top_p")
# generation_config fields that do not change what is drawn (the loop is given the ids and length itself).
NEUTRAL_CONFIG_FIELDS = frozenset({
    "bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "max_new_tokens", "max_length",
    "use_cache", "output_attentions", "output_hidden_states", "transformers_version", "_from_model_config",
})
# Activations computed as one fused op: GPT-2's "gelu_new" is the tanh approximation, written out in Python.
TANH_GELUS = frozenset({"gelu_new", "gelu_pytorch_tanh", "gelu_fast"})
# Dynamically quantized int8 layers of this version or later round their input quantization to 7 bits
# (``reduce_range``), as their own forward does.
QUANTIZED_REDUCE_RANGE_VERSION = 4
# Key/value cache dtypes by name (``kv_cache_dtype``). A decoding step reads every row's cached keys and values:
# at 4 rows x ~900 positions that is 66 MB in fp32 against the blocks' 10 MB of int8 weights, so past batch 1
# attention, not the weights, bounds a step. bf16 halves those bytes. On 512 validation windows of the default
# corpus, bf16 queries, keys and values with int8 weights gave 8.2656 bits per note against 8.2662 with fp32 ones
# (fp32 weights 8.2433), and 20 generated band pieces each kept all 13 statistics within the seeds' noise
# (bench/results/kv_cache_quality.md).
KV_CACHE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def fast_bf16() -> bool:
    """Whether this CPU has AMX tiles, where ``scaled_dot_product_attention`` on a bf16 cache measured faster than
    on fp32: 0.28 against 0.48 ms per call at 4 rows x 900 positions on an AMX Xeon (2 threads). Without bf16
    instructions the same call ran ~10x slower than fp32 (an AMD EPYC), and CPUs with AVX512-BF16 but no AMX were
    not measured, so they keep fp32. The probe is torch's own (``torch.cpu``); a torch without it answers False."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe()) if probe is not None else False


def resolve_kv_cache_dtype(name: str = "auto") -> torch.dtype:
    """The lean loop's key/value cache dtype for a ``kv_cache_dtype`` option.

    Args:
        name (`str`, defaults to ``"auto"``): ``"float32"``, ``"bfloat16"``, or ``"auto"``: bfloat16 where
            ``fast_bf16()``, else float32.
    """
    if name == "auto":
        return torch.bfloat16 if fast_bf16() else torch.float32
    if name not in KV_CACHE_DTYPES:
        raise ValueError(f"kv_cache_dtype must be one of {['auto', *KV_CACHE_DTYPES]}, got {name!r}")
    return KV_CACHE_DTYPES[name]


def direct_call(module: nn.Module):
    """A function computing ``module(x)`` with one call of the op the module's forward runs, or the module
    itself for any other module.

    A decoding step of the bundled model calls 38 modules per token; nn.Module's call machinery and their
    forward wrappers measured ~1.2 of 9.2 s in a profile of a 30-second band piece (2 threads). Only the exact
    types below are replaced (``type(...) is``, not ``isinstance``), and only while no hook is registered on
    the module, so a wrapper such as a LoRA layer, or a hook a benchmark or a user attached, still runs.

    Args:
        module (`nn.Module`): an ``nn.Linear``, GPT-2 ``Conv1D``, ``nn.LayerNorm`` or int8 dynamic linear layer.
    """
    if module._forward_hooks or module._forward_pre_hooks:
        return module
    kind = type(module)
    if kind is nn.Linear:
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    if kind is Conv1D:
        weight, bias, width = module.weight, module.bias, module.nf
        return lambda x: torch.addmm(bias, x.view(-1, x.shape[-1]), weight).view(*x.shape[:-1], width)
    if kind is nn.LayerNorm:
        shape, weight, bias, eps = module.normalized_shape, module.weight, module.bias, module.eps
        return lambda x: torch.layer_norm(x, shape, weight, bias, eps)  # F.layer_norm's checks skipped: plain tensors
    if kind is torch.ao.nn.quantized.dynamic.Linear and module._packed_params.dtype == torch.qint8:
        packed = module._packed_params._packed_params
        reduce_range = module.version is not None and module.version >= QUANTIZED_REDUCE_RANGE_VERSION
        # the overload's C++ callable: the Python wrapper's check for fake (tracing) script objects, which real
        # packed weights never are, took 0.18 ms per token (24 calls) in a profile of a 60-second band piece
        op = torch.ops.quantized.linear_dynamic.default
        op = getattr(op, "_op", op)
        return lambda x: op(x, packed, reduce_range)
    return module


def lean_settings(model, generate_kwargs: dict) -> dict | None:
    """The sampling settings the lean loop would use for this call, or None when it cannot honour the call.

    The settings are the model's ``generation_config`` values of ``LEAN_GENERATE_KWARGS`` with the call's on top.

    Args:
        model: the decoding model.
        generate_kwargs (`dict`): the extra ``generate()`` arguments of the call (sampling settings).
    """
    if not isinstance(model, GPT2LMHeadModel) or model.training or model.device.type != "cpu":
        return None
    config = model.config
    if config.add_cross_attention or getattr(config, "_attn_implementation", "sdpa") not in ("sdpa", "eager"):
        return None
    if set(generate_kwargs) - set(LEAN_GENERATE_KWARGS):
        return None
    generation_config = model.generation_config
    if set(generation_config.to_diff_dict()) - set(LEAN_GENERATE_KWARGS) - NEUTRAL_CONFIG_FIELDS:
        return None
    settings = {name: getattr(generation_config, name, None) for name in LEAN_GENERATE_KWARGS}
    settings.update(generate_kwargs)
    settings["do_sample"] = bool(settings["do_sample"])
    return settings


class _Blocks:
    """The modules of a ``GPT2LMHeadModel`` the loop calls, and a preallocated key/value cache.

    Args:
        model (`GPT2LMHeadModel`): the model (its output layer is read at each call: the sliding window may
            have swapped in an ``AllowedVocabHead``).
        batch (`int`): rows.
        length (`int`): positions the cache holds (prompt + new tokens).
        cache_dtype (`torch.dtype`, *optional*): dtype of the cached keys and values, in which attention is
            computed (its output returns to the model's dtype); defaults to the model's dtype.
    """

    def __init__(self, model: GPT2LMHeadModel, batch: int, length: int, cache_dtype: torch.dtype | None = None):
        transformer = model.transformer
        self.model = model
        self.wte, self.wpe, self.ln_f, self.blocks = transformer.wte, transformer.wpe, transformer.ln_f, list(transformer.h)
        config = model.config
        self.width, self.heads = config.n_embd, config.n_head
        self.head_dim = self.width // self.heads
        dtype = cache_dtype or self.wte.weight.dtype
        # per block: keys and values together, [2, batch, heads, length, head_dim]
        self.cache = [torch.empty((2, batch, self.heads, length, self.head_dim), dtype=dtype) for _ in self.blocks]
        fused = (lambda x: F.gelu(x, approximate="tanh")) if config.activation_function in TANH_GELUS else None
        # per block: ln_1, c_attn, attention scale, c_proj, ln_2, c_fc, activation, mlp c_proj
        self.steps = [
            (direct_call(b.ln_1), direct_call(b.attn.c_attn), b.attn.scaling, direct_call(b.attn.c_proj),
             direct_call(b.ln_2), direct_call(b.mlp.c_fc), fused or b.mlp.act, direct_call(b.mlp.c_proj))
            for b in self.blocks
        ]

    def logits(self, hidden: torch.Tensor, start: int, mask: torch.Tensor | None) -> torch.Tensor:
        """Run the blocks over ``hidden`` (``[batch, T, n_embd]``: embeddings of the positions from ``start``),
        caching their keys and values; returns the last position's logits ``[batch, vocab]``. ``mask`` is a
        boolean ``[batch, 1, T, start + T]`` (True: may attend), or None for an unpadded batch (causal)."""
        batch, T, _ = hidden.shape
        end = start + T
        heads, head_dim = self.heads, self.head_dim
        causal = mask is None and T > 1
        for cache, (ln_1, c_attn, scale, attn_proj, ln_2, c_fc, act, mlp_proj) in zip(self.cache, self.steps):
            # [batch, T, 3 * width] -> [3, batch, heads, T, head_dim]: query, key and value as views
            qkv = c_attn(ln_1(hidden)).view(batch, T, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
            cache[:, :, :, start:end] = qkv[1:]
            kv = cache[:, :, :, :end]
            # the query in the cache's dtype, the output back in the model's (both no-ops for a float32 cache)
            out = F.scaled_dot_product_attention(qkv[0].to(kv.dtype), kv[0], kv[1], attn_mask=mask, is_causal=causal,
                                                 scale=scale).to(hidden.dtype)
            hidden = hidden + attn_proj(out.transpose(1, 2).reshape(batch, T, self.width))
            hidden = hidden + mlp_proj(act(c_fc(ln_2(hidden))))
        return self.model.get_output_embeddings()(self.ln_f(hidden[:, -1]))


@torch.inference_mode()
def lean_generate(model: GPT2LMHeadModel, input_ids: torch.LongTensor, attention_mask: torch.LongTensor,
                  logits_processor: list, max_new_tokens: int, eos_token_id: int, pad_token_id: int,
                  settings: dict, inputs_embeds: torch.Tensor | None = None,
                  kv_cache_dtype: torch.dtype | None = None) -> torch.LongTensor:
    """Decode up to ``max_new_tokens`` ids after a left-padded prompt; the output ``generate()`` would give.

    Returns ``[batch, prompt + n]``: the prompt, then the new ids; a row that has drawn ``eos_token_id`` is
    continued with ``pad_token_id``, and decoding stops when every row has, or after ``max_new_tokens``.

    Args:
        model (`GPT2LMHeadModel`): the model, on CPU, in eval mode.
        input_ids (`torch.LongTensor`): ``[batch, prompt]``, left-padded.
        attention_mask (`torch.LongTensor`): ``[batch, prompt]``, 0 on the padding.
        logits_processor (`list`): logits processors, called in order each step with the ids so far and the
            logits.
        max_new_tokens (`int`): most ids to add (>= 1).
        eos_token_id (`int`): the id that ends a row.
        pad_token_id (`int`): the id that fills a row after it ended.
        settings (`dict`): ``lean_settings``'s sampling settings.
        inputs_embeds (`torch.Tensor`, *optional*): ``[batch, prompt, n_embd]`` used for the prompt instead of
            its ids' embeddings (a blended style).
        kv_cache_dtype (`torch.dtype`, *optional*): the key/value cache's dtype (``resolve_kv_cache_dtype``); defaults
            to the model's.
    """
    batch, width = input_ids.shape
    total = width + max_new_tokens
    blocks = _Blocks(model, batch, total, kv_cache_dtype)
    ids = torch.full((batch, total), pad_token_id, dtype=torch.long)
    ids[:, :width] = input_ids
    valid = torch.zeros((batch, total), dtype=torch.bool)
    valid[:, :width] = attention_mask.bool()
    padded = not bool(valid[:, :width].all())
    # generate()'s positions: count the real tokens, padding at 0
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    embeds = blocks.wte(input_ids) if inputs_embeds is None else inputs_embeds
    mask = None
    if padded:  # causal over the real tokens; a padding position sees itself only (its output is never read)
        causal = torch.ones((width, width), dtype=torch.bool).tril()
        mask = (causal & (valid[:, None, :width] | torch.eye(width, dtype=torch.bool)))[:, None]
    logits = blocks.logits(embeds + blocks.wpe(positions), 0, mask)
    position = positions[:, -1:] + 1
    unfinished = torch.ones(batch, dtype=torch.bool)
    length = width
    for step in range(max_new_tokens):
        scores = logits.float()
        for processor in logits_processor:  # as LogitsProcessorList would, without its per-step signature checks
            scores = processor(ids[:, :length], scores)
        tokens = sample_next(scores, **settings)
        tokens = torch.where(unfinished, tokens, torch.full_like(tokens, pad_token_id))
        ids[:, length] = tokens
        if padded:  # the mask is read only for a padded batch
            valid[:, length] = True
        length += 1
        unfinished &= tokens != eos_token_id
        if not unfinished.any() or step == max_new_tokens - 1:
            break
        hidden = blocks.wte(tokens[:, None]) + blocks.wpe(position)
        logits = blocks.logits(hidden, length - 1, valid[:, None, None, :length] if padded else None)
        position = position + 1
    return ids[:, :length]
