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
from similarity.store.ranking import Ranker

from .common import (
    clustered_vectors,
    interleaved,
    markdown_table,
    p50,
    p95,
    parser,
    queries_like,
    timed,
    write_report,
)
from .search import FACET_N, K, build_store, recall

URI_ENV = "SIMILARITY_BENCH_MONGODB_URI"
DB = "similarity_bench"
EXACT_ONLY = Settings(ann_threshold=10**12)  # compare exact with exact: no HNSW on either side


@dataclasses.dataclass
class Side:
    name: str
    ranker: Ranker
    prepare_s: float  # loading the index (or creating the Atlas vector index)
    written_s: float  # writing the catalog into this side's store


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
        sides, note = [_exact("SQLite store, exact index", local, sqlite_s)], ""
        sides.append(_exact("MongoDB exact mode (same index)", mongo, mongo_s))
        try:
            sides.append(_atlas(mongo, mongo_s))
        except SimilarityError as exc:
            note = f"Atlas `$vectorSearch` left out at {n:,}: {exc}"
            print(note, flush=True)
        methods = {s.name: lambda q, s=s: s.ranker.rank(q, Filters(), K, None, FACET_N) for s in sides}
        times, results = interleaved(methods, queries_like(n_queries + 1))
    finally:
        client[DB].drop_collection(name)
        local.close()
    return _rows(n, sides, times, results), note


def _exact(name: str, store: object, written_s: float) -> Side:
    index = StoreIndex(store, EXACT_ONLY)
    return Side(name, index, timed(index.current)[0] / 1000, written_s)


def _atlas(mongo: MongoStore, written_s: float) -> Side:
    start = time.perf_counter()
    mongo.create_vector_index(timeout=900, progress=lambda line: print(line, flush=True))
    return Side("Atlas $vectorSearch", AtlasRanker(mongo), time.perf_counter() - start, written_s)


def _rows(n: int, sides: list[Side], times: dict, results: dict) -> list[list[object]]:
    exact = results[sides[0].name]
    rows = []
    for side in sides:
        ms = times[side.name]
        hits = float(np.mean([recall(a.ids, b.ids) for a, b in zip(results[side.name], exact, strict=True)]))
        rows.append([f"{n:,}", side.name, p50(ms), p95(ms), hits, side.prepare_s, n / side.written_s])
        print(f"{side.name:34s} p50 {p50(ms):8.2f} ms  recall@10 {hits:.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, sizes="10000,100000", queries=30, help="timed queries per side and size").parse_args(argv)
    uri = os.environ.get(URI_ENV, "")
    if not uri:
        print(f"benchmarks.mongo needs a MongoDB server: set {URI_ENV} (none can run on the build machines).")
        return 2
    rows, notes = [], []
    client = MongoClient(uri, serverSelectionTimeoutMS=5000, appname="similarity-bench")
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as tmp:
        for size in args.sizes:
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
