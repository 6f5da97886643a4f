"""HTML for the Search tab's region view: the photo with numbered boxes and the "Found in your photo" strip.

Everything shown is escaped here; boxes are placed in percent of the photo so the view scales with the
page (phone widths too). Every region and "Whole photo" is a ``<button>``: Enter and Space pick it.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..images import to_rgb

if TYPE_CHECKING:
    from PIL import Image

    from ..records import Match
    from ..regions.boxes import Region

PHOTO_SIDE = 720  # the photo is sent at most this long
CROP_SIDE = 112  # each region's crop in the strip
HELP = "Click a region or its card to search it · drag on the photo to search a box of your own."
DRAW_ONLY = "Search part of the photo"

CSS = """
.region-view {display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start;}
.region-photo {position: relative; flex: 1 1 280px; max-width: 420px; touch-action: none; user-select: none;
  cursor: crosshair; line-height: 0;}
.region-photo img {width: 100%; height: auto; border-radius: 8px; display: block; pointer-events: none;}
.region-box {position: absolute; border: 3px solid #f97316; border-radius: 4px; background: rgba(249,115,22,.08);
  padding: 0; cursor: pointer; line-height: 1; min-width: 0;}
.region-box span {position: absolute; left: -3px; top: -3px; background: #f97316; color: #fff; font-weight: 700;
  font-size: 13px; padding: 2px 6px; border-radius: 4px 0 4px 0;}
.region-box.selected {border-color: #2563eb; background: rgba(37,99,235,.12);}
.region-box.selected span {background: #2563eb;}
.region-box.user {border-style: dashed;}
.region-box:focus-visible, .region-card:focus-visible, .region-whole:focus-visible {outline: 3px solid #111;
  outline-offset: 2px;}
.region-draft {position: absolute; border: 2px dashed #2563eb; background: rgba(37,99,235,.1); display: none;
  pointer-events: none;}
.region-strip {flex: 2 1 260px; min-width: 0; contain: inline-size;}  /* its cards scroll; never widen the page */
.region-strip h4 {margin: 0 0 6px;}
.region-cards {display: flex; gap: 8px; overflow-x: auto; padding-bottom: 4px;}
.region-card, .region-whole {flex: 0 0 auto; display: flex; flex-direction: column; align-items: center; gap: 4px;
  width: 132px; padding: 6px; border: 2px solid var(--border-color-primary); border-radius: 8px; cursor: pointer;
  background: var(--background-fill-primary); font-size: 12px; line-height: 1.25; text-align: center;}
.region-card.selected, .region-whole.selected {border-color: #2563eb; box-shadow: 0 0 0 1px #2563eb;}
.region-card img {width: 100%; height: 72px; object-fit: contain; background: #fff; border-radius: 4px;}
.region-card .pair {display: flex; gap: 4px; width: 100%;}
.region-card .pair img {width: 50%;}
.region-whole {justify-content: center; min-height: 120px; font-weight: 600;}
.region-help {flex-basis: 100%; margin: 0; font-size: 12px; opacity: .7;}
.region-draw summary {cursor: pointer; font-size: .9em; opacity: .8;}
@media (max-width: 640px) {.region-photo {max-width: 100%;} .region-card, .region-whole {width: 112px;}}
"""


def data_url(picture: Image.Image, side: int, quality: int = 80) -> str:
    """A JPEG data URL of ``picture`` at most ``side`` pixels long."""
    small = to_rgb(picture)
    small.thumbnail((side, side))
    out = io.BytesIO()
    small.save(out, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def region_view(
    photo: Image.Image,
    size: tuple[int, int],
    regions: Sequence[Region],
    crops: Sequence[Image.Image],
    best: Sequence[tuple[Match | None, str | None]],
    selected: int | None,
) -> str:
    """The whole view. ``best``: each region's best match and its thumbnail data URL; ``selected``: the
    region searched now (None: the whole photo). Without regions: only a folded "search part of the photo"."""
    boxes = "".join(_box(i, r, size, i == selected) for i, r in enumerate(regions))
    picture = (
        f'<div class="region-photo" data-w="{size[0]}" data-h="{size[1]}">'
        f'<img src="{data_url(photo, PHOTO_SIDE)}" alt="Your photo">{boxes}<div class="region-draft"></div></div>'
    )
    if not regions:
        return (
            f'<details class="region-draw"><summary>{DRAW_ONLY}</summary><div class="region-view">{picture}'
            f'<p class="region-help">Drag on the photo to search just that part.</p></div></details>'
        )
    whole = _selected("region-whole", selected is None)
    cards = [f'<button type="button" class="{whole}" data-index="-1" aria-pressed="{_aria(selected is None)}">'
             "Whole photo</button>"]  # fmt: skip
    rows = enumerate(zip(regions, crops, best, strict=True))
    cards += [_card(i, r, c, m, t, i == selected) for i, (r, c, (m, t)) in rows]
    strip = (
        '<div class="region-strip"><h4>Found in your photo</h4>'
        f'<div class="region-cards" role="group" aria-label="Found in your photo">{"".join(cards)}</div></div>'
    )
    return f'<div class="region-view">{picture}{strip}<p class="region-help">{HELP}</p></div>'


def _box(index: int, region: Region, size: tuple[int, int], selected: bool) -> str:
    x0, y0, x1, y1 = region.box
    width, height = size
    style = (
        f"left:{100 * x0 / width:.3f}%;top:{100 * y0 / height:.3f}%;"
        f"width:{100 * (x1 - x0) / width:.3f}%;height:{100 * (y1 - y0) / height:.3f}%"
    )
    label = html.escape(f"Region {index + 1}" + (f": {region.label}" if region.label else ""))
    classes = _selected("region-box" + (" user" if region.source == "user" else ""), selected)
    return (
        f'<button type="button" class="{classes}" data-index="{index}" style="{style}" aria-label="{label}" '
        f'aria-pressed="{_aria(selected)}" title="{label}"><span>{index + 1}</span></button>'
    )


def _card(index: int, region: Region, crop: Image.Image, match: Match | None, thumb: str | None, on: bool) -> str:
    title = html.escape(region.label or ("your box" if region.source == "user" else f"region {index + 1}"))
    if match is None:
        found = "<span>no match under these filters</span>"
        pictures = f'<img src="{data_url(crop, CROP_SIDE)}" alt="">'
    else:
        name = html.escape(match.product.name or match.product.category)
        found = f"<span>{name}<br><b>{match.score:.2f}</b></span>"
        thumb_img = f'<img src="{thumb}" alt="{name}">' if thumb else ""
        pictures = f'<span class="pair"><img src="{data_url(crop, CROP_SIDE)}" alt="">{thumb_img}</span>'
    label = html.escape(f"Search region {index + 1}")
    best = f' data-match="{html.escape(match.product.id)}"' if match is not None else ""
    return (
        f'<button type="button" class="{_selected("region-card", on)}" data-index="{index}"{best} aria-label="{label}" '
        f'aria-pressed="{_aria(on)}">{pictures}<span><b>{index + 1}</b> · {title}</span>{found}</button>'
    )


def _selected(classes: str, selected: bool) -> str:
    return f"{classes} selected" if selected else classes


def _aria(value: bool) -> str:
    return "true" if value else "false"
