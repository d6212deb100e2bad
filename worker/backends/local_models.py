"""Where local models come from: the bundled SmolLM2 GGUF, a converted cache, a tiny test model."""

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GgufConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
from transformers.utils import is_accelerate_available

from app.default_model import DEFAULT_MODEL_NAME, default_gguf_path
from worker.backends.base import BackendError

__all__ = ["DEFAULT_MODEL_NAME", "default_gguf_path"]


# SmolLM2's own ChatML template, for a tokenizer whose GGUF carried none.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, "
    "trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_END_OF_TURN = "<|im_end|>"
# What a Hugging Face Hub id looks like ("name" or "owner/name"); anything else is a local path.
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Gives a chat tokenizer what generation and scoring rely on: a chat template, a pad token."""
    if not tokenizer.chat_template and _END_OF_TURN in tokenizer.get_vocab():
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        # SmolLM2 pads with its end-of-turn token; every row's real end is found from the
        # attention mask, so sharing the id is harmless.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(source: str | Path) -> PreTrainedTokenizerBase:
    """A tokenizer from a model folder, a GGUF file or a hub id, prepared for chat."""
    path = Path(source)
    if path.suffix == ".gguf" and path.is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
    return prepare_tokenizer(tokenizer)


def _looks_like_path(text: str) -> bool:
    return (
        text.endswith(".gguf")
        or text.startswith((".", "~", os.sep))
        or Path(text).is_absolute()
        or not _HUB_ID.match(text)
    )


def _cache_key(path: Path) -> str:
    # Size, modification time and name tell a replaced file from the cached one without hashing
    # the whole file (hundreds of megabytes) on every worker start.
    stat = path.stat()
    identity = f"{stat.st_size}:{stat.st_mtime_ns}:{path.name}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def gguf_cache_folder(gguf_path: Path, cache_dir: Path) -> Path:
    """The folder that holds (or will hold) the dequantised copy of `gguf_path`."""
    return cache_dir / f"{gguf_path.stem}-{_cache_key(gguf_path)}"


def _load_gguf_model(gguf_path: Path) -> PreTrainedModel:
    folder, name = str(gguf_path.parent), gguf_path.name
    if is_accelerate_available():
        # dequantize=True gives plain dense weights: the only form that can be saved and trained.
        return AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True)
        )
    # transformers refuses gguf_file= without accelerate, which the worker does not otherwise
    # need. Its own GGUF reader dequantises the same tensors (identical weights, as checked with
    # SmolLM2), so build the model from the file's config and load them directly.
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config)
    tensors = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model)
    state = {key: torch.as_tensor(value) for key, value in tensors["tensors"].items()}
    result = model.load_state_dict(state, strict=False)
    # A tied output layer is stored once, as the embedding; anything else missing is an error.
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise ValueError(
            f"GGUF weights do not match the model: missing {sorted(missing)}, "
            f"unexpected {sorted(result.unexpected_keys)}"
        )
    return model


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    # Write into a private temporary folder and rename it into place, so a crash or a second
    # worker converting at the same time never leaves a half-written folder under the real name.
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    try:
        model = _load_gguf_model(gguf_path)
        # The tokenizer is read from the same file's metadata and needs no dequantising.
        tokenizer = load_tokenizer(gguf_path)
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        del model
        try:
            staging.rename(target)
        except OSError:
            # Another worker finished first; its copy is as good as ours.
            if not target.is_dir():
                raise
    except Exception as exc:
        raise BackendError(f"cannot convert GGUF model {gguf_path}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_model_folder(path_or_id: str, cache_dir: Path) -> str:
    """A folder transformers can load quickly: GGUF files are dequantised once into `cache_dir`.

    A folder is returned as is, and anything that does not look like a path is taken for a hub
    id and returned unchanged (it loads only where the hub is reachable or already cached).
    """
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_file():
        if path.suffix != ".gguf":
            raise BackendError(f"model path {path_or_id} is a file but not a .gguf model")
        target = gguf_cache_folder(path, cache_dir)
        if not target.is_dir():
            cache_dir.mkdir(parents=True, exist_ok=True)
            _convert_gguf(path, target)
        return str(target)
    if _looks_like_path(path_or_id):
        raise BackendError(f"model path {path_or_id} does not exist")
    return path_or_id


def build_tiny_llama(tokenizer_source: str, folder: Path, seed: int = 0) -> Path:
    """A small randomly initialised Llama with a real tokenizer, saved for tests; returns folder."""
    tokenizer = load_tokenizer(tokenizer_source)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        # Ten times the usual spread: with 0.02 attention is near uniform and the logits near
        # flat, so positions (left padding) barely matter and greedy picks hinge on rounding.
        initializer_range=0.2,
    )
    # A private RNG state keeps the weights a function of `seed` alone and leaves the caller's
    # global seed untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
