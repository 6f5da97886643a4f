"""Seeding sources: ``demo``, ``folder:PATH`` and ``hf:NAME_OR_PATH``, each yielding IngestItems."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Collection, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from similarity import images
from similarity.errors import ConfigError
from similarity.ingest import IngestItem

from .categories import CategoryMapper, load_category_map
from .demo import demo_items
from .options import DEFAULT_OPTIONS, DatasetOptions

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
SOURCE_FORMS = "demo, folder:PATH, hf:NAME_OR_PATH"


@dataclasses.dataclass(frozen=True)
class Columns:
    """Dataset column names for the hf: source (the older form of ``--column FIELD=COLUMN``)."""

    image: str = "image"
    name: str = "name"
    category: str = "category"
    brand: str = "brand"

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Only the fields given another name: a field named like its column is found by default."""
        return tuple(
            (f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if getattr(self, f.name) != f.name
        )


class Source:
    """A source's items and, after they were read, the lines it adds to the seeding summary."""

    def __init__(
        self,
        items: Iterator[IngestItem],
        summary: Callable[[], list[str]] = list,
        already_stored: Callable[[], int] = int,
    ) -> None:
        self._items, self._summary, self._already_stored = items, summary, already_stored

    def items(self) -> Iterator[IngestItem]:
        return self._items

    def summary(self) -> list[str]:
        return self._summary()

    def already_stored(self) -> int:
        """Items passed over without reading them, because the catalog already has them."""
        return self._already_stored()


def open_source(spec: str, *, limit: int | None = None, columns: Columns = Columns()) -> Iterator[IngestItem]:
    """Items for a source spec; an unknown spec names the valid forms."""
    return make_source(spec, limit=limit, options=DatasetOptions(columns=columns.pairs())).items()


def make_source(
    spec: str,
    *,
    limit: int | None = None,
    options: DatasetOptions = DEFAULT_OPTIONS,
    urls: Any = None,
    known_urls: Callable[[], Collection[str]] | None = None,
) -> Source:
    """The source for a spec (``demo``, ``folder:PATH``, ``hf:NAME_OR_PATH``) with its options."""
    kind, _, arg = spec.partition(":")
    if kind == "demo" and not arg:
        return Source(demo_items(limit))
    if kind == "folder" and arg:
        mapper = CategoryMapper({**_file_map(options), **dict(options.map_category)})
        items = (IngestItem(i.key, i.read, mapper.apply(i.metadata)) for i in folder_items(Path(arg)))
        return Source(_limited(items, limit), mapper.summary)
    if kind == "hf" and arg:
        from .dataset import DatasetSource

        dataset = DatasetSource(arg, options, limit=limit, urls=urls, known_urls=known_urls)
        return Source(dataset.items(), dataset.summary, lambda: dataset.already_stored)
    raise ConfigError(f"Unknown source {spec!r}; use one of: {SOURCE_FORMS}")


def _file_map(options: DatasetOptions) -> dict[str, str]:
    return load_category_map(options.category_map) if options.category_map else {}


def _limited(items: Iterator[IngestItem], limit: int | None) -> Iterator[IngestItem]:
    for n, item in enumerate(items):
        if limit is not None and n >= limit:
            return
        yield item


def folder_items(root: Path) -> Iterator[IngestItem]:
    """Images under ``root``; category from the first sub-folder; optional metadata.csv/.jsonl by file name."""
    if not root.is_dir():
        raise ConfigError(f"Folder not found: {root}")
    metadata = _folder_metadata(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        relative = path.relative_to(root)
        meta = dict(metadata.get(relative.as_posix()) or metadata.get(path.name) or {})
        if len(relative.parts) > 1:
            meta.setdefault("category", relative.parts[0])
        meta.setdefault("name", path.stem.replace("_", " ").replace("-", " "))
        yield IngestItem(relative.as_posix(), partial(images.read_bytes, path), meta)


def _folder_metadata(root: Path) -> dict[str, dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        if (root / "metadata.csv").is_file():
            with open(root / "metadata.csv", newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        elif (root / "metadata.jsonl").is_file():
            lines = (root / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
            rows = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError, csv.Error) as exc:
        raise ConfigError(f"Could not read the metadata file in {root}: {type(exc).__name__}") from None
    key = next((k for k in ("file_name", "file", "filename", "image") if rows and k in rows[0]), None)
    if rows and key is None:
        raise ConfigError("metadata.csv/.jsonl needs a 'file_name' column naming each image")
    return {str(row.pop(key)): {k: v for k, v in row.items() if v not in (None, "")} for row in rows}
