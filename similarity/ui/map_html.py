"""HTML for the Map tab: the chart's template and styles, the hover card and the product card (all escaped)."""

from __future__ import annotations

import html

from ..records import Product, thumbnail_data_url

CARD_HINT = '<div class="map-card-hint">Click a point to see the product.</div>'
TEMPLATE = """<div class="map-view" data-lib="{lib}">
<div class="map-tools"><label>Colour by <select class="map-colour" aria-label="Colour points by">
<option value="category">category</option><option value="brand">brand</option><option value="color">colour</option>
</select></label><button type="button" class="map-reset">Reset zoom</button>
<span class="map-modes" role="group" aria-label="Mouse mode">
<button type="button" data-mode="pan" class="on">Pan</button><button type="button" data-mode="lasso">Lasso</button>
<button type="button" data-mode="box">Box</button></span>
<button type="button" class="map-clear">Clear</button><span class="map-selected"></span>
<span class="map-help" title="scroll to zoom · drag to pan · click a point · Lasso/Box: drag to select,
click to add or remove a point">scroll · drag · click</span></div>
<div class="map-body"><div class="map-stage"><canvas class="map-points"></canvas><div class="map-chart"></div>
<canvas class="map-draw"></canvas><div class="map-labels"></div></div>
<div class="map-side"><b>Clusters</b><ol class="map-cluster-list"></ol></div></div></div>"""
CSS = """
.map-view {position: relative;}
.map-tools {display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; font-size: .85em; margin-bottom: 4px;}
.map-tools button, .map-tools label, .map-selected {white-space: nowrap;}
.map-tools select, .map-tools button {border: 1px solid var(--border-color-primary); border-radius: 6px;
  padding: 2px 8px; background: var(--background-fill-primary);}
.map-help {opacity: .6;}
.map-body {display: flex; gap: 8px;}
.map-stage {position: relative; flex: 1; min-width: 0;}
.map-side {width: 170px; max-height: 560px; overflow-y: auto; font-size: .8em;}
.map-side ol {margin: 4px 0 0; padding-left: 18px;}
.map-side li button {border: none; background: none; padding: 1px 0; text-align: left; cursor: pointer; color: inherit;}
.map-side li button:hover {text-decoration: underline;}
.map-modes button.on {background: var(--color-accent-soft, #e0e7ff); border-color: var(--color-accent, #6366f1);}
.map-selected {font-weight: 600;}
.map-draw {position: absolute; left: 0; top: 0; pointer-events: none; z-index: 3;}
.map-draw.active {pointer-events: auto; cursor: crosshair;}
.map-labels {position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; z-index: 2;
  overflow: hidden;}
.map-label {position: absolute; transform: translate(-50%, -50%); pointer-events: none;
  white-space: nowrap; font-size: 12px; font-weight: 600; padding: 1px 6px; border-radius: 8px;
  background: rgba(255, 255, 255, .85); color: #1f2937; border: 1px solid rgba(0, 0, 0, .15);}
.map-points {position: absolute; left: 0; top: 0; pointer-events: none;}
.map-chart {position: relative; width: 100%; height: 560px;}
.map-tip-box {position: absolute; display: none; z-index: 9; pointer-events: none; background: #fff; color: #333;
  border: 1px solid #ddd; border-radius: 4px; box-shadow: 1px 2px 10px rgba(0, 0, 0, .2); padding: 8px 10px;
  font-size: 14px; line-height: 1.4;}
"""
CARD_CSS = """
.map-card img {width: 100%; max-height: 220px; object-fit: contain; border-radius: 8px; background: #fff;}
.map-card h3 {margin: 8px 0 4px; font-size: 1.05em;}
.map-card dl {display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0; font-size: .9em;}
.map-card dt {opacity: .65;} .map-card dd {margin: 0;}
.map-card-hint {opacity: .7; padding: 12px 0;}
"""
TIP_IMG_CSS = "width:64px;height:64px;object-fit:cover;border-radius:6px"
TIP_CSS = "display:flex;gap:8px;align-items:center;max-width:280px;white-space:normal"


def tip(product: Product, detail: str, thumbnail: bool = False) -> str:
    """A small hover card: thumbnail (optional), name, brand and a detail line; all escaped."""
    thumb = thumbnail_data_url(product.thumbnail) if thumbnail else None
    img = (
        f'<img src="{thumb}" alt="" style="width:64px;height:64px;object-fit:cover;border-radius:6px">' if thumb else ""
    )
    brand = f"<br>{html.escape(product.brand)}" if product.brand else ""
    text = f"<b>{html.escape(product.name or product.category)}</b>{brand}<br><small>{html.escape(detail)}</small>"
    return f'<div style="{TIP_CSS}">{img}<div>{text}</div></div>'


def product_card(product: Product) -> str:
    """The clicked product's card (escaped HTML)."""
    thumb = thumbnail_data_url(product.thumbnail)
    img = f'<img src="{thumb}" alt="">' if thumb else ""
    rows = [("Brand", product.brand or ""), ("Category", product.category), ("Type", product.subcategory)]
    rows += [("Colours", ", ".join(product.colors)), ("Tags", ", ".join(product.tags))]
    rows += [("Price", f"{product.price:,.2f}" if product.price is not None else "")]
    details = "".join(f"<dt>{label}</dt><dd>{html.escape(value)}</dd>" for label, value in rows if value)
    title = html.escape(product.name or product.category.capitalize())
    return f'<div class="map-card" data-id="{html.escape(product.id)}">{img}<h3>{title}</h3><dl>{details}</dl></div>'
