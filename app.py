"""AI Similar Image Visualizer: the Gradio app (also the Hugging Face Space entry point).

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT respected)
    python app.py --share    # plus a temporary public gradio.live link
    python app.py --no-mcp   # without the MCP server (on by default where the mcp package is installed)

Configuration comes from the environment (see README): catalog store, CLIP model, tagger, admin token.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr

from similarity.accounts import Accounts, launch_auth
from similarity.build import build_service
from similarity.config import Settings
from similarity.errors import ConfigError, SimilarityError
from similarity.search import SearchService

if TYPE_CHECKING:
    from data_seed.first_start import FirstStartSeeder

log = logging.getLogger("app")
SHARE_WARNING = (
    "warning: no users file (SIMILARITY_USERS_FILE): anyone with the share link can search "
    "(the catalog stays read-only without the admin token)."
)


def build_demo(
    service: SearchService, accounts: Accounts | None = None, seeder: FirstStartSeeder | None = None
) -> gr.Blocks:
    """The app's Blocks for an already-wired service (tests inject one on a memory store)."""
    from similarity.ui import build_blocks

    seeding = (lambda: seeder.status().as_dict()) if seeder is not None else None
    return build_blocks(service, accounts=accounts, seeding=seeding)


def sign_in_options(accounts: Accounts, share: bool) -> dict[str, Any]:
    """``launch`` arguments for sign-in: a users file with users protects page and API alike."""
    if accounts.passwords:
        return launch_auth(accounts.users)  # type: ignore[arg-type]
    if share:
        print(SHARE_WARNING, file=sys.stderr)
    return {}


def seed_if_empty(
    service: SearchService, settings: Settings, seed: Callable[..., Any] | None = None
) -> FirstStartSeeder | None:
    """Start filling an empty catalog in the background from SIMILARITY_SEED_SOURCE (default: the demo).

    Returns the running seeder (its status feeds the page), or None: the catalog has products, or
    SIMILARITY_SEED_DEMO=false. Bad SIMILARITY_SEED_SOURCE/_ARGS raise ConfigError before anything starts.
    ``seed`` replaces ``data_seed.seed_source`` (tests).
    """
    if not settings.seed_demo_on_empty or service.store.count() > 0:
        return None
    from data_seed.first_start import FirstStartSeeder

    seeder = FirstStartSeeder.from_settings(service.store, service.embedder, settings, seed)
    service.filling = seeder.filling_note  # a search before the first batch is stored says how far seeding is
    seeder.start()
    return seeder


def warm_up(service: SearchService) -> list[threading.Thread]:
    """Start loading the catalog index and the model side by side; failures show on the page and on search."""
    loaders = {"catalog index": service.ranker.warm, "model": service.embedder.load}
    if service.catalog_map is not None:  # the map's layout: loaded if saved and current, else fitted in the background
        loaders["catalog map"] = service.catalog_map.start
    jobs = [
        threading.Thread(target=_load, args=item, name=f"warm-up {item[0]}", daemon=True) for item in loaders.items()
    ]
    for job in jobs:
        job.start()
    return jobs


def _load(name: str, load: Callable[[], None]) -> None:
    try:
        load()
        log.info("%s loaded", name.capitalize())
    except SimilarityError as exc:
        log.error("%s", exc)


def mcp_server(flag: bool | None, setting: bool | None, installed: bool | None = None) -> bool:
    """--mcp / --no-mcp, else GRADIO_MCP_SERVER, else on exactly where the ``mcp`` package is installed."""
    installed = importlib.util.find_spec("mcp") is not None if installed is None else installed
    wanted = flag if flag is not None else setting
    if wanted and not installed:
        raise ConfigError('The MCP server needs the MCP extra: pip install "gradio[mcp]" (then run again).')
    return installed if wanted is None else wanted


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Find similar products by photo, URL or text.")
    parser.add_argument("--share", action="store_true", help="also create a temporary public gradio.live link")
    parser.add_argument(
        "--mcp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve the search endpoints as MCP tools at /gradio_api/mcp/ (default: on where the mcp package "
        "is installed, or GRADIO_MCP_SERVER=true/false)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        mcp = mcp_server(args.mcp, settings.mcp_server)
        accounts = Accounts.from_settings(settings)  # a malformed users file stops here, naming the line
        service = build_service(settings, background_index=True)
        # serve at once: an empty catalog seeds in the background, and the page shows its progress;
        # the first search waits for the index and the model
        seeder = seed_if_empty(service, settings)
        warm_up(service)
    except SimilarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    from similarity.ui import launch_options

    try:
        options = {**launch_options(), **sign_in_options(accounts, args.share)}
        build_demo(service, accounts, seeder).launch(share=args.share, mcp_server=mcp, **options)
    finally:
        if seeder is not None:
            seeder.stop(timeout=30)  # after its current batch, before the store closes
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
