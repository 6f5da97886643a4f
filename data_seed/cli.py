"""Command line: ``python -m data_seed --source demo|folder:PATH|hf:NAME_OR_PATH [--store URL] ...``."""

from __future__ import annotations

import argparse
import logging
import sys

from similarity.config import TAGGERS, Settings
from similarity.errors import ConfigError, SimilarityError

from .options import add_dataset_arguments, options_from_args
from .sources import SOURCE_FORMS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_seed", description="Fill a product catalog.")
    parser.add_argument("--source", help=f"where products come from: {SOURCE_FORMS}")
    parser.add_argument("--store", help="catalog URL (default: SIMILARITY_STORE or the local SQLite file)")
    parser.add_argument("--limit", type=int, help="add at most N items from the source")
    parser.add_argument("--reembed", action="store_true", help="re-embed with the configured model")
    parser.add_argument(
        "--tagger", choices=TAGGERS, help="fill missing metadata with this tagger (default: SIMILARITY_TAGGER)"
    )
    parser.add_argument("--retag", action="store_true", help="re-tag every stored product (refreshes tags)")
    parser.add_argument(
        "--batch-size", type=int, help="images per model batch (default 32 on a CPU, 256 on a GPU)"
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="decoding worker processes; 0 = threads of this process (default: by device and cores: cores - 1 "
        "with a GPU, threads on 2 CPU cores, half the cores on more)",
    )  # fmt: skip
    parser.add_argument("--copy-from", metavar="URL", help="copy a catalog from another store (no re-embedding)")
    parser.add_argument("--create-vector-index", action="store_true", help="create the Atlas vector index")
    parser.add_argument("--quantization", choices=["scalar"], help="Atlas vector index quantization")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--skip-near-duplicates", action="store_true",
        help="do not add products near-identical to one stored or seeded before them (listed either way)",
    )  # fmt: skip
    add_dataset_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return run(args, Settings.from_env(store_url=args.store, tagger=args.tagger))
    except SimilarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def run(args: argparse.Namespace, settings: Settings) -> int:
    from similarity.store import open_store

    if not (args.source or args.copy_from or args.create_vector_index or args.reembed or args.retag):
        raise ConfigError("Nothing to do: give --source, --copy-from, --create-vector-index, --reembed or --retag")
    with open_store(settings.store_url, settings) as store:
        if args.copy_from:
            _copy(args.copy_from, store, settings, not args.no_progress)
        code = _seed(args, store, settings) if args.source or args.reembed or args.retag else 0
        if args.create_vector_index:  # after seeding: the index is sized from the stored vectors
            _create_index(store, args.quantization, settings)
    return code


def _copy(url: str, target: object, settings: Settings, progress: bool) -> None:
    from tqdm import tqdm

    from similarity.store import open_store
    from similarity.store.migrate import copy_catalog

    with open_store(url, settings) as source:
        for model in source.embedding_models():
            target.check_model(model)
        with tqdm(total=source.count(), desc="copying", unit="product", disable=not progress, file=sys.stderr) as bar:
            copied = copy_catalog(source, target, progress=lambda done, _total: bar.update(done - bar.n))
    print(f"copied {copied} products from {source.display_url} to {target.display_url}")


def _create_index(store: object, quantization: str | None, settings: Settings) -> None:
    create = getattr(store, "create_vector_index", None)
    if create is None:
        raise ConfigError("--create-vector-index needs a MongoDB Atlas store (SIMILARITY_STORE=mongodb+srv://...)")
    # an empty catalog has no vector to measure: the configured model gives the size
    dimensions = None if store.count() else _embedder(settings).dim
    create(quantization=quantization, dimensions=dimensions)


def _embedder(settings: Settings) -> object:
    from similarity.embedder import OpenClipEmbedder

    return OpenClipEmbedder.from_settings(settings)


def _seed(args: argparse.Namespace, store: object, settings: Settings) -> int:
    from similarity.duplicates import SeedScreen

    from . import seed_source
    from .pipeline import reembed_stored

    embedder = _embedder(settings)
    progress = not args.no_progress
    enrich = _enricher(args, settings, embedder)
    if not args.source:
        if args.reembed:
            print(f"re-embedded {reembed_stored(store, embedder, progress=progress)} products with {embedder.model_id}")
        if args.retag:
            _retag(store, enrich, progress)
        return 0
    if not args.reembed:
        store.check_model(embedder.model_id)
    report = seed_source(
        args.source, store, embedder, limit=args.limit, progress=progress, options=options_from_args(args),
        batch_size=args.batch_size, workers=args.workers, reembed=args.reembed, enrich=enrich,
        screen=None if args.reembed else SeedScreen(store), skip_screened=args.skip_near_duplicates,
    )  # fmt: skip
    print(f"{report.summary()} -> {store.display_url} ({store.count()} products)")
    for line in report.notes:
        print(f"  {line}")
    _print_near_duplicates(report)
    _print_tagging(enrich)
    if args.retag:
        _retag(store, enrich, progress)
    return report.exit_code


def _print_near_duplicates(report: object) -> None:
    """One line per item near-identical to a product in the catalog or earlier in the run (added or skipped)."""
    for o in report.outcomes:
        if o.reason.startswith("near-identical"):
            print(f"  {o.key}: {o.reason}{' - skipped' if o.status == 'skipped' else ''}")


def _enricher(args: argparse.Namespace, settings: Settings, embedder: object) -> object:
    """The ingest hook that fills missing metadata, or None (tagging off, or CLIP on random weights)."""
    from similarity.tagging import make_enricher, make_tagger

    tagger = make_tagger(settings, embedder)
    if tagger is not None and tagger.name == "clip" and settings.random_weights and args.tagger is None:
        print("note: not tagging: CLIP has random weights (pass --tagger clip to force it)", file=sys.stderr)
        tagger = None
    if tagger is None:
        if args.retag:
            raise ConfigError("--retag needs a tagger: set SIMILARITY_TAGGER or --tagger (gemini or clip)")
        return None
    return make_enricher(tagger, settings.gemini_concurrency)


def _retag(store: object, enrich: object, progress: bool) -> None:
    from similarity.tagging import make_enricher

    from .pipeline import retag_stored

    enrich = make_enricher(enrich.tagger, enrich.concurrency, overwrite=True)
    print(f"re-tagged {retag_stored(store, enrich, progress=progress)} products with {enrich.tagger.name}")
    _print_tagging(enrich)


def _print_tagging(enrich: object) -> None:
    if enrich is None:
        return
    print(enrich.summary())
    for product_id, reason in enrich.failures:
        print(f"  tagging failed: {product_id[:12]}: {reason}", file=sys.stderr)
