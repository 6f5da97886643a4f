"""Search per region: the whole photo and every region crop embedded in ONE batched forward pass, then
each ranked with the same arguments (``RankArgs.rank``) as the whole photo.

``RegionSearch.prepare`` decodes, finds the regions (or takes the user's box) and embeds; the
``RegionQuery`` it returns keeps the vectors, so a filter change re-ranks every region without
embedding again (``RegionSearch.rank``). A region's query is the photo's query with its image part
swapped (``SearchService.with_image``), so a text refinement applies to every region alike.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import images
from ..errors import SimilarityError
from ..search import Query, _timed
from .boxes import Region, parse_user_box
from .finder import RegionFinder, make_finder

if TYPE_CHECKING:
    from PIL import Image

    from ..records import SearchResult, Thumbnails
    from ..search import SearchService
    from ..steering import Steering
    from ..ui.ranking import RankArgs

NO_REGIONS = "No separate products found in the photo; these are the whole photo's matches."
ONE_BOX = "Searched the box you drew."


@dataclasses.dataclass
class RegionQuery:
    """A photo's whole-photo query and its regions' vectors (kept per session: re-ranking needs no model)."""

    whole: Query
    regions: list[Region]
    vectors: np.ndarray  # (len(regions), dim), one per region
    size: tuple[int, int]  # the photo's width, height as uploaded (the boxes' pixels)
    picture: Any = dataclasses.field(default=None, repr=False)  # the decoded working image (for crops)
    finder: str = "off"
    timings_ms: dict[str, float] = dataclasses.field(default_factory=dict)

    def crop(self, index: int) -> Image.Image:
        """Region ``index`` cut from the working image."""
        return _crop(self.picture, self.regions[index], self.size)

    def query(self, service: SearchService, index: int | None) -> Query:
        """The query for region ``index`` (None: the whole photo)."""
        if index is None:
            return self.whole
        if not 0 <= index < len(self.regions):
            raise SimilarityError(f"There is no region {index + 1} in this photo.")
        return service.with_image(self.whole, self.vectors[index])


@dataclasses.dataclass
class RegionResult:
    """The whole photo's result and one per region."""

    whole: SearchResult
    regions: list[tuple[Region, SearchResult]]
    timings_ms: dict[str, float]
    note: str = ""

    def to_dict(self, thumbnails: Thumbnails = False) -> dict[str, Any]:
        out = self.whole.to_dict(thumbnails)
        out["regions"] = [_region_dict(region, result, thumbnails) for region, result in self.regions]
        out["timings_ms"] = {k: round(v, 2) for k, v in self.timings_ms.items()}
        out["note"] = self.note or None
        return {"regions": out.pop("regions"), **out}


class RegionSearch:
    """Region search over a ``SearchService``; the finder comes from settings unless given (tests: fakes)."""

    def __init__(self, service: SearchService, finder: RegionFinder | None = None) -> None:
        self.service = service
        self.finder = finder or make_finder(service.settings, service.tagger)

    def prepare(
        self,
        image: images.ImageSource | None = None,
        *,
        url: str | None = None,
        text: str | None = None,
        text_weight: float = 0.5,
        box: Any = None,
        regions: bool = True,
        steering: Steering | None = None,
        whole: Query | None = None,
    ) -> RegionQuery:
        """Decode the photo, find its regions (or take ``box``, "x0,y0,x1,y1" in the photo's pixels) and
        embed the photo and every crop in one forward pass. ``regions=False``: the whole photo only.
        ``steering`` (more of / less of / liked / disliked) applies to the photo and every region alike.
        ``whole``: the photo's query, already embedded (the page's first pass): only the crops are embedded."""
        timings: dict[str, float] = {}
        loaded = self._load(image, url, timings)
        picture, size = loaded.image, loaded.original_size
        if box is not None and str(box).strip():
            found = [Region(parse_user_box(box, size), "user", None, 1.0)]
        elif regions:
            found = [r for r in self._find(picture, size, timings) if r is not None]
        else:
            found = []
        service = self.service
        if not service.embedder.loaded:  # the first query pays the model load; reported apart
            with _timed(timings, "load_model"):
                service.embedder.load()
        pictures = [*([] if whole is not None else [picture]), *(_crop(picture, r, size) for r in found)]
        with _timed(timings, "embed"):
            vectors = embed_once(service.embedder, pictures) if pictures else np.zeros((0, 1), np.float32)
        if whole is None:
            base = service.encode(text=text, text_weight=text_weight) if (text or "").strip() else None
            whole, vectors = self._whole_query(base, vectors[0], text_weight, timings), vectors[1:]
            whole = service.steer(whole, steering) if steering else whole  # regions swap only the image part
        finder = "user" if box is not None and str(box).strip() else self.finder.name
        return RegionQuery(whole, found, vectors, size, picture, finder, timings)

    def rank(self, prepared: RegionQuery, args: RankArgs) -> RegionResult:
        """Rank the whole photo and every region by ``args`` (the kept vectors: no embedding)."""
        start = time.perf_counter()
        whole = args.rank(self.service, prepared.whole)
        per_region = [(r, args.rank(self.service, prepared.query(self.service, i))) for i, r in
                      enumerate(prepared.regions)]  # fmt: skip
        timings = {**prepared.timings_ms, "rank": (time.perf_counter() - start) * 1000}
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        note = "" if per_region else NO_REGIONS
        if prepared.finder == "user":
            note = ONE_BOX
        return RegionResult(whole, per_region, timings, note)

    def search(self, image: images.ImageSource | None = None, *, args: RankArgs, **options: Any) -> RegionResult:
        return self.rank(self.prepare(image, **options), args)

    def _load(self, image: Any, url: str | None, timings: dict[str, float]) -> images.LoadedImage:
        if image is None and url and url.strip():
            with _timed(timings, "download"):
                image = images.fetch_url(url.strip(), self.service.url_guard)
        if image is None:
            raise SimilarityError("Give a photo (image) or an image URL (url) to search its regions.")
        with _timed(timings, "decode"):
            return images.load_image(image)

    def _find(self, picture: Image.Image, size: tuple[int, int], timings: dict[str, float]) -> list[Region | None]:
        scale = (size[0] / picture.width, size[1] / picture.height)
        return [r.scaled(scale[0], scale[1], size) for r in self.finder.find(picture, timings)]

    def _whole_query(self, base: Query | None, vector: np.ndarray, weight: float, timings: dict) -> Query:
        query = base or Query(np.zeros_like(vector), "image", text_weight=weight)
        query = self.service.with_image(query, vector)
        if base is not None:
            timings["embed_text"] = base.timings_ms.get("embed", 0.0)
        return dataclasses.replace(query, timings_ms=dict(timings))


def embed_once(embedder: Any, pictures: list[Image.Image]) -> np.ndarray:
    """All ``pictures`` through the model in one batched forward pass -> (n, dim) normalised float32."""
    import torch

    return embedder.embed_tensors(torch.stack([embedder.preprocess(p) for p in pictures]))


def _crop(picture: Image.Image, region: Region, size: tuple[int, int]) -> Image.Image:
    """Cut ``region`` (pixels of the photo as uploaded) out of the working image (smaller for big photos)."""
    sx, sy = picture.width / size[0], picture.height / size[1]
    x0, y0, x1, y1 = region.box
    box = (int(x0 * sx), int(y0 * sy), max(int(x0 * sx) + 1, round(x1 * sx)), max(int(y0 * sy) + 1, round(y1 * sy)))
    return picture.crop(box)


def _region_dict(region: Region, result: SearchResult, thumbnails: Thumbnails) -> dict[str, Any]:
    best = result.matches[0].score if result.matches else None
    out = region.to_dict()
    out.update(score=None if best is None else round(float(best), 6))
    out["matches"] = [m.to_dict(thumbnails) for m in result.matches]
    return out
