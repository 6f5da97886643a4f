"""Taggers describe a photo as ProductTags (Gemini online, CLIP zero-shot offline)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL import Image

    from .config import Settings
    from .embedder import OpenClipEmbedder
    from .records import ProductTags


class Tagger(Protocol):
    name: str

    def tag(self, image: Image.Image) -> ProductTags: ...


def make_tagger(settings: Settings, embedder: OpenClipEmbedder) -> Tagger | None:
    """The tagger chosen by ``SIMILARITY_TAGGER`` (implementations land with the tagging issue)."""
    return None
