"""A backend that runs a GGUF file in this process with llama.cpp (llama-cpp-python, the
`llama` extra), for CPU workers.

Generation decodes the conversations of a call together, one `llama_decode` per step for
every row still writing, on a prefix read once (`worker/backends/llama_batch.py`). With
``batched=False`` it runs them one at a time through llama-cpp-python's `Llama` instead (the
baseline the benchmark compares against), which keeps the key/value cache of the tokens it last
read, and a ``LlamaRAMCache`` of earlier prompts' states. Scoring uses a second context over
the same mapped file with ``logits_all``, so that one pass gives every position's
log-probabilities; the two options of a question share its prefix and read only their own tail.

The prompt text is the model's chat template from its Hugging Face tokenizer (the same text the
transformers backend feeds), and the token ids come from that tokenizer too, so both backends
score the same tokens.
"""

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worker.backends.base import (
    BackendError,
    Conversation,
    Generation,
    GenerationParams,
    OptionsQuestion,
    score_each_option,
)
from worker.backends.chat_template import chat_prompt_text, encode_templated
from worker.backends.finishing import end_of_turn_ids, finish
from worker.backends.llama_batch import (
    BatchedDecoder,
    DecodeProfile,
    kv_bytes_per_token,
    rows_within,
)
from worker.backends.token_sampler import Sampling

# The prompt cache's size: states of about 40 prompts of 1,000 tokens for a 135M model.
CACHE_BYTES = 1 << 30
# Batched decoding: at most this many rows at once, each in a stream of up to ROW_TOKENS cells,
# within KV_BUDGET bytes of keys and values (SmolLM2-135M: 8 rows of 2,048 in 377 MiB; a 7B
# model gets 1 row, that is, no batching, rather than gigabytes). Longer rows go one at a time.
BATCH_ROWS = 8
ROW_TOKENS = 2048
KV_BUDGET = 1 << 30


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


class LlamaCppBackend:
    """Generation and scoring with a GGUF file on llama.cpp."""

    name = "llama_cpp"

    def __init__(
        self,
        gguf_path: str,
        *,
        context_length: int = 4096,
        threads: int | None = None,
        cache_bytes: int = CACHE_BYTES,
        batched: bool = True,
        batch_rows: int = BATCH_ROWS,
        row_tokens: int = ROW_TOKENS,
        kv_budget: int = KV_BUDGET,
    ) -> None:
        try:
            from llama_cpp import Llama, LlamaRAMCache
        except ImportError as exc:
            raise BackendError(
                "llama-cpp-python is not installed: `make install-llama`, or set "
                "GGUF_BACKEND=transformers"
            ) from exc
        path = Path(gguf_path).expanduser()
        if not (path.is_file() and path.suffix == ".gguf"):
            raise BackendError(f"model path {gguf_path} is not a GGUF file")
        self._path = str(path)
        self._threads = threads or os.cpu_count() or 1
        self._llama_class = Llama
        try:
            self._llm: Any = self._open(context_length, logits_all=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"cannot load model {gguf_path} with llama.cpp: {exc}") from exc
        self._llm.set_cache(LlamaRAMCache(capacity_bytes=cache_bytes))
        # No longer than the model was trained for (SmolLM2-135M: 8192).
        trained = self._llm._model.n_ctx_train() if hasattr(self._llm, "_model") else 0
        self.context_length: int = min(context_length, int(trained) or context_length)
        self._scorer: Any = None
        from worker.backends.local_models import load_tokenizer

        try:
            self.tokenizer = load_tokenizer(path)
        except Exception as exc:  # transformers reads fewer GGUF architectures than llama.cpp
            raise BackendError(f"cannot read the tokenizer of {gguf_path}: {exc}") from exc
        self._end_ids = end_of_turn_ids(self.tokenizer)
        self._row_tokens = min(row_tokens, self.context_length)
        self._batch_rows = rows_within(
            kv_budget, self._row_tokens, kv_bytes_per_token(self._llm._model), batch_rows
        )
        self.batched = batched and self._batch_rows > 1
        self._decoder: BatchedDecoder | None = None
        # Prompt tokens read by batched generation (the benchmark's count of work done).
        self.prompt_tokens_computed = 0

    def _open(self, context_length: int, *, logits_all: bool) -> Any:
        return self._llama_class(
            model_path=self._path,
            n_ctx=context_length,
            n_threads=self._threads,
            n_threads_batch=self._threads,
            logits_all=logits_all,
            verbose=False,
        )

    @property
    def llm(self) -> Any:
        if self._llm is None:
            raise BackendError("the llama.cpp backend has been closed")
        return self._llm

    def _prompt_text(self, conversation: Conversation) -> str:
        return chat_prompt_text(self.tokenizer, conversation)

    def _encode(self, text: str) -> list[int]:
        return encode_templated(self.tokenizer, text)

    def count_tokens(self, messages: Conversation) -> int:
        return len(self._encode(self._prompt_text(messages)))

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        budget = self.context_length - params.max_new_tokens
        if budget < 1:
            raise BackendError(
                f"max_new_tokens {params.max_new_tokens} leaves no room for a prompt in the "
                f"model's context of {self.context_length} tokens"
            )
        prompts = [self._encode(self._prompt_text(c)) for c in conversations]
        truncated = [len(p) > budget for p in prompts]
        # Keep the end of a long conversation: the latest turns are what the reply answers.
        prompts = [p[-budget:] for p in prompts]
        if not self.batched:
            return [
                self._one_at_a_time(prompt, params, index, cut)
                for index, (prompt, cut) in enumerate(zip(prompts, truncated, strict=True))
            ]
        return self._generate_batched(prompts, truncated, params)

    @property
    def decode_profile(self) -> DecodeProfile | None:
        """Where batched generation's time went so far; None before it has run."""
        return None if self._decoder is None else self._decoder.profile

    def _batched_decoder(self) -> BatchedDecoder:
        if self._decoder is None:
            try:
                self._decoder = BatchedDecoder(
                    self.llm, row_tokens=self._row_tokens, max_rows=self._batch_rows
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(f"cannot open a batched llama.cpp context: {exc}") from exc
        return self._decoder

    def _batches(
        self, prompts: list[list[int]], max_new_tokens: int
    ) -> tuple[list[list[int]], list[int]]:
        """The rows that fit a stream, longest first, `max_rows` at a time; and the longer
        rows, each for `Llama` alone (its context is the model's whole window)."""
        decoder = self._batched_decoder()
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        fits = {i: decoder.fits(prompts[i], max_new_tokens) for i in order}
        fitting = [i for i in order if fits[i]]
        rows = decoder.max_rows
        batches = [fitting[i : i + rows] for i in range(0, len(fitting), rows)]
        return batches, [i for i in order if not fits[i]]

    def _generate_batched(
        self, prompts: list[list[int]], truncated: list[bool], params: GenerationParams
    ) -> list[Generation]:
        sampling = Sampling.of(params, self._end_ids, self._end_ids[0] if self._end_ids else 0)
        stop = [s for s in params.stop if s]

        def stopped(tokens: list[int]) -> bool:
            text = self._detokenize(tokens)
            return any(s in text for s in stop)

        if params.seed is not None:
            torch.manual_seed(params.seed)
        results: dict[int, Generation] = {}
        batches, alone = self._batches(prompts, params.max_new_tokens)
        for index in alone:
            results[index] = self._one_at_a_time(prompts[index], params, index, truncated[index])
        for batch in batches:
            rows = [prompts[i] for i in batch]
            try:
                produced, computed = self._batched_decoder().decode(
                    rows, sampling, stopped if stop else None
                )
            except RuntimeError as exc:
                raise BackendError(f"llama.cpp could not decode: {exc}") from exc
            self.prompt_tokens_computed += computed
            for tokens, index in zip(produced, batch, strict=True):
                done = finish(
                    tokens,
                    end_ids=self._end_ids,
                    stop=params.stop,
                    prompt_tokens=len(prompts[index]),
                    detokenize=self._detokenize,
                )
                results[index] = replace(done, truncated=truncated[index])
        return [results[i] for i in range(len(prompts))]

    def _detokenize(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def _one_at_a_time(
        self, prompt: list[int], params: GenerationParams, index: int, truncated: bool
    ) -> Generation:
        seed = None if params.seed is None else params.seed + index
        answer = self.llm.create_completion(
            prompt=prompt,
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            # llama-cpp-python's default min_p of 0.05 would cut what transformers keeps.
            min_p=0.0,
            repeat_penalty=params.repetition_penalty,
            stop=list(params.stop) or None,
            seed=seed,
        )
        choice = answer["choices"][0]
        usage = answer.get("usage") or {}
        return Generation(
            text=str(choice["text"]),
            prompt_tokens=len(prompt),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            truncated=truncated,
        )

    def _scoring_llm(self) -> Any:
        if self._llm is None:
            raise BackendError("the llama.cpp backend has been closed")
        if self._scorer is None:
            try:
                self._scorer = self._open(self.context_length, logits_all=True)
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(f"cannot open a scoring context: {exc}") from exc
        return self._scorer

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        # Each option its own row, as `score` runs them.
        return score_each_option(self, questions)

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        if len(contexts) != len(continuations):
            raise ValueError("score needs one continuation per context")
        scores = []
        for context, continuation in zip(contexts, continuations, strict=True):
            if not continuation:
                scores.append(0.0)
                continue
            prompt_text = self._prompt_text(context)
            prompt = self._encode(prompt_text)
            full = self._encode(prompt_text + continuation)
            # Tokens may merge across the boundary; then score the continuation tokenised alone
            # (as the transformers backend does).
            if full[: len(prompt)] == prompt and len(full) > len(prompt):
                reply = full[len(prompt) :]
            else:
                reply = self._encode(continuation)
            if len(reply) >= self.context_length:
                raise BackendError(
                    f"a continuation of {len(reply)} tokens does not fit the model's context "
                    f"of {self.context_length} tokens"
                )
            prompt = prompt[-(self.context_length - len(reply)) :]
            scores.append(self._score_tokens(prompt, reply))
        return scores

    def _score_tokens(self, prompt: list[int], reply: list[int]) -> float:
        llm = self._scoring_llm()
        tokens = prompt + reply
        # Rows of positions before the first difference still hold their logits: read only
        # the rest (at least one token, so the context's state matches `tokens`).
        start = min(_common_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens), len(tokens) - 1)
        llm.n_tokens = start
        llm.eval(tokens[start:])
        # Row j holds the logits that predict token j + 1.
        rows = np.asarray(llm.scores[len(prompt) - 1 : len(tokens) - 1], dtype=np.float64)
        peak = rows.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
        picked = rows[np.arange(len(reply)), reply] - log_norm
        return float(picked.sum())

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        for llm in (self._scorer, self._llm):
            if llm is not None:
                llm.close()
        self._llm = self._scorer = None
