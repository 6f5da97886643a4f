"""API benchmark: response size and client-side time of one search via gradio_client and MCP, url vs data thumbnails.

    python -m benchmarks.api [--queries 15] [--top-k 12]

Launches the app on 127.0.0.1 with the MCP server over the rendered demo catalog (54 products, JPEG
thumbnails as stored by data_seed), embedded with the ViT-B-32 architecture on random weights (the
same compute as the trained model). Each round runs one text search per transport and thumbnails
mode, interleaved, so drifting load hits them alike; the first round only warms up.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from . import common
from .common import markdown_table, p50, p95, pyplot, write_report

QUERIES = [
    "red running shoe", "black leather backpack", "silver wrist watch", "wireless headphones",
    "salted potato chips", "green apple", "laptop bag", "blue sneakers",
]  # fmt: skip
MODES = ("url", "data", "none")
METHODS = [(transport, mode) for transport in ("gradio_client", "MCP") for mode in MODES]


def launch(tmp: Path) -> tuple[Any, str]:
    import app
    from data_seed import seed_source
    from similarity.config import Settings
    from similarity.embedder import OpenClipEmbedder
    from similarity.search import SearchService
    from similarity.store import open_store
    from similarity.ui import launch_options

    settings = Settings(clip_model="ViT-B-32", clip_pretrained="none", store_url=f"sqlite:///{tmp / 'api.db'}")
    embedder = OpenClipEmbedder("ViT-B-32", "none")
    store = open_store(settings.store_url, settings)
    seed_source("demo", store, embedder)
    demo = app.build_demo(SearchService(store, embedder, None, settings))
    options = {"prevent_thread_lock": True, "server_name": "127.0.0.1", "quiet": True, **launch_options()}
    _, url, _ = demo.launch(mcp_server=True, **options)
    return demo, url.rstrip("/")


async def measure(url: str, rounds: int, top_k: int) -> dict[tuple[str, str], dict[str, list[float]]]:
    from gradio_client import Client
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    client = Client(url, verbose=False)
    out = {m: {"ms": [], "chars": []} for m in METHODS}
    async with (
        streamable_http_client(f"{url}/gradio_api/mcp/") as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for i in range(rounds + 1):
            text = QUERIES[i % len(QUERIES)]
            for transport, mode in METHODS:
                start = time.perf_counter()
                if transport == "MCP":
                    result = await session.call_tool("search_text", {"text": text, "top_k": top_k, "thumbnails": mode})
                    assert not result.isError, result.content
                    chars = len(result.content[0].text)
                else:  # gradio_client blocks the loop, and nothing else is waiting on it
                    found = client.predict(text=text, top_k=top_k, thumbnails=mode, api_name="/search_text")
                    chars = len(json.dumps(found, ensure_ascii=False))
                ms = (time.perf_counter() - start) * 1000
                if i:  # round 0 warms up
                    out[(transport, mode)]["ms"].append(ms)
                    out[(transport, mode)]["chars"].append(chars)
    return out


def report(runs: dict, rounds: int, top_k: int, out: Path) -> str:
    rows = []
    for transport in ("gradio_client", "MCP"):
        url = runs[(transport, "url")]
        for mode in MODES:
            run = runs[(transport, mode)]
            rows.append([
                transport, mode, f"{p50(run['chars']):,.0f}", f"{p50(run['ms']):.1f}", f"{p95(run['ms']):.1f}",
                f"{p50(run['chars']) / p50(url['chars']):.1f}x", f"{p50(run['ms']) / p50(url['ms']):.2f}x",
            ])  # fmt: skip
    table = markdown_table(
        ["transport", "thumbnails", "response size p50 (chars)", "client time p50 ms", "p95 ms", "size vs url",
         "time vs url"], rows)  # fmt: skip
    body = (
        f"One `search_text` call with top_k={top_k}, {rounds} rounds after a warm-up, the six ways interleaved. "
        "Size: characters of the JSON `gradio_client` returns (re-serialised) and of the MCP tool result's text. "
        "Time: from the call to the parsed answer on the client, on the same machine as the server (no network).\n\n"
        f"{table}"
    )
    write_report("api", "API benchmark: lean results (thumbnails by URL) against data URLs", body, out)
    plot(runs, out / "api.png")
    return body


def plot(runs: dict, path: Path) -> None:
    plt = pyplot()
    fig, (size_ax, time_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = [f"{t}\n{m}" for t, m in METHODS]
    colors = [{"url": "#4f46e5", "data": "#db2777", "none": "#94a3b8"}[m] for _, m in METHODS]
    size_ax.bar(labels, [p50(runs[m]["chars"]) / 1000 for m in METHODS], color=colors)
    size_ax.set_ylabel("response size, thousand chars (p50)")
    time_ax.bar(labels, [p50(runs[m]["ms"]) for m in METHODS], color=colors)
    time_ax.set_ylabel("client-side time, ms (p50)")
    for ax in (size_ax, time_ax):
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("One 12-result search: thumbnails by URL vs as data URLs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__, queries=15, help="timed rounds (each: one search per transport and mode)")
    parser.add_argument("--top-k", type=int, default=12)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        demo, url = launch(Path(tmp))
        try:
            runs = asyncio.run(measure(url, args.queries, args.top_k))
        finally:
            demo.close()
    print("\n" + report(runs, args.queries, args.top_k, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
