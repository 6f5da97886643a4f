"""Region search: find every product in a shopper's photo and search the part the shopper points at.

``boxes`` (the ``Region`` value, validation, NMS), ``offline`` (the border-colour proposer), ``gemini``
(boxes from Gemini), ``finder`` (the choice by ``SIMILARITY_REGIONS``), ``search`` (one forward pass for
the photo and every crop, ranked per region) and ``cli``. Models and clients load only when used.
"""

from __future__ import annotations

from .boxes import MAX_REGIONS, Region, clean_box, parse_user_box

__all__ = ["MAX_REGIONS", "Region", "clean_box", "parse_user_box"]
