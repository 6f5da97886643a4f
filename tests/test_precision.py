"""Embedding precision: the capability gate, the start-up probe's verdict, refusal, and one catalog for both."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pytest

from similarity import precision as prec
from similarity.build import build_service
from similarity.config import Settings
from similarity.embedder import OpenClipEmbedder
from similarity.errors import ConfigError
from similarity.ingest import IngestItem, Ingestor
from similarity.store import open_store

from .helpers import TINY_MODEL, image_bytes, make_image

COLOURS = [(220, 30, 30), (30, 30, 220), (30, 160, 60), (240, 200, 40), (20, 20, 20), (160, 60, 200)]


class FakeCpu:
    def __init__(self, bf16: bool) -> None:
        self.bf16 = bf16

    def bf16_supported(self) -> bool:
        return self.bf16

    def describe(self) -> str:
        return f"Test CPU (amx_tile no, avx512_bf16 {'yes' if self.bf16 else 'no'})"


class RecordingProbe:
    """Runs both probe batches once (so they are real) and reports fixed figures instead of timing."""

    def __init__(self, fp32_ms: float, bf16_ms: float, min_cosine: float | None = None) -> None:
        self.figures = (fp32_ms, bf16_ms, min_cosine)
        self.outputs: list[np.ndarray] = []

    def __call__(self, fp32, bf16) -> prec.ProbeResult:
        self.outputs = [fp32(), bf16()]
        fp32_ms, bf16_ms, cosine = self.figures
        measured = prec.row_cosines(*self.outputs).min().item()
        return prec.ProbeResult(fp32_ms, bf16_ms, measured if cosine is None else cosine)


def tiny(precision: str = "auto", *, bf16: bool, probe=None) -> OpenClipEmbedder:
    return OpenClipEmbedder(TINY_MODEL, "none", batch_size=8, precision=precision, cpu=FakeCpu(bf16), probe=probe)


def assert_unit_float32(vectors: np.ndarray) -> None:
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_auto_on_a_cpu_without_bf16_stays_fp32_without_probing():
    probe = RecordingProbe(100, 10)
    embedder = tiny(bf16=False, probe=probe)
    assert embedder.precision == "fp32"  # known before loading: nothing to measure
    embedder.load()
    assert embedder.precision == "fp32" and not probe.outputs
    assert "neither AMX nor AVX512_BF16" in embedder.precision_note and "Test CPU" in embedder.precision_note


def test_auto_takes_bf16_when_the_probe_shows_speed_and_fidelity(caplog):
    probe = RecordingProbe(fp32_ms=100, bf16_ms=50)
    embedder = tiny(bf16=True, probe=probe)
    assert embedder.precision is None  # auto on a capable CPU: the probe decides at load
    with caplog.at_level(logging.INFO, logger="similarity.embedder"):
        embedder.load()
    assert embedder.precision == "bf16"
    fp32_rows, bf16_rows = probe.outputs
    assert fp32_rows.shape == bf16_rows.shape == (3, 32)  # one photo and two prompts, both towers
    assert_unit_float32(bf16_rows)
    assert "2.00x" in embedder.precision_note and "min cosine" in embedder.precision_note
    decisions = [r.getMessage() for r in caplog.records if "Embedding precision" in r.getMessage()]
    assert len(decisions) == 1 and "auto -> bf16" in decisions[0]


@pytest.mark.parametrize(
    ("fp32_ms", "bf16_ms", "cosine", "why"),
    [(100, 95, None, "1.05x"), (100, 40, 0.99, "min cosine 0.99000")],
    ids=["no gain", "low fidelity"],
)
def test_a_probe_without_gain_or_fidelity_leaves_fp32(fp32_ms, bf16_ms, cosine, why):
    embedder = tiny(bf16=True, probe=RecordingProbe(fp32_ms, bf16_ms, cosine))
    embedder.load()
    assert embedder.precision == "fp32"
    assert "auto -> fp32" in embedder.precision_note and why in embedder.precision_note
    assert_unit_float32(embedder.embed_images([make_image()]))


def test_a_probe_that_fails_leaves_fp32():
    def broken(fp32, bf16):
        raise RuntimeError("no bf16 kernel for this op")

    embedder = tiny(bf16=True, probe=broken)
    embedder.load()
    assert embedder.precision == "fp32" and "probe failed (RuntimeError)" in embedder.precision_note


def test_explicit_bf16_on_an_incapable_cpu_is_refused_and_runs_fp32(caplog):
    embedder = tiny("bf16", bf16=False)
    reference = tiny("fp32", bf16=False)
    with caplog.at_level(logging.WARNING, logger="similarity.embedder"):
        embedder.load()
    assert embedder.precision == "fp32"
    assert "SIMILARITY_PRECISION=bf16 refused" in embedder.precision_note
    assert "slower" in embedder.precision_note and "using fp32" in embedder.precision_note
    assert any("refused" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    picture = make_image((30, 160, 60), shape=3)
    assert np.array_equal(embedder.embed_images([picture]), reference.embed_images([picture]))  # truly fp32


def test_explicit_bf16_on_a_capable_cpu_runs_bf16_with_float32_vectors_from_both_towers():
    embedder, reference = tiny("bf16", bf16=True), tiny("fp32", bf16=True)
    pictures = [make_image(c, shape=i) for i, c in enumerate(COLOURS)]
    prompts = ["a red bag", "blue shoes"]
    images, texts = embedder.embed_images(pictures), embedder.embed_texts(prompts)
    assert embedder.precision == "bf16"
    for got, want in ((images, reference.embed_images(pictures)), (texts, reference.embed_texts(prompts))):
        assert_unit_float32(got)
        assert not np.array_equal(got, want)  # bf16 really ran
        assert prec.row_cosines(got, want).min() > 0.999


def test_the_taggers_classifier_gets_the_same_precision_and_float32_vectors():
    bf16, fp32 = tiny("bf16", bf16=True), tiny("fp32", bf16=True)
    args = (["bag", "shoe", "watch"], ["a photo of a {}.", "a product photo of a {}."])
    weights = bf16.classifier(*args)
    assert weights.shape == (3, 32)
    assert_unit_float32(weights)
    assert bf16.precision == "bf16" and prec.row_cosines(weights, fp32.classifier(*args)).min() > 0.999


def test_model_id_does_not_depend_on_precision():
    assert tiny("bf16", bf16=True).model_id == tiny("fp32", bf16=True).model_id == "tiny-test/none"


def test_a_catalog_embedded_in_fp32_is_searchable_in_bf16():
    store = open_store("memory://")
    items = [
        IngestItem(f"p{i}.png", partial(image_bytes, make_image(COLOURS[i % 6], shape=i)), {"name": f"Item {i}"})
        for i in range(12)
    ]
    assert Ingestor(store, tiny("fp32", bf16=True), batch_size=4).run(items).added == 12
    settings = Settings(store_url="memory://", clip_model=TINY_MODEL, clip_pretrained="none", precision="bf16")
    service = build_service(settings, store=store, embedder=tiny("bf16", bf16=True), tagger=object())
    for i in (0, 5, 11):
        result = service.search(image_bytes(make_image(COLOURS[i % 6], shape=i)), top_k=3)
        assert result.matches[0].product.name == f"Item {i}" and result.matches[0].score >= 0.999
        assert result.precision == "bf16" and result.to_dict()["precision"] == "bf16"
        assert result.model == "tiny-test/none"  # the same vector space: no re-embedding asked for


def test_settings_read_and_validate_the_precision():
    assert Settings.from_env({}).precision == "auto"
    assert Settings.from_env({"SIMILARITY_PRECISION": "BF16"}).precision == "bf16"
    assert Settings.from_env({"SIMILARITY_PRECISION": "FP16"}).precision == "fp16"  # for GPUs
    with pytest.raises(
        ConfigError, match=r"SIMILARITY_PRECISION='half' is not valid; choose one of: auto, fp32, bf16, fp16"
    ):
        Settings.from_env({"SIMILARITY_PRECISION": "half"})
    with pytest.raises(ConfigError, match="SIMILARITY_PRECISION"):
        OpenClipEmbedder(TINY_MODEL, "none", precision="half")


def test_the_timing_probe_measures_both_and_compares_rows():
    rows = np.eye(3, 8, dtype=np.float32)
    calls = {"fp32": 0, "bf16": 0}

    def run(name, noise):
        calls[name] += 1
        return rows + noise

    result = prec.timing_probe(partial(run, "fp32", 0.0), partial(run, "bf16", 0.01), rounds=2)
    assert calls == {"fp32": 3, "bf16": 3}  # a warm-up each, then the timed rounds
    assert result.fp32_ms >= 0 and result.half_ms >= 0
    assert result.min_cosine == pytest.approx(prec.row_cosines(rows, rows + 0.01).min())


def test_the_real_cpu_check_answers_and_describes_itself():
    cpu = prec.CpuFeatures()
    assert set(cpu.flags()) == {"amx_tile", "avx512_bf16"} and isinstance(cpu.bf16_supported(), bool)
    assert "avx512_bf16" in cpu.describe()


def test_threads_follow_the_usable_cores():
    import torch

    before = torch.get_num_threads()
    try:
        assert prec.configure_threads() == prec.usable_cores() == torch.get_num_threads()
        assert prec.configure_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def footer_text(service) -> str:
    from similarity.ui import build_blocks

    demo = build_blocks(service)
    try:
        return next(b.value for b in demo.blocks.values() if getattr(b, "elem_id", None) == "footer")
    finally:
        demo.close()


def test_info_and_footer_name_the_precision(capsys):
    from similarity.__main__ import _print_info

    store = open_store("memory://")
    settings = Settings(store_url="memory://", clip_model=TINY_MODEL, clip_pretrained="none", tagger="off")
    service = build_service(settings, store=store, embedder=tiny("bf16", bf16=True), tagger=object())
    info = service.info()
    assert info["precision"] == "bf16" and "SIMILARITY_PRECISION=bf16" in info["precision_note"]
    _print_info(info)
    assert "precision: bf16" in capsys.readouterr().out
    assert "none · bf16**" in footer_text(service)
    refused = build_service(settings, store=store, embedder=tiny("bf16", bf16=False), tagger=object())
    _print_info(refused.info())
    assert "precision: fp32 - SIMILARITY_PRECISION=bf16 refused" in capsys.readouterr().out
    assert "none · fp32**" in footer_text(refused)


def test_the_footer_says_auto_while_the_probe_has_not_run():
    settings = Settings(store_url="memory://", clip_model=TINY_MODEL, clip_pretrained="none", tagger="off")
    service = build_service(settings, store=open_store("memory://"), embedder=tiny(bf16=True), tagger=object())
    assert not service.embedder.loaded and "none · auto**" in footer_text(service)
