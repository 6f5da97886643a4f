"""The app's first start: an empty catalog seeds in the background while searches answer on what is there."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import seed_if_empty
from data_seed import seed_source
from data_seed.fetch import UrlImages
from data_seed.first_start import FirstStartSeeder
from data_seed.options import DatasetOptions
from similarity.config import Settings
from similarity.errors import ConfigError, SimilarityError
from similarity.images import UrlGuard
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui import format as fmt

from .helpers import image_bytes, make_image

URL_OPTIONS = DatasetOptions(columns=(("name", "title"), ("category", "group"), ("image", "url")))


class GatedServer:
    """Serves /img/N.png; images from ``open_until`` on wait for ``gate`` (so a test can look mid-seeding)."""

    def __init__(self, open_until: int) -> None:
        self.gate = threading.Event()
        gate = self.gate

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                n = int(self.path.rsplit("/", 1)[1].split(".")[0])
                if n >= open_until:
                    gate.wait(20)
                body = image_bytes(make_image((25 * n % 256, 80, 160), shape=n))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        port = self.httpd.server_port
        self.base = f"http://127.0.0.1:{port}"
        self.guard = UrlGuard(timeout=30.0, allow_hosts=frozenset({f"127.0.0.1:{port}"}))


@pytest.fixture
def gated() -> Iterator[GatedServer]:
    server = GatedServer(open_until=4)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.gate.set()
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join(timeout=5)


def write_urls(root, base: str, n: int = 8) -> None:
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_dict(
        {
            "title": [f"Item {i}" for i in range(n)],
            "group": ["Footwear", "Handbags"] * (n // 2),
            "url": [f"{base}/img/{i}.png" for i in range(n)],
        }
    )
    root.mkdir(parents=True)
    table.to_parquet(str(root / "train.parquet"))


def wait_for(check, seconds: float = 30.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_background_seeding_reports_progress_and_searches_answer_meanwhile(tmp_path, tiny_embedder, gated):
    write_urls(tmp_path / "ds", gated.base)
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    service = SearchService(store, tiny_embedder)
    seeder = FirstStartSeeder(
        store, tiny_embedder, f"hf:{tmp_path / 'ds'}", limit=8, options=URL_OPTIONS,
        urls=UrlImages(gated.guard, interval=0.0), batch_size=2,
    )  # fmt: skip
    started = time.monotonic()
    thread = seeder.start()
    assert time.monotonic() - started < 1.0  # start() returns at once; the page can be served
    assert wait_for(lambda: store.count() >= 2)
    status = seeder.status()
    assert status.state == "seeding" and status.total == 8 and 2 <= status.done < 8
    line = fmt.loading_status(True, None, "ready", status.as_dict())
    assert line.startswith(f"⏳ Seeding the catalog: {status.done} of 8 products")
    result = service.search(text="a red shoe", top_k=10)  # answers on what has been seeded so far
    assert 2 <= len(result.matches) < 8
    gated.gate.set()
    thread.join(timeout=60)
    assert not thread.is_alive() and seeder.status().state == "done" and seeder.status().notice == ""
    assert store.count() == 8 and len(service.search(text="a red shoe", top_k=10).matches) == 8
    assert fmt.loading_status(True, None, "ready", seeder.status().as_dict()) == ""
    assert {p.category for batch in store.iter_products(vectors=False) for p in batch} == {"shoes", "bags"}


def test_a_failing_source_falls_back_to_the_demo_with_a_notice(tmp_path, tiny_embedder, caplog):
    store = open_store("memory://")
    seeder = FirstStartSeeder(store, tiny_embedder, f"hf:{tmp_path / 'gone.parquet'}", limit=5)
    seeder.start().join(timeout=120)
    status = seeder.status()
    assert status.state == "done" and status.source == "demo" and store.count() == 54
    assert "the demo catalog was seeded instead" in status.notice and "Could not load the dataset" in status.notice
    assert any("Seeding the demo catalog instead" in r.getMessage() for r in caplog.records)
    line = fmt.loading_status(True, None, "ready", status.as_dict())
    assert line.startswith("⚠️ Could not seed the catalog from hf:") and "demo catalog was seeded instead" in line


def test_a_source_that_adds_nothing_also_falls_back(tmp_path, tiny_embedder, gated):
    datasets = pytest.importorskip("datasets")
    (tmp_path / "ds").mkdir()
    datasets.Dataset.from_dict({"title": ["x"], "url": ["http://10.0.0.1/private.png"]}).to_parquet(
        str(tmp_path / "ds" / "train.parquet")
    )
    store = open_store("memory://")
    options = DatasetOptions(columns=(("name", "title"), ("image", "url")))
    seeder = FirstStartSeeder(store, tiny_embedder, f"hf:{tmp_path / 'ds'}", options=options, urls=UrlImages())
    seeder.run()
    assert store.count() == 54 and "nothing could be added" in seeder.status().notice


def test_a_stopped_seeding_ends_early_and_keeps_what_it_stored(tmp_path, tiny_embedder):
    store = open_store("memory://")
    stop = threading.Event()
    stop.set()
    report = seed_source("demo", store, tiny_embedder, progress=False, should_stop=stop.is_set)
    assert report.added == 0 and store.count() == 0


def test_settings_choose_the_first_start_source_and_bad_values_are_clear(tmp_path, tiny_embedder):
    env = {
        "SIMILARITY_SEED_SOURCE": "hf:ashraq/fashion-product-images-small",
        "SIMILARITY_SEED_LIMIT": "2000",
        "SIMILARITY_SEED_ARGS": '--column name=productDisplayName --map-category "Personal Care=other" '
        "--per-category 300",
    }
    settings = Settings.from_env(env)
    assert (settings.seed_source, settings.seed_limit) == ("hf:ashraq/fashion-product-images-small", 2000)
    seeder = FirstStartSeeder.from_settings(open_store("memory://"), tiny_embedder, settings)
    assert seeder.options.per_category == 300 and seeder.options.column_map() == {"name": "productDisplayName"}
    assert seeder.status().state == "idle" and seeder.thread is None  # nothing runs until start()
    for bad, message in (
        ({"SIMILARITY_SEED_LIMIT": "lots"}, "SIMILARITY_SEED_LIMIT must be a whole number"),
        ({"SIMILARITY_SEED_LIMIT": "0"}, "SIMILARITY_SEED_LIMIT must be at least 1"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings.from_env(bad)
    for bad, message in (
        ({"SIMILARITY_SEED_SOURCE": "s3:bucket"}, "SIMILARITY_SEED_SOURCE='s3:bucket' is not valid"),
        ({"SIMILARITY_SEED_ARGS": "--per-category"}, "SIMILARITY_SEED_ARGS: argument --per-category"),
    ):
        with pytest.raises(ConfigError, match=message):
            FirstStartSeeder.from_settings(open_store("memory://"), tiny_embedder, Settings.from_env(bad))


def test_seed_if_empty_starts_in_the_background_only_for_an_empty_catalog(tiny_embedder):
    service = SearchService(open_store("memory://"), tiny_embedder)
    seeder = seed_if_empty(service, Settings(seed_limit=4))
    assert seeder is not None and seeder.thread is not None
    seeder.thread.join(timeout=60)
    assert service.store.count() == 4 and seeder.status().total == 4
    assert seed_if_empty(service, Settings()) is None  # not empty any more
    assert (
        seed_if_empty(SearchService(open_store("memory://"), tiny_embedder), Settings(seed_demo_on_empty=False)) is None
    )


def test_seeding_status_lines():
    line = fmt.loading_status(True, None, "ready", {"active": True, "done": 420, "total": 2000})
    assert line == "⏳ Seeding the catalog: 420 of 2,000 products; searches cover what is seeded so far."
    assert "12 products so far" in fmt.loading_status(True, None, "ready", {"active": True, "done": 12, "total": None})
    both = fmt.loading_status(False, None, "loading", {"active": True, "done": 0, "total": 54})
    assert both.splitlines()[0].startswith("⏳ Seeding") and "Loading the image model" in both
    notice = fmt.loading_status(True, None, "ready", {"active": False, "notice": "Could not seed <b>x</b>"})
    assert "<b>" not in notice and notice.startswith("⚠️ Could not seed")


def test_a_search_through_the_api_while_the_first_start_fills_an_empty_catalog_says_so(tiny_embedder):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    import app
    from similarity.ingest import ItemOutcome
    from similarity.ui import launch_options

    gate = threading.Event()

    def slow_source(spec, store, embedder, *, on_outcome, **options):  # 120 items read, none stored yet
        for i in range(120):
            on_outcome(ItemOutcome(f"p{i}.png", "skipped", reason="still fetching"))
        gate.wait(30)
        return seed_source("demo", store, embedder, limit=3, progress=False)

    service = SearchService(open_store("memory://"), tiny_embedder)
    seeder = seed_if_empty(service, Settings(seed_source="hf:shop/catalog", seed_limit=2000), seed=slow_source)
    demo = app.build_demo(service, seeder=seeder)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    try:
        assert wait_for(lambda: seeder.status().done == 120)
        with pytest.raises(
            AppError, match=r"The catalog is being filled: 120 of 2,000 products; try again in a moment"
        ):
            Client(url, verbose=False).predict(text="red running shoe", api_name="/search_text")
        gate.set()
        seeder.thread.join(timeout=60)
        assert len(service.search(text="red running shoe").matches) == 3  # filled: searches answer
        service.store.delete(service.store.load_vectors().ids)
        with pytest.raises(SimilarityError, match=r"The catalog is empty\. Add products first"):  # seeding is over
            service.search(text="red running shoe")
    finally:
        gate.set()
        demo.close()
