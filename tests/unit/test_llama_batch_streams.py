"""Batched llama.cpp decoding's bookkeeping of key/value streams, on a fake model that keeps
each stream's cells as llama.cpp does (a stream's positions follow on): the shared prefix is
read once and copied, a stream ends a call holding the prompt and every new token but the
last, and the next call reads only what its streams lack, plus at least two tokens of each
row's own (`OWN_TOKENS`)."""

from types import SimpleNamespace
from typing import Any

import torch

from worker.backends.base import GenerationParams
from worker.backends.llama_batch import OWN_TOKENS, BatchedDecoder, DecodeProfile
from worker.backends.token_sampler import Sampling

VOCAB = 16
END = 0


def next_token(cells: list[int]) -> int:
    """A deterministic model: the next token from the last two, and the end of the turn at
    every 29th position (so rows of different lengths finish at different steps)."""
    if len(cells) % 29 == 0:
        return END
    return (3 * cells[-1] + cells[-2]) % 13 + 1


class FakeDecoder(BatchedDecoder):
    def __init__(self, max_rows: int = 4) -> None:
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
        self._vocab = VOCAB
        self._held = [[] for _ in range(max_rows)]
        self.profile = DecodeProfile()
        self.reads: list[int] = []  # tokens read by each call of the model

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


def greedy(max_new_tokens: int) -> Sampling:
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)
    return Sampling.of(params, end_ids=(END,), pad_id=END)


PREFIX = [9, 9, 4, 2, 7, 1]
ROWS = [PREFIX + tail for tail in ([3, 5], [8, 8, 2], [6, 1, 4, 4, 9], [2, 11])]


def written_alone(row: list[int], max_new_tokens: int) -> list[int]:
    """What the fake model writes for one row, step by step."""
    cells, out = list(row), []
    while len(out) < max_new_tokens:
        out.append(next_token(cells))
        if out[-1] == END:
            break
        cells.append(out[-1])
    return out


def test_rows_write_what_they_write_alone_and_streams_keep_them() -> None:
    decoder = FakeDecoder()
    produced, read = decoder.decode(ROWS, greedy(40))
    assert produced == [written_alone(row, 40) for row in ROWS]
    # Rows finish at different steps, by the end token or the budget.
    assert len({len(tokens) for tokens in produced}) > 1
    # The shared prefix once, then each row's own tail.
    assert read == len(PREFIX) + sum(len(row) - len(PREFIX) for row in ROWS)
    assert sorted(decoder.cells) == sorted(
        row + tokens[:-1] for row, tokens in zip(ROWS, produced, strict=True)
    )


def test_the_next_round_reads_only_its_new_turn() -> None:
    decoder = FakeDecoder()
    produced, _ = decoder.decode(ROWS, greedy(40))
    longer = [row + tokens + [12, 13] for row, tokens in zip(ROWS, produced, strict=True)]
    again, read = decoder.decode(longer[::-1], greedy(8))
    # Each stream held all but the last new token: that token and the new turn are read.
    assert read == 3 * len(longer)
    assert again == [written_alone(row, 8) for row in longer[::-1]]


def test_the_same_batch_again_rereads_two_tokens_a_row() -> None:
    decoder = FakeDecoder()
    first, _ = decoder.decode(ROWS, greedy(6))
    again, read = decoder.decode(ROWS, greedy(6))
    assert again == first
    # Every row's stream holds its prompt, yet it reads its last OWN_TOKENS itself: a single
    # new token takes another path through llama.cpp (other numbers than the first time).
    assert read == OWN_TOKENS * len(ROWS)
