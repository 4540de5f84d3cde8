"""The sampling defaults: the one place they are defined.

Every checkpoint ``train.py`` writes carries them in its ``generation_config.json`` (transformers gives a
model's generation config priority over a pipeline's defaults, so that file is where a default must live to
take effect), the bundled model ships them, and ``pipeline("midi-generation")`` falls back to them for a
checkpoint whose generation config sets none. The CLI's help text is generated from them.

This module travels to the Hub as remote code: it imports nothing from the package.
"""

from __future__ import annotations

# Sampling, not argmax: greedy decoding loops on one phrase, and MuseNet itself sampled. The cuts keep the
# far tail (odd families, extreme pitches, stray note-offs) out: top_k bounds it in ids, top_p in mass.
SAMPLING_DEFAULTS = {
    "do_sample": True,
    "temperature": 1.0,
    "top_k": 64,
    "top_p": 0.95,
}


def describe(name: str) -> str:
    """The default of one sampling setting as help text says it (``"off"`` for a cut that is disabled)."""
    value = SAMPLING_DEFAULTS[name]
    disabled = (name == "top_k" and value == 0) or (name == "top_p" and value >= 1.0)
    return "off" if disabled else str(value)
