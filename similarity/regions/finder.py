"""Which proposer finds a photo's regions, chosen once by ``SIMILARITY_REGIONS`` (``Settings.regions``):

- ``auto``: Gemini when a key is set (through the tagger's client), else the offline proposer;
- ``gemini``: Gemini, with the offline proposer when a call fails (a key is required);
- ``offline``: the offline proposer only; ``off``: no automatic regions (a user's box still works).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError
from .boxes import Region, reading_order
from .offline import BorderProposer

if TYPE_CHECKING:
    from PIL import Image

    from ..config import Settings

log = logging.getLogger(__name__)


class Proposer(Protocol):
    name: str

    def propose(self, image: Image.Image) -> list[Region]: ...


class RegionFinder:
    """Finds the products in a photo; never raises (a proposer's bug means no regions, logged)."""

    def __init__(self, proposer: Proposer | None) -> None:
        self.proposer = proposer

    @property
    def name(self) -> str:
        return getattr(self.proposer, "name", "off")

    def find(self, image: Image.Image, timings: dict[str, float] | None = None) -> list[Region]:
        """Regions in ``image``'s pixels, in reading order; ``timings`` gains "regions" (ms)."""
        if self.proposer is None:
            return []
        start = time.perf_counter()
        try:
            regions = self.proposer.propose(image)
        except Exception:  # a proposer bug must not break a search
            log.warning("region proposer %s failed", self.name, exc_info=True)
            regions = []
        if timings is not None:
            timings["regions"] = (time.perf_counter() - start) * 1000
        return reading_order(regions)


def make_finder(settings: Settings, tagger: Any = None) -> RegionFinder:
    """The finder ``settings.regions`` asks for; Gemini reuses the tagger's client when it has one."""
    mode = settings.regions
    if mode == "off":
        return RegionFinder(None)
    offline = BorderProposer()
    if mode == "offline" or (mode == "auto" and not settings.gemini_api_key):
        return RegionFinder(offline)
    gemini = _gemini_tagger(tagger)
    if gemini is None:
        if not settings.gemini_api_key:
            raise ConfigError("SIMILARITY_REGIONS=gemini needs GEMINI_API_KEY (or GOOGLE_API_KEY).")
        from ..tagging.gemini import GeminiTagger

        gemini = GeminiTagger(settings.gemini_api_key, settings.gemini_model, base_url=settings.gemini_base_url)
    from .gemini import GeminiProposer

    return RegionFinder(GeminiProposer(gemini, offline))


def _gemini_tagger(tagger: Any) -> Any:
    """The Gemini tagger inside the app's tagger (itself, or a fallback chain's primary), if any."""
    for candidate in (tagger, getattr(tagger, "primary", None)):
        if candidate is not None and callable(getattr(candidate, "ask", None)):
            return candidate
    return None
