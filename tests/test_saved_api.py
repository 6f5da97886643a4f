"""Accounts through the launched app: two users of a users file, signed in with gradio_client's ``auth``."""

from __future__ import annotations

import dataclasses

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from similarity.accounts import Accounts, Users, UsersFile, launch_auth
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui import launch_options

from .test_app_handlers import seed_catalog, seeded_service, tiny_settings

PASSWORDS = {"ann": "ann-Pa55word-1", "bob": "bob-Pa55word-2"}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> UsersFile:
    users = Users()
    for name, password in PASSWORDS.items():
        users = users.with_user(name, password)
    file = UsersFile(tmp_path_factory.mktemp("accounts") / "users")
    file.save(users)
    return file


@pytest.fixture(scope="module")
def catalog_url(tmp_path_factory, tiny_embedder) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"
    store = open_store(url)
    seed_catalog(store, tiny_embedder)
    store.close()
    return url


class Running:
    """The app on a SQLite catalog, behind the users file; ``restart`` stops it and starts it again."""

    def __init__(self, catalog_url: str, users_file: UsersFile, embedder) -> None:
        self.catalog_url, self.users_file, self.embedder = catalog_url, users_file, embedder
        self.demo = self.service = None
        self.url = ""
        self.start()

    def start(self) -> None:
        settings = dataclasses.replace(
            tiny_settings(), store_url=self.catalog_url, users_file=str(self.users_file.path)
        )
        accounts = Accounts.from_settings(settings)
        self.service = SearchService(open_store(self.catalog_url), self.embedder, None, settings)
        self.demo = app.build_demo(self.service, accounts)
        options = {**launch_options(), **launch_auth(accounts.users)}
        _, self.url, _ = self.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **options)

    def stop(self) -> None:
        self.demo.close()
        self.service.close()

    def client(self, name: str) -> Client:
        return Client(self.url, auth=(name, PASSWORDS[name]), verbose=False)


@pytest.fixture(scope="module")
def running(catalog_url, users_file, tiny_embedder):
    server = Running(catalog_url, users_file, tiny_embedder)
    yield server
    server.stop()


def product_ids(client: Client, n: int) -> list[str]:
    found = client.predict(text="a product", top_k=n, api_name="/search_text")
    return [m["id"] for m in found["matches"]]


def saved(client: Client) -> list[dict]:
    return client.predict(api_name="/saved_products")["products"]


def test_each_users_saves_stay_their_own_and_survive_a_restart(running):
    ann, bob = running.client("ann"), running.client("bob")
    first, second, third = product_ids(ann, 3)
    assert ann.predict(product_id=first, note="for <b>mum</b>", api_name="/save_product")["saved"] is True
    assert ann.predict(product_id=second, api_name="/save_product") == {"product_id": second, "saved": True, "count": 2}
    assert ann.predict(product_id=second, api_name="/save_product")["saved"] is False  # twice: a no-op
    assert bob.predict(product_id=third, api_name="/save_product")["count"] == 1

    mine = saved(ann)
    assert [p["id"] for p in mine] == [second, first]  # newest first
    assert mine[1]["note"] == "for mum"  # markup stripped when stored
    assert {"name", "category", "brand", "colors", "thumbnail", "note", "saved_at"} <= set(mine[0])
    assert "score" not in mine[0] and mine[0]["in_catalog"] is True
    assert [p["id"] for p in saved(bob)] == [third]

    # bob cannot remove ann's products: his unsave touches only his own list
    assert bob.predict(product_id=first, api_name="/unsave_product") == {
        "product_id": first,
        "removed": False,
        "count": 1,
    }
    assert [p["id"] for p in saved(ann)] == [second, first]

    running.stop()
    running.start()  # a restart signs everyone out; the saves are in the SQLite file
    assert [p["id"] for p in saved(running.client("ann"))] == [second, first]
    assert [p["id"] for p in saved(running.client("bob"))] == [third]
    assert running.client("ann").predict(product_id=first, api_name="/unsave_product")["removed"] is True


def test_a_wrong_password_is_refused(running):
    with pytest.raises(ValueError, match="Could not login"):
        Client(running.url, auth=("ann", PASSWORDS["bob"]), verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(running.url, auth=("nobody", "whatever-password"), verbose=False)


def test_requests_without_credentials_are_refused(running):
    import httpx

    assert httpx.get(f"{running.url}config", timeout=10).status_code == 401
    assert httpx.get(f"{running.url}gradio_api/info", timeout=10).status_code == 401
    with pytest.raises(Exception) as caught:
        Client(running.url, verbose=False)
    assert "ann" not in str(caught.value)


def test_unknown_products_and_bad_ids_are_short_errors(running):
    ann = running.client("ann")
    with pytest.raises(AppError, match="no longer in the catalog"):
        ann.predict(product_id="f" * 64, api_name="/save_product")
    with pytest.raises(AppError, match="product_id"):
        ann.predict(product_id="<script>", api_name="/save_product")


@pytest.fixture(scope="module")
def open_app(tiny_embedder):
    demo = app.build_demo(seeded_service(tiny_embedder))
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    yield Client(url, verbose=False)
    demo.close()


@pytest.mark.parametrize(
    ("endpoint", "kwargs"),
    [("/saved_products", {}), ("/save_product", {"product_id": "abc"}), ("/unsave_product", {"product_id": "abc"})],
)
def test_an_api_caller_who_is_not_signed_in_is_asked_to_sign_in(open_app, endpoint, kwargs):
    with pytest.raises(AppError, match="Sign in to save products"):
        open_app.predict(**kwargs, api_name=endpoint)
