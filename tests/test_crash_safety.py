"""Crash safety: SIGKILL ``data_seed`` again and again during one seeding; the result equals a clean run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .helpers import TINY_ENV, image_bytes, make_image
from .test_cli import ROOT, _snapshot

pytestmark = pytest.mark.slow

N_IMAGES, BATCH, KILLS, DIM = 160, 4, 10, 32  # tiny-test embeds to 32 dimensions
MIN_LANDED = 8  # kills that must land mid-run (a fast machine may finish a short run before its kill)


def _make_folder(root: Path) -> None:
    """Photo-sized pictures, so that one batch takes a fraction of a second and kills land mid-run."""
    root.mkdir()
    for i in range(N_IMAGES):
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        (root / f"p{i:03d}.png").write_bytes(image_bytes(make_image(colour, (800 + i % 17, 600), shape=i)))


def _seed_cmd(folder: Path, db: Path, workers: str = "0") -> tuple[list[str], dict[str, str]]:
    args = [sys.executable, "-m", "data_seed", "--source", f"folder:{folder}", "--batch-size", str(BATCH)]
    args += ["--workers", workers]
    env = {**os.environ, **TINY_ENV, "SIMILARITY_STORE": f"sqlite:///{db}", "SIMILARITY_TAGGER": "off"}
    return [*args, "--no-progress"], env


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM products").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is not created yet
            return 0


def _rows(db: Path) -> dict[str, tuple]:
    """Raw rows, checked for half-written ones: every row has a full vector and a thumbnail."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, name, category, length(embedding), thumbnail FROM products").fetchall()
    finally:
        conn.close()
    assert all(r[3] == 4 * DIM and r[4] for r in rows), "a row without a full vector or a thumbnail"
    assert len({r[0] for r in rows}) == len(rows)
    return {r[0]: (r[1], r[2], r[4]) for r in rows}


def _kill_once(cmd: list[str], env: dict[str, str], db: Path, batches: int, delay: float) -> bool:
    """Start a seeding run and SIGKILL it ``delay`` s after it wrote ``batches`` new batches; True if it landed."""
    target = _count(db) + batches * BATCH
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and _count(db) < target:
            time.sleep(0.01)
        time.sleep(delay)
        return proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.parametrize("workers", ["0", "2"], ids=["threads", "processes"])
def test_repeated_kills_during_one_seeding_match_a_clean_run(tmp_path, workers):
    _make_folder(tmp_path / "photos")
    killed, clean = tmp_path / "killed.db", tmp_path / "clean.db"
    cmd, env = _seed_cmd(tmp_path / "photos", killed, workers)
    clean_cmd, clean_env = _seed_cmd(tmp_path / "photos", clean)  # the reference: the thread path
    # The clean reference run goes alongside the kill loop; the two never share a file.
    reference = subprocess.Popen(clean_cmd, cwd=ROOT, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    rng = np.random.default_rng(7)
    landed, progress = 0, []
    # each run is killed a random 1-2 batches (plus up to 50 ms) after it starts writing
    while landed < KILLS and len(progress) < 2 * KILLS and _count(killed) < N_IMAGES - 3 * BATCH:
        landed += _kill_once(cmd, env, killed, int(rng.integers(1, 3)), float(rng.uniform(0, 0.05)))
        progress.append(len(_rows(killed)))  # consistent after every kill
    assert landed >= MIN_LANDED, f"only {landed} kills landed mid-run: {progress}"
    assert progress == sorted(progress) and 0 < progress[-1] <= N_IMAGES, progress
    finished = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert finished.returncode == 0, finished.stderr
    assert f"added {N_IMAGES - progress[-1]}, already present {progress[-1]}," in finished.stdout
    out, _ = reference.communicate(timeout=180)
    assert reference.returncode == 0 and f"added {N_IMAGES}, already present 0" in out.decode()
    after, expected = _rows(killed), _rows(clean)
    assert after == expected and len(after) == N_IMAGES  # same ids, names, categories and thumbnails
    vectors, reference_vectors = _snapshot(killed), _snapshot(clean)
    assert vectors.keys() == reference_vectors.keys()
    assert all(np.allclose(vectors[k], reference_vectors[k], atol=1e-5) for k in reference_vectors)
