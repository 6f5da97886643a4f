"""The launched app's MCP server, driven by the real MCP client SDK (streamable HTTP), as an agent would."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

import app
from similarity import images
from similarity.ui import launch_options

from .helpers import image_bytes, make_image
from .test_app_handlers import seeded_service

SEARCH_TOOLS = {"search_image", "search_text", "similar_to", "search_regions"}
MAX_CHARS = 10_000  # what an agent can read in one tool result without truncation


@pytest.fixture(scope="module")
def served(tiny_embedder):
    service = seeded_service(tiny_embedder)
    demo = app.build_demo(service)
    options = {"prevent_thread_lock": True, "server_name": "127.0.0.1", "quiet": True, **launch_options()}
    _, url, _ = demo.launch(mcp_server=True, **options)
    port = httpx.URL(url).port
    service.url_guard = images.UrlGuard(timeout=5, allow_hosts=frozenset({f"127.0.0.1:{port}"}))  # this app only
    try:
        yield url.rstrip("/"), service
    finally:
        demo.close()


def mcp(url: str, work: Callable[[ClientSession], Awaitable[Any]], headers: dict[str, str] | None = None) -> Any:
    """Open a session on the app's MCP endpoint, run ``work`` in it, and return what it returns."""

    async def run() -> Any:
        async with (
            httpx.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(f"{url}/gradio_api/mcp/", http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


def call(app_url: str, tool: str, **arguments: Any):
    return mcp(app_url, lambda session: session.call_tool(tool, arguments))


def answer(result) -> tuple[str, dict]:
    """The tool result's text and the object it spells: JSON text, not a Python literal."""
    assert not result.isError, result.content
    (content,) = result.content
    assert content.type == "text"
    return content.text, json.loads(content.text)


def photo_data_url(rgb=(30, 60, 200)) -> str:
    data = image_bytes(make_image(rgb, (96, 80), shape=1), "PNG")
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_lists_the_search_tools_and_says_what_they_return(served):
    tools = {t.name: t for t in mcp(served[0], lambda s: s.list_tools()).tools}
    assert set(tools) >= SEARCH_TOOLS
    for name in SEARCH_TOOLS:
        description, schema = tools[name].description, tools[name].inputSchema
        assert "Returns:" in description and '"matches"' in description and '"thumbnail"' in description
        assert schema["properties"]["thumbnails"]["enum"] == ["url", "data", "none"]
        assert schema["properties"]["thumbnails"]["default"] == "url"
    assert tools["search_text"].inputSchema["required"] == ["text"]


def test_search_text_is_lean_and_every_thumbnail_link_is_an_image(served):
    url, service = served
    text, result = answer(call(url, "search_text", text="red running shoe", top_k=12))
    assert len(result["matches"]) == 12
    assert len(text) < MAX_CHARS, len(text)
    for match in result["matches"]:
        assert match["thumbnail"].startswith(f"{url}/gradio_api/file=")
        response = httpx.get(match["thumbnail"], timeout=10)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        (product,) = service.store.get([match["id"]])
        assert response.content == product.thumbnail
        assert Image.open(io.BytesIO(response.content)).size[0] > 0


def test_links_follow_the_address_the_agent_used(served):
    """Behind a proxy (a Space) the MCP request's forwarded host and scheme make the links."""
    proxy = {"x-forwarded-host": "shop.example", "x-forwarded-proto": "https"}
    result = mcp(served[0], lambda s: s.call_tool("search_text", {"text": "bag", "top_k": 3}), headers=proxy)
    assert all(m["thumbnail"].startswith("https://shop.example/gradio_api/file=") for m in answer(result)[1]["matches"])


def test_data_and_none_thumbnails_through_mcp(served):
    url = served[0]
    lean, _ = answer(call(url, "search_text", text="bag", top_k=12))
    inline, with_data = answer(call(url, "search_text", text="bag", top_k=12, thumbnails="data"))
    bare, without = answer(call(url, "search_text", text="bag", top_k=12, thumbnails="none"))
    assert all(m["thumbnail"].startswith("data:image/jpeg;base64,") for m in with_data["matches"])
    assert all(m["thumbnail"] is None for m in without["matches"])
    assert len(bare) < len(lean) < len(inline)


def test_search_image_with_a_base64_photo(served):
    text, result = answer(call(served[0], "search_image", image=photo_data_url(), top_k=3, categories=["shoes"]))
    assert len(result["matches"]) == 3 and {m["category"] for m in result["matches"]} == {"shoes"}
    assert result["query"]["kind"] == "image" and len(text) < MAX_CHARS


def test_search_image_by_url_then_more_like_it(served):
    """An agent can feed a result's thumbnail link back in as the query photo, then ask for similar products."""
    url = served[0]
    _, found = answer(call(url, "search_text", text="blue bag", top_k=1))
    first = found["matches"][0]
    _, by_url = answer(call(url, "search_image", url=first["thumbnail"], top_k=3))
    assert len(by_url["matches"]) == 3 and by_url["query"]["kind"] == "image"
    _, similar = answer(call(url, "similar_to", product_id=first["id"], top_k=4))
    assert len(similar["matches"]) == 4 and first["id"] not in {m["id"] for m in similar["matches"]}


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("similar_to", {"product_id": "f" * 64}, "no longer in the catalog"),
        ("similar_to", {"product_id": "  "}, "Give the id of a catalog product"),
        ("search_image", {"url": "http://10.0.0.7/shoe.jpg"}, "private or local network"),
        ("search_image", {"url": "ftp://example.com/a.png"}, "Refused"),
        ("search_image", {"url": "{app}/gradio_api/file=/no/such/photo.jpg"}, "answered with HTTP 403"),
        ("search_image", {}, "Give a photo"),
        ("search_text", {"text": " "}, "Type a description"),
    ],
)
def test_mistakes_are_short_errors_and_the_server_keeps_serving(served, tool, arguments, message):
    url = served[0]
    arguments = {k: v.replace("{app}", url) for k, v in arguments.items()}

    async def work(session: ClientSession):
        return await session.call_tool(tool, arguments), await session.call_tool("search_text", {"text": "bag"})

    failed, after = mcp(url, work)
    assert failed.isError
    (content,) = failed.content
    assert message in content.text and len(content.text) < 200 and "Traceback" not in content.text
    assert len(answer(after)[1]["matches"]) == 12


def test_behind_sign_in_mcp_tools_refuse_instead_of_answering(tiny_embedder):
    """Gradio 6.31's MCP server cannot sign in to an app launched with auth=...: its tools refuse (nothing leaks)."""
    demo = app.build_demo(seeded_service(tiny_embedder))
    options = {"prevent_thread_lock": True, "server_name": "127.0.0.1", "quiet": True, **launch_options()}
    _, url, _ = demo.launch(mcp_server=True, auth=("ada", "correct horse"), ssr_mode=False, **options)
    try:
        refused = call(url.rstrip("/"), "search_text", text="red shoe", top_k=2)
        assert refused.isError and "matches" not in refused.content[0].text
        assert "credentials" in refused.content[0].text and len(refused.content[0].text) < 200
    finally:
        demo.close()


def test_saved_product_tools_ask_for_sign_in_as_the_http_api_does(served):
    """Without a signed-in user (no users file, no Hugging Face session) MCP gets the HTTP API's answer."""
    tools = {t.name for t in mcp(served[0], lambda s: s.list_tools()).tools}
    saved = {"saved_products": {}, "save_product": {"product_id": "f" * 64}, "unsave_product": {"product_id": "f" * 64}}
    if not set(saved) & tools:
        pytest.skip("this build has no saved-product tools")
    for tool, arguments in saved.items():
        refused = call(served[0], tool, **arguments)
        assert refused.isError and refused.content[0].text == "Sign in to save products."


def test_steering_keywords_through_mcp(served):
    url, _ = served
    tools = {t.name: t for t in mcp(url, lambda s: s.list_tools()).tools}
    steering = {"more", "less", "liked", "disliked", "price_min", "price_max", "sort", "within_best"}
    for name in SEARCH_TOOLS:
        assert steering | {"collapse_duplicates"} <= set(tools[name].inputSchema["properties"])
        sort = tools[name].inputSchema["properties"]["sort"]
        assert "reorders only the relevant results" in f"{sort.get('description')} {tools[name].description}"
    top = answer(call(url, "search_text", text="bag", top_k=3))[1]["matches"][0]["id"]
    _, steered = answer(call(url, "search_text", text="bag", top_k=3, disliked=[top], less=["red"], sort="price_asc"))
    assert top not in [m["id"] for m in steered["matches"]] and steered["query"]["steering"]["less"] == ["red"]
