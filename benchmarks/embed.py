"""Embedding benchmark: ViT-B-32 in fp32 against bf16 (mixed and pure), images at batch 1 and 16, and text.

    python -m benchmarks.embed [--runs 10] [--force-bf16] [--cap-seconds 90]

All encoders share one random-init model (same compute as the trained one) and run side by side in one
process. Fidelity is the cosine of every row to fp32: the photos in ``../shared/photos`` (read in place;
generated photos when absent) and a set of prompts. bf16 is *timed* only on a CPU with AMX or
AVX512_BF16, or with ``--force-bf16``, and then boundedly (3 runs at batch 1, 1 at batch 16, a hard
time cap): elsewhere bf16 runs tens to hundreds of times slower. Its fidelity is measured anyway.
Writes ``benchmarks/results/embed.md`` and ``embed.png``.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import time
from pathlib import Path

import numpy as np

from similarity import images
from similarity import precision as prec
from similarity.embedder import OpenClipEmbedder

from . import common
from .common import SHARED_PHOTOS, markdown_table, p50, photo, pyplot, write_report

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
PROMPTS = [
    f"a photo of a {colour} {thing}"
    for colour in ("red", "black", "white", "blue")
    for thing in ("leather handbag", "running shoe", "wrist watch", "backpack", "smartphone")
]
NOTE = (
    "Mixed and pure bf16 agree to 5 digits here because random-init LayerNorm weights are 1 and 0, exact "
    'in bf16; with trained weights mixed keeps them in fp32 (open_clip\'s `precision="bf16"`), which is '
    "what the embedder uses. On a CPU without AMX or AVX512_BF16 the bf16 speed-up targets (query embedding "
    ">= 1.5x, seeding >= 2x, image search p50 >= 1.4x) cannot be measured: bf16 runs far slower there."
)
ENCODERS = {"fp32 (today)": None, "bf16 mixed (LayerNorm fp32; used)": True, "bf16 pure (model.to(bfloat16))": False}


def cpu_flags() -> tuple[str, list[str]]:
    """``lscpu`` model name and which of the bf16-relevant flags the CPU reports."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5, check=False).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    return fields.get("Model name", prec.cpu_model()).strip(), [f for f in FLAGS if f in flags]


def load_photos() -> tuple[str, list]:
    if SHARED_PHOTOS.is_dir():
        files = sorted(p for p in SHARED_PHOTOS.iterdir() if p.is_file())
        decoded = [images.load_image(p.read_bytes(), max_bytes=images.MAX_LOCAL_BYTES).image for p in files]
        return f"the {len(decoded)} photos in ../shared/photos", decoded
    return "48 generated photos", [images.load_image(photo(800, 600, i)).image for i in range(48)]


def encode(model, batch, dtype) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return prec.unit_rows(model.encode_image(batch.to(dtype=dtype)).float().numpy())


def encode_text(model, tokens) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return prec.unit_rows(model.encode_text(tokens).float().numpy())


def bench(name, model, dtype, tensors, tokens, reference, args, timed: bool) -> dict:
    """Fidelity always; timings when ``timed`` (bounded by the cap when bf16 is forced on this CPU)."""
    import torch

    start = time.perf_counter()
    rows = np.concatenate([encode(model, torch.stack(tensors[i : i + 16]), dtype) for i in range(0, len(tensors), 16)])
    text_rows = np.concatenate([encode_text(model, tokens[i : i + 16]) for i in range(0, len(tokens), 16)])
    out = {"name": name, "fidelity_s": time.perf_counter() - start, "one": [], "sixteen": [], "text": []}
    if reference is not None:
        out["img_cos"] = prec.row_cosines(rows, reference[0]).min().item()
        out["txt_cos"] = prec.row_cosines(text_rows, reference[1]).min().item()
    out["rows"] = (rows, text_rows)
    if not timed:
        return out
    bounded = dtype is not None and not prec.CpuFeatures().bf16_supported()
    runs_one, runs_16 = (3, 1) if bounded else (args.runs, max(3, args.runs // 2))
    deadline = time.perf_counter() + args.cap_seconds
    one, sixteen = torch.stack(tensors[:1]), torch.stack(tensors[:16])
    for i in range(runs_one):
        out["one"].append(_ms(lambda: encode(model, one, dtype)))
        out["text"].append(_ms(lambda i=i: encode_text(model, tokens[i % len(tokens)][None])))
        if time.perf_counter() > deadline:
            break
    for _ in range(runs_16):
        if time.perf_counter() > deadline:
            break
        out["sixteen"].append(16_000 / _ms(lambda: encode(model, sixteen, dtype)))
    print(f"  {name}: batch 1 {p50(out['one']):.0f} ms, batch 16 {p50(out['sixteen']):.1f} img/s", flush=True)
    return out


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = common.parser(__doc__)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per encoder at batch 1")
    parser.add_argument("--force-bf16", action="store_true", help="time bf16 even on a CPU without bf16 support")
    parser.add_argument("--cap-seconds", type=float, default=90, help="hard time cap for each encoder's timing")
    args = parser.parse_args(argv)
    model_name, flags = cpu_flags()
    cpu = prec.CpuFeatures()
    capable = cpu.bf16_supported()
    base = OpenClipEmbedder("ViT-B-32", "none", precision="fp32")
    base.load()
    auto = OpenClipEmbedder("ViT-B-32", "none")  # what auto decides here (it probes only on a capable CPU)
    auto.load()
    threads = torch.get_num_threads()
    source, decoded = load_photos()
    tensors = [base.preprocess(im) for im in decoded]
    tokens = base._tokenizer(PROMPTS)
    print(f"{model_name}; flags {' '.join(flags) or 'none'}; auto -> {auto.precision}", flush=True)
    results, reference = [], None
    for name, keep_norms in ENCODERS.items():
        model = base._model if keep_norms is None else prec.to_half(copy.deepcopy(base._model), "bf16", keep_norms)
        dtype = None if keep_norms is None else torch.bfloat16
        timed = keep_norms is None or capable or args.force_bf16
        results.append(bench(name, model, dtype, tensors, tokens, reference, args, timed))
        reference = reference or results[0]["rows"]
    table = report_table(results, capable)
    body = (
        f"CPU: **{model_name}**, {threads} torch threads; bf16-relevant flags reported by `lscpu`: "
        f"`{' '.join(flags) or 'none'}` (checked: {', '.join(FLAGS)}). torch's own check: {cpu.describe()}.\n\n"
        f"`SIMILARITY_PRECISION=auto` here: **{auto.precision}**, {auto.precision_note}.\n\n"
        f"Model: ViT-B-32, random weights (same compute as the trained model). Fidelity: cosine of every row to "
        f"fp32 over {source} and {len(PROMPTS)} prompts. Batch 1 and text: p50 of single calls; batch 16: p50 "
        "images/s. " + _caveat(capable, args) + "\n\n" + table + "\n\n" + NOTE
    )
    plot(results, args.out / "embed.png", model_name)
    write_report("embed", "Embedding benchmark: fp32 vs bf16", body, args.out)
    print("\n" + table)
    return 0


def report_table(results: list[dict], capable: bool) -> str:
    fp32 = results[0]
    rows = []
    for r in results:
        timed = bool(r["one"])
        one, text, sixteen = p50(r["one"]), p50(r["text"]), p50(r["sixteen"])
        ratio_one = f"{p50(fp32['one']) / one:.2f}x" if timed else "–"
        ratio_16 = f"{sixteen / p50(fp32['sixteen']):.2f}x" if r["sixteen"] else "–"
        note = "" if timed else "not timed: no AMX/AVX512_BF16 here (use --force-bf16 for a bounded run)"
        if timed and r is not fp32 and not capable:
            note = f"forced on a CPU without bf16 support: {len(r['one'])} + {len(r['sixteen'])} runs"
        cos_img, cos_txt = r.get("img_cos", float("nan")), r.get("txt_cos", float("nan"))
        fidelity = [_cos(cos_img), _cos(cos_txt), f"{r['fidelity_s']:.0f}"]
        rows.append([r["name"], one, ratio_one, sixteen, ratio_16, text, *fidelity, note])
    headers = ["encoder", "batch 1 p50 ms", "vs fp32", "batch 16 img/s", "vs fp32", "text p50 ms"]
    headers += ["min cosine, photos", "min cosine, prompts", "fidelity pass s", "note"]
    return markdown_table(headers, rows)


def _cos(value: float) -> str:
    return "—" if value != value else f"{value:.5f}"


def _caveat(capable: bool, args: argparse.Namespace) -> str:
    if capable:
        return "This CPU has bf16 support, so every row is timed."
    return (
        "**This CPU has neither AMX nor AVX512_BF16, so the bf16 speed-up targets cannot be measured here**: bf16 "
        + ("was timed only in a bounded forced run, to show the slowdown." if args.force_bf16 else "was not timed.")
        + " The fidelity columns are valid here (the arithmetic is the same, only slower)."
    )


def plot(results: list[dict], path: Path, cpu: str) -> None:
    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["name"].split(" (")[0] for r in results]
    left.bar(names, [p50(r["one"]) if r["one"] else 0 for r in results])
    left.set(ylabel="ms (p50)", title="One image (query path)")
    right.bar(names, [p50(r["sixteen"]) if r["sixteen"] else 0 for r in results])
    right.set(ylabel="images/s (p50)", title="Batch of 16 (seeding)")
    for ax in (left, right):
        for i, r in enumerate(results):
            label = "not timed" if not r["one"] else (f"cos {r['img_cos']:.4f}" if "img_cos" in r else "")
            ax.annotate(label, (i, 0), ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"ViT-B-32 on {cpu}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
