"""Batched llama.cpp decoding with drafted tokens (prompt lookup), on a fake model that keeps
each stream's cells as llama.cpp does: a row writes exactly what it writes without drafts, the
drafts the picks reject leave the stream, and a stream ends holding the prompt and every new
token but the last."""

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from worker.backends.llama_batch import BatchedDecoder, DecodeProfile
from worker.backends.token_sampler import Sampling

VOCAB = 16
END = 0


def next_token(cells: list[int]) -> int:
    """A deterministic model: it repeats what came three tokens back (so lookup drafts find
    it), but not at every 7th position, and ends its turn at every 37th."""
    if len(cells) % 37 == 0:
        return END
    if len(cells) % 7 == 0:
        return cells[-1] % 13 + 1
    return cells[-3]


class FakeDecoder(BatchedDecoder):
    def __init__(self, draft_tokens: int, max_rows: int = 4) -> None:
        self.cells: list[list[int]] = [[] for _ in range(max_rows)]
        cells = self.cells

        def seq_rm(memory: Any, stream: int, start: int, end: int) -> None:
            assert end == -1
            del cells[stream][start:]

        def seq_cp(memory: Any, source: int, target: int, start: int, end: int) -> None:
            cells[target] = list(cells[source])

        self._ll = SimpleNamespace(llama_memory_seq_rm=seq_rm, llama_memory_seq_cp=seq_cp)
        self._context = SimpleNamespace(memory=None)
        self.row_tokens = 512
        self.max_rows = max_rows
        self.draft_tokens = draft_tokens
        self._vocab = VOCAB
        self._held = [[] for _ in range(max_rows)]
        self.profile = DecodeProfile()
        self.reads: list[int] = []  # tokens read by each call

    def _run(self, entries: Any) -> torch.Tensor:
        self.reads.append(len(entries))
        rows = []
        for entry in entries:
            stream = self.cells[entry.sequence]
            # llama.cpp's rule: a stream's positions follow on; a stale cell would break it.
            assert entry.position == len(stream), (entry, len(stream))
            stream.append(entry.token)
            if entry.wants_logits:
                logits = torch.zeros(VOCAB)
                logits[next_token(stream)] = 30.0
                rows.append(logits)
        return torch.stack(rows) if rows else torch.empty((0, VOCAB))


def sampling(max_new_tokens: int, temperature: float = 0.0, penalty: float = 1.0) -> Sampling:
    return Sampling(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=0.9 if temperature else 1.0,
        top_k=0,
        repetition_penalty=penalty,
        end_ids=(END,),
        pad_id=END,
    )


PREFIX = [9, 9, 4, 2, 7, 1]
ROWS = [PREFIX + tail for tail in ([3, 5], [8, 8, 2], [6, 1, 4, 4, 9], [2, 11])]


def written(rows: list[list[int]], draft_tokens: int, how: Sampling) -> tuple[Any, FakeDecoder]:
    decoder = FakeDecoder(draft_tokens)
    produced, _ = decoder.decode(rows, how)
    return produced, decoder


@pytest.mark.parametrize(
    "how", [sampling(40), sampling(40, temperature=0.7, penalty=1.1)], ids=["greedy", "sampled"]
)
def test_drafts_change_the_steps_not_the_text(how: Sampling) -> None:
    plain, undrafted = written(ROWS, 0, how)
    drafted, decoder = written(ROWS, 4, how)
    assert drafted == plain
    # Drafts were taken and refused, and fewer steps wrote the same tokens.
    assert decoder.profile.accepted > 0
    assert decoder.profile.drafted > decoder.profile.accepted
    assert decoder.profile.steps < undrafted.profile.steps
    assert undrafted.profile.drafted == 0
    for tokens in drafted:
        assert len(tokens) <= how.max_new_tokens
        # Ended by the model or by the budget, never cut short by a draft.
        assert tokens[-1] == END or len(tokens) == how.max_new_tokens
        assert END not in tokens[:-1]


def test_streams_hold_the_prompt_and_the_new_tokens_but_the_last() -> None:
    produced, decoder = written(ROWS, 4, sampling(40))
    held = sorted(decoder.cells)
    assert held == sorted(row + tokens[:-1] for row, tokens in zip(ROWS, produced, strict=True))
    # The next round of the same conversations reads only what is new.
    longer = [row + tokens + [12, 13] for row, tokens in zip(ROWS, produced, strict=True)]
    decoder.reads.clear()
    again, _ = decoder.decode(longer, sampling(8))
    assert decoder.reads[0] == sum(len([tokens[-1], 12, 13]) for tokens in produced)
    assert again == written(longer, 0, sampling(8))[0]


def test_a_draft_stops_at_the_budget() -> None:
    produced, decoder = written(ROWS, 4, sampling(5))
    assert produced == written(ROWS, 0, sampling(5))[0]
    assert [len(tokens) for tokens in produced] == [5] * len(ROWS)
    assert decoder.profile.accepted > 0
