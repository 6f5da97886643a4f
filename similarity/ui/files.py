"""Temporary files the UI hands to Gradio: thumbnails (by product id), JSON exports, examples.

Everything lives under one temp directory created when the demo is built (never at import);
Gradio serves files from the system temp directory without extra ``allowed_paths``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from ..records import Product

EXPORT_MAX_AGE_S = 900  # JSON exports older than this are removed on the next export
_SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")


class UiFiles:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="similarity-ui-"))
        (self.root / "thumbs").mkdir(parents=True, exist_ok=True)
        (self.root / "exports").mkdir(parents=True, exist_ok=True)
        self._placeholder: str | None = None

    @property
    def thumbs_dir(self) -> Path:
        """The folder of product thumbnails (and the placeholder): the only one the API links to."""
        return self.root / "thumbs"

    def thumbnail(self, product: Product) -> str:
        """A file path for the product's thumbnail (written once per id), or a grey placeholder."""
        data = product.thumbnail
        if not data:
            return self.placeholder()
        ext = "jpg" if data[:3] == b"\xff\xd8\xff" else "webp"
        name = product.id if _SAFE_ID.fullmatch(product.id) else hashlib.sha256(product.id.encode()).hexdigest()
        path = self.root / "thumbs" / f"{name}.{ext}"
        if not path.exists():
            _write_atomic(path, data)
        return str(path)

    def placeholder(self) -> str:
        if self._placeholder is None:
            path = self.root / "thumbs" / "placeholder.png"
            Image.new("RGB", (64, 64), (225, 228, 232)).save(path)
            self._placeholder = str(path)
        return self._placeholder

    def export_json(self, data: Any, name: str = "similar-products.json") -> str:
        """Write ``data`` to a fresh file (old exports are pruned) and return its path."""
        exports = self.root / "exports"
        _prune(exports, EXPORT_MAX_AGE_S)
        folder = exports / uuid.uuid4().hex
        folder.mkdir()
        path = folder / name
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        return str(path)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # concurrent writers of the same id write identical bytes


def _prune(folder: Path, max_age: float) -> None:
    cutoff = time.time() - max_age
    for child in folder.iterdir():
        try:
            if child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
        except FileNotFoundError:  # another request pruned it first
            continue
