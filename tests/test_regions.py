"""Regions of a query photo: box validation, NMS, the offline proposer on generated scenes, Gemini boxes
through the local stub (the real google-genai client), and the choice by SIMILARITY_REGIONS."""

from __future__ import annotations

import json
import logging
import random

import pytest
from PIL import Image

from data_seed.scenes import full_bleed, grid_scene, pair_scene, product_pictures, single_scene
from similarity.config import Settings
from similarity.errors import ConfigError, SimilarityError
from similarity.regions.boxes import MAX_REGIONS, Region, clean_box, iou, parse_user_box, reading_order, suppress
from similarity.regions.finder import RegionFinder, make_finder
from similarity.regions.gemini import GeminiProposer, parse_boxes
from similarity.regions.offline import BorderProposer
from similarity.tagging.gemini import GeminiTagger

from .gemini_stub import GeminiStub, Reply

KEY = "AIzaFAKE-regions-k3y-never-show-me"


@pytest.fixture(scope="module")
def pictures():
    return product_pictures()


def localised(scene, regions) -> int:
    """How many placed products some region finds (IoU >= 0.5 with the placed image or the product in it)."""
    return sum(
        any(iou(r.box, placed) >= 0.5 or iou(r.box, visible) >= 0.5 for r in regions)
        for placed, visible in zip(scene.placed, scene.visible, strict=True)
    )


# -- boxes ---------------------------------------------------------------------------------------
def test_clean_box_clamps_straightens_and_drops():
    assert clean_box((10, 20, 50, 60), (100, 100)) == (10, 20, 50, 60)
    assert clean_box((50, 60, 10, 20), (100, 100)) == (10, 20, 50, 60)  # inverted corners swapped
    assert clean_box((-30, -5, 500, 80.4), (100, 90)) == (0, 0, 100, 81)  # clamped, rounded outwards
    assert clean_box((5, 5, 5, 40), (100, 100)) is None  # no width
    assert clean_box((0, 0, 3, 3), (100, 100), min_side=4) is None
    assert clean_box((200, 200, 300, 300), (100, 100)) is None  # wholly outside
    for garbage in (None, "abc", (1, 2, 3), (1, 2, 3, "x"), (0, 0, float("nan"), 5), (0, 0, float("inf"), 5)):
        assert clean_box(garbage, (100, 100)) is None


def test_a_users_box_outside_the_photo_or_without_area_is_a_clear_error():
    assert parse_user_box("10,20,50,60", (100, 100)) == (10, 20, 50, 60)
    assert parse_user_box(" 50 ; 60 ; 10 ; 20 ", (100, 100)) == (10, 20, 50, 60)
    assert parse_user_box([90, 90, 150, 150], (100, 100)) == (90, 90, 100, 100)  # partly outside: clamped
    with pytest.raises(SimilarityError, match="outside the photo \\(100x80 pixels\\)"):
        parse_user_box("120,10,200,50", (100, 80))
    with pytest.raises(SimilarityError, match="no area"):
        parse_user_box("10,10,10,50", (100, 80))
    for garbage in ("", "1,2,3", "a,b,c,d", "1,2,3,nan", None, 5):
        with pytest.raises(SimilarityError, match="four numbers"):
            parse_user_box(garbage, (100, 80))


def test_suppress_keeps_the_best_of_overlapping_boxes_and_at_most_eight():
    a, b = Region((0, 0, 100, 100), confidence=0.9), Region((5, 5, 100, 100), confidence=0.5)
    c = Region((200, 0, 300, 100), confidence=0.7)
    assert suppress([b, c, a]) == [a, c]
    many = [Region((i * 20, 0, i * 20 + 10, 10), confidence=i / 20) for i in range(20)]
    kept = suppress(many)
    assert len(kept) == MAX_REGIONS and kept[0].confidence == max(r.confidence for r in many)


def test_reading_order_numbers_rows_left_to_right():
    boxes = [(300, 10, 400, 100), (10, 220, 100, 300), (10, 0, 100, 110), (300, 200, 400, 320)]
    ordered = [r.box for r in reading_order(Region(b) for b in boxes)]
    assert ordered == [boxes[2], boxes[0], boxes[1], boxes[3]]


def test_a_region_scales_into_another_pixel_grid():
    region = Region((10, 20, 30, 40), "auto", "bag", 0.5)
    assert region.scaled(2.0, 2.0, (100, 100)) == Region((20, 40, 60, 80), "auto", "bag", 0.5)
    assert region.scaled(2.0, 2.0, (50, 50)).box == (20, 40, 50, 50)
    assert region.to_dict() == {"box": [10, 20, 30, 40], "source": "auto", "label": "bag", "confidence": 0.5}


# -- the offline proposer --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["white", "texture", "gradient"])
@pytest.mark.parametrize("layout", ["grid", "pair"])
def test_offline_proposer_localises_products_in_grids_and_pairs_at_different_scales(pictures, layout, kind):
    """2x2 grids, and pairs at different scales, on plain, textured and gradient backgrounds: >= 90%."""
    rng = random.Random(f"{layout}-{kind}")
    found = total = 0
    for seed in range(8):
        if layout == "grid":
            scene = grid_scene(rng.sample(pictures, 4), kind, seed=seed)
        else:
            scene = pair_scene(rng.sample(pictures, 2), kind, seed=seed)
        regions = BorderProposer().propose(scene.image)
        assert len(regions) <= len(scene.placed) + 1
        found, total = found + localised(scene, regions), total + len(scene.placed)
    assert found >= 0.9 * total, f"{found} of {total} products localised in {layout}s on {kind}"


def test_full_bleed_products_are_found_as_their_whole_pictures(pictures):
    rng = random.Random("bleed")
    found = total = 0
    for seed in range(6):
        scene = grid_scene([(k, full_bleed(p)) for k, p in rng.sample(pictures, 4)], "texture", seed=seed)
        regions = BorderProposer().propose(scene.image)
        found += sum(any(iou(r.box, placed) >= 0.5 for r in regions) for placed in scene.placed)  # the image itself
        total += 4
    assert found >= 0.9 * total


def test_a_single_clean_product_shot_gets_no_regions(pictures):
    extra = [key for key, picture in pictures if BorderProposer().propose(single_scene(key, picture).image)]
    assert extra == [], f"single-product shots given regions: {extra}"


def test_plain_photos_and_odd_sizes_give_no_regions_and_no_error():
    for picture in (
        Image.new("RGB", (640, 480), "white"),
        Image.new("RGB", (1, 1), "red"),
        Image.new("RGB", (3, 900), "blue"),
        Image.new("L", (200, 100), 128),
        Image.new("RGBA", (120, 90), (0, 0, 0, 0)),
    ):
        assert BorderProposer().propose(picture) == []


def test_regions_come_back_in_the_photos_own_pixels(pictures):
    scene = grid_scene(random.Random(5).sample(pictures, 4), "white", size=1600, seed=3)
    regions = BorderProposer().propose(scene.image)
    assert len(regions) >= 3
    assert all(r.box[2] <= 1600 and r.box[3] <= 1600 and r.source == "auto" for r in regions)
    assert localised(scene, regions) >= 3


# -- Gemini boxes ----------------------------------------------------------------------------------
def boxes_reply(items) -> Reply:
    return Reply.text(json.dumps(items))


def gemini(stub: GeminiStub) -> GeminiProposer:
    tagger = GeminiTagger(KEY, "gemini-test", base_url=stub.url, initial_delay_s=0.05, max_delay_s=0.1, attempts=1)
    return GeminiProposer(tagger, BorderProposer())


def test_gemini_boxes_are_converted_to_pixels_through_the_real_client(caplog):
    photo = Image.new("RGB", (800, 400), "white")
    answer = [
        {"box_2d": [100, 50, 500, 400], "label": "red  backpack"},
        {"box_2d": [600, 900, 200, 500], "label": "shoe"},  # inverted: straightened
        {"box_2d": [0, 0, 1000], "label": "three numbers"},  # dropped
        {"box_2d": ["a", 1, 2, 3], "label": "text"},  # dropped
        {"box_2d": [10, 10, 12, 12], "label": "a speck"},  # too small: dropped
        {"label": "no box"},  # dropped
        "not an object",  # dropped
    ]
    with caplog.at_level(logging.WARNING), GeminiStub([boxes_reply(answer)]) as stub:
        proposer = gemini(stub)
        regions = proposer.propose(photo)
        assert proposer.propose(photo) == regions and stub.calls == 1  # cached by the photo's hash
        body = stub.requests[0].body
    assert sorted((r.box, r.label, r.source) for r in regions) == [
        ((40, 40, 320, 200), "red backpack", "gemini"),
        ((400, 80, 720, 240), "shoe", "gemini"),
    ]
    assert "dropped 5 unusable Gemini region box(es) of 7" in caplog.text
    schema = body["generationConfig"]["responseSchema"]
    assert schema["type"] == "ARRAY" and "box_2d" in schema["items"]["properties"]
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    "text",
    ["not json at all", json.dumps({"boxes": 5}), json.dumps([{"box_2d": [0, 0, 1000, 1000], "label": "all"}]), "[]"],
)
def test_garbage_or_single_answers_give_no_regions_and_no_error(text):
    with GeminiStub([Reply.text(text)]) as stub:
        assert gemini(stub).propose(Image.new("RGB", (300, 200), "white")) == []


def test_a_failed_gemini_call_falls_back_to_the_offline_proposer_with_a_log_line(caplog, pictures):
    scene = grid_scene(random.Random(2).sample(pictures, 4), "white", seed=1)
    with caplog.at_level(logging.WARNING), GeminiStub([Reply.error(500)]) as stub:
        proposer = gemini(stub)
        regions = proposer.propose(scene.image)
        proposer.propose(scene.image)
        calls = stub.calls
    assert regions and all(r.source == "auto" for r in regions)
    assert calls == 2  # failures are not cached
    assert "Gemini region boxes failed (Gemini is unavailable (HTTP 500).); using the offline proposer" in caplog.text


def test_parse_boxes_tolerates_any_shape():
    for answer in (None, 5, "x", {"box_2d": "no"}, [None, [], {}], [{"box_2d": [1, 2, 3, 4, 5]}]):
        assert parse_boxes(answer, (100, 100)) == []


# -- choosing the proposer -------------------------------------------------------------------------
def test_regions_setting_chooses_the_proposer():
    assert Settings.from_env({"SIMILARITY_REGIONS": "OFFLINE"}).regions == "offline"
    with pytest.raises(ConfigError, match="SIMILARITY_REGIONS='sometimes'"):
        Settings.from_env({"SIMILARITY_REGIONS": "sometimes"})
    assert make_finder(Settings(regions="off")).name == "off"
    assert make_finder(Settings(regions="auto")).name == "auto"  # no key: offline
    assert make_finder(Settings(regions="auto", gemini_api_key=KEY)).name == "gemini"
    assert make_finder(Settings(regions="offline", gemini_api_key=KEY)).name == "auto"
    with pytest.raises(ConfigError, match="needs GEMINI_API_KEY"):
        make_finder(Settings(regions="gemini"))


def test_a_broken_proposer_means_no_regions_not_an_error(caplog):
    class Broken:
        name = "broken"

        def propose(self, image):
            raise RuntimeError("bug")

    timings: dict[str, float] = {}
    assert RegionFinder(Broken()).find(Image.new("RGB", (10, 10)), timings) == []
    assert "region proposer broken failed" in caplog.text and "regions" in timings
