"""Seeding sources: ``demo``, ``folder:PATH`` and ``hf:NAME_OR_PATH``, each yielding IngestItems."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from similarity import images
from similarity.errors import ConfigError, ImageError
from similarity.ingest import IngestItem

from .demo import demo_items

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
SOURCE_FORMS = "demo, folder:PATH, hf:NAME_OR_PATH"


@dataclasses.dataclass(frozen=True)
class Columns:
    """Dataset column names for the hf: source."""

    image: str = "image"
    name: str = "name"
    category: str = "category"
    brand: str = "brand"


def open_source(spec: str, *, limit: int | None = None, columns: Columns = Columns()) -> Iterator[IngestItem]:
    """Items for a source spec; an unknown spec names the valid forms."""
    kind, _, arg = spec.partition(":")
    if kind == "demo" and not arg:
        return demo_items(limit)
    if kind == "folder" and arg:
        return _limited(folder_items(Path(arg)), limit)
    if kind == "hf" and arg:
        return _limited(hf_items(arg, columns), limit)
    raise ConfigError(f"Unknown source {spec!r}; use one of: {SOURCE_FORMS}")


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


def hf_items(name_or_path: str, columns: Columns = Columns()) -> Iterator[IngestItem]:
    """Rows of a Hugging Face dataset: a local save_to_disk/parquet folder, or a hub name with network."""
    dataset = _load_dataset(name_or_path)
    if columns.image not in dataset.column_names:
        names = ", ".join(dataset.column_names)
        raise ConfigError(f"The dataset has no image column {columns.image!r}; columns: {names}")
    wanted = {"name": columns.name, "category": columns.category, "brand": columns.brand}
    for n, row in enumerate(dataset):
        meta = {field: row[col] for field, col in wanted.items() if col in row and row[col] is not None}
        yield IngestItem(f"{name_or_path}#{n}", partial(_image_bytes, row[columns.image]), meta)


def _load_dataset(name_or_path: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigError("The hf: source needs the optional 'datasets' package: pip install datasets") from None
    path = Path(name_or_path)
    try:
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
            return datasets.load_from_disk(str(path))
        if path.is_dir():
            return datasets.load_dataset("parquet", data_dir=str(path), split="train")
        return datasets.load_dataset(name_or_path, split="train")
    except Exception as exc:  # datasets raises many types (hub, network, format)
        log.debug("dataset load failed", exc_info=True)
        raise ConfigError(f"Could not load the dataset {name_or_path!r} ({type(exc).__name__}).") from None


def _image_bytes(value: Any) -> bytes:
    """A dataset image cell (PIL image, {'bytes':..}, {'path':..} or raw bytes) -> encoded bytes."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            return images.read_bytes(value["path"])
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if hasattr(value, "save"):
        buf = io.BytesIO()
        value.save(buf, "PNG")
        return buf.getvalue()
    raise ImageError("The dataset cell is not an image.")
