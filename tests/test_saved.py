"""Saved products: the engine (``similarity.saved``), the detail view and Saved tab handlers, called directly
with a ``gr.OAuthProfile`` (no real OAuth can run here) or a signed-in ``gr.Request``, and guests' browser lists."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.helpers import special_args

from similarity.accounts import Accounts
from similarity.config import Settings
from similarity.errors import LimitError, NotFoundError
from similarity.records import Filters
from similarity.saved import BROWSER_LIMIT, GONE, SavedProducts, browser_ids, export_csv
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.detail import SAVE, SAVED, DetailHandlers
from similarity.ui.files import UiFiles
from similarity.ui.layout import build_blocks
from similarity.ui.saved import BROWSER_ONLY, SavedHandlers

from .helpers import TINY_ENV
from .test_app_handlers import seed_catalog, tiny_settings

ROOT = Path(__file__).resolve().parent.parent

ANN = gr.OAuthProfile({"preferred_username": "ann", "name": "Ann", "profile": "https://hf.co/ann", "picture": ""})
BOB = gr.OAuthProfile({"preferred_username": "bob", "name": "Bob", "profile": "https://hf.co/bob", "picture": ""})
NO_FILTERS = (12, 0.0, [], [], [], [])


class SignedIn:
    """What ``gr.Request`` carries for a users-file login."""

    def __init__(self, username: str | None) -> None:
        self.username = username


@pytest.fixture
def service(tiny_embedder) -> SearchService:
    store = open_store("memory://")
    seed_catalog(store, tiny_embedder)
    return SearchService(store, tiny_embedder, None, tiny_settings())


@pytest.fixture
def saved(service) -> SavedProducts:
    return SavedProducts(service.store)


@pytest.fixture
def tab(service, saved, tmp_path) -> SavedHandlers:
    return SavedHandlers(service, saved, UiFiles(tmp_path), Accounts(oauth=True))


@pytest.fixture
def detail(saved, tmp_path) -> DetailHandlers:
    return DetailHandlers(saved, UiFiles(tmp_path))


def ids_of(service, n: int = 6) -> list[str]:
    return [p.id for batch in service.store.iter_products(n, vectors=False) for p in batch][:n]


class Session:
    def __init__(self, ids, scores) -> None:
        self.ids, self.scores = ids, scores


def click(index: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": index, "value": None})


def test_detail_view_saves_for_the_oauth_user_and_shows_saved(service, detail, saved):
    ids = ids_of(service, 3)
    session = Session(ids, [0.91, 0.8, 0.7])
    opened = detail.open(click(0), session, [], ANN, None)
    product = service.store.get([ids[0]])[0]
    assert opened.selected == ids[0] and opened.save["value"] == SAVE
    assert product.name in opened.info and "0.910" in opened.info and product.brand in opened.info
    assert Path(opened.image).is_file()
    button, browser = detail.toggle_save(ids[0], [], ANN, None)
    assert button["value"] == SAVED and browser == gr.skip()  # kept with the account, not the browser
    assert saved.saved_ids("hf:ann") == [ids[0]] and saved.saved_ids("hf:bob") == []
    assert detail.open(click(0), session, [], ANN, None).save["value"] == SAVED
    assert detail.open(click(0), session, [], BOB, None).save["value"] == SAVE  # bob has not saved it
    assert detail.toggle_save(ids[0], [], ANN, None)[0]["value"] == SAVE  # Saved ✓ again: removed
    assert saved.saved_ids("hf:ann") == []


def test_guests_save_in_their_browser_newest_first(service, detail, saved):
    ids = ids_of(service, 2)
    _, browser = detail.toggle_save(ids[0], [], None, SignedIn(None))
    _, browser = detail.toggle_save(ids[1], browser, None, SignedIn(None))
    assert browser == [ids[1], ids[0]]
    assert detail.open(click(1), Session(ids, [0.5, 0.4]), browser, None, None).save["value"] == SAVED
    with pytest.raises(gr.Error, match="no longer in the catalog"):
        detail.toggle_save("f" * 64, browser, None, None)


def test_what_a_browser_sends_is_checked(service, saved):
    good = ids_of(service, 2)
    raw = [good[0], 7, None, "<script>alert(1)</script>", "x" * 500, good[0], {"id": good[1]}, good[1]]
    assert browser_ids(raw) == [good[0], good[1]]
    assert browser_ids("not a list") == [] and browser_ids(None) == []
    assert len(browser_ids([f"id{n}" for n in range(BROWSER_LIMIT + 50)])) == BROWSER_LIMIT
    full = [f"id{n}" for n in range(BROWSER_LIMIT)]
    with pytest.raises(LimitError, match=str(BROWSER_LIMIT)):
        saved.save_in_browser(full, good[0])
    entries = saved.browser_entries([good[0], "gone-product"])
    assert [e.in_catalog for e in entries] == [True, False]


def test_saved_tab_lists_newest_first_with_notes_and_exports(service, tab, saved):
    ids = ids_of(service, 3)
    for pid in ids:
        saved.save("hf:ann", pid)
    saved.set_note("hf:ann", ids[0], "birthday <b>gift</b>")
    view = tab.refresh([], ANN, None)
    assert view.ids == ids[::-1]
    assert "Signed in as **ann**" in view.who and "3 saved products" in view.who
    assert view.gallery[-1][1].endswith("· birthday gift")  # markup stripped when stored
    rows = list(csv.DictReader(io.StringIO(Path(view.csv["value"]).read_text())))
    assert [r["id"] for r in rows] == ids[::-1] and rows[-1]["note"] == "birthday gift"
    data = json.loads(Path(view.json["value"]).read_text())
    assert [p["id"] for p in data["products"]] == ids[::-1] and data["products"][0]["saved_at"].endswith("Z")
    assert tab.refresh([], BOB, None).ids == []  # bob's list is his own


def test_a_product_that_left_the_catalog_shows_and_can_be_removed(service, tab, saved):
    ids = ids_of(service, 2)
    saved.save("local:ann", ids[0])
    saved.save("local:ann", ids[1])
    service.store.delete([ids[0]])
    request = SignedIn("ann")
    view = tab.refresh([], None, request)
    assert view.gallery[1][1] == f"{ids[0][:12]} — {GONE}"
    _, info, note, selected = tab.select(click(1), view.ids, [], None, request)
    assert selected == ids[0] and GONE in info and note["visible"] is True
    after = tab.remove(selected, [], None, request)
    assert after[2] and after.__len__() == 9 and after[3] == [ids[1]]
    with pytest.raises(gr.Error, match="no longer saved"):
        tab.select(click(1), view.ids, [], None, request)


def test_notes_need_an_account_and_are_saved_for_the_user(service, tab, saved):
    pid = ids_of(service, 1)[0]
    saved.save("hf:ann", pid)
    info, notice = tab.save_note(pid, "  for the <i>trip</i> ", [], ANN, None)
    assert notice == "Note saved." and "for the trip" in info
    assert saved.entries("hf:ann")[0].record.note == "for the trip"
    with pytest.raises(gr.Error, match="sign in"):
        tab.save_note(pid, "note", [pid], None, None)


def test_guest_tab_says_browser_only_and_sign_in_offers_to_move(service, tab, saved):
    ids = ids_of(service, 2)
    browser = [ids[1], ids[0], "gone-product"]
    view = tab.refresh(browser, None, None)
    assert BROWSER_ONLY in view.who and "Sign in with Hugging Face" in view.who and view.move["visible"] is False
    signed_in = tab.refresh(browser, ANN, None)
    assert signed_in.move["visible"] is True and "3 products saved in this browser" in signed_in.move["value"]
    moved = tab.move(browser, ANN, None)
    assert saved.saved_ids("hf:ann") == [ids[1], ids[0]]  # the browser's order is kept
    assert moved[-1] == ["gone-product"]  # what could not move stays in the browser


def test_more_like_my_saved_products_ranks_by_the_normalised_mean(service, tab, saved):
    ids = ids_of(service, 18)
    picked = ids[:3]
    for pid in picked:
        saved.save("hf:ann", pid)
    gallery, line, *_ = tab.recommend([], ANN, None, *NO_FILTERS)
    assert line == "12 results like your 3 saved products" and len(gallery) == 12
    mean = np.mean([service.store.vector(i) for i in picked], axis=0)
    mean /= np.linalg.norm(mean)
    scores = {i: float(service.store.vector(i) @ mean) for i in ids if i not in picked}
    expected = sorted(scores, key=lambda i: (-scores[i], i))[:12]
    query = service.saved_query(picked)
    result = service.rank(query, Filters(), 12)
    assert [m.product.id for m in result.matches] == expected  # saved products themselves left out
    assert np.allclose(query.vector, mean, atol=1e-6) and set(query.exclude) == set(picked)
    shoes = tab.recommend([], ANN, None, 12, 0.0, ["shoes"], [], [], [])
    assert all(caption.split(" · ")[0].lower().count("shoes") for _, caption in shoes[0])
    facet_total = sum(result.facets["categories"].values())
    assert facet_total == 15  # 18 products, the 3 saved ones left out of the counts too
    with pytest.raises(gr.Error, match="Save some products first"):
        tab.recommend([], BOB, None, *NO_FILTERS)


def test_saved_query_skips_products_that_left_the_catalog(service):
    ids = ids_of(service, 2)
    service.store.delete([ids[0]])
    query = service.saved_query([ids[0], ids[1]])
    assert np.allclose(query.vector, service.store.vector(ids[1]), atol=1e-6)
    with pytest.raises(NotFoundError):
        service.saved_query([ids[0]])


def test_saving_checks_the_catalog_and_the_cap(service):
    ids = ids_of(service, 3)
    small = SavedProducts(service.store, limit=2)
    assert small.save("local:ann", ids[0]) and small.save("local:ann", ids[1])
    with pytest.raises(LimitError, match="2 products"):
        small.save("local:ann", ids[2])
    with pytest.raises(NotFoundError):
        small.save("local:bob", "f" * 64)
    text = export_csv(small.entries("local:ann"))
    assert text.splitlines()[0].startswith("id,name,brand")


def test_gradio_injects_the_profile_and_request_before_the_ranking_inputs(tab, detail):
    # Gradio injects OAuth and request parameters only before the first *args parameter
    inputs = special_args(tab.recommend, inputs=[["browser"], *NO_FILTERS], request=None)[0]
    assert inputs[:3] == [["browser"], None, None] and inputs[3:] == list(NO_FILTERS)
    assert special_args(tab.refresh, inputs=[[]], request=None)[0] == [[], None, None]
    assert special_args(detail.toggle_save, inputs=["id", []], request=None)[0] == ["id", [], None, None]


SPACE_SCRIPT = """
import json
from similarity.accounts import Accounts
from similarity.config import Settings
from similarity.embedder import OpenClipEmbedder
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.layout import build_blocks
from tests.helpers import TINY_MODEL

settings = Settings.from_env()
service = SearchService(open_store("memory://"), OpenClipEmbedder(TINY_MODEL, "none"), None, settings)
demo = build_blocks(service, accounts=Accounts.from_settings(settings))
labels = [str(c.get("props", {}).get("value")) for c in demo.config["components"]]
print(json.dumps({"oauth": demo.expects_oauth, "login_buttons": labels.count("Sign in with Hugging Face")}))
"""


def test_login_button_only_on_a_space(service):
    # outside a Space a LoginButton would switch on Gradio's mocked OAuth: it must not be rendered
    elsewhere = build_blocks(service, accounts=Accounts.from_settings(Settings()))
    assert not elsewhere.expects_oauth and not build_blocks(service).expects_oauth
    labels = [str(c.get("props", {}).get("value")) for c in elsewhere.config["components"]]
    assert "Sign in with Hugging Face" not in labels
    assert "browserstate" in [c.get("type") for c in elsewhere.config["components"]]
    # on a Space (what the Space sets with hf_oauth: true; Gradio reads these when it is imported)
    space = {"SYSTEM": "spaces", "SPACE_ID": "someone/products", "OAUTH_CLIENT_ID": "test-client",
             "OAUTH_CLIENT_SECRET": "test-secret", "OAUTH_SCOPES": "openid profile",
             "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("SYSTEM", "SIMILARITY_USERS_FILE")}
    done = subprocess.run([sys.executable, "-c", SPACE_SCRIPT], capture_output=True, text=True, timeout=180,
                          env={**env, **TINY_ENV, **space}, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"oauth": True, "login_buttons": 1}
