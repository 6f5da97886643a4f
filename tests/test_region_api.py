"""``/search_regions`` through gradio_client, and the MCP tool through the real MCP SDK (JSON text)."""

from __future__ import annotations

import base64
import io
import random
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from similarity.ui import launch_options

from .test_app_handlers import CATALOG, seeded_service
from .test_mcp import answer, call, mcp


def scene_of_catalog_pictures() -> tuple[Image.Image, list[tuple[int, int, int, int]], list[str]]:
    """Four of the seeded catalog's own pictures pasted, unscaled, on a textured table top."""
    from .helpers import make_image

    rng = np.random.default_rng(4)
    table = np.clip(np.array([150, 110, 80]) + rng.normal(0, 12, (300, 360, 3)), 0, 255).astype(np.uint8)
    canvas = Image.fromarray(table, "RGB")
    boxes, names = [], []
    picks = [0, 4, 9, 13]  # shoes, bags, watches, electronics (seed order: three per CATALOG row)
    for slot, index in enumerate(picks):
        n, shape = divmod(index, 3)
        category, brand, color, rgb, _ = CATALOG[n]
        x, y = 30 + (slot % 2) * 180, 30 + (slot // 2) * 140
        canvas.paste(make_image(rgb, (96, 80), shape=shape + n), (x, y))
        boxes.append((x, y, x + 96, y + 80))
        names.append(f"{brand.title()} {color} {category} {shape}")
    return canvas, boxes, names


@pytest.fixture(scope="module")
def served(tiny_embedder, tmp_path_factory):
    service = seeded_service(tiny_embedder, regions="offline")
    demo = app.build_demo(service)
    options = {"prevent_thread_lock": True, "server_name": "127.0.0.1", "quiet": True, **launch_options()}
    _, url, _ = demo.launch(mcp_server=True, **options)
    scene, boxes, names = scene_of_catalog_pictures()
    photo = tmp_path_factory.mktemp("regions") / "table.png"
    scene.save(photo)
    try:
        yield url.rstrip("/"), str(photo), boxes, names
    finally:
        demo.close()


def test_the_endpoint_finds_each_product_and_ranks_each_like_the_page(served):
    url, photo, boxes, _ = served
    client = Client(url, verbose=False)
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/search_regions"]
    assert [p["parameter_name"] for p in params["parameters"]][:5] == ["image", "url", "text", "text_weight", "box"]
    result = client.predict(image=handle_file(photo), top_k=3, api_name="/search_regions")
    assert list(result)[:2] == ["regions", "matches"] and len(result["matches"]) == 3
    assert len(result["regions"]) == 4 and {"decode", "regions", "embed", "rank"} <= set(result["timings_ms"])
    for region in result["regions"]:
        assert region["source"] == "auto" and len(region["matches"]) == 3
        assert region["matches"][0]["thumbnail"].startswith(f"{url}/gradio_api/file=")
        assert region["score"] == region["matches"][0]["score"]
    found = [r["box"] for r in result["regions"]]
    assert all(any(_iou(f, b) >= 0.5 for f in found) for b in boxes)
    shoes = client.predict(image=handle_file(photo), top_k=2, categories=["shoes"], api_name="/search_regions")
    assert all(m["category"] == "shoes" for r in shoes["regions"] for m in r["matches"])
    best = result["regions"][0]["matches"][0]["id"]
    steered = client.predict(image=handle_file(photo), top_k=3, disliked=[best],
                             api_name="/search_regions")  # fmt: skip
    assert len(steered["regions"]) == 4 and steered["query"]["steering"] == {"disliked": [best]}
    for region in steered["regions"]:
        assert best not in {m["id"] for m in region["matches"]} and len(region["matches"]) == 3


def test_a_given_box_finds_its_product_first_and_bad_boxes_are_clear_errors(served):
    url, photo, boxes, names = served
    client = Client(url, verbose=False)
    for box, name in zip(boxes, names, strict=True):
        result = client.predict(image=handle_file(photo), box=",".join(map(str, box)), top_k=1,
                                thumbnails="none", api_name="/search_regions")  # fmt: skip
        (region,) = result["regions"]
        assert region["source"] == "user" and region["box"] == list(box)
        assert region["matches"][0]["name"] == name
    for box, message in (("400,10,500,60", "outside the photo (360x300 pixels)"), ("5,5,5,9", "no area")):
        with pytest.raises(AppError, match=re.escape(message)):
            client.predict(image=handle_file(photo), box=box, api_name="/search_regions")
    with pytest.raises(AppError, match="Give a photo"):
        client.predict(api_name="/search_regions")


def test_the_mcp_tool_answers_json_text(served):
    url, photo, boxes, _ = served
    tools = {t.name: t for t in mcp(url, lambda s: s.list_tools()).tools}
    assert '"regions"' in tools["search_regions"].description
    assert "box" in tools["search_regions"].inputSchema["properties"]
    data = "data:image/png;base64," + base64.b64encode(Path(photo).read_bytes()).decode()
    text, result = answer(call(url, "search_regions", image=data, top_k=2, thumbnails="none"))
    assert text.startswith('{"regions": [') and "None" not in text and "null" in text
    assert len(result["regions"]) == 4 and all(len(r["matches"]) == 2 for r in result["regions"])
    boxed = answer(call(url, "search_regions", image=data, box=",".join(map(str, boxes[0])), top_k=1))[1]
    assert boxed["regions"][0]["source"] == "user"
    failed = call(url, "search_regions", image=data, box="1,2,3")
    assert failed.isError and "four numbers" in failed.content[0].text


def test_a_one_product_photo_says_so_plainly(served):
    url = served[0]
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (random.Random(1).randint(0, 255), 40, 40)).save(buffer, "PNG")
    data = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    result = answer(call(url, "search_regions", image=data, top_k=2, thumbnails="none"))[1]
    assert result["regions"] == [] and "whole photo" in result["note"] and len(result["matches"]) == 2
    assert httpx.get(url, timeout=10).status_code == 200  # still serving


def _iou(a, b) -> float:
    from similarity.regions.boxes import iou

    return iou(a, b)
