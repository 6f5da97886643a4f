"""``python -m similarity remove ID_OR_PREFIX...`` and ``python -m similarity edit ID_OR_PREFIX --name … [--json]``.

Registered in ``__main__.py``. Only the store is opened (no model). An unknown id or an ambiguous
prefix changes nothing: the command says so (listing the candidates) and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .catalog import AmbiguousIdError, CatalogEditor, ProductEdit
from .errors import SimilarityError

if TYPE_CHECKING:
    from .config import Settings
    from .records import Product
    from .store.base import CatalogStore

COMMANDS = ("remove", "edit")


def add_catalog_parsers(commands: Any) -> None:
    remove = commands.add_parser("remove", help="remove products by id or id prefix")
    remove.add_argument("ids", nargs="+", metavar="ID_OR_PREFIX", help="product ids, or their first characters")
    remove.add_argument("--json", action="store_true", help="print the result as one JSON object")
    edit = commands.add_parser("edit", help="edit a product's metadata (never its vector)")
    edit.add_argument("id", metavar="ID_OR_PREFIX", help="a product id, or its first characters")
    for field in ("name", "brand", "category", "subcategory", "description"):
        edit.add_argument(f"--{field}", help=f"new {field}")
    edit.add_argument("--price", help="new price (a positive number; 'none' clears it)")
    edit.add_argument("--colors", help="comma-separated colours, replacing the current ones (at most 3)")
    edit.add_argument("--tags", help="comma-separated tags, replacing the current ones")
    edit.add_argument("--add-tag", action="append", default=[], help="add a tag (repeatable)")
    edit.add_argument("--remove-tag", action="append", default=[], help="remove a tag (repeatable)")
    edit.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run_catalog(args: argparse.Namespace, settings: Settings) -> int:
    from .store import open_store

    with open_store(settings.store_url, settings) as store:
        try:
            data = _remove(args, store) if args.command == "remove" else _edit(args, store)
        except SimilarityError as exc:
            return _failed(exc, store, args.json)
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    return 0


def _remove(args: argparse.Namespace, store: CatalogStore) -> dict[str, Any]:
    editor = CatalogEditor(store)
    products = {p.id: p for p in store.get([editor.resolve(i) for i in args.ids], thumbnails=False)}
    report = editor.remove(args.ids)
    if not args.json:
        noun = "product" if len(report.removed) == 1 else "products"
        print(f"removed {len(report.removed)} {noun}:")
        for id_ in report.removed:
            print(f"  {_line(products[id_]) if id_ in products else id_}")
    return report.to_dict()


def _edit(args: argparse.Namespace, store: CatalogStore) -> dict[str, Any]:
    edit = ProductEdit(
        name=args.name, brand=args.brand, category=args.category, subcategory=args.subcategory,
        price=args.price, colors=args.colors, tags=args.tags, add_tags=tuple(args.add_tag),
        remove_tags=tuple(args.remove_tag), description=args.description,
    )  # fmt: skip
    product, changed = CatalogEditor(store).edit(args.id, edit)
    if not args.json:
        print(f"{'edited' if changed else 'unchanged'}: {_line(product)}")
        if changed:
            print(f"  changed: {', '.join(changed)}")
    return {"id": product.id, "changed": changed, "product": product.metadata()}


def _failed(exc: SimilarityError, store: CatalogStore, as_json: bool) -> int:
    candidates = exc.candidates if isinstance(exc, AmbiguousIdError) else []
    known = {p.id: p for p in store.get(candidates, thumbnails=False)} if candidates else {}
    if as_json:
        listed = [{"id": c, "name": known[c].name if c in known else ""} for c in candidates]
        print(json.dumps({"error": str(exc), "candidates": listed}, ensure_ascii=False))
    print(f"error: {exc}", file=sys.stderr)
    for c in candidates:
        print(f"  {_line(known[c]) if c in known else c}", file=sys.stderr)
    return exc.exit_code


def _line(p: Product) -> str:
    return f"{p.id}  {p.name or '-'} · {p.category} · {p.brand or '-'}"
