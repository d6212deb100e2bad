"""How many rows batched llama.cpp decoding runs at once: as many as the memory budget holds."""

from worker.backends.llama_batch import rows_within

SMOLLM2_135M = 2 * 2 * 30 * 3 * 64  # bytes per token: f16 keys and values, 30 layers, 3 KV heads
LLAMA_7B = 2 * 2 * 32 * 32 * 128


def test_a_small_model_gets_every_row_and_a_large_one_none() -> None:
    assert rows_within(1 << 30, 2048, SMOLLM2_135M, 8) == 8
    # 1 GiB holds one 2,048-token row of a 7B model: no batching, not gigabytes of cache.
    assert rows_within(1 << 30, 2048, LLAMA_7B, 8) == 1
    assert rows_within(1 << 30, 4096, LLAMA_7B, 8) == 0


def test_the_budget_sets_the_count_between() -> None:
    assert rows_within(3 * 2048 * SMOLLM2_135M, 2048, SMOLLM2_135M, 8) == 3
