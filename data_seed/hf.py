"""Hugging Face datasets, streamed: a hub name, a local parquet folder or file, or a ``save_to_disk`` folder.

A hub dataset or a parquet source is opened with ``streaming=True``, so ``--limit N`` reads only the first
rows, and with ``columns=`` set to the mapped columns, so nothing else (an embeddings column, say) is read.
An embedded image column is cast to ``Image(decode=False)``: rows carry the encoded bytes, decoded later by
the app's own image door.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from similarity.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class OpenedDataset:
    """A dataset ready to iterate: its columns and whether its image column holds URLs."""

    name: str
    columns: list[str]
    features: dict[str, Any]
    split: str
    _source: Any = dataclasses.field(repr=False, default=None)  # what ``load`` needs to open it again

    def image_kind(self, column: str) -> str:
        """``embedded`` (an Image feature or {bytes, path} structs) or ``url`` (text)."""
        feature = self.features.get(column)
        kind = type(feature).__name__
        if kind == "Image" or (isinstance(feature, dict) and "bytes" in feature):
            return "embedded"
        if kind in ("Value", "LargeValue") and getattr(feature, "dtype", "") in ("string", "large_string"):
            return "url"
        if kind in ("Value", "LargeValue") and getattr(feature, "dtype", "") in ("binary", "large_binary"):
            return "embedded"
        raise ConfigError(f"The column {column!r} holds neither images nor image URLs ({kind})")

    def rows(self, columns: Sequence[str], image_column: str) -> Iterator[dict[str, Any]]:
        """The rows, with only ``columns`` read; errors while streaming become one short ConfigError."""
        n = 0
        try:
            dataset = _prune(self, list(columns), image_column)
            for n, row in enumerate(dataset, 1):  # noqa: B007 - n is reported on failure
                yield row
        except ConfigError:
            raise
        except Exception as exc:  # network, changed files, bad parquet: datasets raises many types
            log.warning("reading %s failed after %d rows: %s", self.name, n, type(exc).__name__)
            log.debug("dataset read failure", exc_info=True)
            raise ConfigError(
                f"Reading the dataset {self.name!r} failed after {n} rows ({type(exc).__name__})"
            ) from None


def open_dataset(name_or_path: str, split: str = "train") -> OpenedDataset:
    """Open (lazily) and describe a dataset; nothing but its metadata is read here."""
    datasets = _datasets()
    path = Path(name_or_path)
    try:
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            table = datasets.load_from_disk(str(path))
            source: Any = ("disk", str(path))
        elif path.is_dir() or path.suffix == ".parquet" or "*" in name_or_path:
            files = str(path / "**" / "*.parquet") if path.is_dir() else name_or_path
            source = ("parquet", files)
            table = _stream(source, split)
        else:
            source = ("hub", name_or_path)
            table = _stream(source, split)
    except ConfigError:
        raise
    except Exception as exc:  # datasets raises many types (hub, network, format, missing split)
        log.debug("dataset load failed", exc_info=True)
        raise ConfigError(f"Could not load the dataset {name_or_path!r} ({type(exc).__name__}).") from None
    if hasattr(table, "keys") and not hasattr(table, "features"):  # a DatasetDict saved to disk
        if split not in table:
            raise ConfigError(f"The dataset {name_or_path!r} has no split {split!r}; splits: {', '.join(table)}")
        table = table[split]
    features = dict(table.features or {})
    if not features:
        raise ConfigError(f"The dataset {name_or_path!r} does not declare its columns; it cannot be mapped")
    return OpenedDataset(name_or_path, list(features), features, split, (source, table))


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigError("The hf: source needs the 'datasets' package: pip install datasets") from None
    return datasets


def _stream(source: tuple[str, str], split: str, columns: list[str] | None = None) -> Any:
    datasets = _datasets()
    kind, where = source
    extra = {"columns": columns} if columns else {}
    if kind == "parquet":
        return datasets.load_dataset("parquet", data_files={split: where}, split=split, streaming=True, **extra)
    return datasets.load_dataset(where, split=split, streaming=True, **extra)


def _prune(opened: OpenedDataset, columns: list[str], image_column: str) -> Any:
    """The dataset again, reading only ``columns``; an embedded image column yields undecoded bytes."""
    datasets = _datasets()
    (kind, where), table = opened._source
    if kind == "disk":
        table = table.select_columns(columns).to_iterable_dataset()
    elif table.info.builder_name == "parquet":  # column pruning is a parquet-reader option
        table = _stream((kind, where), opened.split, columns)
    else:  # another format (csv, json...): its reader reads whole rows; drop the rest after
        table = table.select_columns(columns)
    if type(opened.features.get(image_column)).__name__ == "Image":
        table = table.cast_column(image_column, datasets.Image(decode=False))
    return table
