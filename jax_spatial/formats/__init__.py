"""The 19 instruction formats: text references x visual prompts (docs/formats.md).

`spec` is the contract (format ids, `Prompt`, `FormattedQA`); `expand` re-renders a QA in each
suitable format; `draw` draws the prompts on image batches, jitted.
"""

from jax_spatial.formats.spec import (
    FORMATS,
    IMAGE_PROMPTS,
    PALETTE,
    TEXT_REFS,
    FormattedQA,
    Prompt,
    format_id,
    split_format,
)

__all__ = [
    "FORMATS",
    "IMAGE_PROMPTS",
    "PALETTE",
    "TEXT_REFS",
    "FormattedQA",
    "Prompt",
    "format_id",
    "split_format",
]
