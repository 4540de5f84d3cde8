"""``MuseNetTokenizer``: the event vocabulary as a transformers tokenizer on the ``tokenizers`` library.

Two paths, on purpose:

- MIDI <-> ids (``encode_midi`` / ``decode_midi``) runs on ints and numpy (``events.py``): the hot path
  used by corpus building and generation.
- text <-> ids (``tok(text)`` / ``tok.decode(ids)``) runs on the Rust ``tokenizers`` backend, a
  ``WordLevel`` model over whitespace-separated event words: readable, and loadable without this
  package (``AutoTokenizer`` then returns a plain ``TokenizersBackend`` that still maps text <-> ids).

The musical definition of the vocabulary (families, program map, velocity bins, styles, limits) is
an ``EncodingConfig`` saved in tokenizer_config.json under the key ``musenet``.
"""

from __future__ import annotations

import os

import mido
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedConfig
from transformers.tokenization_utils_tokenizers import TokenizersBackend

from .codec import Header, decode_ids, encode_events, encode_score, header_ids
from .errors import WorkBudget
from .midi_io import Score, read_midi, write_midi
from .vocabulary import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, EncodingConfig, Vocabulary


class MuseNetTokenizerKeyConfig(PreTrainedConfig):
    """Only a registry key: ``AutoTokenizer.register`` needs a config class, and GPT2Config is taken."""

    model_type = "musenet_tokenizer"


def build_backend(vocab: Vocabulary) -> Tokenizer:
    """A Rust tokenizer whose vocabulary is exactly the event vocabulary (one word, one id)."""
    backend = Tokenizer(models.WordLevel(vocab.token_to_id, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return backend


class MuseNetTokenizer(TokenizersBackend):
    """MIDI tokenizer with MuseNet's encoding. See ``encoding.py`` for the token grammar.

    Args:
        musenet: an ``EncodingConfig`` as a dict (what tokenizer_config.json stores); defaults give
            MuseNet's ten instrument families, 8 velocity bins and 10 ms waits.
    """

    vocab_files_names = {"tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "left"  # generation prompts are left-padded; training batches bring their own masks

    def __init__(self, tokenizer_file=None, musenet: dict | None = None, **kwargs):
        config = EncodingConfig.from_dict(musenet)
        self.musenet_vocab = Vocabulary(config)
        tokenizer_object = kwargs.pop("tokenizer_object", None)
        if tokenizer_object is None and not (tokenizer_file and os.path.isfile(tokenizer_file)):
            tokenizer_object = build_backend(self.musenet_vocab)
        for key, tok in (("pad_token", PAD), ("bos_token", BOS), ("eos_token", EOS), ("unk_token", UNK)):
            kwargs.setdefault(key, tok)
        super().__init__(tokenizer_file=tokenizer_file, tokenizer_object=tokenizer_object, musenet=config.to_dict(), **kwargs)
        self._check_backend()

    @classmethod
    def convert_to_native_format(cls, trust_remote_code=False, **kwargs):
        # Load tokenizer.json as it is; the base class would otherwise rebuild an empty BPE for a
        # subclass with its own __init__ (see stack-facts).
        return super().convert_to_native_format(trust_remote_code=True, **kwargs)

    def _check_backend(self) -> None:
        """The Rust vocabulary must be exactly the one the config defines: ids are the model's contract."""
        backend = self._tokenizer.get_vocab(with_added_tokens=True)
        expected = self.musenet_vocab.token_to_id
        if backend != expected:
            diff = sorted(set(backend.items()) ^ set(expected.items()))[:5]
            raise ValueError(f"tokenizer.json does not match its musenet config (first differences: {diff})")

    # --- what the tokenizer knows -------------------------------------------------------------
    @property
    def encoding_config(self) -> EncodingConfig:
        return self.musenet_vocab.config

    @property
    def styles(self) -> list[str]:
        return list(self.encoding_config.styles)

    @property
    def instruments(self) -> list[str]:
        return list(self.encoding_config.families)

    def add_styles(self, names) -> list[str]:
        """Append new style names (ids go after all existing ones); returns those actually added.

        A model trained before keeps its ids; resize its embeddings to ``len(tok)`` before training.
        """
        config = self.encoding_config
        added = [n for n in dict.fromkeys(names) if n not in config.styles]
        if not added:
            return []
        new = EncodingConfig.from_dict({**config.to_dict(), "styles": config.styles + added})
        self.musenet_vocab = Vocabulary(new)
        self._tokenizer = build_backend(self.musenet_vocab)
        self.init_kwargs["musenet"] = new.to_dict()
        return added

    # --- MIDI <-> ids --------------------------------------------------------------------------
    def read_score(self, source) -> Score:
        """A MIDI source (path, bytes or ``mido.MidiFile``) as family-mapped notes in seconds."""
        return read_midi(source, vocab=self.musenet_vocab)

    def encode_score(self, score: Score, style: str | None = None) -> list[int]:
        """A ``Score`` -> ids: header (style, the families that play, first tempo), events, ``<eos>``."""
        self.musenet_vocab.style_id(style or "unknown")  # unknown names fail before any work
        return encode_score(score, self.musenet_vocab, style or "unknown")

    def header_ids(self, header: Header) -> list[int]:
        """``<bos> style:S inst:F... tempo:BPM [<voice:fifo>]`` as ids: the one header builder."""
        return header_ids(self.musenet_vocab, header)

    def encode_events(self, notes, end_seconds: float | None = None, budget: WorkBudget | None = None) -> tuple[list[int], bool, int]:
        """Notes -> (event ids, ``<voice:fifo>`` flag for their header, length in 10 ms steps); with
        ``end_seconds`` the events last until then (see ``codec.encode_events``).

        Args:
            notes (`list[Note]`): the notes, times in seconds.
            end_seconds (`float`, *optional*): the events last at least until then.
            budget (`WorkBudget`, *optional*): the time bound to encode within (a primer's ``Score.budget``, so
                that reading and encoding it share one bound and an error names its file); default a new one.
        """
        vocab = self.musenet_vocab
        end_steps = None if end_seconds is None else round(end_seconds / vocab.config.step_seconds)
        return encode_events(notes, vocab, end_steps, budget=budget)

    def encode_midi(self, source, style: str | None = None) -> list[int]:
        """MIDI (path, bytes or ``mido.MidiFile``) -> ids: header, events, ``<eos>``.

        Raises ``MidiError`` for unreadable or out-of-limits files, ``ValueError`` for an unknown style.
        """
        if style is not None:
            self.musenet_vocab.style_id(style)
        return self.encode_score(self.read_score(source), style)

    def decode_midi(self, ids) -> mido.MidiFile:
        """Ids (with or without the header; a list, array or 1-D tensor) -> a type-1 ``mido.MidiFile``.

        Never fails on ids inside the vocabulary: stray tokens are ignored, unfinished notes closed.
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        decoded = decode_ids(ids, self.musenet_vocab)
        return write_midi(decoded.notes, self.musenet_vocab, decoded.header.bpm)

    def decode_events(self, ids):
        """Ids -> ``events.Decoded`` (notes in seconds, header, length in 10 ms steps)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return decode_ids(ids, self.musenet_vocab)
