"""The two command lines, run as users run them (subprocesses, tiny random model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from similarity.store.local import LocalStore

from .helpers import TINY_ENV, image_bytes, make_image

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(*args: str, store: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, **TINY_ENV, "SIMILARITY_STORE": store, "SIMILARITY_TAGGER": "off"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for i, colour in enumerate([(220, 30, 30), (30, 30, 220), (30, 160, 60), (240, 200, 40)]):
        (folder / f"item{i}.png").write_bytes(image_bytes(make_image(colour, shape=i)))
    store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'c.db'}"
    done = run("-m", "data_seed", "--source", f"folder:{folder}", "--no-progress", store=store)
    assert done.returncode == 0, done.stderr
    assert "added 4, already present 0, skipped 0, failed 0" in done.stdout
    return folder, store


def test_search_json_contract_finds_the_photo_itself(seeded):
    folder, store = seeded
    done = run("-m", "similarity", "search", str(folder / "item2.png"), "--json", "--top-k", "3", store=store)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= {"matches", "facets", "timings_ms", "model"}
    assert data["matches"][0]["name"] == "item2" and data["matches"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert len(data["matches"]) == 3 and data["model"] == "tiny-test/none"
    assert set(data["matches"][0]) >= {"id", "score", "name", "category", "brand", "colors", "tags"}


def test_search_table_and_info(seeded):
    folder, store = seeded
    table = run("-m", "similarity", "search", str(folder / "item0.png"), "--category", "other", store=store)
    assert table.returncode == 0, table.stderr
    first = table.stdout.splitlines()[1].split()
    assert first[0] == "1" and first[1] == "1.0000" and "item0" in table.stdout
    info = run("-m", "similarity", "info", store=store)
    assert info.returncode == 0 and "products: 4" in info.stdout and "RANDOM weights" in info.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "/nonexistent/photo.jpg"], "does not exist"),
        (["search", "--text", "bag", "--top-k", "500"], "top_k"),
        (["search"], "Give an image"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(seeded, args, message):
    done = run("-m", "similarity", *args, store=seeded[1])
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr


def test_empty_catalog_and_bad_store_are_clear(tmp_path):
    empty = run("-m", "similarity", "search", "--text", "bag", store=f"sqlite:///{tmp_path / 'new.db'}")
    assert empty.returncode != 0 and "catalog is empty" in empty.stderr and "Traceback" not in empty.stderr
    bad = run("-m", "similarity", "info", store="ftp://example/catalog")
    assert bad.returncode == 2 and "valid schemes" in bad.stderr and "Traceback" not in bad.stderr


def test_data_seed_bad_folder_exit_code(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"GIF89a broken")
    done = run("-m", "data_seed", "--source", f"folder:{tmp_path}", "--no-progress", store="memory://")
    assert done.returncode == 1 and "skipped: junk.jpg" in done.stderr
    assert "added 0, already present 0, skipped 1, failed 0" in done.stdout


def _make_folder(root: Path, n: int) -> None:
    root.mkdir()
    for i in range(n):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        (root / f"p{i:03d}.png").write_bytes(image_bytes(make_image(colour, (96 + i % 17, 80), shape=i)))


def _snapshot(path: Path) -> dict[str, np.ndarray]:
    store = LocalStore(path)
    assert store.integrity_ok()
    batch = store.load_vectors()
    store.close()
    assert len(batch.ids) == len(set(batch.ids))
    return dict(zip(batch.ids, batch.vectors, strict=True))


@pytest.mark.parametrize("workers", ["0", "2"], ids=["threads", "processes"])
def test_seed_killed_mid_run_resumes_without_duplicates(tmp_path, workers):
    _make_folder(tmp_path / "photos", 160)
    source, killed = f"folder:{tmp_path / 'photos'}", tmp_path / "killed.db"
    args = ["-m", "data_seed", "--source", source, "--batch-size", "8", "--workers", workers, "--no-progress"]
    env = {**os.environ, **TINY_ENV, "SIMILARITY_STORE": f"sqlite:///{killed}"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, **quiet)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if killed.exists() and LocalStore(killed).count() >= 16:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    partial = _snapshot(killed)
    assert 0 < len(partial) < 160, "the kill should land mid-run"
    resumed = run(*args, store=f"sqlite:///{killed}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"added {160 - len(partial)}, already present {len(partial)}" in resumed.stdout
    clean = run(*args, store=f"sqlite:///{tmp_path / 'clean.db'}")
    assert clean.returncode == 0
    after, reference = _snapshot(killed), _snapshot(tmp_path / "clean.db")
    assert after.keys() == reference.keys() and len(after) == 160
    assert all(np.allclose(after[k], reference[k], atol=1e-5) for k in reference)
