"""Decoding and scoring on a shared prefix's key/value cache, for the transformers backend.

The conversations of a batch share their start (system prompt, few-shots: most of the prompt
in the recipe). That prefix is run once, in a batch of one; each row's own tail is then run on
the prefix's cache alone (no padding), and decoding runs on one batched cache laid out as
[prefix | gap | row's tail | new tokens], the gap masked out. Keys carry the rotary position
they were computed at and the causal mask follows cache slots, so the gap changes nothing:
every row attends to exactly its own tokens, at their own positions, as if alone.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import PreTrainedModel
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from worker.backends.token_sampler import STOP_CHECK_STEPS, Sampling, TokenSampler


class SlotLayer(DynamicLayer):
    """A cache layer with its room reserved up front: appending writes in place, where
    DynamicLayer concatenates (copies) the whole cache at every decoding step."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        super().__init__()
        self._keys, self._values, self.length = keys, values, length
        self.device = keys.device
        self.is_initialized = True
        self._show()

    def _show(self) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self._keys[:, :, : self.length], self._values[:, :, : self.length]
        self.keys, self.values = keys, values
        return keys, values

    # The signature is DynamicLayer's, which transformers leaves untyped.
    def update(  # type: ignore[no-untyped-def]
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self._keys.shape[-2]:
            raise RuntimeError(f"the cache holds {self._keys.shape[-2]} tokens, not {end}")
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        return self._show()

    def truncate(self, length: int) -> None:
        self.length = length
        self._show()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self._show()


def slot_cache(kv: Sequence[tuple[torch.Tensor, torch.Tensor]], rows: int, room: int) -> Cache:
    """A cache of `rows` copies of the batch-one `kv`, with room for `room` more tokens."""
    layers: list[SlotLayer] = []
    for keys, values in kv:
        _, heads, length, dim = keys.shape
        big_keys = keys.new_zeros((rows, heads, length + room, dim))
        big_values = values.new_zeros((rows, heads, length + room, values.shape[-1]))
        big_keys[:, :, :length] = keys
        big_values[:, :, :length] = values
        layers.append(SlotLayer(big_keys, big_values, length))
    return as_cache(layers)


def as_cache(layers: list[SlotLayer]) -> Cache:
    # Cache types its layers as a list of a union, which a list of one member type is not.
    return Cache(layers=cast(Any, layers))


def layers_of(cache: Cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values (batch x heads x length x dim)."""
    layers = [cast(DynamicLayer, layer) for layer in cache.layers]
    return [(cast(torch.Tensor, layer.keys), cast(torch.Tensor, layer.values)) for layer in layers]


def run_row(
    model: PreTrainedModel, ids: Sequence[int], cache: Cache | None, start: int, keep: int
) -> tuple[torch.Tensor, Cache]:
    """One unpadded row on top of `cache` (holding `start` tokens): the last `keep` positions'
    logits (1 x keep x vocab, float32) and the cache, now holding the row too."""
    device = model.device
    input_ids = torch.tensor([list(ids)], dtype=torch.long, device=device)
    positions = torch.arange(start, start + len(ids), device=device).unsqueeze(0)
    output = model(
        input_ids=input_ids,
        position_ids=positions,
        cache=cache if cache is not None else DynamicCache(),
        use_cache=True,
        logits_to_keep=keep,
    )
    return output.logits.float(), output.cache


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """The length of the token prefix every row starts with."""
    first = rows[0]
    length = min(len(row) for row in rows)
    for row in rows[1:]:
        length = next((i for i in range(length) if row[i] != first[i]), length)
    return length


def decode(
    model: PreTrainedModel,
    rows: Sequence[list[int]],
    sampling: Sampling,
    stopped: Callable[[list[int]], bool] | None = None,
) -> tuple[list[list[int]], int]:
    """New tokens for each row (up to and including its end-of-turn token, or
    `max_new_tokens`), and how many prompt tokens were run through the model."""
    # Each row keeps at least one token of its own: its last position's logits start decoding.
    shared = min(common_prefix(rows), min(len(r) for r in rows) - 1)
    tails = [row[shared:] for row in rows]
    width = max(len(t) for t in tails)
    alone: Cache | None = None
    if shared:
        _, cache = run_row(model, rows[0][:shared], None, 0, 1)
        alone = slot_cache(layers_of(cache), 1, width)
    batch: list[tuple[torch.Tensor, torch.Tensor]] = []
    first_logits = []
    for i, tail in enumerate(tails):
        logits, cache = run_row(model, tail, alone, shared, 1)
        first_logits.append(logits[0, -1])
        kv = layers_of(cache)
        if not batch:
            # [prefix | gap | tail | new tokens], the prefix copied from the first row.
            room = shared + width + sampling.max_new_tokens
            batch = [
                (
                    k.new_zeros((len(rows), k.shape[1], room, k.shape[3])),
                    v.new_zeros((len(rows), v.shape[1], room, v.shape[3])),
                )
                for k, v in kv
            ]
            for (big_k, big_v), (k, v) in zip(batch, kv, strict=True):
                big_k[:, :, :shared] = k[:, :, :shared]
                big_v[:, :, :shared] = v[:, :, :shared]
        # Right-aligned after the gap, so every row's next token goes to the same slot.
        start = shared + width - len(tail)
        for (big_k, big_v), (k, v) in zip(batch, kv, strict=True):
            big_k[i, :, start : shared + width] = k[0, :, shared:]
            big_v[i, :, start : shared + width] = v[0, :, shared:]
        if alone is not None:
            for layer in alone.layers:
                cast(SlotLayer, layer).truncate(shared)
    cache = as_cache([SlotLayer(k, v, shared + width) for k, v in batch])
    mask = torch.ones((len(rows), shared + width), dtype=torch.long, device=model.device)
    for i, tail in enumerate(tails):
        mask[i, shared : shared + width - len(tail)] = 0
    computed = shared + sum(len(t) for t in tails)
    produced = _loop(model, rows, cache, mask, torch.stack(first_logits), sampling, stopped)
    return produced, computed


def _loop(
    model: PreTrainedModel,
    rows: Sequence[list[int]],
    cache: Cache,
    mask: torch.Tensor,
    logits: torch.Tensor,
    sampling: Sampling,
    stopped: Callable[[list[int]], bool] | None,
) -> list[list[int]]:
    device = model.device
    count = len(rows)
    produced: list[list[int]] = [[] for _ in rows]
    active = list(range(count))  # rows still in the batch, in the cache's order
    next_position = torch.tensor([len(r) for r in rows], device=device)
    sampler = TokenSampler(rows, sampling, logits.shape[-1], device)
    for step in range(sampling.max_new_tokens):
        tokens, finished = sampler.pick(logits)
        for index, token in zip(active, tokens.tolist(), strict=True):
            produced[index].append(token)
        if stopped is not None and (step + 1) % STOP_CHECK_STEPS == 0:
            finished |= torch.tensor([stopped(produced[r]) for r in active], device=device)
        if step + 1 == sampling.max_new_tokens:
            break
        keep = (~finished).nonzero().squeeze(1)
        if len(keep) == 0:
            break
        if len(keep) < len(active):
            # Finished rows leave the batch: later steps cost only the rows still writing.
            cache.batch_select_indices(keep)
            mask, tokens, logits = mask[keep], tokens[keep], logits[keep]
            next_position = next_position[keep]
            sampler.keep(keep)
            active = [active[i] for i in keep.tolist()]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        output = model(
            input_ids=tokens.unsqueeze(1),
            attention_mask=mask,
            position_ids=(next_position + step).unsqueeze(1),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = output.logits[:, -1].float()
    return produced


@dataclass(frozen=True)
class ReadPrompt:
    """A question's prompt as run: its tokens, and each layer's keys and values over them."""

    ids: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class ScoredRows:
    scores: list[float]
    read: ReadPrompt  # for the next question, which may start the same way
    computed: int  # prompt tokens run for these rows


# A shorter common start is not worth copying a cache for.
MIN_REUSED_TOKENS = 16


def score_rows(
    model: PreTrainedModel,
    rows: Sequence[list[int]],
    scored_from: int,
    after: ReadPrompt | None = None,
) -> ScoredRows:
    """Summed log-probability of each row's tokens from `scored_from` on (the rows share at
    least their first `scored_from` tokens: one question, its options after it). The shared
    start is run once, on top of what it has in common with the question read before (`after`:
    the two orders of a pair, or the principles of an ensemble, share the conversation); the
    options' short tails run together on copies of its cache."""
    device = model.device
    shared = common_prefix(rows)
    if not 0 < scored_from <= shared:
        raise ValueError("score_rows needs rows that share the tokens before the scored part")
    start, cache = 0, None
    if after is not None:
        # At least one token is run, for the logits that predict the first scored one.
        reused = min(common_prefix([after.ids, rows[0]]), scored_from - 1)
        if reused >= MIN_REUSED_TOKENS:
            start = reused
            kept = [(keys[:, :, :start], values[:, :, :start]) for keys, values in after.kv]
            cache = slot_cache(kept, 1, shared - start)
    # Positions scored_from - 1 .. shared - 1 predict the scored tokens inside the shared part.
    logits, cache = run_row(model, rows[0][start:shared], cache, start, shared - scored_from + 1)
    read = ReadPrompt(list(rows[0][:shared]), layers_of(cache))
    shared_log_probs = torch.log_softmax(logits[0], dim=-1)
    in_shared = rows[0][scored_from:shared]
    base = 0.0
    if in_shared:
        targets = torch.tensor(in_shared, device=device).unsqueeze(-1)
        base = float(shared_log_probs[:-1].gather(-1, targets).double().sum())
    tails = [row[shared:] for row in rows]
    width = max(len(t) for t in tails)
    scores = [base] * len(rows)
    computed = shared - start + len(rows) * width
    if width == 0:
        return ScoredRows(scores, read, computed)
    # Padding goes on the right: causal attention keeps it from reaching the real tokens.
    ids = torch.full((len(rows), width), rows[0][0], dtype=torch.long, device=device)
    for i, tail in enumerate(tails):
        ids[i, : len(tail)] = torch.tensor(tail, dtype=torch.long, device=device)
    batch = slot_cache(read.kv, len(rows), width)
    positions = torch.arange(shared, shared + width, device=device).unsqueeze(0)
    output = model(
        input_ids=ids,
        position_ids=positions.expand(len(rows), -1),
        cache=batch,
        use_cache=True,
        logits_to_keep=width,
    )
    # The shared part's last position predicts each tail's first token; tail position j the next.
    tail_logits = torch.cat(
        [logits[:, -1:].expand(len(rows), -1, -1), output.logits[:, :-1].float()], dim=1
    )
    picked = torch.log_softmax(tail_logits, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    for i, tail in enumerate(tails):
        scores[i] += float(picked[i, : len(tail)].double().sum())
    return ScoredRows(scores, read, computed)
