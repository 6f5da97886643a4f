"""Thumbnails in API results: links the launched app serves, data URLs or none; nothing else leaks."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from urllib.parse import quote

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from similarity.search import SearchService
from similarity.ui import build_blocks, launch_options
from similarity.ui.api import SearchApi
from similarity.ui.files import UiFiles

from .test_app_handlers import seeded_service

SECRET = "not-a-thumbnail-7f3a"


def _launch(service: SearchService, files: UiFiles, **options):
    demo = build_blocks(service, files)
    options = {"prevent_thread_lock": True, "server_name": "127.0.0.1", "quiet": True, **launch_options(), **options}
    _, url, _ = demo.launch(**options)
    return demo, url


@pytest.fixture(scope="module")
def service(tiny_embedder) -> SearchService:
    return seeded_service(tiny_embedder)


@pytest.fixture(scope="module")
def served(service, tmp_path_factory):
    files = UiFiles(tmp_path_factory.mktemp("ui"))
    demo, url = _launch(service, files)
    try:
        yield url, files
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(served) -> Client:
    return Client(served[0], verbose=False)


def _image(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def test_default_thumbnails_are_links_the_app_serves(served, client, service):
    url, _ = served
    result = client.predict(text="red running shoe", top_k=12, api_name="/search_text")
    links = [m["thumbnail"] for m in result["matches"]]
    assert len(links) == 12 and all(link.startswith(f"{url.rstrip('/')}/gradio_api/file=") for link in links)
    for link, match in zip(links, result["matches"], strict=True):
        response = httpx.get(link, timeout=10)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert _image(response.content).format == "JPEG"
        (stored,) = service.store.get([match["id"]])
        assert response.content == stored.thumbnail  # the product's own stored thumbnail, byte for byte


@pytest.mark.parametrize("endpoint", ["/search_text", "/search_image", "/similar_to"])
def test_every_endpoint_takes_the_three_modes(client, served, endpoint, tmp_path):
    first = client.predict(text="blue bag", top_k=1, thumbnails="none", api_name="/search_text")["matches"][0]
    photo = tmp_path / "q.png"
    Image.new("RGB", (64, 64), (20, 40, 200)).save(photo)
    base = {
        "/search_text": {"text": "blue bag"},
        "/search_image": {"image": handle_file(str(photo))},
        "/similar_to": {"product_id": first["id"]},
    }[endpoint]
    sizes = {}
    for mode in ("url", "data", "none"):
        result = client.predict(**base, top_k=5, thumbnails=mode, api_name=endpoint)
        thumbs = [m["thumbnail"] for m in result["matches"]]
        assert len(thumbs) == 5 and all("thumbnail" in m for m in result["matches"])
        if mode == "url":
            assert all(t.startswith(served[0].rstrip("/") + "/gradio_api/file=") for t in thumbs)
        elif mode == "data":
            assert all(t.startswith("data:image/jpeg;base64,") for t in thumbs)
            assert _image(base64.b64decode(thumbs[0].split(",", 1)[1])).format == "JPEG"
        else:
            assert thumbs == [None] * 5
        sizes[mode] = len(json.dumps(result))
    assert sizes["none"] < sizes["url"] < sizes["data"]


def test_unknown_mode_is_a_short_error(client):
    with pytest.raises(AppError) as caught:
        client.predict(text="bag", thumbnails="base64", api_name="/search_text")
    assert "thumbnails" in str(caught.value) or "choices" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_links_follow_the_address_the_client_used(served):
    """Behind a proxy (a Space, a share link) the link is built from the forwarded host and scheme."""
    proxy = {"x-forwarded-host": "shop.example", "x-forwarded-proto": "https"}
    proxied = Client(served[0], verbose=False, headers=proxy)
    result = proxied.predict(text="bag", top_k=2, api_name="/search_text")
    assert all(m["thumbnail"].startswith("https://shop.example/gradio_api/file=") for m in result["matches"])


def _tricks(link: str, files: UiFiles) -> list[str]:
    """URLs that try to reach other files through the thumbnail route."""
    base, path = link.split("/gradio_api/file=", 1)
    route = f"{base}/gradio_api/file="
    thumbs = files.thumbs_dir
    export = Path(files.export_json({"secret": SECRET}))  # a real file in the UI folder, outside thumbs/
    outside = files.root / "secret.txt"
    outside.write_text(SECRET)
    (thumbs / "planted.jpg").symlink_to(outside)  # a link inside thumbs/ pointing out of it
    relative = export.relative_to(files.root)
    return [
        route + quote(f"{thumbs}/../{relative}"),
        route + f"{thumbs}/..%2f{quote(str(relative))}",
        route + f"{thumbs}/%2e%2e/secret.txt",
        route + quote(f"{thumbs}/../secret.txt"),
        route + quote(str(outside)),
        route + quote(str(export)),
        route + quote(str(thumbs / "planted.jpg")),
        route + quote(str(thumbs)),
        route + "/etc/passwd",
        route + quote(f"{thumbs}/../../../../../../etc/passwd"),
        route + "file:///etc/passwd",
        route + quote(path) + "/../../secret.txt",
    ]


def test_the_route_serves_nothing_but_thumbnails(served, client):
    files = served[1]
    link = client.predict(text="bag", top_k=1, api_name="/search_text")["matches"][0]["thumbnail"]
    assert httpx.get(link, timeout=10).status_code == 200
    for trick in _tricks(link, files):
        response = httpx.get(trick, timeout=10)
        assert response.status_code in (403, 404), trick
        assert SECRET not in response.text and "root:" not in response.text, trick


def test_links_need_the_same_sign_in_as_the_app(service, tmp_path):
    files = UiFiles(tmp_path / "ui")
    demo, url = _launch(service, files, auth=("ada", "correct horse"), ssr_mode=False)
    try:
        signed_in = Client(url, verbose=False, auth=("ada", "correct horse"))
        link = signed_in.predict(text="bag", top_k=1, api_name="/search_text")["matches"][0]["thumbnail"]
        assert httpx.get(link, timeout=10).status_code in (401, 403)  # no session: refused
        with_session = httpx.get(link, cookies=signed_in.cookies, timeout=10)
        assert with_session.status_code == 200 and _image(with_session.content).format == "JPEG"
    finally:
        demo.close()


def test_called_without_a_server_links_fall_back_to_data_urls(service, tmp_path):
    """A script calling SearchApi directly has no address to link to: it gets self-contained data URLs."""
    api = SearchApi(service, UiFiles(tmp_path / "ui"))
    matches = api.search_text(text="bag", top_k=2)["matches"]
    assert all(m["thumbnail"].startswith("data:image/jpeg;base64,") for m in matches)
    assert [m["thumbnail"] for m in api.search_text(text="bag", top_k=2, thumbnails="none")["matches"]] == [None] * 2
    with pytest.raises(gr.Error, match="thumbnails must be one of url, data, none"):
        api.search_text(text="bag", thumbnails="links")
