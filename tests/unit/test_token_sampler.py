"""The decoding loops' sampler: greedy picks, end tokens, and a repetition penalty that follows
each row's own tokens."""

import torch

from worker.backends.base import GenerationParams
from worker.backends.token_sampler import Sampling, TokenSampler


def sampling(repetition_penalty: float = 1.0) -> Sampling:
    greedy = GenerationParams(
        max_new_tokens=8, temperature=0.0, repetition_penalty=repetition_penalty
    )
    return Sampling.of(greedy, end_ids=(0,), pad_id=0)


def test_greedy_picks_the_top_token_and_flags_the_end() -> None:
    sampler = TokenSampler([[1], [2]], sampling(), vocab_size=4)
    tokens, ends = sampler.pick(torch.tensor([[0.0, 1.0, 3.0, 2.0], [5.0, 1.0, 0.0, 0.0]]))
    assert tokens.tolist() == [2, 0]
    assert ends.tolist() == [False, True]


def test_each_row_is_penalised_for_its_own_tokens() -> None:
    # Penalty 2: a held token's logit is halved. Row 1 holds token 3 from its prompt.
    sampler = TokenSampler([[1], [3]], sampling(repetition_penalty=2.0), vocab_size=4)
    logits = torch.tensor([[0.0, 1.5, 1.9, 2.0]]).repeat(2, 1)
    first, _ = sampler.pick(logits)
    assert first.tolist() == [3, 2]
    # Now row 0 holds 1 and 3 (0.75, 1.0 left): 2 (1.9) wins; row 1 holds 2 and 3 (0.95, 1.0):
    # 1 (1.5) wins.
    second, _ = sampler.pick(logits)
    assert second.tolist() == [2, 1]


def test_rows_that_leave_take_their_tokens_with_them() -> None:
    sampler = TokenSampler([[1], [3]], sampling(repetition_penalty=2.0), vocab_size=4)
    logits = torch.tensor([[0.0, 1.5, 1.9, 2.0]])
    assert sampler.pick(logits.repeat(2, 1))[0].tolist() == [3, 2]
    sampler.keep(torch.tensor([1]))
    # Row 1 is left, holding 2 and 3: 1 wins (row 0's tokens would have given 2).
    assert sampler.pick(logits)[0].tolist() == [1]
