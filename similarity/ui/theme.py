"""Looks: theme and CSS (Gradio 6 takes both in ``launch()``, see ``launch_options``)."""

from __future__ import annotations

from typing import Any

import gradio as gr

CSS = """
.gradio-container {max-width: 1280px !important; margin: 0 auto;}
#intro {margin-top: -6px; opacity: .85;}
.warn-banner {background: #fff4e5; color: #7a4100; border: 1px solid #f0b35a; border-radius: 8px; padding: 8px 12px;}
.source-card {display: flex; gap: 10px; align-items: center; min-height: 36px; font-size: .95em;}
.source-card img {width: 48px; height: 48px; object-fit: cover; border-radius: 6px;}
#timings {font-size: .85em; opacity: .8;}
#footer {text-align: center; font-size: .85em; opacity: .75; margin-top: 8px;}
/* results: show every row (no inner scroll pane) and full captions under the pictures */
#results-gallery .fixed-height, #catalog-gallery .fixed-height {max-height: none; min-height: 0;}
#results-gallery .grid-wrap, #catalog-gallery .grid-wrap {overflow-y: visible; padding-top: 0;}
#results-gallery .grid-container, #catalog-gallery .grid-container {padding-top: 0;}
#results-gallery .thumbnail-item, #catalog-gallery .thumbnail-item {
  aspect-ratio: auto; height: auto; display: flex; flex-direction: column; background: #fff;
}
#results-gallery .thumbnail-lg > img, #catalog-gallery .thumbnail-lg > img {aspect-ratio: 1; height: auto;}
#results-gallery .caption-label, #catalog-gallery .caption-label {
  position: static; max-width: none; white-space: normal; text-align: left; border: 0; border-radius: 0;
  border-top: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
  font-size: .8em; line-height: 1.3; padding: 4px 6px; flex: 1;
}
/* a click starts "more like this", which replaces the list: no lasting highlight */
#results-gallery .thumbnail-item.selected {--ring-color: transparent; border-color: var(--border-color-primary);}
#results-gallery .thumbnail-lg:hover .caption-label, #catalog-gallery .thumbnail-lg:hover .caption-label {opacity: 1;}
/* the Saved tab's galleries (ui/saved.py): the same grid as the results */
#saved-gallery .fixed-height, #saved-results .fixed-height {max-height: none; min-height: 0;}
#saved-gallery .grid-wrap, #saved-results .grid-wrap {overflow-y: visible; padding-top: 0;}
#saved-gallery .thumbnail-item, #saved-results .thumbnail-item {
  aspect-ratio: auto; height: auto; display: flex; flex-direction: column; background: #fff;
}
#saved-gallery .thumbnail-lg > img, #saved-results .thumbnail-lg > img {aspect-ratio: 1; height: auto;}
#saved-gallery .caption-label, #saved-results .caption-label {
  position: static; max-width: none; white-space: normal; text-align: left; border: 0; border-radius: 0;
  border-top: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
  font-size: .8em; line-height: 1.3; padding: 4px 6px; flex: 1;
}
/* the result detail view (ui/detail.py) and the Saved tab's panel */
.detail-card h3 {margin: 0 0 6px;}
.detail-card dl {display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0;}
.detail-card dt {opacity: .7;}
.detail-card dd {margin: 0;}
.saved-note {font-style: italic;}
.saved-when {font-size: .85em; opacity: .7;}
@media (max-width: 640px) {
  #results-gallery .grid-container, #catalog-gallery .grid-container {
    grid-template-columns: repeat(2, minmax(0, 1fr)) !important;
  }
}
"""


def theme() -> gr.themes.Base:
    system = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]  # local fonts: no Google Fonts request
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", font=system, font_mono=mono).set(
        checkbox_label_padding="2px 8px", checkbox_label_gap="6px", checkbox_label_text_size="*text_sm"
    )


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: theme, css and the upload cap."""
    return {"theme": theme(), "css": CSS, "max_file_size": "10mb"}
