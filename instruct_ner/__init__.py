"""instruct-ner: turn a decoder LLM into a named-entity recogniser, and measure it honestly.

The public Python API (imported lazily, so that `import instruct_ner` loads neither torch nor
transformers):

    from instruct_ner import NER
    ner = NER.from_pretrained("runs/sft")
    ner.predict_entities("EU rejects German call to boycott British lamb .")

Exports: `NER`, `Entity`, `Example`, `load_examples`, `score`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "NER": "instruct_ner.api",
    "score": "instruct_ner.api",
    "Entity": "instruct_ner.examples",
    "Example": "instruct_ner.examples",
    "load_examples": "instruct_ner.prompts.readers",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'instruct_ner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
