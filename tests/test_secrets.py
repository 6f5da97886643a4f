"""Secrets stay secret, and a MongoDB outage is a clear, quick message (not a hang or a traceback).

A distinctive MongoDB password and Gemini key go through every error path we have: settings, the
store, the service, both command lines, the app's start-up, its handlers and UI config, and logs.
The MongoDB URL points at a closed local port (nothing listens), so every store call fails.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import quote

import gradio as gr
import mongomock
import pytest

import app
from similarity.build import build_service
from similarity.config import Settings
from similarity.errors import ConfigError, StoreError
from similarity.search import SearchService
from similarity.store import open_store
from similarity.store.mongo import MongoStore
from similarity.tagging.gemini import GeminiTagger
from similarity.ui.api import SearchApi
from similarity.ui.catalog import CatalogHandlers
from similarity.ui.files import UiFiles
from similarity.ui.handlers import SearchHandlers

from .gemini_stub import GeminiStub, Reply
from .helpers import TINY_ENV, image_bytes, make_image
from .test_app_handlers import seed_catalog, tiny_settings
from .test_store_mongo import patch_mongomock_bulk

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "S3cretPw-q8Zt4"
API_KEY = "AIzaSyFAKE-secret-Key-7Hq2Lm9"
ADMIN = "admin-Tok3n-x1y2"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), API_KEY, ADMIN)
FAST = "serverSelectionTimeoutMS=1500&connectTimeoutMS=1500"  # in-process tests: fail within 1.5 s


def assert_clean(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"a secret leaked into: {str(text)[:300]}"


def full_text(exc: BaseException) -> str:
    """Message, repr and the traceback as it would be printed or logged."""
    return f"{exc}\n{exc!r}\n{''.join(traceback.format_exception(exc))}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def closed_port() -> int:
    return _free_port()  # bound and closed again: nothing listens there afterwards


@pytest.fixture
def mongo_url(closed_port: int) -> str:
    return f"mongodb://shop:{PASSWORD}@127.0.0.1:{closed_port}/catalog?authSource=admin&{FAST}"


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)  # every logger, pymongo's and the SDK's included
    yield caplog
    assert_clean(caplog.text, *(r.getMessage() for r in caplog.records))


def test_settings_repr_masks_the_password_and_hides_keys(mongo_url):
    env = {"SIMILARITY_STORE": mongo_url, "GEMINI_API_KEY": API_KEY, "SIMILARITY_ADMIN_TOKEN": ADMIN}
    settings = Settings.from_env(env)
    assert settings.gemini_api_key == API_KEY and settings.admin_token == ADMIN
    assert "127.0.0.1" in repr(settings) and "****" in repr(settings)
    assert_clean(repr(settings), str(settings), f"{settings}")


def test_store_outage_is_quick_clear_and_masked(mongo_url, closed_port):
    store = open_store(mongo_url)
    assert store.display_url.startswith("mongodb://shop:****@127.0.0.1") and PASSWORD in mongo_url
    start = time.monotonic()
    with pytest.raises(StoreError) as err:
        store.count()
    assert time.monotonic() - start < 10
    assert f"Cannot reach MongoDB at 127.0.0.1:{closed_port}" in str(err.value)
    assert_clean(full_text(err.value), store.display_url, repr(store))
    with pytest.raises(StoreError) as again:  # it tries again on the next call: no stale state
        store.load_vectors()
    assert_clean(full_text(again.value))
    store.close()


def test_service_errors_and_info_keep_secrets(mongo_url, tiny_embedder):
    settings = Settings(store_url=mongo_url, gemini_api_key=API_KEY, admin_token=ADMIN, tagger="off")
    with pytest.raises(StoreError) as at_start:
        build_service(settings, embedder=tiny_embedder)  # start-up checks the catalog's model
    with pytest.raises(StoreError) as choosing:
        SearchService(open_store(mongo_url, settings), tiny_embedder, None, settings)  # auto: asks for the index
    # a service that started while the server was up (exact mode asks nothing at start) and lost it
    exact = dataclasses.replace(settings, mongo_search="exact")
    service = SearchService(open_store(mongo_url, exact), tiny_embedder, None, exact)
    with pytest.raises(StoreError) as searching:
        service.search(text="red bag")
    with pytest.raises(StoreError) as describing:
        service.info()
    for err in (at_start.value, choosing.value, searching.value, describing.value):
        assert "127.0.0.1" in str(err)
        assert_clean(full_text(err))


def test_info_and_result_json_of_a_working_store_keep_secrets(tiny_embedder, monkeypatch):
    patch_mongomock_bulk(monkeypatch)
    url = f"mongodb://shop:{PASSWORD}@db.example.com/catalog"
    store = MongoStore(mongomock.MongoClient(), url=url, search="exact")
    seed_catalog(store, tiny_embedder)
    service = SearchService(store, tiny_embedder, None, tiny_settings(gemini_api_key=API_KEY, admin_token=ADMIN))
    info = service.info()
    assert info["url"] == "mongodb://shop:****@db.example.com/catalog" and info["count"] > 0
    result = service.search(text="red shoes", top_k=3).to_dict(thumbnails=True)
    assert_clean(json.dumps(info), json.dumps(result), repr(service.settings))


def _start(args: list[str], url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, **TINY_ENV, "SIMILARITY_STORE": url, "GEMINI_API_KEY": API_KEY}
    env.update(SIMILARITY_ADMIN_TOKEN=ADMIN, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(_free_port()))
    out = open(log, "w+")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    proc.output = out  # type: ignore[attr-defined]
    return proc


@pytest.mark.slow
def test_command_lines_and_app_start_up_fail_clearly_without_secrets(closed_port, tmp_path):
    # the default timeouts (no FAST options): a dead server must still end each command quickly
    url = f"mongodb://shop:{PASSWORD}@127.0.0.1:{closed_port}/catalog"
    photo = tmp_path / "photos"
    photo.mkdir()
    (photo / "one.png").write_bytes(image_bytes(make_image()))
    logs = tmp_path / "logs"
    logs.mkdir()
    commands = {
        "info": ["-m", "similarity", "info"],
        "search": ["-m", "similarity", "search", str(photo / "one.png"), "--json"],
        "seed": ["-m", "data_seed", "--source", f"folder:{photo}", "--no-progress"],
        "app": ["app.py"],
    }
    start = time.monotonic()
    procs = {
        name: _start(args, url, logs / f"{name}.txt") for name, args in commands.items()
    }  # in parallel: ~6 s imports each
    for name, proc in procs.items():
        try:
            proc.wait(timeout=120)
        finally:
            proc.kill()  # no-op when it has exited
        proc.output.seek(0)
        output = proc.output.read()
        proc.output.close()
        assert proc.returncode not in (0, None), (name, output)
        assert f"Cannot reach MongoDB at 127.0.0.1:{closed_port}" in output, (name, output)
        assert "Traceback" not in output, (name, output)
        assert_clean(output)
    assert time.monotonic() - start < 120


def test_app_handlers_and_ui_config_during_an_outage(mongo_url, tiny_embedder, tmp_path):
    settings = Settings(store_url=mongo_url, gemini_api_key=API_KEY, admin_token=ADMIN, mongo_search="exact")
    service = SearchService(open_store(mongo_url, settings), tiny_embedder, None, settings)
    start = time.monotonic()
    demo = app.build_demo(service)  # builds (the examples need the store; it shows none) within a timeout
    assert time.monotonic() - start < 15
    assert_clean(json.dumps(demo.get_config_file(), default=str))
    files = UiFiles(tmp_path / "ui")
    info = CatalogHandlers(service, files).store_info()
    assert info.startswith("Store information is unavailable: Cannot reach MongoDB at 127")
    assert_clean(info)
    api, handlers = SearchApi(service), SearchHandlers(service, files)
    calls = [
        lambda: api.search_text(text="red bag"),
        lambda: api.similar_to(product_id="abc"),
        lambda: handlers.search(None, None, "red bag", 0.5, 5, 0, [], [], [], []),
        lambda: CatalogHandlers(service, files).browse([], [], [], [], 1),
    ]
    for call in calls:
        with pytest.raises(gr.Error) as err:
            call()
        assert "Cannot reach MongoDB at 127.0.0.1" in err.value.message
        assert_clean(full_text(err.value), err.value.message)


def test_gemini_key_stays_out_of_the_tag_panel_export_and_logs(tiny_embedder, tmp_path):
    echo = Reply.error(400, f"API key not valid. Please pass a valid API key. ({API_KEY})")
    store = open_store("memory://")
    seed_catalog(store, tiny_embedder)
    with GeminiStub([echo]) as stub:
        tagger = GeminiTagger(API_KEY, "stub-model", base_url=stub.url, attempts=1, timeout_s=5)
        service = SearchService(store, tiny_embedder, tagger, tiny_settings(gemini_api_key=API_KEY))
        handlers = SearchHandlers(service, UiFiles(tmp_path / "ui"))
        photo = tmp_path / "query.png"
        make_image((200, 30, 30)).save(photo)
        out = handlers.search(str(photo), None, None, 0.5, 5, 0, [], [], [], [])
        panel, timings = handlers.show_tags(out.session)
        assert stub.calls >= 1 and stub.requests[0].headers.get("x-goog-api-key") == API_KEY
    assert "Could not describe the photo" in panel
    export = Path(out.download).read_text(encoding="utf-8")
    assert_clean(panel, timings, export, out.source, repr(tagger), repr(service.settings))


USER_PASSWORD = "Us3r-Pass-q7Zt9v"


def test_user_passwords_and_hashes_stay_out_of_logs_pages_errors_and_json(tiny_embedder, tmp_path, all_logs):
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from similarity.accounts import Accounts, Users, UsersFile, launch_auth, parse_users
    from similarity.ui import launch_options

    path = tmp_path / "users"
    UsersFile(path).save(Users().with_user("ann", USER_PASSWORD))
    line = next(x for x in path.read_text().splitlines() if x.startswith("ann:"))
    _, salt, digest = line.rsplit("$", 2)
    hidden = (USER_PASSWORD, salt, digest)
    store = open_store("memory://")
    seed_catalog(store, tiny_embedder)
    settings = dataclasses.replace(tiny_settings(), users_file=str(path))
    accounts = Accounts.from_settings(settings)
    demo = app.build_demo(SearchService(store, tiny_embedder, None, settings), accounts)
    options = {**launch_options(), **launch_auth(accounts.users)}
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **options)
    texts: list[str] = [repr(accounts), repr(settings), repr(options["auth"])]
    try:
        with pytest.raises(ValueError) as wrong:
            Client(url, auth=("ann", USER_PASSWORD + "x"), verbose=False)
        texts.append(full_text(wrong.value))
        client = Client(url, auth=("ann", USER_PASSWORD), verbose=False)
        texts.append(httpx.get(url, cookies=client.cookies, timeout=10).text)  # the page
        texts.append(httpx.get(f"{url}config", cookies=client.cookies, timeout=10).text)  # its config
        pid = client.predict(text="bag", top_k=1, api_name="/search_text")["matches"][0]["id"]
        texts.append(json.dumps(client.predict(product_id=pid, api_name="/save_product")))
        texts.append(json.dumps(client.predict(api_name="/saved_products")))
        with pytest.raises(AppError) as refused:
            client.predict(product_id="<nope>", api_name="/save_product")
        texts.append(full_text(refused.value))
    finally:
        demo.close()
    with pytest.raises(ConfigError) as malformed:
        parse_users(f"{line}\n{line[:-4]}$$")  # a broken copy of the line
    texts.append(full_text(malformed.value))
    assert "line 2" in str(malformed.value)
    texts += [all_logs.text, *(r.getMessage() for r in all_logs.records)]
    for text in texts:
        for secret in hidden:
            assert secret not in text, f"a password or hash leaked into: {text[:300]}"
