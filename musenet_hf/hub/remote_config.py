"""config.json and tokenizer_config.json as uploaded: how one repo serves users with and without the package.

The ``custom_pipelines`` pitfall: transformers refuses to build a pipeline named in config.json's
``custom_pipelines`` unless the caller passes ``trust_remote_code=True``, even when the caller has the
package and its registered pipeline. So the uploaded config.json carries no ``custom_pipelines``. It keeps
``model_type: "gpt2"`` (plain ``GPT2Config`` / ``GPT2LMHeadModel`` for everybody who does not trust remote
code: package users get the registered pipeline and tokenizer), and adds ``auto_map["AutoConfig"]`` naming
``MuseNetRemoteConfig`` plus the pipeline spec under ``REMOTE_PIPELINES_KEY``. transformers loads an
``auto_map`` config class only for callers who pass ``trust_remote_code=True``; that class turns the spec
into ``custom_pipelines``, so exactly those callers get the pipeline from the repo's code.
tokenizer_config.json gets ``auto_map["AutoTokenizer"]`` the usual way (a registered local class wins when
the package is imported).
"""

from __future__ import annotations

from transformers.pipelines import PIPELINE_REGISTRY

from ..core.configuration_musenet_remote import REMOTE_PIPELINES_KEY, MuseNetRemoteConfig
from ..core.tokenization_musenet import MuseNetTokenizer
from .audit import TASK


def remote_pipeline_spec() -> dict:
    """The registered ``midi-generation`` task as config.json stores a custom pipeline (class names)."""
    info = PIPELINE_REGISTRY.supported_tasks[TASK]
    # No "default": the registered default model is a local path that means nothing on another machine.
    # the package's model class also loads LoRA adapters; users without the package get the plain auto class it names
    pt = [getattr(cls, "hub_class_name", cls.__name__) for cls in info["pt"]]
    return {TASK: {"impl": qualified_name(info["impl"]), "pt": pt, "type": info["type"]}}


def hub_config(config: dict) -> dict:
    """config.json as uploaded: pipeline spec under ``REMOTE_PIPELINES_KEY`` and the ``auto_map`` config
    class that reads it; any ``custom_pipelines`` (from ``Pipeline.save_pretrained``) moves there too.

    Args:
        config (`dict`): the checkpoint's config.json (not modified).
    """
    config = dict(config)
    specs = {**config.pop("custom_pipelines", {}), **remote_pipeline_spec()}
    config[REMOTE_PIPELINES_KEY] = specs
    config["auto_map"] = {**config.get("auto_map", {}), "AutoConfig": qualified_name(MuseNetRemoteConfig)}
    return config


def hub_tokenizer_config(tokenizer_config: dict) -> dict:
    """tokenizer_config.json as uploaded: ``auto_map`` names the tokenizer module shipped in the repo.

    Args:
        tokenizer_config (`dict`): the checkpoint's tokenizer_config.json (not modified).
    """
    auto_map = {**tokenizer_config.get("auto_map", {}), "AutoTokenizer": [None, qualified_name(MuseNetTokenizer)]}
    return {**tokenizer_config, "auto_map": auto_map}


def qualified_name(cls: type) -> str:
    """``module.Class`` as auto_map wants it: the module's file name inside the repo."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
