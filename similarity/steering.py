"""Query composition: a query is a weighted sum of L2-normalised parts, composed here and nowhere else.

- **The base:** the photo (or its region, or the URL's image) and the description at the query's text
  weight; or a product's stored vector ("more like this"), or the mean of saved products.
- **Steering terms:** "More of…" texts (+), "Less of…" texts (−), liked products (+), disliked (−).
  Each group adds its weight times the mean of its unit vectors (Rocchio's form), so three "less of"
  texts do not weigh three times one. ``benchmarks/steering.py`` measured the default weights on
  generated data (see ``WEIGHTS``); Marqo's demo uses +0.75 / −1.1 on its text boxes.

Disliked products are also left out of the matches ("not these again"); liked ones stay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import NotFoundError, SimilarityError

if TYPE_CHECKING:
    from .store.base import CatalogStore


class TextEmbedder(Protocol):
    loaded: bool

    def load(self) -> None: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


# Default weight per group (sign included): per group, the smallest weight within 0.02 of the best success in
# benchmarks/steering.py (generated data shaped like CLIP's: a text ~0.3 to images with its attribute, ~0.2 to
# others). A text is a weak pull on an image query, so "more of" needs 1.5 and "less of" 1.25 (Marqo: +0.75 /
# -1.1); subtracting a product like the query wrecks relevance from 1.0 up, and disliked products are left out
# of the results anyway, so 👎 only nudges (0.25).
WEIGHTS: dict[str, float] = {"more": 1.5, "less": -1.25, "liked": 1.25, "disliked": -0.25}
MAX_PER_GROUP = 10  # texts or ids per group (a page of thumbs; more says nothing new)
MAX_TEXT = 200  # characters per steering text
_CANDIDATES = 10  # ids listed for an ambiguous prefix


@dataclasses.dataclass(frozen=True)
class Steering:
    """What the shopper asked for beyond the base query: texts and product ids, in order, without repeats."""

    more: tuple[str, ...] = ()
    less: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()

    @classmethod
    def of(cls, more: Any = None, less: Any = None, liked: Any = None, disliked: Any = None) -> Steering:
        """From loose values (None, one string, lists); blanks dropped, repeats removed, each group capped."""
        return cls(_texts(more, "more"), _texts(less, "less"), _ids(liked, "liked"), _ids(disliked, "disliked"))

    def __bool__(self) -> bool:
        return bool(self.more or self.less or self.liked or self.disliked)

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items() if v}


# One steering term: (group, weight, unit vector); a group's members share its weight (their mean)
Term = tuple[str, float, np.ndarray]


@dataclasses.dataclass
class Query:
    """An embedded query; kept (e.g. in ``gr.State``) so filter changes re-rank without re-embedding."""

    vector: np.ndarray
    kind: str
    timings_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    image: Any = dataclasses.field(default=None, repr=False)  # decoded PIL image, for the tagger
    source_id: str | None = None
    text: str | None = None
    # unit vectors per modality ("image", "text"), so a new text weight needs no re-embedding
    parts: dict[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)
    exclude: tuple[str, ...] = ()  # products left out of the matches too (a user's saved products)
    text_weight: float = 0.5  # the text's share next to the image part (see ``combine_parts``)
    steering: Steering = dataclasses.field(
        default_factory=Steering
    )  # more of / less of / liked / disliked (``steering.steer``)
    terms: tuple[Term, ...] = dataclasses.field(default=(), repr=False)  # their embedded vectors

    def describe(self) -> dict[str, Any]:
        out = {"kind": self.kind, "source_id": self.source_id, "text": self.text}
        return {**out, "steering": self.steering.to_dict()} if self.steering else out


def combine_parts(parts: Mapping[str, np.ndarray], text_weight: float, terms: Sequence[Term] = ()) -> np.ndarray:
    """The query vector: the base parts (image and text at ``text_weight``; a lone part counts whole),
    L2-normalised, plus each steering term's weighted mean vector, L2-normalised again."""
    if not 0.0 <= float(text_weight) <= 1.0:
        raise SimilarityError("The text weight must be between 0 and 1.")
    weights = {"image": 1.0 - text_weight, "text": text_weight} if len(parts) > 1 else {k: 1.0 for k in parts}
    base = sum(weights[k] * np.asarray(v, dtype=np.float32) for k, v in parts.items())
    norm = float(np.linalg.norm(base))
    if norm < 1e-9:
        raise SimilarityError("The text weight cancels the query; choose a weight between 0 and 1.")
    vector = base / norm
    for _, weight, mean in _group_means(terms):
        vector = vector + weight * mean
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise SimilarityError("The query's parts cancel each other out; remove a 'less of' or a 👎 and try again.")
    return (vector / norm).astype(np.float32)


def _group_means(terms: Sequence[Term]) -> Iterable[Term]:
    groups: dict[str, list[Term]] = {}
    for term in terms:
        groups.setdefault(term[0], []).append(term)
    for group, members in groups.items():
        yield group, members[0][1], np.mean([np.asarray(v, dtype=np.float32) for _, _, v in members], axis=0)


def steer(
    query: Query,
    steering: Steering,
    store: CatalogStore,
    embedder: TextEmbedder,
    weights: Mapping[str, float] | None = None,
) -> Query:
    """``query`` with ``steering``'s terms (texts embedded in one batch, products' stored vectors in one read).

    Steering again replaces the earlier steering (the base stays); disliked products are left out."""
    weights = {**WEIGHTS, **(weights or {})}
    base_exclude = tuple(i for i in query.exclude if i not in query.steering.disliked)
    if not steering:
        vector = combine_parts(query.parts, query.text_weight)
        return dataclasses.replace(query, vector=vector, terms=(), steering=steering, exclude=base_exclude)
    liked = resolve_ids(store, steering.liked)
    disliked = resolve_ids(store, steering.disliked)
    steering = dataclasses.replace(steering, liked=liked, disliked=disliked)
    terms: list[Term] = []
    texts = [*steering.more, *steering.less]
    if texts:
        if not embedder.loaded:
            embedder.load()
        vectors = embedder.embed_texts(texts)
        groups = ["more"] * len(steering.more) + ["less"] * len(steering.less)
        terms += [(g, weights[g], v) for g, v in zip(groups, vectors, strict=True)]
    if liked or disliked:
        batch = store.load_vectors_of([*liked, *disliked])
        found = dict(zip(batch.ids, batch.vectors, strict=True))
        terms += [("liked", weights["liked"], found[i]) for i in liked if i in found]
        terms += [("disliked", weights["disliked"], found[i]) for i in disliked if i in found]
    vector = combine_parts(query.parts, query.text_weight, terms)
    exclude = tuple(dict.fromkeys([*base_exclude, *disliked]))
    return dataclasses.replace(query, vector=vector, terms=tuple(terms), steering=steering, exclude=exclude)


def query_from_product(store: CatalogStore, product_id: str) -> Query:
    """A query from a stored product's vector ("more like this")."""
    vector = store.vector(product_id)
    if vector is None:
        raise NotFoundError("That product is no longer in the catalog.")
    return Query(vector, "product", source_id=product_id, parts={"product": vector})


def query_from_saved(store: CatalogStore, product_ids: Sequence[str]) -> Query:
    """A query from the normalised mean of products' stored vectors ("more like my saved products");
    the products themselves are left out of the matches. Products no longer in the catalog are skipped."""
    ids = tuple(dict.fromkeys(product_ids))
    batch = store.load_vectors_of(ids)  # one read, not one per product
    if not batch.ids:
        raise NotFoundError("None of these saved products is in the catalog any more.")
    mean = np.mean(batch.vectors.astype(np.float32), axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-6:
        raise SimilarityError("These saved products cancel each other out; remove one and try again.")
    vector = (mean / norm).astype(np.float32)
    return Query(vector, "saved", exclude=ids, parts={"saved": vector})


def steered_like(query: Query, other: Query) -> Query:
    """``query`` with ``other``'s steering, its embedded terms reused (nothing is embedded again): a region of
    the photo picked after a Refine is steered like the page's query."""
    if query.steering == other.steering:
        return query
    base_exclude = [i for i in query.exclude if i not in query.steering.disliked]
    exclude = tuple(dict.fromkeys([*base_exclude, *other.steering.disliked]))
    vector = combine_parts(query.parts, query.text_weight, other.terms)
    return dataclasses.replace(query, vector=vector, terms=other.terms, steering=other.steering, exclude=exclude)


def resolve_ids(store: CatalogStore, refs: Sequence[str]) -> tuple[str, ...]:
    """Each ref as the one stored id equal to it or starting with it (as ``edit``/``remove`` take them)."""
    out: list[str] = []
    for ref in refs:
        if store.existing([ref]):
            out.append(ref)
            continue
        candidates = store.ids_with_prefix(ref, _CANDIDATES + 1)
        if not candidates:
            raise NotFoundError(f"No product has an id starting with {ref[:64]!r}.")
        if len(candidates) > 1:
            count = f"{_CANDIDATES}+" if len(candidates) > _CANDIDATES else str(len(candidates))
            raise SimilarityError(f"{ref[:64]!r} matches {count} products; give more of the id.")
        out.append(candidates[0])
    return tuple(dict.fromkeys(out))


def _texts(values: Any, name: str) -> tuple[str, ...]:
    items = _items(values, name)
    texts = (" ".join(str(v).split())[:MAX_TEXT] for v in items)
    return tuple(dict.fromkeys(t for t in texts if t))


def _ids(values: Any, name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for v in _items(values, name) if (s := str(v).strip()[:128])))


def _items(values: Any, name: str) -> list[Any]:
    if values is None or values == "":
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable) or isinstance(values, Mapping | bytes):
        raise SimilarityError(f"{name} must be a list of texts or product ids.")
    items = [v for v in values if v is not None and str(v).strip()]
    if len(items) > MAX_PER_GROUP:
        raise SimilarityError(f"{name} takes at most {MAX_PER_GROUP} entries.")
    return items
