from __future__ import annotations

import io
import os
import sys
import threading

import pytest

from data_seed import seed_source
from data_seed.demo import demo_items
from data_seed.sources import Columns
from similarity.errors import ConfigError
from similarity.ingest import LOW_PRIORITY, IngestItem, Ingestor
from similarity.records import CATEGORIES
from similarity.store import open_store

from .helpers import image_bytes, make_image


@pytest.fixture(params=[0, 2], ids=["threads", "processes"])
def workers(request) -> int:
    """Each seeding test runs on both paths: decoding in threads (0) and in two worker processes."""
    return request.param


def test_demo_catalog_is_deterministic_and_covers_every_category(tiny_embedder, workers):
    items = list(demo_items())
    assert len(items) >= 48
    assert [i.read() for i in items[:3]] == [i.read() for i in list(demo_items())[:3]]
    store = open_store("memory://")
    report = seed_source("demo", store, tiny_embedder, progress=False, workers=workers)
    assert report.added == len(items) and store.count() == len(items)
    products = [p for batch in store.iter_products(vectors=False) for p in batch]
    assert {p.category for p in products} == set(CATEGORIES) - {"other"}
    assert all(p.name and p.colors and p.price and "demo" in p.source for p in products)
    assert len({p.brand for p in products}) >= 12


def write_folder(root, broken: bool = True):
    (root / "bags").mkdir(parents=True)
    (root / "shoes").mkdir()
    (root / "bags" / "tote.png").write_bytes(image_bytes(make_image((200, 30, 30))))
    (root / "shoes" / "runner.jpg").write_bytes(image_bytes(make_image((30, 30, 200), shape=1), "JPEG"))
    (root / "loose.webp").write_bytes(image_bytes(make_image((30, 160, 30), shape=2), "WEBP"))
    (root / "notes.txt").write_text("not an image and not an image name")
    if broken:
        (root / "shoes" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10)
        (root / "empty.png").write_bytes(b"")
    (root / "metadata.csv").write_text(
        "file_name,name,brand,price,colors\n"
        "tote.png,Canvas Tote,Acme,19.99,red\n"
        "shoes/runner.jpg,Road Runner,N/A,,blue\n"
    )


def test_folder_with_metadata_and_broken_files(tmp_path, tiny_embedder, workers):
    write_folder(tmp_path / "photos")
    store = open_store("memory://")
    out = io.StringIO()
    source = f"folder:{tmp_path / 'photos'}"
    report = seed_source(source, store, tiny_embedder, progress=False, out=out, workers=workers)
    assert (report.added, report.present, report.skipped, report.failed) == (3, 0, 2, 0)
    assert report.summary() == "added 3, already present 0, skipped 2, failed 0"
    assert report.exit_code == 0
    lines = out.getvalue().splitlines()
    assert any("shoes/broken.jpg" in line and "damaged" in line.lower() for line in lines)
    assert any("empty.png" in line and "empty" in line.lower() for line in lines)
    by_name = {p.name: p for batch in store.iter_products(vectors=False) for p in batch}
    tote, runner = by_name["Canvas Tote"], by_name["Road Runner"]
    assert (tote.category, tote.brand, tote.price, tote.colors) == ("bags", "acme", 19.99, ("red",))
    assert (runner.category, runner.brand, runner.price) == ("shoes", None, None)
    assert by_name["loose"].category == "other"


def test_rerun_adds_nothing(tmp_path, tiny_embedder, workers):
    write_folder(tmp_path / "photos", broken=False)
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    first = seed_source(f"folder:{tmp_path / 'photos'}", store, tiny_embedder, progress=False, workers=workers)
    version = store.version()
    again = seed_source(f"folder:{tmp_path / 'photos'}", store, tiny_embedder, progress=False, workers=workers)
    assert first.added == 3 and (again.added, again.present) == (0, 3)
    assert store.count() == 3 and store.version() == version and again.exit_code == 0


def test_duplicate_images_in_one_run_are_stored_once(tmp_path, tiny_embedder, workers):
    root = tmp_path / "dups"
    root.mkdir()
    data = image_bytes(make_image())
    for name in ("a.png", "b.png", "c.png"):
        (root / name).write_bytes(data)
    store = open_store("memory://")
    report = seed_source(f"folder:{root}", store, tiny_embedder, progress=False, batch_size=1, workers=workers)
    assert (report.added, report.present, store.count()) == (1, 2, 1)


def test_nothing_added_with_failures_is_a_failing_exit(tmp_path, tiny_embedder, workers):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "x.jpg").write_bytes(b"<html>nope</html>")
    report = seed_source(f"folder:{root}", open_store("memory://"), tiny_embedder, progress=False, workers=workers)
    assert (report.added, report.skipped, report.exit_code) == (0, 1, 1)


def test_limit_and_unknown_source(tiny_embedder):
    store = open_store("memory://")
    assert seed_source("demo", store, tiny_embedder, limit=5, progress=False).added == 5
    with pytest.raises(ConfigError, match="demo, folder:PATH, hf:NAME_OR_PATH"):
        seed_source("s3:bucket", store, tiny_embedder)


def test_hf_dataset_saved_to_disk(tmp_path, tiny_embedder, workers):
    datasets = pytest.importorskip("datasets")
    pictures = [make_image((40 * i, 90, 200 - 30 * i), shape=i) for i in range(4)]
    table = datasets.Dataset.from_dict(
        {
            "img": pictures,
            "title": [f"Dataset item {i}" for i in range(4)],
            "masterCategory": ["Bags", "Shoes", "Watches", "Accessories"],
            "brandName": ["Acme", "Acme", "Zenith", None],
        },
        features=datasets.Features(
            {
                "img": datasets.Image(),
                "title": datasets.Value("string"),
                "masterCategory": datasets.Value("string"),
                "brandName": datasets.Value("string"),
            }
        ),
    )
    table.save_to_disk(str(tmp_path / "ds"))
    store = open_store("memory://")
    columns = Columns(image="img", name="title", category="masterCategory", brand="brandName")
    source = f"hf:{tmp_path / 'ds'}"
    report = seed_source(source, store, tiny_embedder, progress=False, columns=columns, workers=workers)
    assert report.added == 4
    products = {p.name: p for batch in store.iter_products(vectors=False) for p in batch}
    assert products["Dataset item 1"].category == "shoes" and products["Dataset item 1"].brand == "acme"
    assert products["Dataset item 3"].category == "other" and products["Dataset item 3"].brand is None


def test_hf_missing_image_column_names_the_columns(tmp_path, tiny_embedder):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"title": ["x"]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(ConfigError, match="columns: title"):
        seed_source(f"hf:{tmp_path / 'ds'}", open_store("memory://"), tiny_embedder, progress=False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_decoding_runs_at_low_priority_and_the_caller_keeps_its_own(tiny_embedder):
    seen: list[tuple[int, int]] = []

    def read(colour: tuple[int, int, int]) -> bytes:
        seen.append((threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        return image_bytes(make_image(colour))

    items = [IngestItem(f"p{i}.png", lambda c=(i * 20, 40, 90): read(c)) for i in range(10)]
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    report = Ingestor(open_store("memory://"), tiny_embedder, batch_size=4, workers=2).run(items)
    assert report.added == 10 and len(seen) == 10
    assert all(nice == LOW_PRIORITY for _, nice in seen) and threading.get_native_id() not in {t for t, _ in seen}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # the model's thread is untouched
