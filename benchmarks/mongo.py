"""MongoDB benchmark: one clustered catalog in a MongoDB server (exact and Atlas modes) vs the local SQLite store.

    SIMILARITY_BENCH_MONGODB_URI=mongodb+srv://USER:PASSWORD@HOST/ python -m benchmarks.mongo [--sizes 10000,100000]

No MongoDB server can run on the build machines, so there this stops with a message and writes nothing.
Against a server it measures, per size and in one run: writing the catalog (SQLite upserts vs MongoDB
bulk upserts, products/s), loading the in-memory exact index (from SQLite vs from MongoDB), and rank +
facets p50/p95 for the local exact index, MongoDB exact mode (that index, loaded from MongoDB) and Atlas
``$vectorSearch`` (only where the server has Atlas Search: the vector index is created and awaited),
with recall@10 against exact. It uses the collection ``bench_<size>`` of the database
``similarity_bench`` and drops it afterwards. Writes ``benchmarks/results/mongo.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pymongo import MongoClient

from similarity.config import Settings
from similarity.errors import SimilarityError
from similarity.index import StoreIndex
from similarity.records import Filters
from similarity.store.base import mask_url
from similarity.store.migrate import copy_catalog
from similarity.store.mongo import AtlasRanker, MongoStore

from .common import RESULTS, clustered_vectors, markdown_table, p50, p95, queries_like, timed, write_report
from .search import FACET_N, K, build_store, recall

URI_ENV = "SIMILARITY_BENCH_MONGODB_URI"
DB = "similarity_bench"
EXACT_ONLY = Settings(ann_threshold=10**12)  # compare exact with exact: no HNSW on either side


@dataclasses.dataclass
class Side:
    name: str
    rank: object  # (vector) -> Ranking
    prepare_s: float  # loading the index (or creating the Atlas vector index)
    times: list[float] = dataclasses.field(default_factory=list)
    pages: list[list[str]] = dataclasses.field(default_factory=list)


def run_size(n: int, client: object, n_queries: int, tmp: Path) -> tuple[list[list[object]], str]:
    """Table rows for one catalog size, and a note (e.g. why Atlas was left out)."""
    print(f"\n== {n:,} products ==", flush=True)
    vectors, labels = clustered_vectors(n)
    local, sqlite_s = build_store(tmp / f"mongo-{n}.db", vectors, labels)
    del vectors
    name = f"bench_{n}"
    client[DB].drop_collection(name)
    mongo = MongoStore(client, DB, name, search="exact")
    try:
        mongo_s = timed(lambda: copy_catalog(local, mongo, batch_size=1000))[0] / 1000
        sides, note = _sides(local, mongo), ""
        try:
            sides.append(_atlas(mongo))
        except SimilarityError as exc:
            note = f"Atlas `$vectorSearch` left out at {n:,}: {exc}"
            print(note, flush=True)
        _time_queries(sides, queries_like(n_queries + 1))
    finally:
        client[DB].drop_collection(name)
        local.close()
    return _rows(n, sides, sqlite_s, mongo_s), note


def _sides(local: object, mongo: object) -> list[Side]:
    local_index, mongo_index = StoreIndex(local, EXACT_ONLY), StoreIndex(mongo, EXACT_ONLY)
    local_s = timed(local_index.current)[0] / 1000
    mongo_s = timed(mongo_index.current)[0] / 1000
    return [
        Side("SQLite store, exact index", lambda q: local_index.rank(q, Filters(), K, None, FACET_N), local_s),
        Side("MongoDB exact mode (same index)", lambda q: mongo_index.rank(q, Filters(), K, None, FACET_N), mongo_s),
    ]


def _atlas(mongo: object) -> Side:
    start = time.perf_counter()
    mongo.create_vector_index(timeout=900, progress=lambda line: print(line, flush=True))
    ranker = AtlasRanker(mongo)
    return Side(
        "Atlas $vectorSearch", lambda q: ranker.rank(q, Filters(), K, None, FACET_N), time.perf_counter() - start
    )


def _time_queries(sides: list[Side], queries: np.ndarray) -> None:
    """Interleaved query by query, so drifting load hits every side alike; query 0 only warms up."""
    for i, q in enumerate(queries):
        for side in sides:
            ms, ranking = timed(lambda side=side, q=q: side.rank(q))
            if i:
                side.times.append(ms)
                side.pages.append(list(ranking.ids))


def _rows(n: int, sides: list[Side], sqlite_s: float, mongo_s: float) -> list[list[object]]:
    exact = sides[0]
    rows = []
    for side in sides:
        hits = np.mean([recall(a, b) for a, b in zip(side.pages, exact.pages, strict=True)])
        written = sqlite_s if side is exact else mongo_s
        rows.append([f"{n:,}", side.name, p50(side.times), p95(side.times), float(hits), side.prepare_s, n / written])
        print(f"{side.name:34s} p50 {p50(side.times):8.2f} ms  recall@10 {hits:.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=30, help="timed queries per side and size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    uri = os.environ.get(URI_ENV, "")
    if not uri:
        print(f"benchmarks.mongo needs a MongoDB server: set {URI_ENV} (none can run on the build machines).")
        return 2
    rows, notes = [], []
    client = MongoClient(uri, serverSelectionTimeoutMS=5000, appname="similarity-bench")
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as tmp:
        for size in (int(s) for s in args.sizes.split(",") if s):
            size_rows, note = run_size(size, client, args.queries, Path(tmp))
            rows += size_rows
            notes += [note] if note else []
    client.close()
    headers = ["products", "ranking", "p50 ms", "p95 ms", "recall@10 vs exact", "index ready s", "written products/s"]
    table = markdown_table(headers, rows)
    body = (
        f"Server: {mask_url(uri)}. {args.queries} queries per side, top-{K}, facets over the best "
        f"{FACET_N}, interleaved. Catalog: the clustered synthetic vectors of `benchmarks.search`. "
        "`index ready s` is loading the in-memory index, or creating the Atlas vector index until it is queryable; "
        "`written products/s` is SQLite upserts for the SQLite row and bulk upserts into MongoDB otherwise.\n\n"
        + table
        + "".join(f"\n\n{note}" for note in notes)
    )
    write_report("mongo", "MongoDB benchmark", body, args.out)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
