"""``python -m similarity search IMAGE --regions [--json]`` and ``--box x0,y0,x1,y1``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import SimilarityError
from ..steering import Steering
from .search import RegionResult, RegionSearch


def run_regions(args: argparse.Namespace, service: Any, url: str | None) -> int:
    """Region search from the command line; prints the same keys as the ``/search_regions`` endpoint."""
    from ..ui.ranking import RankArgs

    if not args.image:
        raise SimilarityError("Region search needs a photo: give an image path or URL.")
    steer = (args.price_min, args.price_max, args.sort, args.within_best, args.collapse_duplicates)
    ranking = RankArgs.of(args.top_k, args.min_score, args.category, args.brand, args.color, args.tag, *steer)
    steering = Steering.of(args.more, args.less, args.like, args.dislike)
    result = RegionSearch(service).search(
        None if url else args.image, args=ranking, url=url, text=args.text, text_weight=args.text_weight,
        box=args.box, regions=True, steering=steering,
    )  # fmt: skip
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print_regions(result)
    return 0


def print_regions(result: RegionResult) -> None:
    rows = [("whole photo", None, result.whole)] + [
        (f"region {n}", region, found) for n, (region, found) in enumerate(result.regions, 1)
    ]
    for title, region, found in rows:
        label = f", {region.label}" if region is not None and region.label else ""
        where = "" if region is None else f" {list(region.box)} ({region.source}{label})"
        print(f"{title}{where}")
        for m in found.matches[:5]:
            p = m.product
            print(f"  {m.rank:>3}  {m.score:6.4f}  {p.id[:12]:<12}  {p.name[:32]:<32}  {p.category}")
    if result.note:
        print(result.note)
    timings = ", ".join(f"{k} {v:.1f} ms" for k, v in result.timings_ms.items())
    print(f"{len(result.regions)} regions · {result.whole.model} · {timings}")
