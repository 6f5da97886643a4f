"""Catalog tab, "Duplicates": scan the catalog for near-duplicates in the background, look at the groups side
by side (largest first, with their cosine and pixel figures), keep one and remove the others, or mark a group
"not a duplicate" (remembered with the catalog). Both writes need the admin token and count against the
catalog's write rate limit; asking for a confirmation writes nothing.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, NamedTuple

import gradio as gr
from PIL import Image

from ..catalog import CatalogEditor
from ..duplicates import DEFAULT_THRESHOLD, NEAR, DuplicateGroup, DuplicateScan
from ..errors import SimilarityError
from ..ratelimit import client_key
from ..records import Product
from . import format as fmt
from .catalog import CatalogHandlers
from .handlers import user_errors

PRIVATE = {"api_visibility": "private"}
SHOWN = 60  # groups listed at once (largest first)
STRIP = 5  # thumbnails per group in the overview
TILE = 150  # px, height of a thumbnail in a group's strip
HINT = "Scan the catalog for re-uploads of the same picture (resized, re-encoded, cropped, brightened, watermarked)."


class Panel(NamedTuple):
    status: Any
    overview: Any
    listed: Any  # gr.State: the listed groups' ids, in overview order
    timer: Any


class Chosen(NamedTuple):
    gallery: Any
    keep: Any
    ids: Any  # gr.State: the chosen group's ids
    status: Any


class DuplicateHandlers:
    def __init__(self, catalog: CatalogHandlers, scan: DuplicateScan | None = None) -> None:
        self.catalog = catalog  # its token check, rate limiter and thumbnail files
        self.store = catalog.service.store
        self.scan = scan or DuplicateScan(self.store)

    # -- scanning (no token; rate-limited: a scan reads the whole catalog) ------------------------------
    @user_errors
    def start(self, threshold: float | None, request: gr.Request | None = None) -> Panel:
        self.catalog.limiter.check(client_key(request))
        value = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not 0.5 <= value <= 1.0:
            raise SimilarityError("Choose a cosine threshold between 0.5 and 1.")
        started = self.scan.start(value)
        panel = self.poll()
        return panel._replace(status=panel.status if started else "A scan is already running. " + panel.status)

    def poll(self) -> Panel:
        """Progress while a scan runs; the groups when it is done (the timer stops)."""
        state = self.scan.state()
        if state["running"]:
            done, total = state["done"], state["total"]
            share = f" {done}/{total}" if total else ""
            return Panel(f"Scanning: {state['phase']}{share}…", gr.update(), gr.update(), gr.Timer(active=True))
        if state["error"]:
            return Panel(f"The scan failed: {fmt.md(state['error'])}", [], [], gr.Timer(active=False))
        return Panel(*self._listing(), gr.Timer(active=False))

    def _listing(self) -> tuple[str, list, list]:
        report = self.scan.report
        if report is None:
            return HINT, [], []
        groups = report.groups[:SHOWN]
        near = sum(g.kind == NEAR for g in report.groups)
        status = (
            f"{report.products} products scanned in {report.timings_s.get('total', 0):.1f} s: "
            f"**{near}** near-identical groups, **{len(report.groups) - near}** similar groups."
        )
        if len(report.groups) > SHOWN:
            status += f" The {SHOWN} first are listed."
        if not groups:
            return status + " Nothing to clean up.", [], []
        products = {p.id: p for p in self.store.get(sorted({i for g in groups for i in g.ids}))}
        tiles = [(self._strip(g, products), _label(n, g)) for n, g in enumerate(groups, 1)]
        return status, tiles, [g.ids for g in groups]

    def _strip(self, group: DuplicateGroup, products: dict[str, Product]) -> str:
        """The group's thumbnails side by side in one picture (cached by the group's ids)."""
        name = hashlib.sha256("\n".join(group.ids).encode()).hexdigest()[:32]
        path = self.catalog.files.thumbs_dir / f"dup-{name}.jpg"
        if not path.exists():
            pictures = [_thumb(products.get(i)) for i in group.ids[:STRIP]]
            width = sum(p.width for p in pictures) + 6 * (len(pictures) - 1)
            strip = Image.new("RGB", (max(1, width), TILE), (255, 255, 255))
            x = 0
            for picture in pictures:
                strip.paste(picture, (x, 0))
                x += picture.width + 6
            strip.save(path, "JPEG", quality=85)
        return str(path)

    # -- one group ------------------------------------------------------------------------------------
    def choose(self, listed: list[list[str]] | None, evt: gr.SelectData) -> Chosen:
        index = evt.index if isinstance(evt.index, int) else -1
        if not listed or not 0 <= index < len(listed):
            return Chosen([], gr.update(choices=[], value=None), [], "That group is no longer listed; scan again.")
        ids = list(listed[index])
        products = {p.id: p for p in self.store.get(ids)}
        present = [i for i in ids if i in products]
        gallery = [(self.catalog.files.thumbnail(products[i]), _caption(products[i])) for i in present]
        choices = [(_caption(products[i]), i) for i in present]
        keep = gr.update(choices=choices, value=present[0] if present else None)
        note = (
            f"Group {index + 1}: {len(present)} products. Keep one and remove the others, or mark it not a duplicate."
        )
        return Chosen(gallery, keep, present, note)

    def ask_remove(self, ids: list[str] | None, keep: str | None) -> tuple[Any, str, int]:
        """The count confirmation for removing all but ``keep`` (nothing is written)."""
        others = [i for i in ids or () if i != keep]
        if not ids or keep not in ids:
            return gr.update(visible=False), "Choose a group, then the product to keep.", 0
        noun = "product" if len(others) == 1 else "products"
        question = f"Keep {fmt.md(keep[:12])}… and remove the other **{len(others)}** {noun}? This cannot be undone."
        return gr.update(visible=True), question, len(others)

    @user_errors
    def remove_others(
        self,
        ids: list[str] | None,
        keep: str | None,
        expected: float | None,
        token: str | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        self._authorise(token, request)
        others = [i for i in ids or () if i != keep]
        if not ids or keep not in ids or not others:
            raise SimilarityError("Choose a group and the product to keep first.")
        if len(others) != int(expected or 0):
            raise SimilarityError(
                f"The group now has {len(others)} others, not the {int(expected or 0)} you confirmed."
            )
        report = CatalogEditor(self.store).remove(others)
        self.scan.forget(report.removed)
        status, tiles, listed = self._listing()
        noun = "product" if len(report.removed) == 1 else "products"
        return (gr.update(visible=False), f"Removed {len(report.removed)} {noun}. {status}", tiles, listed,
                [], gr.update(choices=[], value=None), [])  # fmt: skip

    @user_errors
    def not_duplicate(self, ids: list[str] | None, token: str | None, request: gr.Request | None = None) -> tuple:
        self._authorise(token, request)
        if not ids:
            raise SimilarityError("Choose a group first.")
        self.scan.dismiss(ids)
        status, tiles, listed = self._listing()
        return (f"Marked {len(ids)} products as not duplicates of each other; they will not be shown again. "
                f"{status}", tiles, listed, [], gr.update(choices=[], value=None), [])  # fmt: skip

    def _authorise(self, token: str | None, request: gr.Request | None) -> None:
        self.catalog.limiter.check(client_key(request))  # before the token: wrong guesses are limited too
        self.catalog.check_token(token)


def _label(n: int, g: DuplicateGroup) -> str:
    pixel = "no thumbnail" if g.pixel is None else f"pixel {g.pixel:.3f}"
    return f"#{n} {g.kind} · {len(g.ids)} products · cosine {g.cosine:.3f} · {pixel}"


def _caption(p: Product) -> str:
    return f"{fmt.product_title(p)} · {p.category} · {p.id[:12]}"


def _thumb(product: Product | None) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(product.thumbnail)).convert("RGB") if product and product.thumbnail else None
    except (OSError, ValueError, Image.DecompressionBombError):
        image = None
    if image is None:
        return Image.new("RGB", (TILE, TILE), (225, 228, 232))
    return image.resize((max(1, round(image.width * TILE / image.height)), TILE), Image.Resampling.BILINEAR)


def build_duplicates_panel(handlers: DuplicateHandlers, refresh: dict[str, Any]) -> None:
    """The "Duplicates" accordion; ``refresh`` re-renders the catalog page after a removal."""
    writable = handlers.catalog.writable
    with gr.Accordion("Duplicates", open=False, elem_id="duplicates"):
        with gr.Row():
            threshold = gr.Slider(0.5, 1.0, value=DEFAULT_THRESHOLD, step=0.01, label="Cosine threshold", scale=3)
            scan = gr.Button("Find duplicates", variant="primary", scale=1, elem_id="duplicates-scan")
        status = gr.Markdown(HINT, elem_id="duplicates-status")
        overview = gr.Gallery(label="Groups (largest first)", columns=2, height="auto", object_fit="contain",
                              buttons=[], elem_id="duplicates-groups", allow_preview=False)  # fmt: skip
        chosen = gr.Gallery(label="Chosen group", columns=5, height="auto", object_fit="contain",
                            buttons=[], elem_id="duplicates-chosen", allow_preview=False)  # fmt: skip
        keep = gr.Radio([], label="Keep", elem_id="duplicates-keep")
        note = gr.Markdown(elem_id="duplicates-note")
        with gr.Column(visible=writable):
            token = gr.Textbox(label="Admin token", type="password", max_lines=1, elem_id="duplicates-token")
            with gr.Row():
                remove = gr.Button("Keep the chosen one, remove the others…", variant="stop")
                dismiss = gr.Button("Not a duplicate", elem_id="duplicates-dismiss")
            with gr.Row(visible=False) as confirm:
                yes = gr.Button("Yes, remove them", variant="stop", elem_id="duplicates-yes")
                no = gr.Button("Cancel")
        if not writable:
            gr.Markdown("Removing and marking are off here: set `SIMILARITY_ADMIN_TOKEN` on the server.")
        listed, ids, expected = gr.State([]), gr.State([]), gr.State(0)
        timer = gr.Timer(1.0, active=False)
    panel = [status, overview, listed, timer]
    scan.click(handlers.start, [threshold], panel, concurrency_limit=1, **PRIVATE)
    timer.tick(handlers.poll, None, panel, **PRIVATE)
    overview.select(handlers.choose, [listed], [chosen, keep, ids, note], **PRIVATE)
    remove.click(handlers.ask_remove, [ids, keep], [confirm, note, expected], **PRIVATE)
    no.click(lambda: gr.update(visible=False), outputs=confirm, **PRIVATE)
    writes = {"concurrency_id": "ingest", "concurrency_limit": 1, **PRIVATE}
    after = [status, overview, listed, chosen, keep, ids]
    removed = yes.click(handlers.remove_others, [ids, keep, expected, token], [confirm, *after], **writes)
    removed.success(**refresh)
    dismiss.click(handlers.not_duplicate, [ids, token], after, **writes)
