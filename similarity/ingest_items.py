"""Ingest items and outcomes, and the per-item work of seeding as it runs inside a worker process:
decode (EXIF, modes, size limits), the model's crop as compact uint8, and the thumbnail. No torch here:
a spawned worker starts in a fraction of a second.

Workers run at the lowest CPU priority (the model's threads come first) and watch their parent: a parent
killed with SIGKILL cannot stop them, so each exits on its own once its parent is gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import images
from .errors import SimilarityError
from .preprocess import CropSpec

LOW_PRIORITY = 19  # nice value of the decoding workers (threads or processes)
WATCH_INTERVAL_S = 0.5


@dataclasses.dataclass
class IngestItem:
    """One image to add: a display key (file name), a way to get its bytes, and known metadata."""

    key: str
    read: Callable[[], bytes]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ItemOutcome:
    key: str
    status: str  # added | present | skipped | failed
    id: str | None = None
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One item's worker result: the model's uint8 crop and the thumbnail, or why it was skipped."""

    crop: np.ndarray | None = None
    thumbnail: bytes = b""
    reason: str = ""  # non-empty: skipped


_spec: CropSpec | None = None
_max_bytes = images.MAX_LOCAL_BYTES


def init_worker(parent: int, spec: CropSpec, max_bytes: int) -> None:
    """Process-pool initializer: low priority, the crop spec and size limit, and the parent watchdog."""
    global _spec, _max_bytes
    _spec, _max_bytes = spec, max_bytes
    with contextlib.suppress(OSError, AttributeError):  # not every platform lets a process lower itself
        os.setpriority(os.PRIO_PROCESS, 0, LOW_PRIORITY)
    threading.Thread(target=_watch, args=(parent,), name="parent watchdog", daemon=True).start()


def _watch(parent: int) -> None:
    """Exit when the parent process is gone (re-parented: the parent id changes)."""
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)


def decode_item(data: bytes) -> Decoded:
    """Bytes -> the model's uint8 crop + the thumbnail, exactly as the thread path prepares them."""
    assert _spec is not None, "init_worker was not called"
    try:
        image = images.load_image(data, max_bytes=_max_bytes).image
    except SimilarityError as exc:
        return Decoded(reason=str(exc))
    except Exception:  # a decoder may fail in its own way: the item is skipped, the worker lives on
        return Decoded(reason="could not be read")
    return Decoded(_spec(image), images.make_thumbnail(image))
