"""Facet columns of the exact index: values encoded as small integer codes, and the rows holding each value."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

Columns = dict[str, tuple[dict[str, int], np.ndarray]]  # attribute -> (value -> code, (rows, width) codes)


def codes_of(rows: list[tuple[str, ...]], vocab: dict[str, int], width: int) -> np.ndarray:
    """Facet values per row -> a (rows, width) code matrix padded with -1; new values join ``vocab``."""
    flat = [-1] * (len(rows) * width)
    for i, values in enumerate(rows):
        for j, value in enumerate(values):
            flat[i * width + j] = vocab.setdefault(value, len(vocab))
    dtype = np.int16 if len(vocab) < 2**15 else np.int32
    return np.asarray(flat, dtype=dtype).reshape(len(rows), width)


def postings_of(vocab: dict[str, int], codes: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """(value, ascending row numbers holding it) for every value present in ``codes``."""
    rows, cols = np.nonzero(codes >= 0)
    values = codes[rows, cols]
    order = np.argsort(values, kind="stable")
    rows, bounds = rows[order].astype(np.int64), np.searchsorted(values[order], np.arange(len(vocab) + 1))
    for name, k in vocab.items():
        if bounds[k + 1] > bounds[k]:
            yield name, rows[bounds[k] : bounds[k + 1]]


def name_rank(vocab: dict[str, int]) -> np.ndarray:
    return np.argsort(np.argsort(list(vocab))) if vocab else np.zeros(0, np.int64)
