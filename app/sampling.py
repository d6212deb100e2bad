"""Sampling defaults per model: its own generation_config.json where it has one, else defaults
that keep a small chat model on topic (measured: benchmarks/README.md, "Issue 14: sampling
defaults"). The paper's settings (temperature 1.0, top-p 1.0, for a 52B model) are a preset.

Plain JSON reading, no model stack: the launch forms call this in the web process.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty")


@dataclass(frozen=True)
class SamplingDefaults:
    temperature: float
    top_p: float
    top_k: int  # 0: no top-k cut
    repetition_penalty: float  # 1.0: none
    source: str  # where these came from, shown beside the fields

    def values(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if name != "source"}


# SmolLM2-135M at 1.0/1.0 writes word salad; at 0.7/0.9 with a light repetition penalty its
# replies stay on the prompt and loop less (the benchmark above). top_k stays off: top-p 0.9
# already cuts the tail, and the benchmark measured without a second cut.
SMALL_CHAT = SamplingDefaults(
    temperature=0.7,
    top_p=0.9,
    top_k=0,
    repetition_penalty=1.1,
    source="defaults for small chat models",
)
PAPER = SamplingDefaults(
    temperature=1.0,
    top_p=1.0,
    top_k=0,
    repetition_penalty=1.0,
    source="the paper's settings (temperature 1.0, top-p 1.0)",
)
PRESETS = {"model": "the model's defaults", "paper": "the paper's settings (1.0 / 1.0)"}

# What transformers' generate() uses for a setting a generation_config.json leaves out: a model
# whose authors set some sampling fields gets the rest as its own generate() would.
_TRANSFORMERS_DEFAULTS: dict[str, Any] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 50,
    "repetition_penalty": 1.0,
}


def read_generation_config(path: Path) -> SamplingDefaults | None:
    """The sampling settings a generation_config.json sets; None when it sets none of them (a
    file with token ids only, as a converted GGUF writes) or cannot be read."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not any(name in data for name in SAMPLING_FIELDS):
        return None
    merged = {**_TRANSFORMERS_DEFAULTS, **{k: data[k] for k in SAMPLING_FIELDS if k in data}}
    try:
        defaults = SamplingDefaults(
            temperature=min(max(float(merged["temperature"]), 0.0), 5.0),
            top_p=min(max(float(merged["top_p"]), 0.01), 1.0),
            top_k=min(max(int(merged["top_k"] or 0), 0), 1000),
            repetition_penalty=min(max(float(merged["repetition_penalty"]), 0.5), 2.0),
            source=f"the model's {path}",
        )
    except (TypeError, ValueError):
        return None
    if data.get("do_sample") is False:
        # The model's authors chose greedy decoding.
        defaults = SamplingDefaults(**{**asdict(defaults), "temperature": 0.0})
    return defaults


def _hub_file(repo_id: str) -> Path | None:
    """A hub model's generation_config.json where the hub cache holds it (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "generation_config.json")
    except Exception:  # a malformed id: no cached file to read
        return None
    return Path(found) if isinstance(found, str) else None


def model_sampling_defaults(backend: str, path: str) -> SamplingDefaults:
    """The defaults for a registered model (its backend and path), or for `cai generate
    --model PATH`."""
    if backend != "transformers" or not path:
        return SMALL_CHAT
    local = Path(path).expanduser()
    if local.suffix == ".gguf":
        return _with_source(SMALL_CHAT, "GGUF file, no generation_config.json")
    config = local / "generation_config.json" if local.is_dir() else _hub_file(path)
    found = read_generation_config(config) if config is not None and config.is_file() else None
    if found is None:
        return _with_source(SMALL_CHAT, "no sampling settings in a generation_config.json")
    return found


def _with_source(defaults: SamplingDefaults, why: str) -> SamplingDefaults:
    return SamplingDefaults(**{**asdict(defaults), "source": f"{defaults.source} ({why})"})


def preset_values(preset: str, backend: str, path: str) -> SamplingDefaults:
    """A named preset: "paper", or "model" (the model's defaults)."""
    return PAPER if preset == "paper" else model_sampling_defaults(backend, path)
