"""The Saved tab: a user's saved products (newest first), notes, removal, CSV/JSON export, and
"More like my saved products" (the normalised mean of the saved vectors, with the usual filters).

Signed-in users' lists live in the catalog store; a guest's list lives in their browser (``gr.BrowserState``,
ids only, checked on every use). Identity comes from ``gr.Request.username`` (users file) or a
``gr.OAuthProfile`` (Hugging Face sign-in on a Space); these parameters come before ``*ranking`` because
Gradio only injects them there.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from ..accounts import Accounts, display_name, user_key
from ..errors import SimilarityError
from ..records import FACET_GROUPS
from ..saved import GONE, SavedEntry, SavedProducts, browser_ids, export_csv, export_json, iso_time
from ..search import DEFAULT_TOP_K, SearchService
from . import format as fmt
from .detail import detail_html
from .files import UiFiles
from .handlers import SearchHandlers, user_errors
from .ranking import RankArgs

BROWSER_ONLY = "Saved in this browser only"
EMPTY = "Nothing saved yet: open a result on the Search tab and press **Save**."
PRIVATE = {"api_visibility": "private"}


class SavedView(NamedTuple):
    """The tab's list components, in the order the layout wires them."""

    who: Any
    move: Any
    gallery: Any
    ids: Any
    csv: Any
    json: Any
    panel: Any
    selected: Any


class SavedHandlers:
    def __init__(self, service: SearchService, saved: SavedProducts, files: UiFiles, accounts: Accounts) -> None:
        self.service, self.saved, self.files, self.accounts = service, saved, files, accounts
        self.ranking = SearchHandlers(service, files)

    # -- the list ------------------------------------------------------------------------------------
    @user_errors
    def refresh(self, browser: Any, profile: gr.OAuthProfile | None, request: gr.Request) -> SavedView:
        return self._view(user_key(request, profile), browser)

    @user_errors
    def select(
        self, evt: gr.SelectData, ids: list[str], browser: Any, profile: gr.OAuthProfile | None, request: gr.Request
    ) -> tuple[Any, Any, Any, Any]:
        """A saved product was clicked: show it with its note and a Remove button. -> (panel, info, note, selected)"""
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not isinstance(index, int) or not 0 <= index < len(ids or []):
            raise SimilarityError("That saved product is no longer shown; open the tab again.")
        user = user_key(request, profile)
        entry = next((e for e in self._entries(user, browser) if e.id == ids[index]), None)
        if entry is None:
            raise SimilarityError("That product is no longer saved.")
        note = gr.update(value=entry.record.note, visible=user is not None)
        return gr.update(visible=True), entry_html(entry), note, entry.id

    @user_errors
    def remove(
        self, selected: str | None, browser: Any, profile: gr.OAuthProfile | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """Remove the selected product (also one that left the catalog). -> (*SavedView, browser)"""
        if not selected:
            raise SimilarityError("Select a saved product first.")
        user = user_key(request, profile)
        if user is None:
            browser = self.saved.unsave_in_browser(browser, selected)
        else:
            self.saved.unsave(user, selected)
        return (*self._view(user, browser), browser if user is None else gr.skip())

    @user_errors
    def save_note(
        self, selected: str | None, note: str, browser: Any, profile: gr.OAuthProfile | None, request: gr.Request
    ) -> tuple[Any, Any]:
        """-> (info, notice)"""
        user = user_key(request, profile)
        if user is None:
            raise SimilarityError("Notes are kept with an account; sign in to add one.")
        if not selected or not self.saved.set_note(user, selected, note):
            raise SimilarityError("Select a saved product first.")
        entry = next((e for e in self.saved.entries(user) if e.id == selected), None)
        return (entry_html(entry) if entry else gr.skip()), "Note saved."

    @user_errors
    def move(self, browser: Any, profile: gr.OAuthProfile | None, request: gr.Request) -> tuple[Any, ...]:
        """Move the products saved in this browser into the signed-in account. -> (*SavedView, browser)"""
        user = user_key(request, profile)
        if user is None:
            raise SimilarityError("Sign in first.")
        added, left = self.saved.move_from_browser(user, browser)
        gr.Info(f"Moved {added} product{'s' if added != 1 else ''} into your account.")
        return (*self._view(user, left), left)

    # -- more like my saved products -------------------------------------------------------------------
    @user_errors
    def recommend(
        self, browser: Any, profile: gr.OAuthProfile | None, request: gr.Request, *ranking: Any
    ) -> tuple[Any, ...]:
        """Rank the catalog by the normalised mean of the saved vectors. -> (gallery, line, *filter groups)"""
        args, _ = RankArgs.from_inputs(ranking)
        entries = [e for e in self._entries(user_key(request, profile), browser) if e.in_catalog]
        if not entries:
            raise SimilarityError("Save some products first: the recommendations start from them.")
        query = self.service.saved_query([e.id for e in entries])
        result, updates = self.ranking.rank_keeping_valid_ticks(query, args)
        gallery = [(self.files.thumbnail(m.product), fmt.caption(m.product, m.score)) for m in result.matches]
        line = f"{_count(len(result.matches), 'result')} like your {_count(len(entries), 'saved product')}"
        return (gallery, line, *updates.values())

    # -- helpers -----------------------------------------------------------------------------------------
    def _entries(self, user: str | None, browser: Any) -> list[SavedEntry]:
        return self.saved.entries(user) if user else self.saved.browser_entries(browser)

    def _view(self, user: str | None, browser: Any) -> SavedView:
        entries = self._entries(user, browser)
        pending = len(browser_ids(browser)) if user else 0
        move = gr.update(
            visible=bool(pending),
            value=f"Move the {pending} product{'s' if pending != 1 else ''} saved in this browser into my account",
        )
        gallery = [(self._picture(e), entry_caption(e)) for e in entries]
        files = self._exports(entries)
        downloads = [gr.update(value=path, interactive=bool(entries)) for path in files]
        hidden = gr.update(visible=False)
        return SavedView(self.who(user, len(entries)), move, gallery, [e.id for e in entries], *downloads, hidden, None)

    def who(self, user: str | None, count: int) -> str:
        counted = f"{count} saved product{'s' if count != 1 else ''}" if count else EMPTY
        if user is not None:
            where = "kept with your account"
            out = " · [Sign out](logout)" if self.accounts.passwords else ""
            return f"Signed in as **{fmt.md(display_name(user))}**: {where}.{out}\n\n{counted}"
        hint = (
            " Sign in with Hugging Face (top of the page) to keep them with your account."
            if self.accounts.oauth
            else ""
        )
        return f"**{BROWSER_ONLY}.**{hint}\n\n{counted}"

    def _picture(self, entry: SavedEntry) -> str:
        return self.files.thumbnail(entry.product) if entry.product is not None else self.files.placeholder()

    def _exports(self, entries: list[SavedEntry]) -> tuple[str | None, str | None]:
        if not entries:
            return None, None
        folder = Path(self.files.export_json(export_json(entries), "saved-products.json")).parent
        csv_path = folder / "saved-products.csv"
        csv_path.write_text(export_csv(entries), encoding="utf-8")
        return str(csv_path), str(folder / "saved-products.json")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def entry_caption(entry: SavedEntry) -> str:
    """Plain text (Gradio escapes captions)."""
    if entry.product is None:
        return f"{entry.id[:12]} — {GONE}"
    title = fmt.product_title(entry.product)
    return f"{title} · {entry.record.note}" if entry.record.note else title


def entry_html(entry: SavedEntry) -> str:
    saved_at = iso_time(entry.record.saved_at)
    when = f"<p class='saved-when'>Saved {html.escape(saved_at)}</p>" if saved_at else ""
    note = f"<p class='saved-note'>Note: {html.escape(entry.record.note)}</p>" if entry.record.note else ""
    if entry.product is None:
        body = f"<div class='detail-card'><h3>{html.escape(entry.id[:12])}…</h3><p>This product is {GONE}.</p></div>"
    else:
        body = detail_html(entry.product)
    return body + note + when


def build_saved_tab(handlers: SavedHandlers, browser: gr.BrowserState, demo: gr.Blocks) -> Any:
    """The tab's components and events; returns the refresh event arguments for the caller's tab.select."""
    who = gr.Markdown(elem_id="saved-who")
    move = gr.Button(visible=False, variant="primary", elem_id="saved-move")
    gallery = gr.Gallery(label="Saved products", show_label=False, columns=6, height="auto", object_fit="contain",
                         allow_preview=False, buttons=[], elem_id="saved-gallery")  # fmt: skip
    with gr.Group(visible=False, elem_id="saved-panel") as panel:
        info = gr.HTML(elem_id="saved-info")
        note = gr.Textbox(label="Note (optional, up to 200 characters)", max_lines=2, elem_id="saved-note-box")
        with gr.Row():
            save_note = gr.Button("Save note", size="sm", elem_id="saved-note-btn")
            remove = gr.Button("Remove", size="sm", variant="stop", elem_id="saved-remove")
        notice = gr.Markdown()
    with gr.Row():
        csv_file = gr.DownloadButton("Download CSV", size="sm", interactive=False, elem_id="saved-csv")
        json_file = gr.DownloadButton("Download JSON", size="sm", interactive=False, elem_id="saved-json")
    with gr.Accordion("More like my saved products", open=True, elem_id="saved-more"), gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=260):
            groups = [
                gr.CheckboxGroup([], value=[], label=label, visible=False, elem_id=f"saved-{group}")
                for group, label in zip(FACET_GROUPS, ("Category", "Brand", "Colour", "Tags"), strict=True)
            ]
            top_k = gr.Slider(1, 48, DEFAULT_TOP_K, step=1, label="Results")
            min_score = gr.Slider(0, 1, 0, step=0.01, label="Minimum similarity", info="0 = no minimum")
            go = gr.Button("More like my saved products", variant="primary", elem_id="saved-recommend")
        with gr.Column(scale=5, min_width=300):
            line = gr.Markdown(elem_id="saved-results-line")
            results = gr.Gallery(show_label=False, columns=4, height="auto", object_fit="contain",
                                 allow_preview=False, buttons=[], elem_id="saved-results")  # fmt: skip
    ids = gr.State([])
    selected = gr.State(None)
    view = [who, move, gallery, ids, csv_file, json_file, panel, selected]
    refresh = {"fn": handlers.refresh, "inputs": [browser], "outputs": view, **PRIVATE}
    demo.load(**refresh)
    gallery.select(handlers.select, [ids, browser], [panel, info, note, selected], **PRIVATE)
    remove.click(handlers.remove, [selected, browser], [*view, browser], **PRIVATE)
    save_note.click(handlers.save_note, [selected, note, browser], [info, notice], **PRIVATE).success(
        handlers.refresh, [browser], view, **PRIVATE
    )
    move.click(handlers.move, [browser], [*view, browser], **PRIVATE)
    ranking = [top_k, min_score, *groups]  # RANK_INPUTS order
    recommend = {"fn": handlers.recommend, "inputs": [browser, *ranking], "outputs": [results, line, *groups]}
    gr.on([go.click, *(g.input for g in groups), top_k.release, min_score.release], **recommend,
          concurrency_id="search", trigger_mode="always_last", **PRIVATE)  # fmt: skip
    return refresh


def browser_state(accounts: Accounts) -> gr.BrowserState:
    """A guest's saved ids in their browser: a fixed key per catalog, so a restart keeps them."""
    return gr.BrowserState([], storage_key=f"saved-{accounts.browser_key}", secret=accounts.browser_key)


__all__ = ["SavedHandlers", "browser_state", "build_saved_tab", "entry_caption", "entry_html"]
