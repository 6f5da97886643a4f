"""AI Similar Image Visualizer: the Gradio app (also the Hugging Face Space entry point).

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT respected)
    python app.py --share    # plus a temporary public gradio.live link
    python app.py --mcp      # plus Gradio's MCP server (needs: pip install "gradio[mcp]")

Configuration comes from the environment (see README): catalog store, CLIP model, tagger, admin token.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable

import gradio as gr

from similarity.config import Settings
from similarity.errors import SimilarityError
from similarity.search import SearchService, build_service

log = logging.getLogger("app")


def build_demo(service: SearchService) -> gr.Blocks:
    """The app's Blocks for an already-wired service (tests inject one on a memory store)."""
    from similarity.ui import build_blocks

    return build_blocks(service)


def seed_if_empty(service: SearchService, settings: Settings) -> None:
    """Fill an empty catalog with the rendered demo catalog once (SIMILARITY_SEED_DEMO=false turns it off)."""
    if not settings.seed_demo_on_empty or service.store.count() > 0:
        return
    from data_seed import seed_source

    log.info("The catalog is empty: seeding the demo catalog into %s", service.store.display_url)
    report = seed_source("demo", service.store, service.embedder)
    log.info("Demo catalog: %s", report.summary())


def warm_up(service: SearchService) -> list[threading.Thread]:
    """Start loading the catalog index and the model side by side; failures show on the page and on search."""
    loaders = {"catalog index": service.ranker.warm, "model": service.embedder.load}
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Find similar products by photo, URL or text.")
    parser.add_argument("--share", action="store_true", help="also create a temporary public gradio.live link")
    parser.add_argument("--mcp", action="store_true", help="also serve the search endpoints as MCP tools")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.mcp and importlib.util.find_spec("mcp") is None:
        print('--mcp needs the MCP extra: pip install "gradio[mcp]" (then run again).', file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        service = build_service(settings, background_index=True)
        if service.store.count() == 0 and settings.seed_demo_on_empty:
            seed_if_empty(service, settings)  # seeding needs the model: done before serving
        else:  # serve at once; the first search waits for the index and the model (the page shows their status)
            warm_up(service)
    except SimilarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    from similarity.ui import launch_options

    try:
        build_demo(service).launch(share=args.share, mcp_server=args.mcp, **launch_options())
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
