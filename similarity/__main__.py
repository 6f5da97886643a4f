"""``python -m similarity search IMAGE_OR_URL [--text T] [--top-k K] [--category C ...] [--json]`` and ``info``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from .accounts.cli import add_users_parser, run_users
from .arrange import SORTS
from .catalog_cli import COMMANDS as CATALOG_COMMANDS
from .catalog_cli import add_catalog_parsers, run_catalog
from .config import Settings
from .duplicates.cli import add_duplicates_parser, run_duplicates
from .errors import SimilarityError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m similarity", description="Query the product catalog.")
    parser.add_argument("--store", help="catalog URL (default: SIMILARITY_STORE or the local SQLite file)")
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="find products similar to an image (path or URL) and/or text")
    search.add_argument("image", nargs="?", help="image file path or http(s) URL")
    search.add_argument("--text", help="a description; alone, or refining the image")
    search.add_argument("--text-weight", type=float, default=0.5, help="weight of the text next to an image")
    search.add_argument("--top-k", type=int, default=12)
    search.add_argument("--min-score", type=float, help="cosine threshold")
    for group in ("category", "brand", "color", "tag"):
        search.add_argument(f"--{group}", action="append", default=[], help=f"filter by {group} (repeatable)")
    add_steering_arguments(search)
    search.add_argument("--json", action="store_true", help="print the result as one JSON object")
    search.add_argument("--regions", action="store_true", help="find the products in the photo and search each")
    search.add_argument("--box", help="search only this box of the photo: x0,y0,x1,y1 in its pixels")
    commands.add_parser("info", help="store, product count, model and categories")
    add_users_parser(commands)
    add_catalog_parsers(commands)  # remove, edit
    add_duplicates_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return run(args, Settings.from_env(store_url=args.store, seed_demo_on_empty=False))
    except SimilarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace, settings: Settings) -> int:
    from .build import build_service

    if args.command == "users":  # the users file only: no model, no catalog
        return run_users(args, settings)
    if args.command in CATALOG_COMMANDS:  # the catalog only: no model
        return run_catalog(args, settings)
    if args.command == "duplicates":  # the catalog only: vectors and thumbnails
        return run_duplicates(args, settings)

    service = build_service(settings, tagger=_NoTagger())
    try:
        return _run(args, service)
    finally:
        service.close()


def _run(args: argparse.Namespace, service: Any) -> int:
    from .arrange import Arrange
    from .images import is_url
    from .records import Filters
    from .steering import Steering

    if args.command == "info":
        _print_info(service.info())
        return 0
    if not args.image and not args.text:
        raise SimilarityError("Give an image path or URL, or --text.")
    url = args.image if args.image and is_url(args.image) else None
    if args.regions or args.box:
        from .regions.cli import run_regions

        return run_regions(args, service, url)
    filters = Filters.of(categories=args.category, brands=args.brand, colors=args.color, tags=args.tag,
                         price_min=args.price_min, price_max=args.price_max)  # fmt: skip
    arrange = Arrange.of(args.sort, args.within_best, args.collapse_duplicates)
    steering = Steering.of(args.more, args.less, args.like, args.dislike)
    query = service.encode(None if url else args.image, url=url, text=args.text, text_weight=args.text_weight)
    query = service.steer(query, steering) if steering else query
    result = service.rank(query, filters, args.top_k, args.min_score, arrange or None)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_table(result)
    return 0


def add_steering_arguments(search: argparse.ArgumentParser) -> None:
    """``--more``/``--less`` texts, ``--like``/``--dislike`` ids (repeatable), price range, sort, cutoff, collapse."""
    steer = search.add_argument_group("steering")
    steer.add_argument("--more", action="append", default=[], metavar="TEXT", help="more of this (repeatable)")
    steer.add_argument("--less", action="append", default=[], metavar="TEXT", help="less of this (repeatable)")
    steer.add_argument("--like", action="append", default=[], metavar="ID", help="a product id or unique prefix")
    steer.add_argument("--dislike", action="append", default=[], metavar="ID", help="left out, and less like it")
    steer.add_argument("--price-min", type=float, help="keep products priced at least this (no price: left out)")
    steer.add_argument("--price-max", type=float, help="keep products priced at most this")
    steer.add_argument("--sort", choices=SORTS, default="relevance", help="reorder the relevant results")
    steer.add_argument("--within-best", type=float, help="keep scores within this of the best match, e.g. 0.05")
    steer.add_argument("--collapse-duplicates", action="store_true", help="fold near-identical results")


class _NoTagger:
    """The CLI does not tag; this keeps build_service from creating a tagger."""

    name = "off"


def _print_table(result: Any) -> None:
    print(f"{'rank':>4}  {'score':>6}  {'id':<12}  {'name':<32}  {'category':<18}  {'brand':<14}  price")
    for m in result.matches:
        p = m.product
        price = f"{p.price:,.2f}" if p.price is not None else "-"
        folded = f"  +{len(m.folded)} near-identical" if m.folded else ""
        print(f"{m.rank:>4}  {m.score:6.4f}  {p.id[:12]:<12}  {p.name[:32]:<32}  {p.category:<18}  "
              f"{(p.brand or '-')[:14]:<14}  {price}{folded}")  # fmt: skip
    timings = ", ".join(f"{k} {v:.1f} ms" for k, v in result.timings_ms.items())
    print(f"{len(result.matches)} matches · {result.model} · {timings}")


def _print_info(info: dict[str, Any]) -> None:
    weights = " (RANDOM weights: testing only)" if info.get("random_weights") else ""
    print(f"store:    {info['backend']} {info['url']}")
    print(f"products: {info['count']}")
    print(f"model:    {info['model']}{weights}")
    if "precision" in info:
        print(f"precision: {info['precision'] or 'auto (chosen when the model loads)'} - {info['precision_note']}")
    if info.get("device"):
        print(f"device:   {info['device']}")
    print(f"tagger:   {info.get('tagger', 'off')}")
    for category, count in info.get("categories", {}).items():
        print(f"  {category:<20} {count}")


if __name__ == "__main__":
    raise SystemExit(main())
