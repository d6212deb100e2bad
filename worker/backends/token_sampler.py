"""Each row's next token from its logits, for the backends' own decoding loops (the
transformers engine on its shared-prefix cache, llama.cpp's batched decoding): the repetition
penalty over the tokens the row holds, then greedy choice or sampling with temperature, top-k
and top-p, in the order transformers' `generate` applies them."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from worker.backends.base import GenerationParams

# Every this many steps, rows are checked for a stop sequence (decoding text costs time).
STOP_CHECK_STEPS = 4


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float  # 0: greedy
    top_p: float
    top_k: int  # 0: no cut
    repetition_penalty: float  # 1.0: none
    end_ids: tuple[int, ...]
    pad_id: int

    @classmethod
    def of(cls, params: GenerationParams, end_ids: Sequence[int], pad_id: int) -> "Sampling":
        """A call's sampling settings, with the model's end-of-turn and padding ids."""
        return cls(
            max_new_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            repetition_penalty=params.repetition_penalty,
            end_ids=tuple(end_ids),
            pad_id=pad_id,
        )


def _warp(scores: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    dummy = torch.empty(0, dtype=torch.long)
    if sampling.temperature != 1.0:
        scores = TemperatureLogitsWarper(sampling.temperature)(dummy, scores)
    if sampling.top_k:
        scores = TopKLogitsWarper(top_k=sampling.top_k)(dummy, scores)
    if sampling.top_p < 1.0:
        scores = TopPLogitsWarper(top_p=sampling.top_p)(dummy, scores)
    return scores


class TokenSampler:
    """Picks the next token of every row still writing; rows leave with `keep`."""

    def __init__(
        self,
        rows: Sequence[Sequence[int]],
        sampling: Sampling,
        vocab_size: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.sampling = sampling
        self._ends = torch.tensor(sampling.end_ids or [-1], device=device)
        self._seen: torch.Tensor | None = None
        if sampling.repetition_penalty != 1.0:
            # Which tokens each row holds: the penalty applies to the prompt and the new tokens.
            self._seen = torch.zeros((len(rows), vocab_size), dtype=torch.bool, device=device)
            for i, row in enumerate(rows):
                self._seen[i, torch.tensor(list(row), dtype=torch.long, device=device)] = True

    def pick(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The next token of each row (one row of `logits` each), and which of them end it."""
        scores = logits
        if self._seen is not None:
            penalty = self.sampling.repetition_penalty
            penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
            scores = torch.where(self._seen, penalised, scores)
        if self.sampling.temperature > 0:
            probabilities = torch.softmax(_warp(scores, self.sampling), dim=-1)
            tokens = torch.multinomial(probabilities, num_samples=1).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        if self._seen is not None:
            self._seen[torch.arange(len(tokens), device=tokens.device), tokens] = True
        return tokens, torch.isin(tokens, self._ends)

    def keep(self, rows: torch.Tensor) -> None:
        """Only these rows (indices into the current ones) write on."""
        if self._seen is not None:
            self._seen = self._seen[rows]
