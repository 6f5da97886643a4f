from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from similarity.embedder import OpenClipEmbedder
from similarity.errors import ModelError

from .helpers import make_image


def test_tiny_model_gives_normalised_float32(tiny_embedder):
    vectors = tiny_embedder.embed_images([make_image((200, 0, 0)), make_image((0, 0, 200), shape=1)])
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    texts = tiny_embedder.embed_texts(["a red bag", "blue shoes", "a watch"])
    assert texts.shape == (3, 32) and np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_batches_agree_with_single_images(tiny_embedder):
    pictures = [make_image((i * 20, 100, 255 - i * 20), shape=i) for i in range(11)]
    batched = tiny_embedder.embed_images(pictures)  # batch_size 8 -> two batches
    single = np.concatenate([tiny_embedder.embed_images([p]) for p in pictures])
    assert np.allclose(batched, single, atol=1e-5)


def test_random_weights_are_the_same_in_every_process():
    a, b = (OpenClipEmbedder("tiny-test", "none", precision="fp32") for _ in range(2))  # the same weights, not a probe
    picture = make_image()
    assert np.array_equal(a.embed_images([picture]), b.embed_images([picture]))


def test_model_id_names_model_and_weights(tmp_path):
    assert OpenClipEmbedder().model_id == "ViT-B-32/laion2b_s34b_b79k"
    assert OpenClipEmbedder("ViT-B-32", "openai").model_id == "ViT-B-32/openai"
    assert OpenClipEmbedder("ViT-B-32", "NONE").random_weights
    assert OpenClipEmbedder("ViT-B-32", str(tmp_path / "clip.pt")).model_id == "ViT-B-32/file:clip.pt"


def test_load_is_lazy():
    embedder = OpenClipEmbedder("tiny-test", "none")
    assert not embedder.loaded
    embedder.embed_texts(["x"])
    assert embedder.loaded


def test_missing_weights_fail_clearly_and_never_fall_back(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub client reads this itself
    embedder = OpenClipEmbedder("ViT-B-32", "laion2b_s34b_b79k")
    with pytest.raises(ModelError) as info:
        embedder.load()
    message = str(info.value)
    assert "SIMILARITY_CLIP_PRETRAINED=none" in message and "local checkpoint" in message
    assert not embedder.loaded


def test_missing_local_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="Pre-download"):
        OpenClipEmbedder("tiny-test", str(tmp_path / "missing.pt")).load()


def test_real_vit_b32_architecture_random_init():
    embedder = OpenClipEmbedder("ViT-B-32", "none", batch_size=4)
    pictures = [make_image((255, 0, 0), (300, 200)), make_image((0, 128, 0), (120, 260), shape=1)]
    first = embedder.embed_images(pictures)
    assert first.shape == (2, 512) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.allclose(first, embedder.embed_images(pictures), atol=1e-6)
    assert embedder.embed_texts(["a red handbag"]).shape == (1, 512)


def _weights_cached() -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors")
        return isinstance(hit, str)
    except Exception:
        return False


@pytest.mark.real_weights
@pytest.mark.skipif(not _weights_cached(), reason="ViT-B-32 laion2b_s34b_b79k weights are not in the local HF cache")
def test_real_weights_rank_matching_text_first():
    embedder = OpenClipEmbedder()
    image = embedder.embed_images([make_image((220, 20, 20), (224, 224), shape=1)])[0]
    texts = embedder.embed_texts(["a photo of a red circle", "a photo of a green square"])
    assert texts[0] @ image > texts[1] @ image


def test_a_failed_load_is_kept_not_retried(tmp_path):
    embedder = OpenClipEmbedder("tiny-test", str(tmp_path / "missing.pt"))
    with pytest.raises(ModelError) as first:
        embedder.load()
    with pytest.raises(ModelError) as second:
        embedder.embed_texts(["x"])
    assert second.value is first.value and embedder.load_error is first.value and not embedder.loaded


def test_preprocess_tail_in_numpy_gives_the_same_tensors_bit_for_bit() -> None:
    from torchvision import transforms

    from similarity.preprocess import _ToNormalisedTensor, numpy_tail

    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    steps = [transforms.Resize(224, transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224)]
    reference = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])
    fused = numpy_tail(reference)
    assert isinstance(fused.transforms[-1], _ToNormalisedTensor)
    rng = np.random.default_rng(3)
    for size in [(300, 224), (640, 480), (224, 500), (1, 1)]:
        img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        assert torch.equal(fused(img), reference(img)), size
    cropped = transforms.Compose(steps)
    assert numpy_tail(cropped) is cropped  # no ToTensor + Normalize tail: left as it is


def test_the_embedder_uses_the_numpy_tail(tiny_embedder) -> None:
    from similarity.preprocess import _ToNormalisedTensor

    tiny_embedder.load()
    assert isinstance(tiny_embedder._preprocess.transforms[-1], _ToNormalisedTensor)


class _Bf16Cpu:
    """Claims AMX so bf16 really runs (slowly on a CPU without it: fidelity only, never timed)."""

    def bf16_supported(self) -> bool:
        return True

    def describe(self) -> str:
        return "test CPU (amx_tile yes)"


@pytest.mark.real_weights
@pytest.mark.skipif(not _weights_cached(), reason="ViT-B-32 laion2b_s34b_b79k weights are not in the local HF cache")
def test_real_weights_bf16_keeps_image_and_text_vectors():
    from similarity.precision import row_cosines

    fp32 = OpenClipEmbedder(precision="fp32")
    bf16 = OpenClipEmbedder(precision="bf16", cpu=_Bf16Cpu())
    pictures = [make_image((40 * i, 200 - 30 * i, 90), (224, 224), shape=i) for i in range(6)]
    prompts = ["a photo of a red leather handbag", "white running shoes", "a black wrist watch"]
    assert row_cosines(bf16.embed_images(pictures), fp32.embed_images(pictures)).min() >= 0.999
    assert row_cosines(bf16.embed_texts(prompts), fp32.embed_texts(prompts)).min() >= 0.999
    assert bf16.precision == "bf16" and bf16.model_id == fp32.model_id
