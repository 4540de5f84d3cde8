"""musenet_hf: an open MuseNet on the Hugging Face stack.

Importing the package registers ``MuseNetTokenizer`` with ``AutoTokenizer`` and the
``"midi-generation"`` pipeline (whose default model is the bundled checkpoint in ``DEFAULT_MODEL_DIR``),
so checkpoints load without ``trust_remote_code`` and without a network.
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .core.vocabulary import EncodingConfig, MidiLimits, Vocabulary
from .core.errors import MidiError
from .core.pipeline_midi_generation import MidiGenerationPipeline
from .core.tokenization_musenet import MuseNetTokenizer, MuseNetTokenizerKeyConfig

__version__ = "0.1.0"

# The bundled checkpoint (package data): what pipeline("midi-generation") loads when no model is given.
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"

AutoConfig.register(MuseNetTokenizerKeyConfig.model_type, MuseNetTokenizerKeyConfig, exist_ok=True)
AutoTokenizer.register(MuseNetTokenizerKeyConfig, tokenizer_class=MuseNetTokenizer, exist_ok=True)
# A local path as the default "model": pipeline() then resolves it like any directory, with no Hub call.
PIPELINE_REGISTRY.register_pipeline(
    "midi-generation",
    pipeline_class=MidiGenerationPipeline,
    pt_model=AutoModelForCausalLM,
    default={"model": (str(DEFAULT_MODEL_DIR), None)},
    type="text",
)


def load_pipeline(model: str | os.PathLike | None = None, **kwargs) -> MidiGenerationPipeline:
    """The package's ``midi-generation`` pipeline on a checkpoint folder or Hub repo id.

    ``pipeline_class`` is explicit because a config.json saved by ``Pipeline.save_pretrained`` names the
    pipeline in ``custom_pipelines``, for which transformers would otherwise demand ``trust_remote_code``.

    Args:
        model (`str` or `os.PathLike`, *optional*): a checkpoint folder or Hub repo id; default the bundled
            model in ``DEFAULT_MODEL_DIR``.
        kwargs: passed on to ``transformers.pipeline`` (``device``, ``dtype``, ...).
    """
    return pipeline("midi-generation", model=str(model or DEFAULT_MODEL_DIR), pipeline_class=MidiGenerationPipeline, **kwargs)


__all__ = [
    "DEFAULT_MODEL_DIR", "EncodingConfig", "MidiError", "MidiGenerationPipeline", "MidiLimits", "MuseNetTokenizer",
    "Vocabulary", "load_pipeline",
]
