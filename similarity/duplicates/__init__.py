"""Near-duplicates: CLIP neighbours as candidates, confirmed at the pixel level from stored thumbnails.

- ``pixel.py``: the 256-bit difference hash and the crop-aligned pixel similarity of two thumbnails;
- ``finder.py``: ``DuplicateFinder`` (candidates in blocks, confirmation, union-find groups);
- ``dismissed.py``: pairs marked "not a duplicate", kept with the catalog;
- ``job.py``: ``DuplicateScan`` (a background scan with progress) and ``SeedScreen`` (seeding's check).
"""

from __future__ import annotations

from .dismissed import DismissedPairs, dismissed_for
from .finder import DEFAULT_THRESHOLD, NEAR, PIXEL_THRESHOLD, SIMILAR, DuplicateFinder, DuplicateGroup, ScanReport
from .job import DuplicateScan, SeedScreen

__all__ = [
    "DEFAULT_THRESHOLD",
    "NEAR",
    "PIXEL_THRESHOLD",
    "SIMILAR",
    "DismissedPairs",
    "DuplicateFinder",
    "DuplicateGroup",
    "DuplicateScan",
    "ScanReport",
    "SeedScreen",
    "dismissed_for",
]
