"""Int8 weights for CPU inference: GPT-2's ``Conv1D`` layers as ``nn.Linear``, then dynamic int8 quantization.

At batch 1 a CPU decoding step is bound by reading the weights, so weights stored as int8 (a quarter of
fp32) make each token cheaper. ``torch.ao.quantization.quantize_dynamic`` only knows ``nn.Linear``, and
GPT-2 in transformers uses ``transformers.pytorch_utils.Conv1D`` (the same affine map with the weight
stored transposed, ``[in, out]``), so those layers are converted first. Activations stay float: each
quantized matmul quantizes its input per call (dynamic quantization), so no calibration data is needed.

The output layer is kept in float in the copy: it shares its weight with the input embeddings, and
``AllowedVocabHead`` (see logits_processors.py) trims it to the allowed ids of a strict-instrument call. The
copy is marked (``INT8_HEAD_ATTRIBUTE``) so that the trimmed layer is made int8 too, with one scale per row
(``int8_rows_linear``): a row's logit then does not depend on which other rows were kept, and at 7,000 rows x
384 it measured 74 us per token against 298 us in fp32 (one core).

This module travels to the Hub as remote code: package imports are relative only.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D
from transformers.utils import logging

logger = logging.get_logger(__name__)

# Set on a copy made by ``quantize_int8``: output layers trimmed from its float head are made int8 per row.
INT8_HEAD_ATTRIBUTE = "musenet_int8_trimmed_head"


def int8_available() -> bool:
    """Whether this torch build can run dynamically quantized int8 linear layers on CPU."""
    engine = getattr(torch.backends.quantized, "engine", "none")
    return engine not in (None, "none") and hasattr(torch.ao.quantization, "quantize_dynamic")


def conv1d_to_linear(module: nn.Module) -> nn.Module:
    """Replace, in place, every GPT-2 ``Conv1D`` under ``module`` with an equal ``nn.Linear``.

    ``Conv1D(nf, nx)`` computes ``x @ W + b`` with ``W`` of shape ``[nx, nf]``; the ``nn.Linear(nx, nf)``
    that replaces it holds ``W.T`` (``[nf, nx]``) and the same bias, so outputs are unchanged (up to float
    rounding order). Returns ``module``.

    Args:
        module (`nn.Module`): a model or any sub-module; modified in place.
    """
    for name, child in list(module.named_children()):
        if isinstance(child, Conv1D):
            linear = nn.Linear(child.nx, child.nf, bias=True, device=child.weight.device, dtype=child.weight.dtype)
            with torch.no_grad():
                linear.weight.copy_(child.weight.t())
                linear.bias.copy_(child.bias)
            setattr(module, name, linear)
        else:
            conv1d_to_linear(child)
    return module


def quantize_int8(model: nn.Module, include_head: bool = False, per_channel: bool = False) -> nn.Module:
    """A copy of ``model`` with int8 weights in every linear layer of its transformer blocks.

    The copy is float32, on CPU, in eval mode, with ``Conv1D`` converted (``conv1d_to_linear``) and every
    ``nn.Linear`` replaced by ``torch.ao.nn.quantized.dynamic.Linear`` (per-tensor int8 weights, float
    activations). The original model is not modified.

    Args:
        model (`nn.Module`): a causal LM such as ``GPT2LMHeadModel``.
        include_head (`bool`, defaults to `False`): quantize the output layer too. It then no longer is an
            ``nn.Linear``, so ``allowed_vocab_head`` cannot trim it to the allowed ids.
        per_channel (`bool`, defaults to `False`): one int8 scale per output row instead of one per layer.
    """
    if not int8_available():
        raise RuntimeError("this torch build has no quantized CPU engine; run without int8 (quantize=False)")
    quantized = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    conv1d_to_linear(quantized)
    head = None if include_head else quantized.get_output_embeddings()
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig if per_channel else torch.ao.quantization.default_dynamic_qconfig
    # quantize_dynamic swaps modules by their qualified name: the output layer is left out of the spec
    spec = {name: qconfig for name, m in quantized.named_modules() if isinstance(m, nn.Linear) and m is not head}
    with warnings.catch_warnings():
        # torch >= 2.10 flags torch.ao.quantization as deprecated (pytorch/ao#2259) yet ships it working
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        torch.ao.quantization.quantize_dynamic(quantized, spec, dtype=torch.qint8, inplace=True)
    setattr(quantized, INT8_HEAD_ATTRIBUTE, not include_head)
    count = sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in quantized.modules())
    logger.info("int8 copy of %s: %d linear layers quantized", type(model).__name__, count)
    return quantized


def int8_rows_linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> nn.Module:
    """A dynamically quantized linear layer ``x @ weight.T + bias`` with int8 weights, one scale per row.

    Args:
        weight (`torch.Tensor`): ``[out, in]`` float weight (e.g. some rows of an output layer).
        bias (`torch.Tensor`, *optional*): ``[out]``.
    """
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    linear.qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        return torch.ao.nn.quantized.dynamic.Linear.from_float(linear)
