"""The config class a pushed repo names in ``config.json``'s ``auto_map["AutoConfig"]``.

Why it exists: ``pipeline("midi-generation", model=NAME, trust_remote_code=True)`` must work for
users without this package, which needs ``custom_pipelines`` in the loaded config; but once
``custom_pipelines`` is in config.json, transformers refuses to build the pipeline for anybody who
does not pass ``trust_remote_code=True`` -- including users who have the package and its registered
pipeline. transformers only loads an ``auto_map["AutoConfig"]`` class when the caller trusts remote
code (the repo's ``model_type`` "gpt2" has local code, so everybody else gets a plain ``GPT2Config``).
So the pipeline spec is stored in config.json under ``REMOTE_PIPELINES_KEY`` and only this class,
i.e. only a caller who passed ``trust_remote_code=True``, turns it into ``custom_pipelines``.

This file travels to the Hub: it imports nothing but transformers.
"""

from __future__ import annotations

from transformers import GPT2Config

# config.json key holding {"midi-generation": {"impl": "pipeline_midi_generation.<Class>", "pt": [...], ...}}.
# Not "custom_pipelines": that name would make transformers demand trust_remote_code from every user.
REMOTE_PIPELINES_KEY = "musenet_remote_pipelines"


class MuseNetRemoteConfig(GPT2Config):
    """Loads a plain ``GPT2Config`` with ``custom_pipelines`` filled from ``REMOTE_PIPELINES_KEY``.

    ``from_pretrained`` returns a ``GPT2Config`` instance (not this subclass) so that
    ``AutoModelForCausalLM`` still maps it to ``GPT2LMHeadModel`` without any model code in the repo.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        loaded = GPT2Config.from_pretrained(pretrained_model_name_or_path, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded  # (config, unused) with return_unused_kwargs
        config.custom_pipelines = dict(getattr(config, REMOTE_PIPELINES_KEY, None) or {})
        return loaded
