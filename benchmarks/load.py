"""Load test: many concurrent ``gradio_client`` clients searching the launched app over loopback.

    python -m benchmarks.load [--clients 16] [--searches 20] [--products 32]

The app (``app.build_demo``) serves a memory catalog of generated products embedded by the tiny
random-init model on 127.0.0.1 (a free port). Each client owns one catalog product and cycles through
image searches (with and without a brand filter), a text search with a category filter, and "more like
this" with a filter, through the public endpoints ``/search_image``, ``/search_text`` and ``/similar_to``.
Every answer is compared with the answer the service gives in-process for the same query, so a lost or
mixed-up result is caught (each image search must put the client's own product first). The run is
bounded by one overall timeout and shuts the server down itself. ``tests/test_load.py`` asserts the
correctness part; this script also writes p50/p95 latency to ``benchmarks/results/load.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from .common import RESULTS, machine, markdown_table, p50, p95

CATEGORIES = ("bags", "shoes", "watches", "electronics")
BRANDS = ("acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "tyrell")
COLOURS = ("red", "blue", "green", "black", "white", "yellow", "brown", "grey")
KINDS = ("image", "image+brand", "text+category", "similar+category")
CALL_TIMEOUT_S = 60.0  # one request, queue wait included


@dataclasses.dataclass(frozen=True)
class Item:
    """One client's catalog product and the files and words it queries with."""

    id: str
    photo: str  # path of the exact image that was ingested
    category: str
    brand: str
    text: str


@dataclasses.dataclass
class Call:
    client: int
    kind: str
    ms: float
    error: str = ""  # empty when the answer arrived and matched


@dataclasses.dataclass
class LoadReport:
    calls: list[Call]
    wall_s: float
    finished: bool  # False when the overall timeout cut the run short

    @property
    def errors(self) -> list[Call]:
        return [c for c in self.calls if c.error]


def _picture(i: int) -> Image.Image:
    """A distinct generated product picture per index (colour, shape and position vary)."""
    hue = ((i * 67) % 256, (i * 151) % 256, (i * 29 + 80) % 256)
    image = Image.new("RGB", (128, 112), "white")
    draw = ImageDraw.Draw(image)
    x, y = 8 + (i * 7) % 40, 8 + (i * 11) % 30
    box = (x, y, x + 60 + i % 20, y + 50 + (i * 3) % 25)
    (draw.ellipse if i % 2 else draw.rectangle)(box, fill=hue, outline=(0, 0, 0), width=1 + i % 4)
    draw.line((0, i % 112, 127, (i * 5) % 112), fill=hue[::-1], width=3)
    return image


def build_catalog(store: Any, embedder: Any, n: int, folder: Path) -> list[Item]:
    """Ingest ``n`` generated products (through the same path as data_seed) and return them as Items."""
    from similarity.images import image_sha256
    from similarity.ingest import IngestItem, Ingestor

    items, ingest = [], []
    for i in range(n):
        path = folder / f"product-{i:03d}.png"
        _picture(i).save(path)
        data = path.read_bytes()
        category, brand, colour = CATEGORIES[i % 4], BRANDS[i % 8], COLOURS[(i // 2) % 8]
        meta = {"name": f"{brand} {colour} {category} {i}", "category": category, "brand": brand}
        meta.update(colors=[colour], tags=["load", f"t{i % 5}"])
        ingest.append(IngestItem(path.name, lambda d=data: d, meta))
        items.append(Item(image_sha256(data), str(path), category, brand, f"{colour} {category}"))
    report = Ingestor(store, embedder, batch_size=16).run(ingest)
    if report.added != n:
        raise RuntimeError(f"expected {n} distinct products, ingested {report.added}")
    return items


def _request(kind: str, item: Item) -> tuple[str, dict[str, Any]]:
    from gradio_client import handle_file

    if kind == "image":
        return "/search_image", {"image": handle_file(item.photo), "top_k": 5}
    if kind == "image+brand":
        return "/search_image", {"image": handle_file(item.photo), "top_k": 5, "brands": [item.brand]}
    if kind == "text+category":
        return "/search_text", {"text": item.text, "top_k": 5, "categories": [item.category]}
    return "/similar_to", {"product_id": item.id, "top_k": 5, "categories": [item.category]}


def expected_ids(service: Any, items: list[Item]) -> dict[tuple[str, str], list[str]]:
    """What the service answers in-process for every (product, kind): the reference for each call."""
    from similarity.records import Filters

    out = {}
    for item in items:
        photo = Path(item.photo).read_bytes()
        results = {
            "image": service.search(photo, top_k=5),
            "image+brand": service.search(photo, top_k=5, filters=Filters(brands=(item.brand,))),
            "text+category": service.search(text=item.text, top_k=5, filters=Filters(categories=(item.category,))),
            "similar+category": service.similar_to(item.id, Filters(categories=(item.category,)), 5),
        }
        for kind, result in results.items():
            out[item.id, kind] = [m.product.id for m in result.matches]
    return out


def _check(kind: str, item: Item, answer: Any, expected: list[str]) -> str:
    ids = [m["id"] for m in answer.get("matches", [])] if isinstance(answer, dict) else []
    if kind.startswith("image") and (not ids or ids[0] != item.id):
        return f"own product not first: {ids[:2]}"
    if ids != expected:
        return f"answer differs from the in-process one: {ids} != {expected}"
    return ""


def _client_run(url: str, index: int, item: Item, searches: int, expected: dict, stop: threading.Event) -> list[Call]:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": CALL_TIMEOUT_S})
    calls = []
    for n in range(searches):
        if stop.is_set():
            break
        kind = KINDS[(index + n) % len(KINDS)]
        api_name, kwargs = _request(kind, item)
        start = time.perf_counter()
        try:
            answer = client.predict(api_name=api_name, **kwargs)
            error = _check(kind, item, answer, expected[item.id, kind])
        except Exception as exc:  # every failure is reported, none stops the other clients
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        calls.append(Call(index, kind, (time.perf_counter() - start) * 1000, error))
    client.close()
    return calls


@contextmanager
def launched(service: Any) -> Iterator[str]:
    """The app on 127.0.0.1 (a free port) for the duration of the block; always shut down."""
    import app
    from similarity.ui import launch_options

    demo = app.build_demo(service)
    try:
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the app must listen on loopback only, not {url}")
        yield url
    finally:
        demo.close()


def run_load(url: str, items: list[Item], expected: dict, searches: int, timeout_s: float) -> LoadReport:
    """One client per item, all at once; waits at most ``timeout_s`` for all of them."""
    stop = threading.Event()
    start = time.perf_counter()
    pool = ThreadPoolExecutor(len(items), thread_name_prefix="load-client")
    futures = [pool.submit(_client_run, url, i, item, searches, expected, stop) for i, item in enumerate(items)]
    done, pending = wait(futures, timeout=timeout_s)
    stop.set()  # late clients stop after their current call
    pool.shutdown(wait=False, cancel_futures=True)
    calls = [call for f in done for call in f.result()]
    return LoadReport(calls, time.perf_counter() - start, finished=not pending)


def setup(products: int, folder: Path) -> tuple[Any, list[Item]]:
    """A SearchService over a memory catalog of generated products, embedded by the tiny model."""
    from similarity.config import Settings
    from similarity.embedder import OpenClipEmbedder
    from similarity.search import SearchService
    from similarity.store import open_store

    embedder = OpenClipEmbedder("tiny-test", "none", batch_size=16)
    store = open_store("memory://")
    items = build_catalog(store, embedder, products, folder)
    settings = Settings(clip_model="tiny-test", clip_pretrained="none", store_url="memory://", tagger="off")
    return SearchService(store, embedder, None, settings), items


def _report(report: LoadReport, clients: int, searches: int, products: int) -> str:
    rows = []
    for kind in ("all", *KINDS):
        ms = [c.ms for c in report.calls if kind in ("all", c.kind)]
        rows.append([kind, len(ms), p50(ms), p95(ms), max(ms) if ms else float("nan")])
    table = markdown_table(["searches", "calls", "p50 ms", "p95 ms", "max ms"], rows)
    rate = len(report.calls) / report.wall_s if report.wall_s else 0.0
    return (
        f"# Load: {clients} concurrent gradio_client clients × {searches} searches\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on: {machine()}\n\n"
        f"App on 127.0.0.1, memory catalog of {products} generated products, tiny random-init CLIP "
        "(so latency is the app's overhead, queueing and ranking, not the full ViT-B/32 forward pass); "
        "the app's queue runs 2 searches at a time.\n\n"
        f"{table}\n\n"
        f"Wall time {report.wall_s:.1f} s, {rate:.1f} searches/s; errors or mixed-up answers: "
        f"{len(report.errors)}; finished within the timeout: {report.finished}.\n\n"
        "Reproduce: `python -m benchmarks.load`\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--searches", type=int, default=20, help="searches per client")
    parser.add_argument("--products", type=int, default=32, help="catalog size (at least --clients)")
    parser.add_argument("--timeout", type=float, default=300.0, help="overall seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        service, items = setup(max(args.products, args.clients), Path(tmp))
        expected = expected_ids(service, items)
        with launched(service) as url:
            report = run_load(url, items[: args.clients], expected, args.searches, args.timeout)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "load.md"
    out.write_text(_report(report, args.clients, args.searches, len(items)))
    print(out.read_text())
    for call in report.errors[:5]:
        print(f"client {call.client} {call.kind}: {call.error}", file=sys.stderr)
    return 0 if report.finished and not report.errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
