"""The catalog-store contract, run against every backend (subclass and provide ``make_store``)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from similarity.arrange import Arrange
from similarity.config import Settings
from similarity.errors import EmptyCatalogError, LimitError, ModelMismatchError, StoreError
from similarity.index import StoreIndex
from similarity.records import FACET_GROUPS, Filters, PriceRange
from similarity.search import Query, SearchService
from similarity.store.base import CatalogStore

from .helpers import make_products, random_unit_vectors
from .rankings import assert_ranking_is_reference, assert_tie_order


def reference_scored(products, query, filters=None, min_score=None) -> list[tuple[str, float]]:
    """Brute-force numpy reference: (id, cosine) of every product passing the filters, score desc then id asc."""
    filters = filters or Filters()
    rows = []
    for p in products:
        priced = not filters.priced or filters.price_mask(np.array([np.nan if p.price is None else p.price]))[0]
        if priced and all(
            not vals or set(p.facet(FACET_GROUPS[g])) & set(vals) for g, vals in filters.groups().items()
        ):
            score = float(np.dot(p.embedding.astype(np.float32), query.astype(np.float32)))
            if min_score is None or score >= min_score:
                rows.append((-score, p.id))
    return [(pid, -negative) for negative, pid in sorted(rows)]


def reference_ranking(products, query, filters=None, k=10, min_score=None):
    return [pid for pid, _ in reference_scored(products, query, filters, min_score)[:k]]


def reference_facets(products, query, filters, n):
    by_id = {p.id: p for p in products}
    out = {}
    for group, attr in FACET_GROUPS.items():
        ids = reference_ranking(products, query, filters.without(group), n)
        out[group] = dict(Counter(v for i in ids for v in by_id[i].facet(attr)))
    return out


class StoreContract:
    """Every CatalogStore must pass these. Subclasses implement ``make_store``."""

    def make_store(self) -> CatalogStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self):
        store = self.make_store()
        yield store
        store.close()

    def ranker(self, store):
        return store.ranker() or StoreIndex(store)

    def test_upsert_is_idempotent(self, store):
        products = make_products(12)
        first = store.upsert(products)
        version = store.version()
        second = store.upsert(products)
        assert (first.added, first.updated) == (12, 0)
        assert (second.added, second.updated) == (0, 12)
        assert store.count() == 12
        assert store.version() != version

    def test_update_keeps_created_at_and_replaces_fields(self, store):
        product = make_products(1)[0]
        store.upsert([product])
        created = store.get([product.id])[0].created_at
        store.upsert([dataclasses.replace(product, name="Renamed", created_at=0.0)])
        again = store.get([product.id])[0]
        assert again.name == "Renamed" and again.created_at == pytest.approx(created)

    def test_get_keeps_order_and_skips_unknown(self, store):
        products = make_products(5)
        store.upsert(products)
        ids = [products[3].id, "f" * 64, products[1].id]
        got = store.get(ids)
        assert [p.id for p in got] == [products[3].id, products[1].id]
        assert got[0].thumbnail == products[3].thumbnail
        assert got[0].colors == products[3].colors and got[0].tags == products[3].tags
        assert got[0].embedding is None
        assert store.get(ids, thumbnails=False)[0].thumbnail is None

    def test_vectors_round_trip_exactly(self, store):
        products = make_products(6)
        store.upsert(products)
        assert np.array_equal(store.vector(products[2].id), products[2].embedding)
        assert store.vector("0" * 63 + "z") is None
        batch = store.load_vectors()
        assert batch.ids == sorted(p.id for p in products)
        by_id = {p.id: p for p in products}
        for row, pid in enumerate(batch.ids):
            assert np.array_equal(batch.vectors[row], by_id[pid].embedding)
            assert batch.facets["colors"][row] == by_id[pid].colors

    def test_existing_and_delete(self, store):
        products = make_products(4)
        store.upsert(products)
        assert store.existing([products[0].id, "a" * 64]) == {products[0].id}
        assert store.delete([products[0].id]) == 1
        assert store.count() == 3

    def test_batch_is_atomic(self, store):
        products = make_products(5)
        broken = dataclasses.replace(products[4], embedding=None)
        with pytest.raises(StoreError):
            store.upsert([*products[:4], broken])
        assert store.count() == 0

    def test_iter_products_covers_everything_in_id_order(self, store):
        products = make_products(11)
        store.upsert(products)
        seen = [p for batch in store.iter_products(batch_size=4) for p in batch]
        assert [p.id for p in seen] == sorted(p.id for p in products)
        assert all(p.embedding is not None and p.embedding.shape == (8,) for p in seen)

    def test_model_mismatch_is_refused(self, store):
        store.upsert(make_products(3, model="ViT-B-32/openai"))
        store.check_model("ViT-B-32/openai")
        with pytest.raises(ModelMismatchError, match="--reembed"):
            store.check_model("ViT-B-32/laion2b_s34b_b79k")

    def test_ranking_matches_numpy_reference_with_ties(self, store):
        products = make_products(40)
        for i in (5, 17, 29):  # exact ties: same vector, ids decide
            products[i].embedding = products[3].embedding.copy()
        store.upsert(products)
        ranker = self.ranker(store)
        for query in [products[3].embedding, *random_unit_vectors(3, seed=7)]:
            ranking = ranker.rank(query, Filters(), 10, None, 200)
            assert_ranking_is_reference(ranking, reference_scored(products, query), 10)
            assert_tie_order(ranking)

    def test_filters_apply_before_top_k(self, store):
        products = make_products(40)
        store.upsert(products)
        ranker = self.ranker(store)
        query = random_unit_vectors(1, seed=3)[0]
        filters = Filters.of(categories=["shoes", "watches"], colors=["red"])
        ranking = ranker.rank(query, filters, 5, None, 200)
        assert len(ranking.ids) > 0
        assert_ranking_is_reference(ranking, reference_scored(products, query, filters), 5)
        by_id = {p.id: p for p in products}
        assert all(by_id[i].category in ("shoes", "watches") and "red" in by_id[i].colors for i in ranking.ids)

    def test_min_score_threshold(self, store):
        products = make_products(30)
        store.upsert(products)
        query = products[0].embedding
        ranking = self.ranker(store).rank(query, Filters(), 30, 0.2, 200)
        assert_ranking_is_reference(ranking, reference_scored(products, query, min_score=0.2), 30)
        assert all(s >= 0.2 for s in ranking.scores)

    def test_disjunctive_facets(self, store):
        products = make_products(60)
        store.upsert(products)
        query = random_unit_vectors(1, seed=11)[0]
        filters = Filters.of(brands=["acme"], colors=["red"])
        ranking = self.ranker(store).rank(query, filters, 10, None, 25)
        expected = reference_facets(products, query, filters, 25)
        assert ranking.facets == expected
        assert len(ranking.facets["brands"]) > 1  # ticking a brand does not hide the others

    def test_index_sees_new_products(self, store):
        products = make_products(10)
        store.upsert(products[:5])
        ranker = self.ranker(store)
        assert len(ranker.rank(products[7].embedding, Filters(), 20, None, 50).ids) == 5
        store.upsert(products[5:])
        assert ranker.rank(products[7].embedding, Filters(), 20, None, 50).ids[0] == products[7].id

    def test_empty_catalog_is_a_clear_error(self, store):
        with pytest.raises(EmptyCatalogError, match="empty"):
            self.ranker(store).rank(random_unit_vectors(1)[0], Filters(), 5, None, 50)

    # -- saved products ------------------------------------------------------------------------------
    def test_saved_products_are_per_user_newest_first_and_saving_twice_is_a_no_op(self, store):
        products = make_products(3)
        store.upsert(products)
        a, b, c = (p.id for p in products)
        assert store.save_product("local:ann", a, "first") is True
        assert store.save_product("local:ann", b) is True
        assert store.save_product("local:ann", a, "changed?") is False  # no-op: the note stays
        assert store.save_product("hf:bob", c) is True
        saved = store.saved_products("local:ann")
        assert [r.product_id for r in saved] == [b, a]
        assert saved[1].note == "first" and saved[0].note == ""
        assert saved[0].saved_at >= saved[1].saved_at > 0
        assert [r.product_id for r in store.saved_products("hf:bob")] == [c]
        assert store.saved_products("local:nobody") == []

    def test_unsave_and_notes_touch_only_their_own_user(self, store):
        products = make_products(2)
        store.upsert(products)
        a, b = (p.id for p in products)
        for user in ("local:ann", "local:bob"):
            store.save_product(user, a)
        assert store.set_saved_note("local:ann", a, "gift for mum") is True
        assert store.set_saved_note("local:ann", b, "not saved") is False
        assert store.unsave_product("local:bob", a) is True
        assert store.unsave_product("local:bob", a) is False
        assert [(r.product_id, r.note) for r in store.saved_products("local:ann")] == [(a, "gift for mum")]
        assert store.saved_products("local:bob") == []

    def test_saved_products_outlive_their_catalog_entry(self, store):
        products = make_products(2)
        store.upsert(products)
        store.save_product("local:ann", products[0].id)
        store.delete([products[0].id])
        assert [r.product_id for r in store.saved_products("local:ann")] == [products[0].id]
        assert store.count() == 1  # saving is not a catalog change

    def test_saved_products_have_a_per_user_cap(self, store):
        for n in range(3):
            store.save_product("local:ann", f"id-{n}", limit=3)
        with pytest.raises(LimitError, match="3 products"):
            store.save_product("local:ann", "id-9", limit=3)
        assert store.save_product("local:ann", "id-1", limit=3) is False  # already saved: no error
        assert store.save_product("local:bob", "id-9", limit=3) is True  # the cap is per user
        assert len(store.saved_products("local:ann")) == 3

    # -- change feed and metadata edits (catalog management) --------------------------------------
    def test_change_feed_reports_upserts_edits_and_removals(self, store):
        start = store.changes(None)
        assert not start.complete  # no marker: the caller loads everything
        products = make_products(6)
        store.upsert(products)
        first = store.changes(start.marker)
        assert first.complete and set(first.upserted_ids) == {p.id for p in products} and not first.removed_ids
        store.edit(products[1].id, {"brand": "newbrand"})
        store.delete([products[2].id, "f" * 64])  # an unknown id is no removal
        second = store.changes(first.marker)
        assert second.complete and products[1].id in second.upserted_ids
        assert set(second.removed_ids) == {products[2].id}
        current = {p.id for p in products} - {products[2].id}
        # a backend may report a recent change again (harmless), never a wrong one
        assert set(second.upserted_ids) <= current and not set(second.removed_ids) & current
        assert store.changes(second.marker).complete

    def test_a_product_stored_again_is_not_reported_removed(self, store):
        products = make_products(3)
        store.upsert(products)
        marker = store.changes(None).marker
        store.delete([products[0].id])
        store.upsert([products[0]])
        change = store.changes(marker)
        assert products[0].id in change.upserted_ids and products[0].id not in change.removed_ids

    def test_unknown_markers_ask_for_a_reload(self, store):
        store.upsert(make_products(2))
        for marker in ("bogus", "", "x:1.0", "mongo:not-a-date"):
            assert not store.changes(marker).complete

    def test_edit_changes_metadata_only(self, store):
        product = make_products(1)[0]
        store.upsert([product])
        before = store.get([product.id])[0]
        edited = store.edit(product.id, {"name": "Renamed", "colors": ("blue",), "tags": ("summer",), "price": 9.5})
        assert edited is not None and edited.name == "Renamed" and edited.colors == ("blue",)
        after = store.get([product.id])[0]
        assert (after.name, after.colors, after.tags, after.price) == ("Renamed", ("blue",), ("summer",), 9.5)
        assert after.brand == before.brand and after.thumbnail == before.thumbnail
        assert after.created_at == pytest.approx(before.created_at) and after.updated_at > before.updated_at
        assert np.array_equal(store.vector(product.id), product.embedding)  # the vector is untouched
        assert store.load_vectors().facets["colors"] == [("blue",)]
        assert store.edit("a" * 64, {"name": "x"}) is None
        with pytest.raises(StoreError, match="embedding"):
            store.edit(product.id, {"embedding": [1.0]})

    def test_ids_with_prefix_and_vectors_of(self, store):
        products = make_products(20)
        store.upsert(products)
        assert store.ids_with_prefix("0" * 62 + "1") == [f"{i:064x}" for i in range(16, 20)]
        assert store.ids_with_prefix("0" * 63 + "3") == [products[3].id]
        assert store.ids_with_prefix("z") == []
        batch = store.load_vectors_of([products[5].id, "b" * 64, products[2].id])
        assert sorted(batch.ids) == sorted([products[2].id, products[5].id])
        row = batch.ids.index(products[5].id)
        assert np.array_equal(batch.vectors[row], products[5].embedding)
        assert batch.facets["tags"][row] == products[5].tags

    def test_changed_rows_are_the_feed_with_the_rows_it_names(self, store):
        products = make_products(8)
        store.upsert(products[:5])
        marker = store.changes(None).marker
        store.upsert(products[5:])
        store.edit(products[1].id, {"tags": ("sale",)})
        store.delete([products[2].id])
        changes, batch = store.changed_rows(marker, limit=10)
        assert changes.complete and set(changes.removed_ids) == {products[2].id}
        assert batch is not None and set(batch.ids) == set(changes.upserted_ids)
        assert set(batch.ids) >= {p.id for p in products[5:]} | {products[1].id}
        assert batch.facets["tags"][batch.ids.index(products[1].id)] == ("sale",)
        row = batch.ids.index(products[6].id)
        assert np.array_equal(batch.vectors[row], products[6].embedding)
        assert store.changed_rows(marker, limit=2)[1] is None  # larger than the limit: no rows read
        assert store.changed_rows("bogus", limit=10)[1] is None  # unknown marker: the caller reloads

    def test_index_is_patched_from_the_feed(self, store):
        if store.ranker() is not None:
            pytest.skip("a server-side ranker reads the store directly")
        products = make_products(60)
        store.upsert(products[:50])
        index = StoreIndex(store)
        index.current()
        store.upsert(products[50:52])
        store.edit(products[3].id, {"brand": "zeta"})
        store.delete([products[0].id])
        ranking = index.rank(products[0].embedding, Filters(), 60, None, 60)
        assert (index.reloads, index.patches) == (1, 3)  # each write through the store patched the index
        assert products[0].id not in ranking.ids and len(ranking.ids) == 51
        assert index.rank(products[3].embedding, Filters.of(brands=["zeta"]), 5, None, 5).ids == [products[3].id]
        assert index.rank(products[51].embedding, Filters(), 1, None, 1).ids == [products[51].id]

    # -- steering: the price range (before top-k) and sorts of the relevant set --------------------------
    def test_price_range_applies_before_top_k_like_brute_force(self, store):
        rng = np.random.default_rng(5)
        products = make_products(90)
        for i, p in enumerate(products):  # ties, whole and fractional prices, and some with no price
            p.price = None if i % 7 == 0 else float(rng.choice([4.5, 10.0, 10.0, 25.0, 60.0, 99.99, 120.0]))
        store.upsert(products)
        ranker = self.ranker(store)
        for seed, (low, high, categories) in enumerate([(10, 60, ()), (None, 10, ("bags",)), (99.99, None, ()),
                                                        (10, 10, ("shoes", "watches")), (500, None, ())]):  # fmt: skip
            query = random_unit_vectors(1, seed=20 + seed)[0]
            filters = Filters.of(categories=categories, price_min=low, price_max=high)
            ranking = ranker.rank(query, filters, 8, None, 40)
            assert ranking.ids == reference_ranking(products, query, filters, 8)
            assert all(low is None or by >= low for by in _prices(products, ranking.ids))
            candidates = [
                p for p in products if p.id in set(reference_ranking(products, query, filters.without_price(), 40))
            ]
            priced = [p.price for p in candidates if p.price is not None]
            want = PriceRange(
                min(priced, default=None), max(priced, default=None), len(priced), len(candidates) - len(priced)
            )
            assert ranking.prices == want  # the range among candidates, whatever the price bounds

    def test_price_edits_reach_the_ranking(self, store):
        products = make_products(20)
        store.upsert(products)
        ranker = self.ranker(store)
        cheap = Filters.of(price_max=12)
        assert set(ranker.rank(products[5].embedding, cheap, 20, None, 20).ids) == {
            products[0].id,
            products[1].id,
            products[2].id,
        }
        store.edit(products[5].id, {"price": 3.0})
        store.edit(products[0].id, {"price": None})
        assert set(ranker.rank(products[5].embedding, cheap, 20, None, 20).ids) == {
            products[1].id,
            products[2].id,
            products[5].id,
        }
        if store.ranker() is None:
            assert self.ranker(store).price_range() == PriceRange(3.0, 29.0, 19, 1)

    def test_sorts_reorder_only_the_relevant_set(self, store, tiny_embedder):
        products = make_products(40)
        for i, p in enumerate(products):
            p.price = None if i % 5 == 0 else float(10 + (i * 7) % 4)  # many ties, some missing
        store.upsert(products[:20])
        store.upsert(products[20:])  # a later batch: newer
        service = SearchService(store, tiny_embedder, None, Settings(store_url="memory://"), self.ranker(store))
        query = Query(random_unit_vectors(1, seed=3)[0], "test")
        relevant = service.rank(query, Filters.of(price_max=11.5), 12, 0.0)
        ids = [m.product.id for m in relevant.matches]
        assert all(m.product.price is not None and m.product.price <= 11.5 for m in relevant.matches)
        for sort, key in [
            ("price_asc", lambda m: (m.product.price is None, m.product.price or 0)),
            ("price_desc", lambda m: (m.product.price is None, -(m.product.price or 0))),
            ("newest", lambda m: -m.product.created_at),
        ]:
            again = service.rank(query, Filters.of(price_max=11.5), 12, 0.0, Arrange.of(sort))
            assert sorted(m.product.id for m in again.matches) == sorted(ids)  # the same relevant set
            assert [m.product.id for m in again.matches] == [m.product.id for m in sorted(relevant.matches, key=key)]
            assert [m.rank for m in again.matches] == list(range(1, len(ids) + 1))
        everything = service.rank(query, Filters(), 12, None, Arrange.of("price_asc"))
        prices = [m.product.price for m in everything.matches]
        assert None in prices and prices[prices.index(None) :] == [None] * (
            len(prices) - prices.index(None)
        )  # no price last
        top = {m.product.id for m in service.rank(query, Filters(), 12).matches}
        assert {m.product.id for m in everything.matches} == top  # never the cheapest of the whole catalog


def _prices(products, ids):
    by_id = {p.id: p for p in products}
    return [by_id[i].price for i in ids]
