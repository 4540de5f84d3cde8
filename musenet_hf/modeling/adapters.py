"""LoRA adapters of MuseNet checkpoints (PEFT): what an adapter folder holds, finding its base, loading it.

An adapter folder (what ``train.py --lora`` writes, what ``push_to_hub.py`` uploads)::

    adapter_config.json        PEFT's LoraConfig; ``base_model_name_or_path`` names the base checkpoint
    adapter_model.safetensors  the LoRA matrices and the trained rows of the new style tokens, nothing else
    musenet_base.json          the base's fingerprint: sha256 of its weights file, vocabulary size, shape
    tokenizer.json, tokenizer_config.json   the base's tokenizer with the new styles appended
    training_record.json, metrics.jsonl     how it was trained (as for full checkpoints)

New styles get ids after every id of the base (``MuseNetTokenizer.add_styles``), so loading resizes the
base's embeddings to the adapter's tokenizer and PEFT's trainable tokens then write the trained rows
(``trainable_token_indices``: the rows are stored whole, so what the resize put there never matters).

``pipeline("midi-generation", model=ADAPTER)`` works because importing ``musenet_hf`` registers
``MuseNetModelForCausalLM`` as the task's model class: transformers finds the adapter config, reads the
base's config, and this class loads base + adapter, merged (plain GPT-2 weights: generation runs at the
base's speed), carrying the adapter's tokenizer, which the pipeline then uses. ``adapter_pipelines`` loads
several adapters of one base onto a single copy of its weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM
from transformers.utils import cached_file, find_adapter_config_file, logging

from ..core.pipeline_midi_generation import ADAPTER_TOKENIZER_ATTRIBUTE, MidiGenerationPipeline
from ..core.tokenization_musenet import MuseNetTokenizer
from ..utils import sha256_file
from .presets import ATTENTION

logger = logging.get_logger(__name__)

ADAPTER_CONFIG_FILE = "adapter_config.json"  # PEFT's name (peft.utils.CONFIG_NAME)
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"  # PEFT's name (peft.utils.SAFETENSORS_WEIGHTS_NAME)
BASE_RECORD_FILE = "musenet_base.json"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")  # a single file, or a sharded index
LORA_EXTRA_HINT = "pip install 'musenet_hf[lora]' (or: pip install peft)"


class AdapterBaseError(Exception):
    """An adapter and the base it is given (or finds) do not belong together; the message says which differs.

    Not a ``ValueError``: ``pipeline()`` catches ValueError/OSError from a model class and silently tries the
    next one (plain GPT-2), which then fails with an unrelated IndexError instead of this message.
    """


@dataclass
class BaseFingerprint:
    """What identifies the base an adapter was trained on (``musenet_base.json``).

    Attributes:
        name_or_path (`str`): the base as it was named (a directory, or a Hub id once pushed).
        weights_sha256 (`str`): sha256 of its ``model.safetensors`` (or of the sharded index).
        vocab_size (`int`): rows of its embedding matrix before the new styles were added.
        n_layer, n_embd, n_head, n_positions (`int`): its shape (positions in tokens).
    """

    name_or_path: str
    weights_sha256: str
    vocab_size: int
    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int

    @classmethod
    def of(cls, base: str | os.PathLike, **hub_kwargs) -> BaseFingerprint:
        """The fingerprint of a checkpoint directory or Hub id (its weights are hashed, not loaded).

        Args:
            base (`str` or `os.PathLike`): a checkpoint folder written by ``train.py``, or a Hub id.
            hub_kwargs: ``revision``, ``token``, ``cache_dir`` for a Hub id.
        """
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(base), **hub_kwargs)
        return cls(
            name_or_path=str(base), weights_sha256=sha256_file(_weights_file(base, **hub_kwargs)),
            vocab_size=config.vocab_size, n_layer=config.n_layer, n_embd=config.n_embd, n_head=config.n_head,
            n_positions=config.n_positions,
        )

    def differences(self, other: BaseFingerprint) -> list[str]:
        """Human-readable fields in which ``other`` differs (the name is not compared: a base may move)."""
        return [f"{k}: {v} (trained on) vs {getattr(other, k)} (given)" for k, v in asdict(self).items()
                if k != "name_or_path" and getattr(other, k) != v]


def _weights_file(base, **hub_kwargs) -> str:
    for name in WEIGHTS_FILES:
        found = cached_file(str(base), name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        if found:
            return found
    raise AdapterBaseError(f"{base} holds no {' or '.join(WEIGHTS_FILES)}: not a base checkpoint an adapter can apply to")


def _adapter_file(adapter, name: str, **hub_kwargs) -> str | None:
    return cached_file(str(adapter), name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)


def is_adapter(path_or_id: str | os.PathLike, **hub_kwargs) -> bool:
    """Whether ``path_or_id`` (a folder or a Hub id) is a PEFT adapter rather than a full checkpoint.

    Args:
        path_or_id (`str` or `os.PathLike`): what the user named as the model.
        hub_kwargs: ``revision``, ``token``, ``cache_dir`` for a Hub id.
    """
    return find_adapter_config_file(str(path_or_id), **hub_kwargs) is not None and not (
        Path(path_or_id).is_dir() and (Path(path_or_id) / "config.json").is_file()
    )


def read_adapter_config(adapter, **hub_kwargs) -> dict:
    """``adapter_config.json`` of an adapter folder or Hub id, as a dict."""
    path = find_adapter_config_file(str(adapter), **hub_kwargs)
    if path is None:
        raise OSError(f"{adapter} has no {ADAPTER_CONFIG_FILE}: not a LoRA adapter")
    return json.loads(Path(path).read_text())


def read_base_record(adapter, **hub_kwargs) -> BaseFingerprint | None:
    """The fingerprint saved with the adapter, or None for adapters written by other tools."""
    path = _adapter_file(adapter, BASE_RECORD_FILE, **hub_kwargs)
    return BaseFingerprint(**json.loads(Path(path).read_text())) if path else None


def write_base_record(adapter_dir: str | os.PathLike, fingerprint: BaseFingerprint) -> None:
    """Write ``musenet_base.json`` into an adapter folder."""
    (Path(adapter_dir) / BASE_RECORD_FILE).write_text(json.dumps(asdict(fingerprint), indent=2) + "\n")


def resolve_base(adapter, base: str | os.PathLike | None = None, **hub_kwargs) -> str:
    """The base checkpoint to apply ``adapter`` to, checked against the adapter's fingerprint.

    Without ``base``, the one the adapter names; if that folder no longer exists and the adapter was
    trained on the bundled default model (same weights hash), the bundled model of this installation.

    Args:
        adapter: an adapter folder or Hub id.
        base (`str` or `os.PathLike`, *optional*): the base to use instead of the one the adapter names.
        hub_kwargs: ``token``, ``cache_dir`` (a ``revision`` would be the adapter's, so it is not used here).

    Raises:
        AdapterBaseError: the base's weights, vocabulary or shape differ from those the adapter was trained on.
    """
    from .. import DEFAULT_MODEL_DIR

    hub_kwargs = {k: v for k, v in hub_kwargs.items() if k != "revision"}
    record = read_base_record(adapter, **hub_kwargs)
    named = read_adapter_config(adapter, **hub_kwargs).get("base_model_name_or_path")
    if base is None:
        base = named
        bundled = Path(DEFAULT_MODEL_DIR)
        if (named is None or _looks_local(named) and not Path(named).exists()) and record is not None \
                and record.weights_sha256 == sha256_file(bundled / WEIGHTS_FILES[0]):
            logger.info(f"{adapter}: base {named} is not here; it is the bundled default model, using {bundled}")
            base = str(bundled)
        if base is None:
            raise AdapterBaseError(f"{adapter} names no base model; pass the base it was trained on")
    if record is not None:
        given = BaseFingerprint.of(base, **hub_kwargs)
        differences = record.differences(given)
        if differences:
            raise AdapterBaseError(
                f"adapter {adapter} was trained on base {record.name_or_path}, which is not the base given ({base}): "
                + "; ".join(differences) + ". Load it with the base it was trained on."
            )
    return str(base)


def _looks_local(name: str) -> bool:
    """A path rather than a Hub id ("ns/name" has exactly one slash and no leading dot or slash)."""
    return os.path.isabs(name) or name.startswith(".") or name.count("/") != 1 or os.path.exists(name)


def _require_peft():
    try:
        import peft
    except ImportError:
        raise ImportError(f"loading a LoRA adapter needs PEFT: {LORA_EXTRA_HINT}") from None
    return peft


def _load_base(base: str, tokenizers: dict, adapters: dict, hub_kwargs: dict | None = None, **model_kwargs):
    """The base model with its embedding matrix grown to the largest adapter tokenizer (the new rows are
    then overwritten by the adapters' trained rows), after checking that each adapter trained all its new rows."""
    model_kwargs.setdefault("attn_implementation", ATTENTION)
    model = AutoModelForCausalLM.from_pretrained(base, **model_kwargs)
    for name, tokenizer in tokenizers.items():
        _check_new_rows(adapters[name], tokenizer, model.config.vocab_size, read_adapter_config(adapters[name], **(hub_kwargs or {})))
    rows = max(len(t) for t in tokenizers.values())
    if rows > model.config.vocab_size:
        # the adapter's trainable tokens replace these rows whole: their initial values never matter
        model.resize_token_embeddings(rows, mean_resizing=False)
    return model


def _check_new_rows(adapter, tokenizer, base_vocab: int, config: dict) -> None:
    """Every id the adapter's tokenizer adds past the base must be a row the adapter trained."""
    trained = config.get("trainable_token_indices") or []
    if isinstance(trained, dict):
        trained = [i for ids in trained.values() for i in ids]
    untrained = sorted(set(range(base_vocab, len(tokenizer))) - set(trained))
    if untrained:
        names = [tokenizer.convert_ids_to_tokens(i) for i in untrained]
        raise AdapterBaseError(f"{adapter}: its tokenizer adds {names} past the base's {base_vocab} ids, but the adapter "
                               "holds no trained rows for them (it was trained on a different base or tokenizer)")


def _check_tokenizer(adapter, tokenizer, base: str) -> None:
    base_tokens = MuseNetTokenizer.from_pretrained(base).musenet_vocab.tokens
    if tokenizer.musenet_vocab.tokens[: len(base_tokens)] != base_tokens:
        raise AdapterBaseError(f"the tokenizer of adapter {adapter} does not extend the tokenizer of base {base} "
                               "(its first ids differ): it was trained on another base")


def load_adapter_model(adapter: str | os.PathLike, base: str | os.PathLike | None = None, merge: bool = False,
                       adapter_name: str = "default", hub_kwargs: dict | None = None, **model_kwargs):
    """Load an adapter onto its base: ``(model, tokenizer)``.

    Args:
        adapter (`str` or `os.PathLike`): an adapter folder or Hub id.
        base (`str` or `os.PathLike`, *optional*): the base checkpoint (default: the one the adapter names;
            checked against the adapter's fingerprint either way).
        merge (`bool`, *optional*, defaults to `False`): fold the adapter into the weights and return a plain
            ``GPT2LMHeadModel`` (generation as fast as the base's); else a ``peft.PeftModel``.
        adapter_name (`str`, *optional*, defaults to `"default"`): PEFT's name for the adapter.
        hub_kwargs (`dict`, *optional*): ``revision`` (the adapter's), ``token``, ``cache_dir``.
        model_kwargs: passed to the base's ``from_pretrained`` (``dtype``, ``device_map``, ...).

    Returns:
        The model (with the adapter's tokenizer attached for the pipeline) and the adapter's tokenizer, whose
        styles include the new ones.

    Raises:
        AdapterBaseError: the base does not match the adapter.
    """
    peft = _require_peft()
    hub_kwargs = dict(hub_kwargs or {})
    base = resolve_base(adapter, base, **hub_kwargs)
    tokenizer = MuseNetTokenizer.from_pretrained(str(adapter), **hub_kwargs)
    _check_tokenizer(adapter, tokenizer, base)
    model = _load_base(base, {adapter_name: tokenizer}, {adapter_name: adapter}, hub_kwargs, **model_kwargs)
    model = peft.PeftModel.from_pretrained(model, str(adapter), adapter_name=adapter_name, **hub_kwargs)
    if merge:
        model = model.merge_and_unload()
    setattr(model, ADAPTER_TOKENIZER_ATTRIBUTE, tokenizer)
    model.eval()
    return model, tokenizer


def load_adapters(adapters: dict[str, str | os.PathLike], base: str | os.PathLike | None = None, **model_kwargs):
    """Several adapters of one base on a single copy of its weights: ``(peft_model, {name: tokenizer})``.

    Switch with ``peft_model.set_adapter(name)`` and use that adapter's tokenizer (adapters may give the same
    new id to different styles); ``adapter_pipelines`` does both for you.

    Args:
        adapters (`dict[str, str | os.PathLike]`): adapter name -> folder or Hub id.
        base (`str` or `os.PathLike`, *optional*): the common base (default: the one the first adapter names).
        model_kwargs: passed to the base's ``from_pretrained``.

    Raises:
        AdapterBaseError: an adapter was trained on another base than the others.
    """
    peft = _require_peft()
    if not adapters:
        raise ValueError("load_adapters needs at least one adapter")
    names = list(adapters)
    base = resolve_base(adapters[names[0]], base)
    tokenizers = {}
    for name in names:
        resolve_base(adapters[name], base)  # each one checked against the same base
        tokenizers[name] = MuseNetTokenizer.from_pretrained(str(adapters[name]))
        _check_tokenizer(adapters[name], tokenizers[name], base)
    model = _load_base(base, tokenizers, adapters, **model_kwargs)
    model = peft.PeftModel.from_pretrained(model, str(adapters[names[0]]), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(adapters[name]), adapter_name=name)
    model.eval()
    return model, tokenizers


class AdapterMidiGenerationPipeline(MidiGenerationPipeline):
    """The midi-generation pipeline for one adapter of a ``PeftModel`` holding several: the adapter is
    activated before each call (calls on one shared model run one at a time, not from several threads).

    Args:
        adapter_name (`str`): the PEFT adapter this pipeline generates with.
        model, tokenizer, ...: as for ``MidiGenerationPipeline``.
    """

    def __init__(self, *args, adapter_name: str, **kwargs):
        self.adapter_name = adapter_name
        super().__init__(*args, **kwargs)

    def preprocess(self, *args, **kwargs):
        self.model.set_adapter(self.adapter_name)  # a style blend reads the adapter's embedding rows
        return super().preprocess(*args, **kwargs)

    def _forward(self, *args, **kwargs):
        self.model.set_adapter(self.adapter_name)
        return super()._forward(*args, **kwargs)


def adapter_pipelines(adapters: dict[str, str | os.PathLike], base: str | os.PathLike | None = None,
                      device: int | str | torch.device | None = None, **model_kwargs) -> dict[str, MidiGenerationPipeline]:
    """One midi-generation pipeline per adapter, all sharing one copy of the base's weights.

    Args:
        adapters (`dict[str, str | os.PathLike]`): adapter name -> folder or Hub id.
        base (`str` or `os.PathLike`, *optional*): the common base (default: the one the adapters name).
        device (*optional*): where the shared model runs (default: CPU).
        model_kwargs: passed to the base's ``from_pretrained``.
    """
    model, tokenizers = load_adapters(adapters, base, **model_kwargs)
    return {name: AdapterMidiGenerationPipeline(model=model, tokenizer=tokenizers[name], task="midi-generation",
                                                device=device, adapter_name=name) for name in adapters}


class MuseNetModelForCausalLM(AutoModelForCausalLM):
    """``AutoModelForCausalLM`` that also loads MuseNet LoRA adapters (registered as the pipeline's model class).

    A full checkpoint loads exactly as with ``AutoModelForCausalLM``. An adapter folder or Hub id loads its
    base, grown to the adapter's tokenizer, with the adapter merged in (see ``load_adapter_model``).
    """

    # what the pipeline spec pushed to the Hub names: users without the package load plain GPT-2 weights
    hub_class_name = "AutoModelForCausalLM"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Args: as ``AutoModelForCausalLM.from_pretrained``; a ``config`` passed for an adapter (the pipeline
        passes the base's) is not used: the base loads its own, and the adapter's vocabulary is added to it."""
        hub = {k: kwargs[k] for k in ("token", "cache_dir") if kwargs.get(k) is not None}
        if model_args or not is_adapter(pretrained_model_name_or_path, **hub):
            if os.path.isdir(pretrained_model_name_or_path):  # a local folder: one clear error for a broken one
                from ..hub.checkpoint import check_loadable

                check_loadable(pretrained_model_name_or_path)
            return AutoModelForCausalLM.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        kwargs.pop("config", None)
        for key in ("_from_pipeline", "trust_remote_code", "code_revision", "revision"):
            # the pipeline resolves ``revision`` for the base repo; base and adapter are two repos
            kwargs.pop(key, None)
        for key in ("token", "cache_dir"):
            kwargs.pop(key, None)
        model, _ = load_adapter_model(pretrained_model_name_or_path, merge=True, hub_kwargs=hub, **kwargs)
        return model
