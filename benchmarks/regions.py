"""Region search benchmark: proposers, one batched forward pass, localisation, end to end.

    python -m benchmarks.regions [--runs 15]

- Proposal time and localisation of the offline border-colour proposer against a spectral-residual
  saliency proposer (numpy FFT, the method of OpenCV's saliency module) on generated scenes (2x2 grids
  on white, textured and gradient backgrounds; pairs at different scales), 1024 px; extra regions on
  single-product shots (the 54 demo renders, and the real photos in ``../shared/photos`` when present).
- Embedding the whole photo plus 2, 4 or 8 crops in one forward pass against the whole photo alone
  (random-init ViT-B-32, the precision ``auto`` chooses on this CPU).
- End-to-end p50 of a region search (decode, propose, embed, rank every region) over the demo catalog,
  and the whole photo's results with regions off, with the page's two steps (whole photo first) and with
  one pass for everything (the API).
Writes ``benchmarks/results/regions.md`` and ``regions.png``.
"""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image

from data_seed.demo import demo_items
from data_seed.scenes import grid_scene, pair_scene, product_pictures
from similarity import images
from similarity.config import Settings
from similarity.embedder import OpenClipEmbedder
from similarity.ingest import Ingestor
from similarity.regions.boxes import Region, iou
from similarity.regions.offline import BorderProposer, _components, _shrink
from similarity.regions.search import RegionSearch, embed_once
from similarity.search import SearchService
from similarity.store import open_store
from similarity.ui.ranking import RankArgs

from .common import SHARED_PHOTOS, interleaved, markdown_table, p50, parser, pyplot, write_report

SIZE = 1024


class SaliencyProposer:
    """Spectral-residual saliency (Hou & Zhang 2007) thresholded, then the same components as the border proposer."""

    name = "saliency"

    def propose(self, image: Image.Image) -> list[Region]:
        from scipy import ndimage

        small, scale = _shrink(image)
        gray = np.asarray(small.convert("L").resize((64, 64)), dtype=np.float32)
        spectrum = np.fft.fft2(gray)
        log_amp = np.log(np.abs(spectrum) + 1e-6)
        residual = log_amp - ndimage.uniform_filter(log_amp, 3)
        saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
        saliency = ndimage.gaussian_filter(saliency, 2.5)
        full = np.asarray(Image.fromarray(saliency).resize(small.size, Image.BILINEAR))
        mask = full > 3 * full.mean()
        regions = [r.scaled(scale[0], scale[1], image.size) for r in _components(mask)]
        found = [r for r in regions if r is not None]
        return found if len(found) >= 2 else []


def scenes(pictures: list, count: int) -> list:
    rng = random.Random(7)
    out = []
    for kind in ("white", "texture", "gradient"):
        out += [grid_scene(rng.sample(pictures, 4), kind, size=SIZE, seed=i) for i in range(count)]
        out += [pair_scene(rng.sample(pictures, 2), kind, seed=i) for i in range(count)]
    return out


def localisation(proposers: dict, scene_list: list, singles: list) -> tuple[list, dict]:
    images_ = [s.image for s in scene_list] + singles
    times, results = interleaved({n: p.propose for n, p in proposers.items()}, [images_[0], *images_])
    rows, rates = [], {}
    for name in proposers:
        found = total = 0
        for scene, regions in zip(scene_list, results[name][: len(scene_list)], strict=True):
            for placed, visible in zip(scene.placed, scene.visible, strict=True):
                total += 1
                found += any(iou(r.box, placed) >= 0.5 or iou(r.box, visible) >= 0.5 for r in regions)
        extra = sum(1 for regions in results[name][len(scene_list) :] if regions)
        rates[name] = found / total
        rows.append([name, p50(times[name][: len(scene_list)]), f"{found}/{total} ({100 * found / total:.0f}%)",
                     f"{extra}/{len(singles)}"])  # fmt: skip
    return rows, rates


def batching(embedder: OpenClipEmbedder, photo: Image.Image, runs: int) -> tuple[list, dict]:
    crops = [photo.crop((i * 40, i * 30, i * 40 + 300, i * 30 + 300)) for i in range(8)]
    methods = {f"whole + {n} crops": (lambda _q, n=n: embed_once(embedder, [photo, *crops[:n]])) for n in (2, 4, 8)}
    methods = {"whole photo alone": lambda _q: embed_once(embedder, [photo]), **methods}
    times, _ = interleaved(methods, list(range(runs + 1)))
    base = p50(times["whole photo alone"])
    return [[name, p50(t), p50(t) / base] for name, t in times.items()], {k: p50(v) for k, v in times.items()}


def end_to_end(service: SearchService, scene_bytes: list[bytes], runs: int) -> list:
    """Regions off (today's search), the page's two steps (their two stamps) and the API's one pass."""
    regions = RegionSearch(service)
    args = RankArgs.of(12)
    timings: dict[str, list[float]] = {"off": [], "page_first": [], "page_total": [], "api": []}
    for i in range(runs + 1):
        data = scene_bytes[i % len(scene_bytes)]
        stamps = [_now()]
        args.rank(service, service.encode(data))  # regions off
        stamps.append(_now())
        args.rank(service, query := service.encode(data))  # the page: the whole photo's results first ...
        stamps.append(_now())
        regions.rank(regions.prepare(data, whole=query), args)  # ... then the regions, in the same chain
        stamps.append(_now())
        regions.search(data, args=args)  # the API: one pass for the photo and every region
        stamps.append(_now())
        if i:  # the first round warms caches
            timings["off"].append(stamps[1] - stamps[0])
            timings["page_first"].append(stamps[2] - stamps[1])
            timings["page_total"].append(stamps[3] - stamps[1])
            timings["api"].append(stamps[4] - stamps[3])
    return [
        ["regions off: the whole photo's results", p50(timings["off"])],
        ["page, step 1: the whole photo's results", p50(timings["page_first"])],
        ["page, step 2: + the regions filled in", p50(timings["page_total"])],
        ["API: one pass, the photo and every region", p50(timings["api"])],
    ]


def _now() -> float:
    return time.perf_counter() * 1000


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    args = _args()
    pictures = product_pictures()
    scene_list = scenes(pictures, args.scenes)
    singles = [p for _, p in pictures]
    if SHARED_PHOTOS.is_dir():
        singles += [images.load_image(str(f)).image for f in sorted(SHARED_PHOTOS.iterdir()) if f.is_file()]
    proposers = {"border colour (shipped)": BorderProposer(), "spectral-residual saliency": SaliencyProposer()}
    proposal_rows, rates = localisation(proposers, scene_list, singles)

    embedder = OpenClipEmbedder("ViT-B-32", "none", batch_size=16, precision="auto")
    embedder.load()
    batch_rows, batch = batching(embedder, scene_list[0].image.convert("RGB"), args.runs)

    store = open_store("memory://")
    Ingestor(store, embedder).run(list(demo_items()))
    settings = Settings(clip_model="ViT-B-32", clip_pretrained="none", store_url="memory://", regions="offline")
    service = SearchService(store, embedder, None, settings)
    grids = [s for s in scene_list if len(s.placed) == 4]
    e2e_rows = end_to_end(service, [png(s.image) for s in grids[:6]], args.runs)

    body = "\n\n".join([
        f"Precision chosen by `auto`: **{embedder.precision}**. Random-init ViT-B-32 (the same compute as trained"
        " weights). Localisation: a placed product counts when a region has IoU >= 0.5 with the placed picture"
        " or the visible product in it. Single shots: the 54 demo renders plus the real photos when present.",
        "## Proposers (1024 px scenes)",
        markdown_table(["proposer", "p50 ms", "products localised", "single shots given regions"], proposal_rows),
        "## One forward pass (whole photo + crops)",
        markdown_table(["batch", "p50 ms", "x whole alone"], batch_rows),
        "## End to end (demo catalog, 12 matches per region, 4-product scenes)",
        markdown_table(["path", "p50 ms"], e2e_rows),
    ])  # fmt: skip
    path = write_report("regions", "Region search", body, args.out)
    plot(batch, {r[0]: r[1] for r in e2e_rows}, rates, args.out)
    print(path.read_text())


def plot(batch: dict, e2e: dict, rates: dict, out: Path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(list(batch), list(batch.values()), color="#2563eb")
    a.set_ylabel("ms (p50)")
    a.set_title("one forward pass")
    a.tick_params(axis="x", rotation=20)
    b.barh(list(e2e), list(e2e.values()), color="#f97316")
    b.set_xlabel("ms (p50)")
    b.set_title("region search end to end")
    fig.suptitle("Region search · localised: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in rates.items()))
    fig.tight_layout()
    fig.savefig(out / "regions.png", dpi=110)


def _args():
    cli = parser(__doc__)
    cli.add_argument("--runs", type=int, default=15, help="timed repetitions")
    cli.add_argument("--scenes", type=int, default=8, help="scenes per layout and background")
    return cli.parse_args()


if __name__ == "__main__":
    main()
