"""``python -m similarity search IMAGE --regions [--json]`` and ``--box``, run as a user runs them."""

from __future__ import annotations

import json

import pytest

from data_seed.scenes import full_bleed, grid_scene, product_pictures

from .test_cli import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("products")
    chosen = [(k, full_bleed(p)) for k, p in product_pictures()[::13][:4]]
    for key, picture in chosen:
        picture.save(folder / f"{key.split('/')[1]}")
    scene = grid_scene(chosen, "texture", seed=3)
    photo = tmp_path_factory.mktemp("query") / "scene.png"
    scene.image.save(photo)
    store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'c.db'}"
    done = run("-m", "data_seed", "--source", f"folder:{folder}", "--no-progress", store=store)
    assert done.returncode == 0, done.stderr
    return scene, str(photo), store


def test_regions_json_has_the_endpoints_keys(seeded):
    _, photo, store = seeded
    done = run("-m", "similarity", "search", photo, "--regions", "--json", "--top-k", "2", store=store)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert list(data)[:2] == ["regions", "matches"] and "timings_ms" in data
    assert len(data["regions"]) >= 3 and len(data["matches"]) == 2
    for region in data["regions"]:
        assert region["source"] == "auto" and len(region["box"]) == 4 and len(region["matches"]) == 2
        assert region["score"] == region["matches"][0]["score"]


def test_a_box_searches_just_that_and_a_bad_box_is_a_clear_error(seeded):
    scene, photo, store = seeded
    key, box = scene.keys[2], ",".join(map(str, scene.placed[2]))
    done = run("-m", "similarity", "search", photo, "--box", box, "--json", store=store)
    assert done.returncode == 0, done.stderr
    (region,) = json.loads(done.stdout)["regions"]
    assert region["source"] == "user" and region["matches"][0]["name"] == key.split("/")[1][:-4].replace("-", " ")
    table = run("-m", "similarity", "search", photo, "--regions", store=store)
    assert table.returncode == 0 and "whole photo" in table.stdout and "region 1 [" in table.stdout
    bad = run("-m", "similarity", "search", photo, "--box", "900,900,950,950", store=store)
    assert (
        bad.returncode == 1
        and bad.stderr.strip() == "error: The box 900,900,950,950 lies outside the photo (800x800 pixels)."
    )
