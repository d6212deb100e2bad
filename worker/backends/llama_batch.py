"""Several conversations decoded together on llama.cpp (its low-level API): one `llama_decode`
per step for every row still writing, where llama-cpp-python's `Llama` runs one conversation at
a time.

The rows of a batch share their start (system prompt and few-shots, most of the prompt in the
recipe). Each row has a key/value stream of its own, which keeps what it read and wrote after
the batch: a row of the next round (the same conversation, one turn longer) is given the stream
that holds its conversation and reads only the new turn. The shared prefix is read once, by the
row whose stream holds most of it, and copied to the streams of rows that lack it. Each row's
own tail is then read in shared `llama_decode` calls, and decoding picks every row's next token
with the same sampler the transformers engine uses (`TokenSampler`), so both backends sample
alike.

The streams are separate (`kv_unified` off): in one unified buffer every row's attention runs
over all rows' cells, masked, and on the recipe's 1,000-token prompts that cost more than
batching saved (measured: benchmarks/README.md). Flash attention stays off,
as in `Llama`, so a row decodes what it would alone, up to float noise.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from worker.backends.prefix_cache import common_prefix
from worker.backends.token_sampler import STOP_CHECK_STEPS, Sampling, TokenSampler

# Tokens per `llama_decode` call while reading prompts.
READ_TOKENS = 512
# Tokens each row reads itself, at least, when a call starts. llama.cpp computes a stream's one
# new token on another path than two or more (logits up to about 1 apart on SmolLM2-135M,
# measured; two or more agree with a whole prompt read at once to the bit), so a row whose
# stream holds all but its last token would start from other numbers than the same row read
# with its prompt, and greedy decoding of the same batch twice could part at a near-tie.
OWN_TOKENS = 2


@dataclass(frozen=True)
class Entry:
    token: int
    position: int
    sequence: int
    wants_logits: bool


@dataclass
class DecodeProfile:
    """Where batched decoding's time went, summed over calls (the benchmark reports it)."""

    read_tokens: int = 0  # prompt tokens read: shared prefixes and rows' new turns
    read_seconds: float = 0.0
    steps: int = 0  # decoding steps, one `llama_decode` for every row still writing
    step_seconds: float = 0.0  # those calls and picking the tokens


def kv_bytes_per_token(model: Any) -> int:
    """Bytes of f16 keys and values one token takes in the cache, over all layers."""
    from llama_cpp import llama_cpp as ll

    handle = model.model
    head_dim = ll.llama_model_n_embd(handle) // max(ll.llama_model_n_head(handle), 1)
    return 2 * 2 * ll.llama_model_n_layer(handle) * ll.llama_model_n_head_kv(handle) * head_dim


def rows_within(budget_bytes: int, row_tokens: int, per_token: int, most: int) -> int:
    """How many rows of `row_tokens` cells each fit in the memory budget (at most `most`)."""
    return max(0, min(most, budget_bytes // max(row_tokens * per_token, 1)))


class BatchedDecoder:
    """Decoding of up to `max_rows` rows at once, each in a stream of `row_tokens` cells."""

    def __init__(self, llm: Any, *, row_tokens: int, max_rows: int) -> None:
        """`llm`: the backend's `Llama`, whose model and context settings (threads, flash
        attention off, rope) this context shares, so it computes what `Llama` does."""
        from llama_cpp import _internals
        from llama_cpp import llama_cpp as ll

        self._ll = ll
        params = ll.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = row_tokens * max_rows
        params.n_batch = params.n_ubatch = READ_TOKENS
        params.n_seq_max = max_rows
        params.kv_unified = False
        model = llm._model
        self._context = _internals.LlamaContext(model=model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(
            n_tokens=READ_TOKENS, embd=0, n_seq_max=1, verbose=False
        )
        self.row_tokens = int(self._context.n_ctx()) // max_rows
        self.max_rows = max_rows
        self._vocab = int(model.n_vocab())
        # The tokens each row's stream holds from earlier batches, for the next to continue.
        self._held: list[list[int]] = [[] for _ in range(max_rows)]
        self.profile = DecodeProfile()

    def fits(self, row: Sequence[int], max_new_tokens: int) -> bool:
        """Whether a row and its new tokens fit a row's stream."""
        return len(row) + max_new_tokens <= self.row_tokens

    def decode(
        self,
        rows: Sequence[list[int]],
        sampling: Sampling,
        stopped: Callable[[list[int]], bool] | None = None,
    ) -> tuple[list[list[int]], int]:
        """New tokens for each row (up to and including its end-of-turn token, or
        `max_new_tokens`), and how many prompt tokens were read."""
        memory = self._context.memory
        started = time.perf_counter()
        # Each row reads at least OWN_TOKENS of its own: its last position's logits start it.
        shared = max(0, min(common_prefix(rows), min(len(r) for r in rows) - OWN_TOKENS))
        streams, held = self._assign(rows)
        # The row whose stream holds most of the shared prefix completes it and lends it out.
        lender = max(range(len(rows)), key=lambda r: held[r])
        source = streams[lender]
        read = 0
        if held[lender] < shared:
            self._ll.llama_memory_seq_rm(memory, source, held[lender], -1)
            start = held[lender]
            self._run(
                [
                    Entry(t, start + i, source, False)
                    for i, t in enumerate(rows[lender][start:shared])
                ]
            )
            read += shared - start
            held[lender] = shared
        for row, stream in enumerate(streams):
            if held[row] < shared:
                # Between streams llama.cpp copies whole streams; the cut below drops the rest.
                self._ll.llama_memory_seq_cp(memory, source, stream, 0, -1)
                held[row] = shared
            self._ll.llama_memory_seq_rm(memory, stream, held[row], -1)
        tails = [
            Entry(token, held[row] + i, streams[row], held[row] + i == len(rows[row]) - 1)
            for row in range(len(rows))
            for i, token in enumerate(rows[row][held[row] :])
        ]
        first = self._run(tails)
        read += len(tails)
        decoding = time.perf_counter()
        produced = self._loop(rows, streams, first, sampling, stopped)
        self.profile.read_tokens += read
        self.profile.read_seconds += decoding - started
        self.profile.step_seconds += time.perf_counter() - decoding
        for row, stream in enumerate(streams):
            # What the stream now holds: the prompt and every new token but the last, which
            # was picked and never read.
            self._held[stream] = list(rows[row]) + produced[row][:-1]
        return produced, read

    def _assign(self, rows: Sequence[list[int]]) -> tuple[list[int], list[int]]:
        """A stream for each row, the one whose tokens it continues furthest (a row of a
        later round finds its own conversation, a new row the shared prefix), and how many
        of its tokens that stream holds already."""
        reach = sorted(
            (
                (max(0, min(common_prefix([held, row]), len(row) - OWN_TOKENS)), i, s)
                for i, row in enumerate(rows)
                for s, held in enumerate(self._held)
            ),
            reverse=True,
        )
        streams: dict[int, int] = {}
        reused: dict[int, int] = {}
        for length, row, stream in reach:
            if row not in streams and stream not in streams.values():
                streams[row], reused[row] = stream, length
        return [streams[i] for i in range(len(rows))], [reused[i] for i in range(len(rows))]

    def _loop(
        self,
        rows: Sequence[list[int]],
        streams: Sequence[int],
        logits: torch.Tensor,
        sampling: Sampling,
        stopped: Callable[[list[int]], bool] | None,
    ) -> list[list[int]]:
        produced: list[list[int]] = [[] for _ in rows]
        active = list(range(len(rows)))  # rows still writing, in the logits' order
        sampler = TokenSampler(rows, sampling, self._vocab)
        for step in range(sampling.max_new_tokens):
            self.profile.steps += 1
            tokens, finished = sampler.pick(logits)
            for row, token in zip(active, tokens.tolist(), strict=True):
                produced[row].append(token)
            if stopped is not None and (step + 1) % STOP_CHECK_STEPS == 0:
                finished |= torch.tensor([stopped(produced[r]) for r in active])
            if step + 1 == sampling.max_new_tokens:
                break
            keep = (~finished).nonzero().squeeze(1)
            if len(keep) == 0:
                break
            if len(keep) < len(active):
                # A finished row keeps its cells: its stream is its own, and the next round
                # of its conversation continues from them.
                sampler.keep(keep)
                tokens = tokens[keep]
                active = [active[i] for i in keep.tolist()]
            logits = self._run(
                [
                    Entry(token, len(rows[row]) + step, streams[row], True)
                    for row, token in zip(active, tokens.tolist(), strict=True)
                ]
            )
        return produced

    def _run(self, entries: Sequence[Entry]) -> torch.Tensor:
        """Reads the entries in calls of at most READ_TOKENS; the logits of those that want
        them, in order (copied at once: the next call overwrites them)."""
        batch = self._batch.batch
        rows: list[np.ndarray] = []
        for start in range(0, len(entries), READ_TOKENS):
            part = entries[start : start + READ_TOKENS]
            for i, entry in enumerate(part):
                batch.token[i] = entry.token
                batch.pos[i] = entry.position
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = entry.sequence
                batch.logits[i] = entry.wants_logits
            batch.n_tokens = len(part)
            self._context.decode(self._batch)
            for i, entry in enumerate(part):
                if entry.wants_logits:
                    pointer = self._ll.llama_get_logits_ith(self._context.ctx, i)
                    rows.append(np.ctypeslib.as_array(pointer, shape=(self._vocab,)).copy())
        if not rows:
            return torch.empty((0, self._vocab))
        return torch.from_numpy(np.stack(rows))

    def close(self) -> None:
        self._batch.close()
        self._context.close()
