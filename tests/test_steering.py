"""Steering: query composition (more of / less of / liked / disliked) on vectors with known geometry, and
the arranged page (cutoff relative to the best, near-duplicates folded)."""

from __future__ import annotations

import numpy as np
import pytest

from similarity.arrange import COLLAPSE_COSINE, Arrange
from similarity.config import Settings
from similarity.errors import NotFoundError, SimilarityError
from similarity.records import Filters, Product
from similarity.search import Query, SearchService
from similarity.steering import WEIGHTS, Steering, combine_parts, steer, steered_like
from similarity.store import open_store

DIM = 16
BASE, RED, LEATHER, GAP = (np.eye(DIM, dtype=np.float32)[i] for i in range(4))


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


class KnownTexts:
    """An embedder whose text vectors are given (the geometry is then known); images are not used here."""

    model_id = "test/none"
    loaded = True
    precision = "fp32"

    def __init__(self, texts: dict[str, np.ndarray]) -> None:
        self.texts, self.calls = texts, 0

    def embed_texts(self, texts):
        self.calls += 1
        return np.stack([self.texts[t] for t in texts])


def catalog(n: int = 60, seed: int = 0) -> list[Product]:
    """Products around BASE with known amounts of RED and LEATHER, and a little noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        red, leather = rng.uniform(0, 1), rng.uniform(0, 1)
        noise = rng.normal(scale=0.05, size=DIM)
        vector = unit(BASE + red * RED + leather * LEATHER + noise)
        out.append(Product(id=f"{i:04d}{'0' * 60}", name=f"P{i}", price=float(i), embedding=vector,
                           embedding_model="test/none"))  # fmt: skip
    return out


@pytest.fixture
def service() -> SearchService:
    store = open_store("memory://")
    store.upsert(catalog())
    texts = {"red": unit(RED + GAP), "leather": unit(LEATHER + GAP), "base": BASE}
    return SearchService(store, KnownTexts(texts), None, Settings(store_url="memory://"))


def ids_of(result) -> list[str]:
    return [m.product.id for m in result.matches]


def amount(service, ids, axis) -> float:
    return float(np.mean([service.store.vector(i) @ axis for i in ids]))


def test_less_of_a_text_moves_results_away_from_its_vector(service):
    query = Query(BASE, "text", parts={"text": BASE})
    before = ids_of(service.rank(query, top_k=10))
    after = ids_of(service.rank(service.steer(query, Steering.of(less="red")), top_k=10))
    assert amount(service, after, RED) < amount(service, before, RED) - 0.1
    assert amount(service, after, BASE) > 0.6  # still about the base


def test_more_of_a_text_moves_results_towards_it(service):
    query = Query(BASE, "text", parts={"text": BASE})
    before = ids_of(service.rank(query, top_k=10))
    after = ids_of(service.rank(service.steer(query, Steering.of(more=["leather"])), top_k=10))
    assert amount(service, after, LEATHER) > amount(service, before, LEATHER) + 0.1


def test_disliking_a_product_lowers_its_rank_and_leaves_it_out(service):
    query = Query(BASE, "text", parts={"text": BASE})
    before = ids_of(service.rank(query, top_k=60))
    disliked = before[3]
    steered = service.steer(query, Steering.of(disliked=[disliked[:10]]))  # a unique prefix is enough
    assert steered.steering.disliked == (disliked,)
    scores = {i: float(service.store.vector(i) @ steered.vector) for i in before}
    rank_after = sorted(before, key=lambda i: -scores[i]).index(disliked)
    # the composed vector alone pushes it down: it loses w·(1 − cos) against every other product
    assert rank_after > before.index(disliked) == 3
    assert disliked not in ids_of(service.rank(steered, top_k=60))  # and it is left out ("not these again")


def test_liking_a_product_raises_products_near_it(service):
    query = Query(BASE, "text", parts={"text": BASE})
    before = ids_of(service.rank(query, top_k=60))
    liked = before[-1]  # the least relevant one
    vectors = {i: service.store.vector(i) for i in before}
    near = sorted((i for i in before if i != liked), key=lambda i: -float(vectors[i] @ vectors[liked]))[:5]
    after = ids_of(service.rank(service.steer(query, Steering.of(liked=[liked])), top_k=60))
    assert np.mean([after.index(i) for i in near]) < np.mean([before.index(i) for i in near]) - 5
    assert liked in after  # liked products stay


def test_composition_is_the_weighted_sum_of_group_means():
    parts = {"image": unit(BASE + RED), "text": LEATHER}
    terms = [("more", 0.75, RED), ("more", 0.75, GAP), ("less", -1.0, LEATHER)]
    base = unit(0.5 * parts["image"] + 0.5 * parts["text"])
    want = unit(base + 0.75 * (RED + GAP) / 2 - 1.0 * LEATHER)
    assert np.allclose(combine_parts(parts, 0.5, terms), want, atol=1e-6)
    assert np.allclose(combine_parts(parts, 0.5), base, atol=1e-6)  # no terms: today's query


def test_parts_that_cancel_are_todays_clear_error(service):
    query = Query(BASE, "text", parts={"text": BASE})
    with pytest.raises(SimilarityError, match="cancel each other out"):
        steer(query, Steering.of(less="base"), service.store, service.embedder, weights={"less": -1.0})
    with pytest.raises(SimilarityError, match="text weight cancels"):
        combine_parts({"image": BASE, "text": -BASE}, 0.5)


def test_steering_again_replaces_it_and_keeps_the_base(service):
    query = Query(BASE, "text", parts={"text": BASE}, exclude=("saved-one",))
    once = service.steer(query, Steering.of(less="red", disliked=["0001"]))
    assert set(once.exclude) == {"saved-one", "0001" + "0" * 60}
    again = service.steer(once, Steering.of(more="leather"))
    assert again.exclude == ("saved-one",) and again.steering == Steering(more=("leather",))
    assert np.allclose(again.vector, service.steer(query, Steering.of(more="leather")).vector)
    plain = service.steer(once, Steering())
    assert np.allclose(plain.vector, BASE) and plain.terms == ()
    # a new text weight or a swapped image part keeps the steering
    photo = Query(unit(BASE + RED), "image+text", parts={"image": unit(BASE + RED), "text": LEATHER})
    steered = service.steer(photo, Steering.of(less="red"))
    assert np.allclose(service.reweight(steered, 0.2).vector, combine_parts(photo.parts, 0.2, steered.terms))
    region = service.with_image(steered, BASE)
    assert np.allclose(region.vector, combine_parts({"image": BASE, "text": LEATHER}, 0.5, steered.terms))


def test_a_region_picked_after_refine_takes_the_page_steering_without_embedding(service):
    photo = Query(unit(BASE + RED), "image", parts={"image": unit(BASE + RED)})
    page = service.steer(photo, Steering.of(less="red", disliked=["0002"]))
    calls = service.embedder.calls
    region = service.with_image(photo, unit(BASE + LEATHER))  # the region, found before the Refine
    steered = steered_like(region, page)
    assert service.embedder.calls == calls and steered.steering == page.steering
    assert np.allclose(steered.vector, combine_parts({"image": unit(BASE + LEATHER)}, 0.5, page.terms))
    assert steered.exclude == page.steering.disliked
    assert steered_like(page, page) is page


def test_product_queries_can_be_steered(service):
    first = service.store.get([service.store.ids_with_prefix("0003")[0]])[0]
    query = service.product_query(first.id)
    steered = service.steer(query, Steering.of(less="red"))
    result = service.rank(steered, top_k=5)
    assert first.id not in ids_of(result) and result.query["steering"] == {"less": ["red"]}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"liked": ["ffff"]}, NotFoundError, "No product has an id starting with 'ffff'"),
        ({"disliked": ["00"]}, SimilarityError, "'00' matches 10\\+ products; give more of the id"),
        ({"more": [f"t{i}" for i in range(11)]}, SimilarityError, "at most 10"),
        ({"less": {"a": 1}}, SimilarityError, "list of texts"),
    ],
)
def test_bad_steering_input_is_a_short_error(service, kwargs, error, message):
    query = Query(BASE, "text", parts={"text": BASE})
    with pytest.raises(error, match=message):
        service.steer(query, Steering.of(**kwargs))


def test_steering_values_are_cleaned():
    s = Steering.of(more="  red  ", less=["", "  a   b ", "a b"], liked=("x", "x", " "), disliked=None)
    assert s == Steering(more=("red",), less=("a b",), liked=("x",))
    assert not Steering.of() and Steering.of(more="x")
    assert WEIGHTS["more"] > 0 > WEIGHTS["less"] and WEIGHTS["liked"] > 0 > WEIGHTS["disliked"]


# -- the arranged page -----------------------------------------------------------------------------
def test_within_best_is_relative_to_the_best_match(service):
    query = Query(BASE, "text", parts={"text": BASE})
    full = service.rank(query, top_k=60)
    best = full.matches[0].score
    near = service.rank(query, top_k=60, arrange=Arrange.of(within_best=0.05))
    assert [m.product.id for m in near.matches] == [m.product.id for m in full.matches if m.score >= best - 0.05]
    assert 0 < len(near.matches) < 60


def twins_store(n_distinct: int = 12, seed: int = 1):
    """Distinct products plus near-identical copies (the vector nudged a little) of the first three."""
    rng = np.random.default_rng(seed)
    store = open_store("memory://")
    vectors = [unit(BASE * 2 + rng.normal(size=DIM)) for _ in range(n_distinct)]
    products = [Product(id=f"d{i:02d}", embedding=v, embedding_model="test/none") for i, v in enumerate(vectors)]
    for i in range(3):
        for j in range(2):
            copy = unit(vectors[i] + rng.normal(scale=0.03, size=DIM))
            products.append(Product(id=f"d{i:02d}-copy{j}", embedding=copy, embedding_model="test/none"))
    store.upsert(products)
    return store, vectors


def test_near_identical_copies_fold_into_their_better_ranked_twin_and_distinct_ones_never_fold():
    store, vectors = twins_store()
    service = SearchService(store, KnownTexts({}), None, Settings(store_url="memory://"))
    cosines = np.stack(vectors) @ np.stack(vectors).T
    assert cosines[np.triu_indices(len(vectors), 1)].max() < COLLAPSE_COSINE  # distinct stay apart
    for query_vector in (vectors[0], vectors[1], unit(BASE)):
        query = Query(query_vector, "test", parts={"test": query_vector})
        plain = service.rank(query, top_k=12)
        folded = service.rank(query, top_k=12, arrange=Arrange.of(collapse_duplicates=True))
        plain_rank = {m.product.id: m.rank for m in service.rank(query, top_k=18).matches}
        groups = [m.product.id[:3] for m in folded.matches]
        assert sorted(groups) == [f"d{i:02d}" for i in range(12)]  # one per group: every distinct product kept
        for match in folded.matches:
            group = match.product.id[:3]
            members = {group, f"{group}-copy0", f"{group}-copy1"} if group < "d03" else {group}
            assert set(match.folded) == members - {match.product.id}  # its copies, nothing distinct
            assert all(plain_rank[match.product.id] < plain_rank[i] for i in match.folded)  # the better ranked
        assert len(plain.matches) == 12 and folded.to_dict()["matches"][0]["rank"] == 1


def test_collapse_off_by_default_and_threshold_can_be_given():
    store, vectors = twins_store()
    service = SearchService(store, KnownTexts({}), None, Settings(store_url="memory://"))
    query = Query(vectors[0], "test", parts={"test": vectors[0]})
    assert all(not m.folded for m in service.rank(query, top_k=18).matches)
    loose = service.rank(query, top_k=18, arrange=Arrange.of(collapse_duplicates=0.3))
    assert len(loose.matches) < 12  # a low threshold folds distinct products too: it is the caller's choice
    assert Arrange.of(collapse_duplicates="true").collapse == COLLAPSE_COSINE
    assert Arrange.of(collapse_duplicates=False).collapse is None
    assert not Arrange.of() and Arrange.of(sort="price_desc")


def test_price_facet_is_reported_with_the_results(service):
    query = Query(BASE, "text", parts={"text": BASE})
    result = service.rank(query, Filters.of(price_min=10, price_max=20), top_k=5)
    assert all(10 <= m.product.price <= 20 for m in result.matches)
    price = result.to_dict()["facets"]["price"]
    assert price == {"min": 0.0, "max": 59.0, "priced": 60, "unpriced": 0}  # among candidates, bounds aside


def test_generated_re_uploads_fold_into_their_twin_and_distinct_products_never_fold(tiny_embedder):
    """Real thumbnails through the ingest path: the tiny random model scores every pair alike (cosine ~0.99),
    so the pixel test is what keeps distinct products apart; re-uploads (crop, resize, JPEG) still fold."""
    from similarity.ingest import IngestItem, Ingestor

    from .helpers import image_bytes

    pictures = {f"p{n:02d}": image_bytes(picture(n)) for n in range(14)}
    items = [IngestItem(key, lambda d=data: d, {"name": key}) for key, data in pictures.items()]
    copied = [f"p{n:02d}" for n in range(4)]
    for n, key in enumerate(copied):
        items += [IngestItem(f"{key}#{c}", lambda d=d: d, {"name": f"{key}#{c}"}) for c, d in enumerate(reuploads(n))]
    store = open_store("memory://")
    assert Ingestor(store, tiny_embedder).run(items).added == 14 + 8
    service = SearchService(store, tiny_embedder, None, Settings(store_url="memory://"))
    for n in range(6):
        result = service.rank(service.encode(picture(n)), top_k=14, arrange=Arrange.of(collapse_duplicates=True))
        groups = [m.product.name.split("#")[0] for m in result.matches]
        assert sorted(groups) == sorted(pictures)  # every distinct product once: none folded away
        for match in result.matches:
            names = sorted(p.name for p in store.get(list(match.folded), thumbnails=False))
            group = match.product.name.split("#")[0]
            twins = sorted({group, f"{group}#0", f"{group}#1"} - {match.product.name}) if group in copied else []
            assert names == twins, (n, match.product.name)


def picture(seed: int, size: tuple[int, int] = (320, 280)):
    """A generated product shot: a plain background and five shapes of random colours."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    w, h = size
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(150, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        x, y = int(rng.integers(0, w * 2 // 3)), int(rng.integers(0, h * 2 // 3))
        box = (x, y, x + int(rng.integers(w // 6, w // 2)), y + int(rng.integers(h // 6, h // 2)))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(
            box, fill=tuple(int(c) for c in rng.integers(0, 255, 3))
        )
    return image


def reuploads(seed: int) -> list[bytes]:
    """Two re-uploads of ``picture(seed)``: a 96% crop at 0.7x as JPEG q70, and that brightened 8% as JPEG q85."""
    import io

    from PIL import ImageEnhance

    image = picture(seed)
    w, h = image.size
    small = image.crop((int(w * 0.02), int(h * 0.02), int(w * 0.98), int(h * 0.98))).resize(
        (int(w * 0.7), int(h * 0.7))
    )
    out = []
    for copy, quality in ((small, 70), (ImageEnhance.Brightness(small).enhance(1.08), 85)):
        buf = io.BytesIO()
        copy.save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out
