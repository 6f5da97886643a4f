"""``python -m similarity duplicates [--threshold T] [--json]``: the catalog's near-duplicate groups.

Only the store is opened (no model): the stored vectors give the candidates, the stored thumbnails
confirm them. Progress goes to stderr; the JSON (``{"groups": [...]}``) or a table to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .finder import DEFAULT_THRESHOLD, NEAR

if TYPE_CHECKING:
    from ..config import Settings


def add_duplicates_parser(commands: Any) -> None:
    dup = commands.add_parser("duplicates", help="find near-duplicate products (re-uploads of the same picture)")
    dup.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD,
        help=f"cosine above which two products are compared pixel by pixel (default {DEFAULT_THRESHOLD})",
    )  # fmt: skip
    dup.add_argument("--near-only", action="store_true", help="only near-identical groups (not 'similar')")
    dup.add_argument("--json", action="store_true", help="print the result as one JSON object")
    dup.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_duplicates(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from ..store import open_store
    from .job import DuplicateScan

    with open_store(settings.store_url, settings) as store:
        bar = tqdm(disable=args.no_progress, file=sys.stderr, unit="item", dynamic_ncols=True)

        def progress(phase: str, done: int, total: int) -> None:
            bar.set_description(phase)
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            report = DuplicateScan(store).run_now(args.threshold, progress)
        finally:
            bar.close()
    groups = [g for g in report.groups if g.kind == NEAR or not args.near_only]
    if args.json:
        print(json.dumps({**report.to_dict(), "groups": [g.to_dict() for g in groups]}, ensure_ascii=False))
        return 0
    near = sum(g.kind == NEAR for g in groups)
    print(f"{report.products} products, {report.candidates} candidate pairs: {near} near-identical groups, "
          f"{len(groups) - near} similar groups ({report.timings_s['total']:.1f} s)")  # fmt: skip
    for g in groups:
        pixel = "-" if g.pixel is None else f"{g.pixel:.3f}"
        print(f"{g.kind:<14} cosine {g.cosine:.3f} pixel {pixel}  {' '.join(i[:12] for i in g.ids)}")
    return 0
