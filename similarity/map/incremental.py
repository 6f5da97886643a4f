"""Keeping a fitted layout current without a refit: products added since are placed by their nearest fitted
neighbours and removed ones dropped, until ``REFIT_SHARE`` of the fitted catalog has changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .layout import place_rows
from .persist import Layout

if TYPE_CHECKING:
    from ..store.base import VectorBatch

REFIT_SHARE = 0.25  # refit once this share of the fitted catalog was added or removed since


def can_update(current: Layout, batch: VectorBatch) -> bool:
    """Few enough products added/removed since the fit: place the new ones instead of refitting."""
    rows = current.row_of()
    added = sum(1 for i in batch.ids if i not in rows)
    removed = len(current) - (len(batch.ids) - added)
    return current.changes + added + removed <= REFIT_SHARE * current.fit_count


def updated(current: Layout, batch: VectorBatch, version: str) -> Layout:
    """The current layout without removed products, plus new ones placed by their fitted neighbours."""
    rows = current.row_of()
    keep = [r for r, id_ in enumerate(batch.ids) if id_ in rows]  # batch rows already laid out
    old = np.array([rows[batch.ids[r]] for r in keep], dtype=np.int64)
    new = np.array([r for r, id_ in enumerate(batch.ids) if id_ not in rows], dtype=np.int64)
    coords = np.empty((len(batch.ids), 2), np.float32)
    fitted = np.zeros(len(batch.ids), bool)
    coords[keep], fitted[keep] = current.coords[old], current.fitted[old]
    base = np.array(keep, dtype=np.int64)[fitted[keep]] if keep else np.zeros(0, np.int64)
    if len(new):
        coords[new] = place_rows(batch.vectors[base], coords[base], batch.vectors, new)
    removed = len(current) - len(keep)
    return Layout(
        batch.ids, coords, fitted, current.method, version, current.fitted_version,
        fit_count=current.fit_count, changes=current.changes + len(new) + removed,
    )  # fmt: skip
