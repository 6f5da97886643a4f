"""The hf: source over local parquet datasets the tests build, streamed like a hub dataset.

Two schemas: embedded ``Image`` cells with odd column names (like ashraq/fashion-product-images-small),
and image URLs (like milistu/AMAZON-Products-2023) served by a server started here on 127.0.0.1, which
the guard allows only through its explicit ``allow_hosts`` test allowance.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from data_seed import seed_source
from data_seed.dataset import DatasetSource
from data_seed.fetch import UrlImages
from data_seed.options import DatasetOptions
from similarity.errors import ConfigError
from similarity.images import UrlGuard
from similarity.store import open_store

from .helpers import image_bytes, make_image

datasets = pytest.importorskip("datasets")

FASHION = [  # (masterCategory, articleType)
    ("Footwear", "Casual Shoes"), ("Footwear", "Sandals"), ("Footwear", "Flip Flops"),
    ("Accessories", "Handbags"), ("Accessories", "Watches"), ("Apparel", "Tshirts"),
    ("Apparel", "Shirts"), ("Accessories", "Watches"), ("Personal Care", "Deodorant"), ("Accessories", "Backpacks"),
]  # fmt: skip
COLUMNS = [
    "--column", "image=Img Data", "--column", "name=Product Title", "--column", "category=masterCategory",
    "--column", "subcategory=articleType", "--column", "colors=baseColour", "--column", "brand=specs.Brand",
]  # fmt: skip


def options(*pairs: str, **extra: object) -> DatasetOptions:
    return DatasetOptions(columns=tuple(tuple(p.split("=", 1)) for p in pairs), **extra)


FASHION_OPTIONS = options(*COLUMNS[1::2])


def write_fashion(root, rows: int = 10) -> None:
    """An embedded-image dataset with odd column names and a column the seeder must never read."""
    pictures = [make_image((20 * i, 120, 250 - 20 * i), shape=i) for i in range(rows)]
    table = datasets.Dataset.from_dict(
        {
            "Img Data": pictures,
            "Product Title": [f"Fashion item {i}" for i in range(rows)],
            "masterCategory": [FASHION[i % len(FASHION)][0] for i in range(rows)],
            "articleType": [FASHION[i % len(FASHION)][1] for i in range(rows)],
            "baseColour": ["Navy Blue", "Off White", "Black", "Sea Green", "Red"] * (rows // 5),
            "specs": [{"Brand": f"Brand{i % 3}", "Fit": "regular"} for i in range(rows)],
            "embedding": [[0.5] * 8 for _ in range(rows)],
        },
        features=datasets.Features(
            {
                "Img Data": datasets.Image(),
                "Product Title": datasets.Value("string"),
                "masterCategory": datasets.Value("string"),
                "articleType": datasets.Value("string"),
                "baseColour": datasets.Value("string"),
                "specs": {"Brand": datasets.Value("string"), "Fit": datasets.Value("string")},
                "embedding": datasets.Sequence(datasets.Value("float32")),
            }
        ),
    )
    root.mkdir(parents=True, exist_ok=True)
    table.to_parquet(str(root / "train-00000.parquet"))


def products(store) -> dict:
    return {p.name: p for batch in store.iter_products(vectors=False) for p in batch}


def test_embedded_images_stream_with_mapped_columns_only(tmp_path, tiny_embedder):
    write_fashion(tmp_path / "fashion")
    source = DatasetSource(str(tmp_path / "fashion"), FASHION_OPTIONS)
    assert isinstance(source.dataset._source[1], datasets.IterableDataset)  # streamed, like a hub dataset
    assert source.image_kind == "embedded"
    assert set(source.columns.needed_columns()) == {
        "Img Data",
        "Product Title",
        "masterCategory",
        "articleType",
        "baseColour",
        "specs",
    }
    first = next(source.dataset.rows(source.columns.needed_columns(), "Img Data"))
    assert "embedding" not in first and set(first["Img Data"]) == {"bytes", "path"}  # undecoded bytes
    store = open_store("memory://")
    report = seed_source(f"hf:{tmp_path / 'fashion'}", store, tiny_embedder, progress=False, options=FASHION_OPTIONS)
    assert report.added == 10
    found = products(store)
    shoe, bag, watch, shirt = (found[f"Fashion item {i}"] for i in (1, 3, 4, 5))
    assert (shoe.category, shoe.subcategory, shoe.brand, shoe.colors) == ("shoes", "sandals", "brand1", ("white",))
    assert (bag.category, watch.category, shirt.category, shirt.subcategory) == ("bags", "watches", "other", "tshirts")
    assert found["Fashion item 0"].colors == ("navy",) and "fashion #0" in found["Fashion item 0"].source
    assert report.notes[0] == "categories: other 3, shoes 3, bags 2, watches 2"
    assert "'Apparel' (2), 'Personal Care' (1)" in report.notes[1]


def test_limit_stops_reading_and_a_bad_later_shard_is_a_clear_error(tmp_path, tiny_embedder):
    write_fashion(tmp_path / "fashion")
    (tmp_path / "fashion" / "train-00001.parquet").write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")  # a broken shard
    store = open_store("memory://")
    spec = f"hf:{tmp_path / 'fashion'}"
    report = seed_source(spec, store, tiny_embedder, limit=3, progress=False, options=FASHION_OPTIONS)
    assert report.added == 3  # the broken second shard was never opened
    with pytest.raises(ConfigError, match=r"Reading the dataset .* failed after 10 rows \(\w+\)$"):
        seed_source(spec, store, tiny_embedder, progress=False, options=FASHION_OPTIONS)


def test_per_category_cap_balances_a_grouped_dataset(tmp_path, tiny_embedder):
    write_fashion(tmp_path / "fashion", rows=20)
    store = open_store("memory://")
    capped = DatasetOptions(columns=FASHION_OPTIONS.columns, per_category=2, map_category=(("Personal Care", "other"),))
    report = seed_source(f"hf:{tmp_path / 'fashion'}", store, tiny_embedder, progress=False, options=capped)
    counts = Counter(p.category for p in products(store).values())
    assert counts == {"shoes": 2, "bags": 2, "watches": 2, "other": 2} and report.added == 8
    assert any("passed over 12 rows" in line for line in report.notes)
    assert not any("Personal Care" in line for line in report.notes if line.startswith("unmapped"))


def test_a_wrong_column_lists_the_real_columns_before_the_model_loads(tmp_path, tiny_embedder):
    write_fashion(tmp_path / "fashion")
    bad = options("image=Img Data", "brand=details.Brand")
    with pytest.raises(ConfigError) as err:
        seed_source(f"hf:{tmp_path / 'fashion'}", open_store("memory://"), tiny_embedder, options=bad)
    assert "no column 'details'" in str(err.value)
    assert "its columns: Img Data, Product Title, masterCategory, articleType, baseColour, specs, embedding" in str(
        err.value
    )
    with pytest.raises(ConfigError, match="neither images nor image URLs"):
        DatasetSource(str(tmp_path / "fashion"), options("image=specs"))
    with pytest.raises(ConfigError, match=r"Could not load the dataset .*\(\w+\)\.$"):
        DatasetSource(str(tmp_path / "nothing-here.parquet"))


def test_legacy_column_options_still_work_on_a_saved_dataset(tmp_path, tiny_embedder):
    from data_seed.cli import build_parser
    from data_seed.options import options_from_args

    table = datasets.Dataset.from_dict(
        {"img": [make_image((200, 40, 40)), make_image((40, 40, 200), shape=1)], "title": ["A", "B"]},
        features=datasets.Features({"img": datasets.Image(), "title": datasets.Value("string")}),
    )
    table.save_to_disk(str(tmp_path / "saved"))
    args = build_parser().parse_args(["--source", "x", "--image-column", "img", "--name-column", "title"])
    store = open_store("memory://")
    report = seed_source(
        f"hf:{tmp_path / 'saved'}", store, tiny_embedder, progress=False, options=options_from_args(args)
    )
    assert report.added == 2 and set(products(store)) == {"A", "B"}


# --- image URLs ------------------------------------------------------------------------------------------


class Server:
    """Routes: /img/N.png, /missing.png (404), /flaky/N.png (429 once), /busy.png (503), /slow.png, /page.html."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.hits[self.path] += 1
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    first = server.hits[self.path] == 1
                try:
                    with contextlib.suppress(OSError):
                        server.answer(self, first)
                finally:
                    with server.lock:
                        server.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        self.guard = UrlGuard(timeout=1.0, allow_hosts=frozenset({f"127.0.0.1:{self.httpd.server_port}"}))

    def answer(self, handler: BaseHTTPRequestHandler, first: bool) -> None:
        path = handler.path
        if path.startswith("/img/") or (path.startswith("/flaky/") and not first):
            time.sleep(self.delay)
            n = int(path.rsplit("/", 1)[1].split(".")[0])
            return _reply(handler, 200, image_bytes(make_image((10 * n % 256, 90, 200), shape=n)), "image/png")
        if path.startswith("/flaky/"):
            return _reply(handler, 429, b"slow down", "text/plain")
        if path == "/busy.png":
            return _reply(handler, 503, b"busy", "text/plain")
        if path == "/slow.png":
            time.sleep(3)
            return _reply(handler, 200, image_bytes(make_image()), "image/png")
        if path == "/page.html":
            return _reply(handler, 200, b"<html>not an image</html>", "text/html")
        return _reply(handler, 404, b"no", "text/plain")


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join(timeout=5)


def write_amazon(root, urls: list[str], files: list[str] | None = None) -> None:
    """A URL dataset: JSON-like details, a file-name category and a big embeddings column to leave alone."""
    n = len(urls)
    table = datasets.Dataset.from_dict(
        {
            "parent_asin": [f"B{i:05d}" for i in range(n)],
            "title": [f"Amazon item {i}" for i in range(n)],
            "filename": files or ["meta_Electronics"] * n,
            "details": [json.dumps({"Brand": f"Maker{i % 2}", "Color": "Black"}) for i in range(n)],
            "embeddings": [[0.1] * 16 for _ in range(n)],
            "image": urls,
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    table.to_parquet(str(root / "train-00000.parquet"))


AMAZON_OPTIONS = options(
    "name=title", "category=filename", "brand=details.Brand", "colors=details.Color", "image=image"
)


def test_url_images_fetch_with_failures_retries_and_resume(tmp_path, tiny_embedder, server):
    good = [f"{server.base}/img/{i}.png" for i in range(4)]
    bad = [
        f"{server.base}/missing.png",
        f"{server.base}/slow.png",
        f"{server.base}/page.html",
        f"{server.base}/busy.png",
    ]
    write_amazon(tmp_path / "amazon", [*good, f"{server.base}/flaky/7.png", *bad, good[0]])
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    out = io.StringIO()
    urls = UrlImages(server.guard, backoff=0.01, interval=0.0, retries=2)
    started = time.monotonic()
    report = seed_source(
        f"hf:{tmp_path / 'amazon'}", store, tiny_embedder, progress=False, out=out, options=AMAZON_OPTIONS, urls=urls
    )
    assert time.monotonic() - started < 20
    assert (report.added, report.skipped, report.failed) == (5, 4, 0)
    assert "image URLs: fetched 5, failed 4 (" in report.notes[-2]
    for reason in ("HTTP 404: 1", "timeout: 1", "not an image: 1", "HTTP 503: 1"):
        assert reason in report.notes[-2]
    assert "retried 3 times" in report.notes[-2]  # 429 once, 503 twice (then given up)
    assert report.notes[-1] == "image URLs already in the catalog (not fetched again): 1"  # the repeated URL
    assert server.hits["/flaky/7.png"] == 2 and server.hits["/busy.png"] == 3 and server.hits["/img/0.png"] == 1
    assert "HTTP 404" in out.getvalue() and "Traceback" not in out.getvalue()
    item = products(store)["Amazon item 1"]
    assert (item.category, item.brand, item.colors, item.image_url) == ("electronics", "maker1", ("black",), good[1])
    before = sum(server.hits[f"/img/{i}.png"] for i in range(4))
    again = seed_source(
        f"hf:{tmp_path / 'amazon'}", store, tiny_embedder, progress=False, out=io.StringIO(),
        options=AMAZON_OPTIONS, urls=UrlImages(server.guard, backoff=0.01, interval=0.0, retries=0),
    )  # fmt: skip
    assert sum(server.hits[f"/img/{i}.png"] for i in range(4)) == before and server.hits["/flaky/7.png"] == 2
    assert again.added == 0 and again.exit_code == 0 and store.count() == 5
    assert "already in the catalog (not fetched again): 6" in again.notes[-1]


def test_url_fetching_is_bounded_overall_and_per_host(server):
    server.delay = 0.1
    rows = [(f"k{i}", f"{server.base}/img/{i}.png", {}) for i in range(12)]
    polite = UrlImages(server.guard, concurrency=8, per_host=2, interval=0.0)
    assert all(item.read() for item in list(polite.items(rows)))
    assert server.max_inflight == 2 and polite.fetched == 12
    server.max_inflight = 0
    bounded = UrlImages(server.guard, concurrency=3, per_host=10, interval=0.0)
    assert all(item.read() for item in list(bounded.items((f"j{i}", url, {}) for i, (_, url, _) in enumerate(rows))))
    assert server.max_inflight == 3


def test_without_the_test_allowance_the_guard_refuses_loopback(tmp_path, tiny_embedder, server):
    write_amazon(tmp_path / "amazon", [f"{server.base}/img/1.png"])
    report = seed_source(
        f"hf:{tmp_path / 'amazon'}", open_store("memory://"), tiny_embedder, progress=False, out=io.StringIO(),
        options=AMAZON_OPTIONS, urls=UrlImages(),
    )  # fmt: skip
    assert report.added == 0 and report.skipped == 1 and "refused: 1" in report.notes[-1]
    assert not server.hits
