"""Search per region over a catalog of full-bleed generated products (the tight box is the picture):
one forward pass, per-region matches under the page's filters, re-ranking from the kept vectors."""

from __future__ import annotations

import io
import json
import random

import pytest
from PIL import Image

from data_seed.scenes import full_bleed, grid_scene, pair_scene, product_pictures
from similarity.config import Settings
from similarity.errors import SimilarityError
from similarity.ingest import IngestItem, Ingestor
from similarity.regions.boxes import Region
from similarity.regions.finder import RegionFinder
from similarity.regions.search import NO_REGIONS, RegionSearch
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.ranking import RankArgs

from . import test_app_handlers as handlers_test
from .helpers import TINY_MODEL, image_bytes


class CountingEmbedder(handlers_test.CountingEmbedder):
    """The real tiny embedder, counting forward passes at the embedder seam (and their batch sizes)."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.sizes: list[int] = []

    @property
    def passes(self) -> int:
        return self.calls

    def embed_tensors(self, batch):
        self.calls += 1
        self.sizes.append(len(batch))
        return self.inner.embed_tensors(batch)


class FixedProposer:
    name = "fixed"

    def __init__(self, regions):
        self.regions = regions

    def propose(self, image):
        return list(self.regions)


@pytest.fixture(scope="module")
def products():
    """(key, full-bleed picture, category) for the demo catalog's products."""
    return [(k, full_bleed(p), k.split("/")[1].rsplit("-", 1)[0]) for k, p in product_pictures()]


@pytest.fixture(scope="module")
def catalog(tiny_embedder, products):
    store = open_store("memory://")
    items = [
        IngestItem(key, _reader(picture), {"name": key, "category": category}) for key, picture, category in products
    ]
    assert Ingestor(store, tiny_embedder).run(items).added == len(products)
    return store


def _reader(picture: Image.Image):
    data = image_bytes(picture)
    return lambda: data


def service_over(catalog, embedder, regions="offline") -> SearchService:
    settings = Settings(clip_model=TINY_MODEL, clip_pretrained="none", store_url="memory://", regions=regions)
    return SearchService(catalog, embedder, None, settings)


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def test_every_exact_box_finds_its_product_first(catalog, tiny_embedder, products):
    search = RegionSearch(service_over(catalog, tiny_embedder))
    rng = random.Random("exact")
    pairs = [(k, p) for k, p, _ in products]
    scenes = [grid_scene(rng.sample(pairs, 4), kind, seed=i) for i, kind in enumerate(["white", "texture"] * 3)]
    scenes += [pair_scene(rng.sample(pairs, 2), "gradient", seed=i) for i in range(4)]
    checked = 0
    for scene in scenes:
        data = png(scene.image)
        for key, placed in zip(scene.keys, scene.placed, strict=True):
            result = search.search(data, args=RankArgs.of(3), box=",".join(map(str, placed)))
            ((region, found),) = result.regions
            assert region.source == "user" and region.box == placed
            assert found.matches[0].product.name == key, f"{key} in {scene.kind} box {placed}"
            checked += 1
    assert checked == 6 * 4 + 4 * 2


def test_the_photo_and_all_regions_take_one_forward_pass(catalog, tiny_embedder, products):
    counting = CountingEmbedder(tiny_embedder)
    boxes = [(0, 0, 50, 50), (50, 0, 100, 50), (0, 50, 100, 100)] + [(i * 10, 0, i * 10 + 9, 9) for i in range(5)]
    finder = RegionFinder(FixedProposer([Region(b) for b in boxes]))
    search = RegionSearch(service_over(catalog, counting), finder)
    photo = png(products[0][1].resize((100, 100)))
    prepared = search.prepare(photo)
    assert counting.passes == 1 and counting.sizes == [1 + 8]  # the tiny fixture's batch size is 8
    assert prepared.vectors.shape == (8, tiny_embedder.dim)
    with_text = search.prepare(photo, text="red", text_weight=0.3)
    assert counting.passes == 3 and counting.sizes[1] == 9  # + one pass for the text
    assert with_text.whole.kind == "image+text" and with_text.query(search.service, 2).kind == "image+text"


def test_each_region_gets_its_own_matches_under_the_same_filters(catalog, tiny_embedder, products):
    counting = CountingEmbedder(tiny_embedder)
    search = RegionSearch(service_over(catalog, counting))
    by_category = {}
    for key, picture, category in products:
        by_category.setdefault(category, (key, picture))
    chosen = [by_category[c] for c in ("bags", "shoes", "watches", "snacks")]
    scene = grid_scene(chosen, "white", seed=4)
    prepared = search.prepare(png(scene.image))
    assert len(prepared.regions) >= 3 and all(r.source == "auto" for r in prepared.regions)
    result = search.rank(prepared, RankArgs.of(5))
    assert len(result.regions) == len(prepared.regions)
    for _, found in result.regions:
        assert len(found.matches) == 5
        scores = [m.score for m in found.matches]
        assert scores == sorted(scores, reverse=True)
    passes = counting.passes
    shoes = search.rank(prepared, RankArgs.of(4, categories=["shoes"]))  # a filter change: kept vectors
    assert counting.passes == passes
    for _, found in [(None, shoes.whole), *shoes.regions]:
        assert found.matches and {m.product.category for m in found.matches} == {"shoes"} and len(found.matches) == 4
    data = result.to_dict()
    assert list(data)[:2] == ["regions", "matches"] and {"timings_ms", "facets", "model"} <= set(data)
    first = data["regions"][0]
    assert set(first) >= {"box", "source", "label", "score", "matches"}
    assert first["score"] == first["matches"][0]["score"]
    assert {"decode", "regions", "embed", "rank", "total"} <= set(data["timings_ms"])
    json.dumps(data)  # plain JSON


def test_a_single_product_photo_is_the_whole_photo_said_plainly(catalog, tiny_embedder, products):
    search = RegionSearch(service_over(catalog, tiny_embedder))
    key, picture, _ = products[7]
    result = search.search(png(picture), args=RankArgs.of(3))
    assert result.regions == [] and result.note == NO_REGIONS
    assert result.whole.matches[0].product.name == key
    plain = search.search(search_photo := png(Image.new("RGB", (300, 200), "white")), args=RankArgs.of(3))
    assert plain.regions == [] and plain.to_dict()["note"] == NO_REGIONS and search_photo


def test_bad_boxes_and_missing_photos_are_clear_errors(catalog, tiny_embedder, products):
    search = RegionSearch(service_over(catalog, tiny_embedder))
    photo = png(products[0][1])  # 384 wide
    for box, message in (
        ("500,10,600,50", "outside the photo"),
        ("10,10,10,50", "no area"),
        ("1,2,3", "four numbers"),
    ):
        with pytest.raises(SimilarityError, match=message):
            search.prepare(photo, box=box)
    with pytest.raises(SimilarityError, match="Give a photo"):
        search.prepare(None)
    with pytest.raises(SimilarityError):
        search.prepare(b"not an image")
    with pytest.raises(SimilarityError, match="no region 3"):
        search.prepare(photo, box="0,0,10,10").query(search.service, 2)


def test_boxes_are_in_the_uploaded_photos_pixels_even_when_it_is_shrunk(catalog, tiny_embedder, products):
    search = RegionSearch(service_over(catalog, tiny_embedder))
    pairs = [(k, p) for k, p, _ in products]
    scene = grid_scene(random.Random(9).sample(pairs, 4), "white", size=2000, seed=2)  # decoded smaller
    prepared = search.prepare(png(scene.image))
    assert prepared.size == (2000, 2000) and max(prepared.picture.size) <= 1024
    assert len(prepared.regions) >= 3 and max(r.box[2] for r in prepared.regions) > 1024
    placed = scene.placed[1]
    boxed = search.search(png(scene.image), args=RankArgs.of(3), box=placed)
    assert boxed.regions[0][0].box == placed and boxed.note


def test_regions_off_still_searches_a_users_box(catalog, tiny_embedder, products):
    search = RegionSearch(service_over(catalog, tiny_embedder, regions="off"))
    photo = png(grid_scene([(k, p) for k, p, _ in products[:4]], "white", seed=1).image)
    assert search.prepare(photo).regions == [] and search.finder.name == "off"
    assert len(search.prepare(photo, box="0,0,400,400").regions) == 1
