"""Pure text rendering for the UI: captions, facet labels, timings, tag and store panels.

Product names, brands and tags come from users and from Gemini, so everything that ends up in
Markdown or HTML is escaped here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..records import Product, thumbnail_data_url

FACET_LIMIT = 10  # choices shown per filter group (ticked values are always shown too)
TIMING_STAGES = ("download", "decode", "load_model", "embed", "search", "fetch", "tag")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md(text: object) -> str:
    """Escape a value for Markdown (HTML entities and Markdown punctuation)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def product_title(product: Product) -> str:
    name = product.name or (product.subcategory or product.category).capitalize() or "Product"
    return f"{name} — {product.brand}" if product.brand else name


def caption(product: Product, score: float | None = None) -> str:
    """``Name — brand · 0.83`` (cosine, 2 decimals); plain text for the gallery."""
    title = product_title(product)
    return title if score is None else f"{title} · {score:.2f}"


def facet_choices(
    counts: Mapping[str, int], ticked: Iterable[str] | None, limit: int = FACET_LIMIT
) -> tuple[list[tuple[str, str]], list[str]]:
    """Choices as ``("nike (4)", "nike")`` pairs (most frequent first) and the ticks still valid."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = [value for value in dict.fromkeys(ticked or ()) if value in counts]
    shown = [value for value, _ in ordered[:limit]]
    shown += [value for value in keep if value not in shown]
    return [(f"{value} ({counts[value]})", value) for value in shown], keep


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def timings_line(timings: Mapping[str, float], tag: str | float | None = None, note: str = "") -> str:
    """``decode 3 ms · embed 41 ms · search 1.2 ms · tag 0.8 s`` (tag may be a word like "pending")."""
    parts = [f"{stage.replace('_', ' ')} {_ms(timings[stage])}" for stage in TIMING_STAGES if stage in timings]
    if isinstance(tag, int | float):
        parts.append(f"tag {_ms(tag)}")
    elif tag:
        parts.append(f"tag {tag}")
    text = " · ".join(parts)
    return f"{text}{f' ({note})' if note else ''}" if text else ""


def source_html(kind: str, text: str | None = None, product: Product | None = None, count: int = 0) -> str:
    """The line above the gallery saying what the results are similar to."""
    found = f"{count} result{'s' if count != 1 else ''}"
    if product is not None:
        thumb = thumbnail_data_url(product.thumbnail)
        img = f'<img src="{thumb}" alt="">' if thumb else ""
        title = html.escape(product_title(product))
        return f'<div class="source-card">{img}<span>{found} like <b>{title}</b> (from the catalog)</span></div>'
    what = {"image": "your photo", "text": "your description"}.get(kind, "your photo and description")
    extra = f" “{html.escape(text)}”" if text and kind == "text" else ""
    return f'<div class="source-card"><span>{found} for {what}{extra}</span></div>'


def tags_markdown(result: Any) -> str:
    """The "what we see in your photo" panel from a ``TagResult``."""
    if not result.ok:
        return f"Could not describe the photo: {md(result.error or 'tagging failed')}."
    tags, confidence = result.tags, result.confidence or {}
    rows = [("Looks like", tags.name), ("Category", _with_confidence(tags.category, confidence.get("category")))]
    rows += [("Type", tags.subcategory), ("Colours", ", ".join(tags.colors)), ("Brand", tags.brand or "")]
    rows += [("Tags", ", ".join(tags.tags)), ("For", tags.target_audience or ""), ("Notes", tags.description)]
    lines = [f"- **{label}:** {md(value)}" for label, value in rows if value]
    lines.append(f"\n<small>by {md(result.label)}</small>")
    return "\n".join(lines)


def _with_confidence(value: str, confidence: float | None) -> str:
    return f"{value} ({confidence:.2f})" if confidence is not None else value


def store_markdown(info: Mapping[str, Any]) -> str:
    """Store information for the catalog tab (the URL is already masked by the store)."""
    models = info.get("embedding_models") or {}
    rows = [
        ("Backend", info.get("backend", "?")),
        ("Location", info.get("url", "?")),
        ("Products", info.get("count", "?")),
        ("Embedding model", info.get("model", "?")),
        ("Tagger", info.get("tagger", "off")),
    ]
    if len(models) > 1:
        rows.append(("Vectors by model", ", ".join(f"{m}: {n}" for m, n in models.items())))
    lines = [f"- **{label}:** {md(value)}" for label, value in rows]
    categories = info.get("categories") or {}
    by_category = " · ".join(f"{md(c)} {n}" for c, n in categories.items()) or "none yet"
    return "\n".join(lines) + f"\n\n**Products per category:** {by_category}"


def random_weights_banner(model: str) -> str:
    return (
        '<div class="warn-banner" role="alert">⚠️ <b>Random model weights</b> '
        f"({html.escape(model)}, SIMILARITY_CLIP_PRETRAINED=none): similarity scores are meaningless. "
        "For offline testing only.</div>"
    )


def loading_status(
    loaded: bool, error: str | None, index: str = "ready", seeding: Mapping[str, Any] | None = None
) -> str:
    """What still loads in the background: the model, then the catalog index (empty once ready).

    ``seeding`` (the first start filling an empty catalog: ``active``, ``done``, ``total``, ``notice``)
    adds its own line above: progress while it runs, and a notice that stays when it fell back or stopped.
    """
    seed_line = _seeding_line(seeding) if seeding else ""
    rest = _loading_line(loaded, error, index)
    return "\n\n".join(line for line in (seed_line, rest) if line)


def _seeding_line(seeding: Mapping[str, Any]) -> str:
    if seeding.get("active"):
        done, total = int(seeding.get("done") or 0), seeding.get("total")
        count = f"{done:,} of {int(total):,} products" if total else f"{done:,} products so far"
        return f"⏳ Seeding the catalog: {count}; searches cover what is seeded so far."
    return f"⚠️ {md(seeding['notice'])}" if seeding.get("notice") else ""


def _loading_line(loaded: bool, error: str | None, index: str) -> str:
    if error:
        return f"⚠️ The model could not be loaded: {html.escape(error)}"
    if not loaded:
        return "⏳ Loading the image model… the first search waits for it."
    if index == "loading":
        return "⏳ Loading the catalog index… the first search waits for it."
    if index == "building":
        return "⚙️ Preparing the fast search index in the background; until then searches are exact and a little slower."
    return ""


def footer_markdown(
    model: str, store_url: str, tagger: str, precision: str | None = None, device: str | None = None
) -> str:
    """``precision`` None: ``auto`` has not run its start-up probe yet."""
    model = f"{model} · {precision or 'auto'}"
    where = f" · device **{md(device)}**" if device else ""
    return f"Model **{md(model)}**{where} · store **{md(store_url)}** · tagger **{md(tagger)}**"


def outcome_rows(outcomes: Sequence[Any]) -> list[list[str]]:
    """Ingest outcomes as table rows: file, result (added / duplicate / failed), detail."""
    words = {"added": "added", "present": "duplicate", "skipped": "failed", "failed": "failed"}
    return [[o.key, words.get(o.status, o.status), o.reason or ""] for o in outcomes]
