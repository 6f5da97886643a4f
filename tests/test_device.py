"""Device and GPU precision: resolution through a fake GPU seam, the capability -> precision rule, the fidelity
gate run for real with CPU tensors standing in for a GPU, one catalog across precisions and devices, ZeroGPU."""

from __future__ import annotations

import logging
import sys
import types
from functools import partial

import numpy as np
import pytest

from similarity import precision as prec
from similarity.build import build_service
from similarity.config import Settings
from similarity.device import CPU, Device, resolve
from similarity.embedder import OpenClipEmbedder
from similarity.errors import ConfigError
from similarity.ingest import IngestItem, Ingestor
from similarity.store import open_store
from similarity.zerogpu import gpu_call

from .helpers import TINY_MODEL, image_bytes, make_image
from .test_precision import COLOURS, FakeCpu, RecordingProbe, assert_unit_float32, footer_text


class FakeGpus:
    """What torch would report: a list of (name, compute capability)."""

    def __init__(self, *cards: tuple[str, tuple[int, int]], mps: bool = False, broken: bool = False) -> None:
        self.cards, self.mps, self.broken = list(cards), mps, broken

    def cuda_count(self) -> int:
        if self.broken:
            raise RuntimeError("CUDA driver initialization failed")
        return len(self.cards)

    def capability(self, index: int) -> tuple[int, int]:
        return self.cards[index][1]

    def name(self, index: int) -> str:
        return self.cards[index][0]

    def free_bytes(self, index: int) -> int:
        return 16 << 30

    def mps_available(self) -> bool:
        return self.mps


T4 = ("Tesla T4", (7, 5))
H200 = ("NVIDIA H200", (9, 0))
L4 = ("NVIDIA L4", (8, 9))


def test_auto_takes_the_first_gpu_torch_sees_else_the_cpu():
    assert resolve("auto", FakeGpus()) == CPU
    t4 = resolve("auto", FakeGpus(T4, H200))
    assert (t4.name, t4.label, t4.capability, t4.is_gpu) == ("cuda:0", "cuda:0 Tesla T4", (7, 5), True)
    assert resolve("cuda:1", FakeGpus(T4, H200)).label == "cuda:1 NVIDIA H200"
    assert resolve("CUDA", FakeGpus(L4)).name == "cuda:0"
    assert resolve("auto", FakeGpus(mps=True)) == CPU  # mps only when asked for
    assert resolve("mps", FakeGpus(mps=True)).kind == "mps"
    assert resolve("cpu", FakeGpus(H200)) == CPU


def test_a_gpu_that_is_not_there_is_a_clear_error_and_a_broken_driver_means_cpu(caplog):
    with pytest.raises(ConfigError, match=r"SIMILARITY_DEVICE='cuda', but torch sees 0 CUDA GPUs; use auto or cpu"):
        resolve("cuda", FakeGpus())
    with pytest.raises(ConfigError, match=r"'cuda:2', but torch sees 1 CUDA GPU;"):
        resolve("cuda:2", FakeGpus(T4))
    with pytest.raises(ConfigError, match="no Apple GPU"):
        resolve("mps", FakeGpus())
    with caplog.at_level(logging.WARNING, logger="similarity.device"):
        assert resolve("auto", FakeGpus(broken=True)) == CPU
    assert "using the CPU" in caplog.text


def test_settings_default_to_auto_and_check_the_device():
    assert Settings.from_env({}).device == "auto"
    assert Settings.from_env({"SIMILARITY_DEVICE": "CUDA:1"}).device == "cuda:1"
    for bad in ("gpu", "cuda:x", "cuda0"):
        with pytest.raises(ConfigError, match=r"SIMILARITY_DEVICE=.* is not valid; use one of: auto, cpu, cuda"):
            Settings.from_env({"SIMILARITY_DEVICE": bad})


@pytest.mark.parametrize(
    ("card", "half"), [(T4, "fp16"), (("Tesla V100", (7, 0)), "fp16"), (L4, "bf16"), (H200, "bf16")]
)
def test_auto_probes_bf16_only_from_compute_capability_8(card, half):
    device = resolve("auto", FakeGpus(card))
    assert prec.decide("auto", FakeCpu(bf16=False), device) is None  # the probe decides, whatever the CPU
    assert prec.candidate(device) == half


def test_on_a_gpu_the_probe_judges_fidelity_not_batch_1_speed():
    t4 = resolve("auto", FakeGpus(T4))
    slower_at_batch_1 = prec.ProbeResult(3.2, 3.4, 0.99999, "fp16")  # launch-bound: no speed-up at batch 1
    choice = prec.judge(slower_at_batch_1, FakeCpu(bf16=False), t4)
    assert choice.precision == "fp16" and "compute capability 7.5" in choice.note and "x, needs" not in choice.note
    unfaithful = prec.ProbeResult(3.2, 1.0, 0.99, "fp16")
    assert prec.judge(unfaithful, FakeCpu(bf16=False), t4).precision == "fp32"
    assert prec.judge(slower_at_batch_1, FakeCpu(bf16=True)).precision == "fp32"  # on a CPU speed still counts


def test_explicit_precisions_by_device():
    cpu, t4, h200 = FakeCpu(bf16=True), resolve("auto", FakeGpus(T4)), resolve("auto", FakeGpus(H200))
    refused = prec.decide("bf16", cpu, t4)
    assert refused.precision == "fp32" and refused.refused and "no bf16 tensor cores" in refused.note
    assert prec.decide("bf16", cpu, h200).precision == "bf16"
    assert prec.decide("fp16", cpu, t4).precision == "fp16"
    on_cpu = prec.decide("fp16", cpu, CPU)
    assert on_cpu.precision == "fp32" and on_cpu.refused and "fp16 is for GPUs" in on_cpu.note
    assert prec.decide("fp32", cpu, h200).precision == "fp32"
    mps = resolve("mps", FakeGpus(mps=True))
    assert prec.decide("auto", cpu, mps).precision == "fp32" and prec.decide("fp16", cpu, mps).precision == "fp16"


def as_gpu(card: tuple[str, tuple[int, int]]) -> Device:
    """CPU tensors with a GPU's capability: the GPU precision path runs for real, on this machine's CPU."""
    return Device("cpu", f"cpu standing in for {card[0]}", card[1])


def gpu_like(card, precision: str = "auto", probe=None) -> OpenClipEmbedder:
    return OpenClipEmbedder(
        TINY_MODEL, "none", batch_size=8, precision=precision, device=as_gpu(card), cpu=FakeCpu(False), probe=probe
    )


@pytest.mark.parametrize(("card", "half"), [(T4, "fp16"), (H200, "bf16")])
def test_auto_on_a_gpu_casts_probes_and_keeps_float32_vectors(card, half):
    probe = RecordingProbe(3.0, 3.1)  # the probe's two batches really run; the cosine is measured
    embedder = gpu_like(card, probe=probe)
    assert embedder.precision is None and f"fp32 or {half}" in embedder.precision_note
    embedder.load()
    assert embedder.precision == half and f"auto -> {half}" in embedder.precision_note
    fp32_rows, half_rows = probe.outputs
    assert prec.row_cosines(fp32_rows, half_rows).min() >= prec.MIN_COSINE
    reference = OpenClipEmbedder(TINY_MODEL, "none", precision="fp32", device="cpu")
    pictures = [make_image(c, shape=i) for i, c in enumerate(COLOURS)]
    got, want = embedder.embed_images(pictures), reference.embed_images(pictures)
    assert_unit_float32(got)
    assert not np.array_equal(got, want) and prec.row_cosines(got, want).min() > 0.999  # half really ran


def test_a_catalog_crosses_precisions_and_devices_unchanged():
    store = open_store("memory://")
    items = [
        IngestItem(f"p{i}.png", partial(image_bytes, make_image(COLOURS[i % 6], shape=i)), {"name": f"Item {i}"})
        for i in range(12)
    ]
    cpu_fp32 = OpenClipEmbedder(TINY_MODEL, "none", batch_size=4, precision="fp32", device="cpu")
    assert Ingestor(store, cpu_fp32, batch_size=4).run(items).added == 12
    settings = Settings(store_url="memory://", clip_model=TINY_MODEL, clip_pretrained="none", tagger="off")
    service = build_service(settings, store=store, embedder=gpu_like(T4, "fp16"), tagger=object())
    for i in (0, 5, 11):
        result = service.search(image_bytes(make_image(COLOURS[i % 6], shape=i)), top_k=3)
        assert result.matches[0].product.name == f"Item {i}" and result.matches[0].score >= 0.999
        payload = result.to_dict()
        assert payload["precision"] == "fp16" and payload["device"] == "cpu standing in for Tesla T4"
        assert result.model == "tiny-test/none"
    assert store.load_vectors().vectors.dtype == np.float32


def test_info_and_footer_name_the_device(capsys):
    from similarity.__main__ import _print_info

    settings = Settings(store_url="memory://", clip_model=TINY_MODEL, clip_pretrained="none", tagger="off")
    service = build_service(settings, store=open_store("memory://"), embedder=gpu_like(L4, "bf16"), tagger=object())
    assert service.info()["device"] == "cpu standing in for NVIDIA L4"
    _print_info(service.info())
    assert "device:   cpu standing in for NVIDIA L4" in capsys.readouterr().out
    assert "device **cpu standing in for NVIDIA L4**" in footer_text(service)
    with pytest.raises(ConfigError, match="torch sees 0 CUDA GPUs"):  # a missing GPU stops the start-up
        build_service(
            settings, store=open_store("memory://"), embedder=OpenClipEmbedder(device="cuda", gpus=FakeGpus())
        )


class FakeSpaces(types.ModuleType):
    """The ``spaces`` package's decorator shape: ``spaces.GPU(duration=...)(fn)``; counts the wrapped calls."""

    def __init__(self) -> None:
        super().__init__("spaces")
        self.durations: list[int] = []
        self.calls: list[str] = []

    def GPU(self, duration: int):
        self.durations.append(duration)

        def wrap(fn):
            def on_gpu(*args, **kwargs):
                self.calls.append(getattr(fn, "__name__", "?"))
                return fn(*args, **kwargs)

            return on_gpu

        return wrap


def test_spaces_gpu_wraps_the_model_calls_only_on_zerogpu(monkeypatch):
    spaces = FakeSpaces()
    assert gpu_call(False, spaces) is None and not spaces.durations  # off ZeroGPU: nothing imported or wrapped
    wrapped = OpenClipEmbedder(
        TINY_MODEL,
        "none",
        device="cpu",
        cpu=FakeCpu(True),
        probe=RecordingProbe(100, 50),
        gpu_call=gpu_call(True, spaces),
    )
    assert spaces.durations == [30]
    vectors = wrapped.embed_images([make_image()])
    wrapped.embed_texts(["a red bag"])
    assert spaces.calls == ["_probe_now", "_encode_images", "_encode_texts"]  # the probe runs on the GPU too
    assert_unit_float32(vectors)
    from similarity.explain import Explainer

    heat, _ = Explainer(wrapped).explain(make_image(), make_image((30, 30, 200), shape=1))
    assert spaces.calls[-1] == "_forward" and heat.shape == Explainer(wrapped).grid()  # "why": a GPU call too
    assert Settings.from_env({"SPACES_ZERO_GPU": "true"}).zero_gpu and not Settings.from_env({}).zero_gpu
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    with pytest.raises(ConfigError, match="pip install spaces"):
        gpu_call(True)
