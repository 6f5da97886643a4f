"""Seeding in worker processes: the same catalog as the thread path (ids, vectors, thumbnails, outcomes), the
model's crop cut in PIL exactly as torchvision cuts it, workers that die with a killed parent, and the plan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from similarity.device import CPU, Device
from similarity.errors import SimilarityError
from similarity.ingest import IngestItem, Ingestor
from similarity.ingest_procs import plan
from similarity.preprocess import CropSpec, normalise_crops
from similarity.store import open_store

from .helpers import image_bytes, make_image

ROOT = Path(__file__).resolve().parent.parent
SIZES = [(300, 224), (640, 480), (224, 500), (1, 1), (3, 900), (1200, 1199), (64, 64)]


def test_the_crop_and_its_normalisation_on_the_device_equal_the_models_preprocessing(tiny_embedder):
    from similarity.models import build_model

    _, vit_b32, _ = build_model("ViT-B-32", "none", "cpu")
    rng = np.random.default_rng(5)
    for preprocess in (tiny_embedder._preprocess, vit_b32):
        spec = CropSpec.of(preprocess)
        assert spec is not None
        for size in SIZES:
            img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
            crop = spec(img)
            assert crop.dtype == np.uint8 and crop.shape == (*spec.crop, 3)
            assert torch.equal(normalise_crops(crop[None], spec)[0], preprocess(img)), size  # bit for bit


def test_a_pipeline_of_another_shape_has_no_crop_spec():
    from torchvision import transforms

    assert CropSpec.of(transforms.Compose([transforms.RandomResizedCrop(64), transforms.ToTensor()])) is None
    assert CropSpec.of(object()) is None


def items_with_trouble() -> list[IngestItem]:
    """Distinct photos of mixed sizes, a repeat inside one batch and one across batches, broken bytes (twice),
    an empty file, a reader that fails, and metadata."""
    photos = [
        image_bytes(make_image((20 * i, 200 - 15 * i, 90), (90 + 37 * i, 70 + 11 * i), shape=i)) for i in range(11)
    ]
    photos.append(image_bytes(make_image((10, 120, 240), (900, 700), shape=3), "JPEG"))
    items = [IngestItem(f"p{i}.png", partial(bytes, data), {"name": f"Item {i}"}) for i, data in enumerate(photos)]
    broken = b"\xff\xd8\xff\xe0 not a jpeg" * 20

    def unreadable() -> bytes:
        raise OSError("disk on fire")

    items[3:3] = [IngestItem("again-p1.png", partial(bytes, photos[1]))]  # a repeat in the same batch
    items += [IngestItem("broken-a.jpg", partial(bytes, broken)), IngestItem("broken-b.jpg", partial(bytes, broken))]
    items += [IngestItem("empty.png", bytes), IngestItem("gone.png", unreadable)]
    items += [IngestItem("again-p0.png", partial(bytes, photos[0]))]  # a repeat in a later batch
    items += [IngestItem("broken-c.jpg", partial(bytes, broken))]  # ... and of broken bytes (skipped, not present)
    return items


def catalog(store) -> dict[str, tuple]:
    products = [p for batch in store.iter_products(vectors=False) for p in batch]
    vectors = store.load_vectors()
    by_id = dict(zip(vectors.ids, vectors.vectors, strict=True))
    return {p.id: (p.name, p.source, p.thumbnail, by_id[p.id]) for p in products}


def test_processes_give_exactly_the_catalog_and_outcomes_of_threads(tiny_embedder):
    results = {}
    for processes in (0, 2):
        store, tagged = open_store("memory://"), []

        def enrich(products, pictures, tagged=tagged):  # a tagger sees a picture of every product
            tagged.extend((p.id, picture.size) for p, picture in zip(products, pictures, strict=True))

        ingest = Ingestor(store, tiny_embedder, batch_size=5, processes=processes, enrich=enrich)
        report = ingest.run(items_with_trouble())
        outcomes = sorted((o.key, o.status, o.id, o.reason) for o in report.outcomes)
        results[processes] = (outcomes, catalog(store), [i for i, _ in tagged])
        assert report.summary() == "added 12, already present 2, skipped 5, failed 0"
    (threads, by_threads, tagged_threads), (procs, by_procs, tagged_procs) = results[0], results[2]
    assert procs == threads and sorted(tagged_procs) == sorted(tagged_threads)
    assert by_procs.keys() == by_threads.keys()
    for key, (name, source, thumbnail, vector) in by_threads.items():
        assert by_procs[key][:3] == (name, source, thumbnail)
        assert np.allclose(by_procs[key][3], vector, atol=1e-6)  # normalised on the device: same float32 steps


def test_a_rerun_in_processes_adds_nothing_and_decodes_nothing(tiny_embedder, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    first = Ingestor(store, tiny_embedder, batch_size=4, processes=2).run(items_with_trouble())
    version = store.version()
    again = Ingestor(store, tiny_embedder, batch_size=4, processes=2).run(items_with_trouble())
    assert first.added == 12 and (again.added, again.present, again.skipped) == (0, 14, 5)
    assert store.version() == version


WATCHED = """
import sys, time
from similarity.ingest_procs import ProcessPrep
from similarity.preprocess import CropSpec

if __name__ == "__main__":
    spec = CropSpec(64, (64, 64), 3, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    with ProcessPrep(2, spec, 1 << 20) as prep:
        prep.decode([b"x", b"y", b"z", b"w"])  # both workers started
        print(" ".join(str(pid) for pid in prep.pool._processes), flush=True)
        time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] not in "ZX"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "watched.py"
    script.write_text(WATCHED)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert 1 <= len(workers) <= 2 and all(alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "orphaned workers kept running"


def test_the_plan_follows_device_and_cores():
    t4 = Device("cuda:0", "cuda:0 Tesla T4", (7, 5))
    assert plan(t4, 16).options() == {"batch_size": 256, "processes": 15, "workers": 2}
    assert plan(CPU, 2).options() == {"batch_size": 32, "processes": 0, "workers": 2}  # today's threads
    assert plan(CPU, 8).processes == 4 and plan(CPU, 1).processes == 0
    assert plan(t4, 16, workers=0).processes == 0 and plan(CPU, 2, workers=3, batch_size=8).options()["processes"] == 3
    assert plan(t4, 1).processes == 1 and "15 worker processes" in plan(t4, 16).describe()
    with pytest.raises(SimilarityError, match="--workers must be 0"):
        plan(CPU, 2, workers=-1)
