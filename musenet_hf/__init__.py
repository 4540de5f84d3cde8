"""musenet_hf: an open MuseNet on the Hugging Face stack.

Importing the package registers ``MuseNetTokenizer`` with ``AutoTokenizer``, so checkpoints
load without ``trust_remote_code``.
"""

from transformers import AutoConfig, AutoTokenizer

from .encoding import EncodingConfig, MidiLimits, Vocabulary
from .errors import MidiError
from .tokenization_musenet import MuseNetTokenizer, MuseNetTokenizerKeyConfig

__version__ = "0.1.0"

AutoConfig.register(MuseNetTokenizerKeyConfig.model_type, MuseNetTokenizerKeyConfig, exist_ok=True)
AutoTokenizer.register(MuseNetTokenizerKeyConfig, tokenizer_class=MuseNetTokenizer, exist_ok=True)

__all__ = ["EncodingConfig", "MidiError", "MidiLimits", "MuseNetTokenizer", "Vocabulary"]
