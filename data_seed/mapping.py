"""Dataset columns -> product metadata: ``--column FIELD=COLUMN``, dotted paths into JSON-like text or dicts.

``ColumnMap.resolve`` checks every mapped column against the dataset's real columns before any row is read,
and a miss names them all. Fields left unmapped default to a column of the same name, when there is one.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from similarity.errors import ConfigError

from .options import FIELDS

LIST_FIELDS = ("colors", "tags")  # the other fields keep one value
_MAX_PARSED_TEXT = 100_000  # a JSON-like cell longer than this is not parsed (bounded work per row)
# colour words the app does not list -> the nearest one it does (the last word is tried next: "sea green")
_COLOR_SYNONYMS = {
    "off white": "white", "cream": "white", "ivory": "white", "maroon": "red", "burgundy": "red",
    "wine": "red", "rust": "orange", "peach": "orange", "coral": "orange", "mustard": "yellow",
    "olive": "green", "teal": "green", "turquoise": "blue", "charcoal": "grey", "steel": "silver",
    "metallic": "silver", "bronze": "brown", "copper": "brown", "coffee": "brown", "tan": "beige",
    "khaki": "beige", "nude": "beige", "skin": "beige", "taupe": "beige", "lavender": "purple",
    "mauve": "purple", "magenta": "pink", "rose": "pink", "multi": "multicolor", "gray": "grey",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ColumnPath:
    """A column, or a dotted path into a column holding a dict or JSON-like text (``details.Brand``)."""

    column: str
    keys: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return ".".join((self.column, *self.keys))

    def read(self, row: Mapping[str, Any]) -> Any:
        value = row.get(self.column)
        for key in self.keys:
            value = _as_mapping(value).get(key)
            if value is None:
                return None
        return value


@dataclasses.dataclass(frozen=True)
class ColumnMap:
    """Which column (path) fills each product field, checked against a dataset's columns."""

    paths: dict[str, ColumnPath]

    @classmethod
    def resolve(cls, wanted: Mapping[str, str], columns: Sequence[str], dataset: str = "the dataset") -> ColumnMap:
        """Map fields onto ``columns``; a mapped column that does not exist raises ConfigError naming them."""
        real = list(columns)
        paths: dict[str, ColumnPath] = {}
        for field, text in wanted.items():
            if field not in FIELDS:
                raise ConfigError(f"Unknown product field {field!r}; fields: {', '.join(FIELDS)}")
            path = _split(text, real)
            if path is None:
                raise ConfigError(
                    f"{dataset} has no column {text.partition('.')[0]!r} (for --column {field}={text}); "
                    f"its columns: {', '.join(real) or 'none'}"
                )
            paths[field] = path
        for field in FIELDS:  # defaults: a column named like the field
            if field not in paths and field in real:
                paths[field] = ColumnPath(field)
        if "image" not in paths:
            raise ConfigError(
                f"{dataset} has no image column; name it with --column image=COLUMN (its columns: {', '.join(real)})"
            )
        return cls(paths)

    @property
    def image_column(self) -> str:
        return self.paths["image"].column

    def needed_columns(self) -> list[str]:
        """The dataset columns to read (and nothing else: a dataset's embeddings column is never loaded)."""
        return list(dict.fromkeys(path.column for path in self.paths.values()))

    def metadata(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Product metadata for one row (everything but the image); values are cleaned later by Product."""
        meta: dict[str, Any] = {}
        for field, path in self.paths.items():
            if field == "image":
                continue
            value = _field_value(field, path.read(row))
            if value not in (None, "", [], ()):
                meta[field] = value
        if "colors" in meta:
            meta["colors"] = color_names(meta["colors"])
        return meta


def _split(text: str, columns: Sequence[str]) -> ColumnPath | None:
    """``a.b.c`` -> the longest leading part that is a real column, then keys (a column may contain dots)."""
    parts = text.split(".")
    for n in range(len(parts), 0, -1):
        head = ".".join(parts[:n])
        if head in columns:
            return ColumnPath(head, tuple(parts[n:]))
    return None


def _as_mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.strip()[:1] == "{" and len(value) <= _MAX_PARSED_TEXT:
        try:
            parsed = json.loads(value)
        except ValueError:
            try:  # JSON-like text written by Python (single quotes, None): literals only, nothing runs
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return {}
        return parsed if isinstance(parsed, Mapping) else {}
    return {}


def _field_value(field: str, value: Any) -> Any:
    """Lists stay lists for colors/tags (and category, whose mapper tries each); elsewhere the most specific item."""
    if isinstance(value, list | tuple):
        items = [v for v in value if v not in (None, "")]
        if field in LIST_FIELDS or field == "category":
            return items
        return items[-1] if items else None
    if isinstance(value, bytes | bytearray | Mapping):
        return None  # not text: a mapped column of the wrong kind gives nothing rather than garbage
    return value


def color_names(values: Any) -> list[str]:
    """Colour words as the app spells them: ``Navy Blue`` -> navy, ``Off White`` -> white, ``Sea Green`` -> green."""
    items = values.split(",") if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        word = " ".join(str(item).lower().replace("-", " ").split())
        if not word:
            continue
        if word in _COLOR_SYNONYMS:
            word = _COLOR_SYNONYMS[word]
        elif " " in word and word.split()[0] in ("navy",):  # "navy blue" is navy, not blue
            word = "navy"
        elif " " in word:
            last = word.split()[-1]
            word = _COLOR_SYNONYMS.get(last, last)
        out.append(word)
    return out
