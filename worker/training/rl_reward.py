"""The preference model as an RL reward: a callable for TRL's `reward_funcs`.

TRL would take the model itself (it then scores `prompt + completion` through the reward
tokenizer's chat template); a callable does the same scoring and also keeps the last batch
it scored, which the sample table and the Goodhart watch read (worker/training/rl_callbacks.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Sample:
    prompt: str  # the last user turn
    completion: str
    reward: float
    prompt_set_id: int | None


def as_messages(value: str | Messages, role: str) -> Messages:
    return [{"role": role, "content": value}] if isinstance(value, str) else list(value)


def conversation_text(
    tokenizer: PreTrainedTokenizerBase, prompt: str | Messages, completion: str | Messages
) -> str:
    """The conversation as the reward trainer saw its rows: the chat template over prompt and
    reply, with no generation prompt after it."""
    messages = as_messages(prompt, "user") + as_messages(completion, "assistant")
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert isinstance(text, str)
    return text


@torch.inference_mode()
def score_texts(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], batch: int
) -> list[float]:
    """The model's scalar score of each text, `batch` texts per forward pass."""
    scores: list[float] = []
    for start in range(0, len(texts), batch):
        inputs = tokenizer(
            list(texts[start : start + batch]),
            return_tensors="pt",
            padding=True,
            padding_side="right",
            # The chat template already holds the special tokens.
            add_special_tokens=False,
        ).to(model.device)
        scores.extend(model(**inputs).logits[:, 0].float().tolist())
    return scores


class PreferenceReward:
    """`reward_funcs` entry: the preference model's score of each prompt and completion."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch: int = 16
    ) -> None:
        self.model, self.tokenizer, self.batch = model.eval(), tokenizer, batch
        # TRL names the reward's metrics after this: rewards/preference/mean and /std.
        self.__name__ = "preference"
        self.latest: list[Sample] = []

    def __call__(
        self,
        prompts: Sequence[str | Messages],
        completions: Sequence[str | Messages],
        prompt_set_id: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        texts = [
            conversation_text(self.tokenizer, prompt, completion)
            for prompt, completion in zip(prompts, completions, strict=True)
        ]
        rewards = score_texts(self.model, self.tokenizer, texts, self.batch)
        set_ids = list(prompt_set_id) if prompt_set_id is not None else [None] * len(texts)
        self.latest = [
            Sample(
                prompt=_last_text(prompt),
                completion=_last_text(completion),
                reward=reward,
                prompt_set_id=set_id,
            )
            for prompt, completion, reward, set_id in zip(
                prompts, completions, rewards, set_ids, strict=True
            )
        ]
        return rewards


def _last_text(value: str | Messages) -> str:
    return value if isinstance(value, str) else (value[-1]["content"] if value else "")
