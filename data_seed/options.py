"""Dataset options shared by the command line and the app's first start (``SIMILARITY_SEED_ARGS``).

``--column FIELD=COLUMN``, ``--map-category "Source=app"``, ``--category-map FILE``, ``--per-category N``
and ``--split NAME`` are parsed here once, into a frozen ``DatasetOptions``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Sequence
from typing import NoReturn

from similarity.errors import ConfigError

FIELDS = (
    "image", "name", "category", "subcategory", "brand", "colors", "tags",
    "target_audience", "price", "description", "image_url",
)  # fmt: skip
LEGACY_COLUMNS = ("image", "name", "category", "brand")  # --image-column and friends, still accepted
DEFAULT_CONCURRENCY = 8


@dataclasses.dataclass(frozen=True)
class DatasetOptions:
    """How a dataset's rows become products (columns, categories, balance)."""

    columns: tuple[tuple[str, str], ...] = ()  # (field, column or dotted path), in the order given
    map_category: tuple[tuple[str, str], ...] = ()  # (source value, app category)
    category_map: str | None = None  # a file of such pairs
    per_category: int | None = None
    split: str = "train"
    concurrency: int = DEFAULT_CONCURRENCY  # image URLs fetched at once

    def __post_init__(self) -> None:
        if self.per_category is not None and self.per_category < 1:
            raise ConfigError("--per-category must be at least 1")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError("--fetch-concurrency must be between 1 and 64")

    def column_map(self) -> dict[str, str]:
        return dict(self.columns)  # a later --column for the same field wins


DEFAULT_OPTIONS = DatasetOptions()


class _Parser(argparse.ArgumentParser):
    """Raises ConfigError instead of exiting (SIMILARITY_SEED_ARGS is parsed inside the app)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"SIMILARITY_SEED_ARGS: {message}")


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset options, for ``python -m data_seed`` and for ``SIMILARITY_SEED_ARGS``."""
    group = parser.add_argument_group("datasets (hf: sources)")
    fields = ", ".join(FIELDS)
    group.add_argument(
        "--column", action="append", default=[], metavar="FIELD=COLUMN",
        help=f"product field from a dataset column; COLUMN may be a dotted path into JSON text (fields: {fields})",
    )  # fmt: skip
    group.add_argument(
        "--map-category", action="append", default=[], metavar="SOURCE=CATEGORY",
        help="map a source category value onto an app category (repeatable; wins over the built-in table)",
    )  # fmt: skip
    group.add_argument("--category-map", metavar="FILE", help="a JSON object or SOURCE=CATEGORY lines")
    group.add_argument("--per-category", type=int, metavar="N", help="at most N products per (mapped) category")
    group.add_argument("--split", default="train", help="dataset split (default train)")
    group.add_argument(
        "--fetch-concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
        help=f"image URLs fetched at once (default {DEFAULT_CONCURRENCY})",
    )  # fmt: skip
    for field in LEGACY_COLUMNS:
        group.add_argument(f"--{field}-column", metavar="COLUMN", help=f"same as --column {field}=COLUMN")


def options_from_args(args: argparse.Namespace) -> DatasetOptions:
    """DatasetOptions from parsed arguments (``--image-column X`` is ``--column image=X``, given first)."""
    legacy = [(f, getattr(args, f"{f}_column")) for f in LEGACY_COLUMNS if getattr(args, f"{f}_column", None)]
    return DatasetOptions(
        columns=tuple(legacy) + tuple(_pair(text, "--column", FIELDS) for text in args.column),
        map_category=tuple(_pair(text, "--map-category") for text in args.map_category),
        category_map=args.category_map,
        per_category=args.per_category,
        split=args.split,
        concurrency=args.fetch_concurrency,
    )


def parse_seed_args(text: str) -> DatasetOptions:
    """``SIMILARITY_SEED_ARGS`` (a shell-quoted string of dataset options) as DatasetOptions."""
    try:
        argv = shlex.split(text or "")
    except ValueError:
        raise ConfigError("SIMILARITY_SEED_ARGS is not valid: check its quotes") from None
    parser = _Parser(prog="SIMILARITY_SEED_ARGS", add_help=False)
    add_dataset_arguments(parser)
    return options_from_args(parser.parse_args(argv))


def _pair(text: str, option: str, fields: Sequence[str] | None = None) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ConfigError(f"{option} takes NAME=VALUE, got {text!r}")
    if fields is not None and key not in fields:
        raise ConfigError(f"{option}: unknown product field {key!r}; fields: {', '.join(fields)}")
    return key, value
