"""A backend that runs a causal language model in this process with transformers."""

import gc
import inspect
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import torch
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel

from worker.backends.base import (
    BackendError,
    Conversation,
    Generation,
    GenerationParams,
    OptionsQuestion,
)
from worker.backends.chat_template import chat_prompt_text, encode_templated
from worker.backends.finishing import end_of_turn_ids, finish
from worker.backends.local_models import load_tokenizer, resolve_model_folder
from worker.backends.prefix_cache import ReadPrompt, Sampling, common_prefix, decode, score_rows


class TransformersBackend:
    """Batched generation and scoring with a local model folder, GGUF file or cached hub id."""

    name = "transformers"

    def __init__(
        self,
        model_path: str,
        *,
        cache_dir: Path,
        device: str | None = None,
        batch_size: int = 16,
        max_context: int | None = None,
        prefix_cache: bool = True,
    ) -> None:
        folder = resolve_model_folder(model_path, cache_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # bf16 on a CPU is several times slower than fp32 for a model this small.
        if self.device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        try:
            self.tokenizer = load_tokenizer(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
            # transformers' wrapper around Module.to hides its signature from mypy.
            model.to(self.device)  # type: ignore[arg-type]
        # Broad on purpose: a bad folder surfaces as OSError, ValueError, KeyError and more, a
        # missing GPU or a full one as RuntimeError; each should fail the job with its message.
        except Exception as exc:
            raise BackendError(f"cannot load model {model_path}: {exc}") from exc
        if self.tokenizer.pad_token_id is None:
            raise BackendError(f"model {model_path} has neither a pad nor an end-of-text token")
        self._model: PreTrainedModel | None = model.eval()
        self.batch_size = batch_size
        # 2048 for the rare config that does not say: a safe size for small chat models.
        configured: int = getattr(model.config, "max_position_embeddings", None) or 2048
        self.context_length: int = max_context or configured
        # Generation pads on the left so every row's new tokens start at the same column.
        self.tokenizer.padding_side = "left"
        self._pad_id: int = self.tokenizer.pad_token_id
        self._end_ids = end_of_turn_ids(self.tokenizer, [model.generation_config.eos_token_id])
        # Asking for the last few positions' logits only saves a (batch x length x vocab) tensor.
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        # Off: every row runs its whole prompt through `model.generate` (the old way, kept as
        # the baseline the benchmark compares against).
        self.prefix_cache = prefix_cache
        # Prompt positions run through the model by generate and score_options, padding included.
        self.prompt_tokens_computed = 0

    @property
    def model(self) -> PreTrainedModel:
        if self._model is None:
            raise BackendError("the transformers backend has been closed")
        return self._model

    def _prompt_text(self, conversation: Conversation) -> str:
        return chat_prompt_text(self.tokenizer, conversation)

    def _encode(self, text: str) -> list[int]:
        return encode_templated(self.tokenizer, text)

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        # Longest first, so each batch holds rows of similar length and little padding.
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _left_padded(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return ids.to(self.device), mask.to(self.device)

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
        if params.seed is not None:
            torch.manual_seed(params.seed)
        results: dict[int, Generation] = {}
        for batch in self._batches([len(p) for p in prompts]):
            rows = [prompts[i] for i in batch]
            with torch.inference_mode():
                produced = (
                    self._decode_on_prefix(rows, params)
                    if self.prefix_cache
                    else self._generate_padded(rows, params)
                )
            for tokens, index in zip(produced, batch, strict=True):
                finished = self._finish(tokens, params.stop, len(prompts[index]))
                results[index] = replace(finished, truncated=truncated[index])
        return [results[i] for i in range(len(prompts))]

    def _decode_on_prefix(self, rows: list[list[int]], params: GenerationParams) -> list[list[int]]:
        sampling = Sampling.of(params, self._end_ids, self._pad_id)
        stop = [s for s in params.stop if s]

        def stopped(tokens: list[int]) -> bool:
            text = self._decode(tokens)
            return any(s in text for s in stop)

        produced, computed = decode(self.model, rows, sampling, stopped if stop else None)
        self.prompt_tokens_computed += computed
        return produced

    def _generate_padded(self, rows: list[list[int]], params: GenerationParams) -> list[list[int]]:
        ids, mask = self._left_padded(rows)
        self.prompt_tokens_computed += ids.numel()
        sampling = params.temperature > 0
        # Every causal LM class mixes in generation; PreTrainedModel does not declare it.
        output = cast(GenerationMixin, self.model).generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=params.max_new_tokens,
            do_sample=sampling,
            # Sampling settings only when sampling: greedy decoding warns about them.
            **(
                {"temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k}
                if sampling
                else {}
            ),
            repetition_penalty=params.repetition_penalty,
            pad_token_id=self._pad_id,
            eos_token_id=self._end_ids or None,
        )
        return [output[row, ids.shape[1] :].tolist() for row in range(len(rows))]

    def _finish(self, tokens: list[int], stop: Sequence[str], prompt_tokens: int) -> Generation:
        return finish(
            tokens,
            end_ids=self._end_ids,
            stop=stop,
            prompt_tokens=prompt_tokens,
            detokenize=self._decode,
        )

    def _decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def _score_row(self, context: Conversation, continuation: str) -> tuple[list[int], list[int]]:
        """The prompt's and the continuation's tokens, as `score` reads them."""
        prompt_text = self._prompt_text(context)
        prompt = self._encode(prompt_text)
        full = self._encode(prompt_text + continuation)
        # Tokens may merge across the boundary; then score the continuation tokenised alone.
        if full[: len(prompt)] == prompt and len(full) > len(prompt):
            return prompt, full[len(prompt) :]
        return prompt, self._encode(continuation)

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        if len(contexts) != len(continuations):
            raise ValueError("score needs one continuation per context")
        rows: list[tuple[list[int], list[int]]] = []
        for context, continuation in zip(contexts, continuations, strict=True):
            prompt, reply = self._score_row(context, continuation)
            if len(reply) >= self.context_length:
                raise BackendError(
                    f"a continuation of {len(reply)} tokens does not fit the model's context "
                    f"of {self.context_length} tokens"
                )
            rows.append((prompt[-(self.context_length - len(reply)) :], reply))
        scores: dict[int, float] = {}
        for batch in self._batches([len(p) + len(r) for p, r in rows]):
            for index, value in zip(
                batch, self._score_batch([rows[i] for i in batch]), strict=True
            ):
                scores[index] = value
        return [scores[i] for i in range(len(rows))]

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        """`score` of each option, the question read once: its prompt (and the start the
        options share, "The answer is: (") is run once, and only the options' tails on its cache."""
        results: list[list[float]] = []
        read: ReadPrompt | None = None
        for context, options in questions:
            rows = [self._score_row(context, option) for option in options]
            prompt = rows[0][0]
            full = [p + r for p, r in rows]
            # Past the context, or empty (probability one), the plain way handles it.
            if (
                not options
                or any(not r for _, r in rows)
                or max(len(f) for f in full) > self.context_length
                or common_prefix(full) < len(prompt)
            ):
                results.append(self.score([context] * len(options), list(options)))
                continue
            with torch.inference_mode():
                scored = score_rows(self.model, full, len(prompt), after=read)
            results.append(scored.scores)
            read = scored.read
            self.prompt_tokens_computed += scored.computed
        return results

    def _score_batch(self, rows: Sequence[tuple[list[int], list[int]]]) -> list[float]:
        # Left padding puts every continuation at the end of its row, so only the last
        # (longest reply + 1) positions' logits are needed.
        ids, mask = self._left_padded([prompt + reply for prompt, reply in rows])
        # Positions count from each row's first real token, as if it had not been padded.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        keep = max(len(reply) for _, reply in rows) + 1
        extra = {"logits_to_keep": keep} if self._keeps_logits else {}
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **extra)
            logits = logits.logits[:, -keep:, :].float()
        # logits[:, j] predicts the token after it: the last `keep - 1` of them predict the tail.
        log_probs = torch.log_softmax(logits[:, :-1, :], dim=-1)
        # Sliced from the width, not with -(keep - 1), which selects every column for empty replies.
        targets = ids[:, ids.shape[1] - (keep - 1) :]
        picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return [
            float(picked[i, picked.shape[1] - len(reply) :].double().sum())
            for i, (_, reply) in enumerate(rows)
        ]

    def close(self) -> None:
        self._model = None
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
