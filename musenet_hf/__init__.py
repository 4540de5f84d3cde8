"""musenet_hf: an open MuseNet on the Hugging Face stack.

Importing the package registers ``MuseNetTokenizer`` with ``AutoTokenizer`` and the
``"midi-generation"`` pipeline (whose default model is the bundled checkpoint in ``DEFAULT_MODEL_DIR``),
so checkpoints load without ``trust_remote_code`` and without a network.
"""

from pathlib import Path

from transformers import AutoConfig, AutoTokenizer
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

__all__ = [
    "DEFAULT_MODEL_DIR", "EncodingConfig", "MidiError", "MidiGenerationPipeline", "MidiLimits", "MuseNetTokenizer",
    "Vocabulary",
]
