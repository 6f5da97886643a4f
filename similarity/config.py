"""Settings: read once from the environment into a frozen dataclass.

``Settings.from_env`` is the only place in the project that reads ``os.environ``.
Precedence: explicit argument (``dataclasses.replace``/constructor) > environment > default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from .device import check_spec as check_device
from .errors import ConfigError
from .precision import PRECISIONS

APP_DIR = Path(__file__).resolve().parent.parent
DEFAULT_STORE = f"sqlite:///{APP_DIR / 'data' / 'catalog.db'}"
TAGGERS = ("auto", "gemini", "clip", "off")
MONGO_SEARCH_MODES = ("auto", "atlas", "exact")
VECTOR_DTYPES = ("float32", "float16")
MAP_LAYOUTS = ("umap", "pca", "off")
REGION_MODES = ("auto", "gemini", "offline", "off")  # SIMILARITY_REGIONS (see similarity.regions)
DEFAULT_GEMINI_MODEL = "gemini-3.5-flash-lite"  # stable flash-lite (2026-07); 2.5-flash-lite is withdrawn


@dataclasses.dataclass(frozen=True)
class Settings:
    store_url: str = DEFAULT_STORE
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"
    device: str = "auto"  # SIMILARITY_DEVICE: auto | cpu | cuda[:N] | mps (see similarity.device)
    batch_size: int = 16
    torch_threads: int = 0  # 0 = the cores this process may use
    precision: str = "auto"  # auto | fp32 | bf16 (see similarity.precision)
    tagger: str = "auto"
    gemini_api_key: str | None = dataclasses.field(default=None, repr=False)
    gemini_model: str = DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None
    gemini_concurrency: int = 4
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    facet_candidates: int = 200
    mongo_db: str = "similarity"
    mongo_collection: str = "products"
    mongo_search: str = "auto"
    mongo_index: str = "vector_index"
    ann_threshold: int = 50_000
    vector_dtype: str = "float32"
    seed_demo_on_empty: bool = True
    map_layout: str = "umap"  # SIMILARITY_MAP: umap | pca | off (the Map tab's layout method)
    map_sample: int = 50_000  # SIMILARITY_MAP_SAMPLE: the most products a layout is fitted on
    numba_cache_dir: str = ""  # NUMBA_CACHE_DIR: where the layout worker keeps compiled UMAP code ("" = temp dir)
    seed_source: str = "demo"  # SIMILARITY_SEED_SOURCE: what an empty catalog is filled with (data_seed forms)
    seed_limit: int | None = None  # SIMILARITY_SEED_LIMIT: at most this many products on the first start
    seed_args: str = ""  # SIMILARITY_SEED_ARGS: data_seed dataset options, shell-quoted (--column F=C ...)
    users_file: str | None = None  # SIMILARITY_USERS_FILE: sign-in for the whole app (see similarity.accounts)
    system: str = ""  # SYSTEM: "spaces" on a Hugging Face Space (turns on Hugging Face sign-in)
    regions: str = "auto"  # SIMILARITY_REGIONS: auto (Gemini with a key, else offline) | gemini | offline | off
    mcp_server: bool | None = None  # GRADIO_MCP_SERVER: MCP tools (unset: on where the mcp package is installed)
    zero_gpu: bool = False  # SPACES_ZERO_GPU: a ZeroGPU Space (model calls run under spaces.GPU)

    def __post_init__(self) -> None:
        _check_choice("SIMILARITY_TAGGER", self.tagger, TAGGERS)
        _check_choice("SIMILARITY_MONGO_SEARCH", self.mongo_search, MONGO_SEARCH_MODES)
        _check_choice("SIMILARITY_VECTOR_DTYPE", self.vector_dtype, VECTOR_DTYPES)
        _check_choice("SIMILARITY_PRECISION", self.precision, PRECISIONS)
        _check_choice("SIMILARITY_MAP", self.map_layout, MAP_LAYOUTS)
        _check_choice("SIMILARITY_REGIONS", self.regions, REGION_MODES)
        object.__setattr__(self, "device", check_device(self.device))
        if self.map_sample < 100:
            raise ConfigError("SIMILARITY_MAP_SAMPLE must be at least 100")
        if self.batch_size < 1 or self.facet_candidates < 1:
            raise ConfigError("batch size and facet candidates must be at least 1")
        if self.seed_limit is not None and self.seed_limit < 1:
            raise ConfigError("SIMILARITY_SEED_LIMIT must be at least 1")

    def __repr__(self) -> str:  # replaces the dataclass repr: a MongoDB URL's password is masked
        from .store.base import mask_url

        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}
        values["store_url"] = mask_url(self.store_url)
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in values.items())})"

    @property
    def on_spaces(self) -> bool:
        return self.system.strip().lower() == "spaces"

    @property
    def random_weights(self) -> bool:
        return self.clip_pretrained.strip().lower() == "none"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); keyword overrides win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field, (name, kind) in _ENV_FIELDS.items():
            raw = _first(env, name)
            if raw is not None:
                values[field] = _parse(name, raw, kind)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# field -> (environment variable name(s), type); the first variable that is set wins.
_ENV_FIELDS: dict[str, tuple[tuple[str, ...], type]] = {
    "store_url": (("SIMILARITY_STORE", "MONGODB_URI"), str),
    "clip_model": (("SIMILARITY_CLIP_MODEL",), str),
    "clip_pretrained": (("SIMILARITY_CLIP_PRETRAINED",), str),
    "device": (("SIMILARITY_DEVICE",), str),
    "batch_size": (("SIMILARITY_BATCH_SIZE",), int),
    "torch_threads": (("SIMILARITY_TORCH_THREADS",), int),
    "precision": (("SIMILARITY_PRECISION",), str),
    "tagger": (("SIMILARITY_TAGGER",), str),
    "gemini_api_key": (("GEMINI_API_KEY", "GOOGLE_API_KEY"), str),
    "gemini_model": (("GEMINI_MODEL",), str),
    "gemini_base_url": (("GEMINI_BASE_URL",), str),
    "gemini_concurrency": (("SIMILARITY_GEMINI_CONCURRENCY",), int),
    "admin_token": (("SIMILARITY_ADMIN_TOKEN",), str),
    "facet_candidates": (("SIMILARITY_FACET_CANDIDATES",), int),
    "mongo_db": (("SIMILARITY_MONGO_DB",), str),
    "mongo_collection": (("SIMILARITY_MONGO_COLLECTION",), str),
    "mongo_search": (("SIMILARITY_MONGO_SEARCH",), str),
    "mongo_index": (("SIMILARITY_MONGO_INDEX",), str),
    "ann_threshold": (("SIMILARITY_ANN_THRESHOLD",), int),
    "vector_dtype": (("SIMILARITY_VECTOR_DTYPE",), str),
    "seed_demo_on_empty": (("SIMILARITY_SEED_DEMO",), bool),
    "map_layout": (("SIMILARITY_MAP",), str),
    "map_sample": (("SIMILARITY_MAP_SAMPLE",), int),
    "numba_cache_dir": (("NUMBA_CACHE_DIR",), str),
    "seed_source": (("SIMILARITY_SEED_SOURCE",), str),
    "seed_limit": (("SIMILARITY_SEED_LIMIT",), int),
    "seed_args": (("SIMILARITY_SEED_ARGS",), str),
    "users_file": (("SIMILARITY_USERS_FILE",), str),
    "system": (("SYSTEM",), str),
    "mcp_server": (("GRADIO_MCP_SERVER",), bool),
    "regions": (("SIMILARITY_REGIONS",), str),
    "zero_gpu": (("SPACES_ZERO_GPU",), bool),
}


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _parse(names: tuple[str, ...], raw: str, kind: type) -> object:
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on", "t"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{names[0]} must be true or false")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{names[0]} must be a whole number") from None
    lowered = ("SIMILARITY_TAGGER", "SIMILARITY_MONGO_SEARCH", "SIMILARITY_PRECISION", "SIMILARITY_MAP")
    lowered += ("SIMILARITY_REGIONS",)
    return raw.lower() if names[0] in lowered else raw


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}")
