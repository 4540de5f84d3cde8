"""musenet_hf: an open MuseNet on the Hugging Face stack.

Importing the package registers ``MuseNetTokenizer`` with ``AutoTokenizer`` and the
``"midi-generation"`` pipeline (whose default model is the bundled checkpoint in ``DEFAULT_MODEL_DIR``),
so checkpoints load without ``trust_remote_code`` and without a network.
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .core.errors import MidiError
from .core.pipeline_midi_generation import MidiGenerationPipeline
from .core.tokenization_musenet import MuseNetTokenizer, MuseNetTokenizerKeyConfig
from .core.vocabulary import EncodingConfig, MidiLimits, Vocabulary
from .modeling.adapters import MuseNetModelForCausalLM

__version__ = "0.1.0"

# The bundled checkpoint (package data): what pipeline("midi-generation") loads when no model is given.
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"

AutoConfig.register(MuseNetTokenizerKeyConfig.model_type, MuseNetTokenizerKeyConfig, exist_ok=True)
AutoTokenizer.register(MuseNetTokenizerKeyConfig, tokenizer_class=MuseNetTokenizer, exist_ok=True)
# A local path as the default "model": pipeline() then resolves it like any directory, with no Hub call.
# The model class is AutoModelForCausalLM that also applies LoRA adapters (model=ADAPTER_DIR_OR_ID).
PIPELINE_REGISTRY.register_pipeline(
    "midi-generation",
    pipeline_class=MidiGenerationPipeline,
    pt_model=MuseNetModelForCausalLM,
    default={"model": (str(DEFAULT_MODEL_DIR), None)},
    type="text",
)


def load_pipeline(model: str | os.PathLike | None = None, base: str | os.PathLike | None = None, **kwargs) -> MidiGenerationPipeline:
    """The package's ``midi-generation`` pipeline on a checkpoint folder or Hub repo id, or on a LoRA adapter.

    ``pipeline_class`` is explicit because a config.json saved by ``Pipeline.save_pretrained`` names the
    pipeline in ``custom_pipelines``, for which transformers would otherwise demand ``trust_remote_code``.

    Args:
        model (`str` or `os.PathLike`, *optional*): a checkpoint folder or Hub repo id; default the bundled
            model in ``DEFAULT_MODEL_DIR``. A LoRA adapter (folder or repo id) loads onto the base it names.
        base (`str` or `os.PathLike`, *optional*): for an adapter, the base checkpoint to apply it to instead of
            the one it names (checked against the adapter's fingerprint either way).
        kwargs: passed on to ``transformers.pipeline`` (``device``, ``dtype``, ...).
    """
    if base is not None:
        from .modeling.adapters import is_adapter, load_adapter_model

        if model is None or not is_adapter(model):
            raise ValueError(f"base= applies to a LoRA adapter; {model} is not one")
        loaded, tokenizer = load_adapter_model(model, base, merge=True)
        return pipeline("midi-generation", model=loaded, tokenizer=tokenizer, pipeline_class=MidiGenerationPipeline, **kwargs)
    return pipeline("midi-generation", model=str(model or DEFAULT_MODEL_DIR), pipeline_class=MidiGenerationPipeline, **kwargs)


__all__ = [
    "DEFAULT_MODEL_DIR", "EncodingConfig", "MidiError", "MidiGenerationPipeline", "MidiLimits", "MuseNetTokenizer",
    "Vocabulary", "load_pipeline",
]
