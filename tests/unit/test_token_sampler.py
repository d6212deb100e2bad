"""The samplers' repetition penalty follows each row's own tokens, also when only some rows
pick (speculative decoding verifies rows' drafts level by level)."""

import torch

from worker.backends.token_sampler import Sampling, TokenSampler


def sampling(**changes: float) -> Sampling:
    values = {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "repetition_penalty": 1.0}
    values.update(changes)
    return Sampling(
        max_new_tokens=8,
        temperature=values["temperature"],
        top_p=values["top_p"],
        top_k=int(values["top_k"]),
        repetition_penalty=values["repetition_penalty"],
        end_ids=(0,),
        pad_id=0,
    )


def test_greedy_picks_the_top_token_and_flags_the_end() -> None:
    sampler = TokenSampler([[1], [2]], sampling(), vocab_size=4)
    tokens, ends = sampler.pick(torch.tensor([[0.0, 1.0, 3.0, 2.0], [5.0, 1.0, 0.0, 0.0]]))
    assert tokens.tolist() == [2, 0]
    assert ends.tolist() == [False, True]


def test_a_subset_of_rows_is_penalised_for_its_own_tokens() -> None:
    # Penalty 2: a held token's logit is halved. Row 1 holds token 3 from its prompt.
    sampler = TokenSampler([[1], [3], [1]], sampling(repetition_penalty=2.0), vocab_size=4)
    first, _ = sampler.pick(torch.tensor([[0.0, 0.0, 1.9, 2.0]]).repeat(3, 1))
    assert first.tolist() == [3, 2, 3]
    # Only row 1 picks: it holds 2 and 3 (0.95, 1.0), so 1 (1.5) wins; row 0's tokens would
    # have given 2 (1.9).
    logits = torch.tensor([[0.0, 1.5, 1.9, 2.0]])
    alone, _ = sampler.pick(logits, torch.tensor([1]))
    assert alone.tolist() == [1]
    # Row 1 now holds 1 as well, the others do not: 3 (1.0) for it, 2 (1.9) for them.
    everyone, _ = sampler.pick(logits.repeat(3, 1))
    assert everyone.tolist() == [2, 3, 2]
