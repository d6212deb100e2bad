"""The OpenAI-compatible backend against a real server: llama-cpp-python's, on the bundled GGUF.

Generation goes through `/v1/chat/completions`; scoring through `/v1/completions` with `echo`
and `logprobs`. llama-cpp-python 0.3.36 echoes the prompt's log-probabilities one position
late unless the prompt starts with the model's BOS token (SmolLM2's chat template does): the
probe must tell the two apart, and the scores, corrected where needed, must equal llama.cpp's
own (the same GGUF in this process, worker/backends/llama_cpp_backend.py). Scoring by next-token
log-probabilities (the way llama.cpp's own server and Ollama must be used) is checked against
the same numbers.
"""

import threading
from collections.abc import Iterator

import pytest

from app.constitutions import default_document
from tests.conftest import missing
from tests.llama_server import LlamaServer, llama_server_missing, running_llama_server
from worker.backends.base import GenerationParams
from worker.backends.llama_cpp_backend import LlamaCppBackend
from worker.backends.openai_backend import OpenAIBackend
from worker.backends.server_probe import ScoringMode, ServerProbe
from worker.backends.server_scoring import ServerScorer, render_plain
from worker.pipeline.ai_feedback import LabelConfig, PairInput, label_pairs

pytestmark = [pytest.mark.slow, pytest.mark.llama]

QUESTION = [
    {"role": "system", "content": "You are a careful judge."},
    {
        "role": "user",
        "content": "Which reply is more helpful?\n(A) Paris is the capital of France.\n"
        "(B) I do not know.\nAnswer with (A) or (B).",
    },
]
OPTIONS = ["The answer is: (A)", "The answer is: (B)"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    reason = llama_server_missing()
    if reason:
        missing(reason)
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with running_llama_server(log) as running:
        yield running


@pytest.fixture(scope="module")
def backend(server: LlamaServer) -> Iterator[OpenAIBackend]:
    probes: list[ServerProbe] = []
    client = OpenAIBackend(server.base_url, server.model, on_probe=probes.append, timeout=300)
    client.probe_scoring()
    assert len(probes) == 1
    yield client
    client.close()


def test_generation_through_the_server(backend: OpenAIBackend) -> None:
    conversation = [{"role": "user", "content": "Name three colours."}]
    params = GenerationParams(max_new_tokens=24, temperature=0.0)
    first, again = backend.generate([conversation, conversation], params)
    # Not always the same text twice: the second reuses the first's cached prompt, and
    # llama.cpp's sums in another batch shape can flip a close greedy choice.
    assert first.text.strip() and again.text.strip()
    assert first.text.split()[:2] == again.text.split()[:2]
    assert 0 < first.completion_tokens <= 24 and first.prompt_tokens > 5
    assert first.finish_reason in {"stop", "length"}
    [cut] = backend.generate([conversation], GenerationParams(max_new_tokens=4, temperature=0))
    assert cut.finish_reason == "length" and cut.completion_tokens == 4


@pytest.fixture(scope="module")
def plain(server: LlamaServer) -> Iterator[OpenAIBackend]:
    """The same server scored without a chat template: "Role: content" text, no BOS first."""
    client = OpenAIBackend(server.base_url, server.model, tokenizer="", timeout=300)
    yield client
    client.close()


def test_the_probe_finds_the_shift_where_the_server_makes_it(
    backend: OpenAIBackend, plain: OpenAIBackend, server: LlamaServer
) -> None:
    # The model id is the GGUF's path: its tokenizer gives the chat template, whose first
    # token is SmolLM2's BOS (<|im_start|>); the server drops it and comes out aligned.
    probe = backend.probe
    assert probe is not None and probe.template == "tokenizer"
    assert server.model == str(server.gguf)
    assert probe.mode is ScoringMode.ECHO, probe.detail
    assert probe.aligned is not None and probe.aligned > -1, probe.detail
    # Plain text has no BOS to drop: every entry is one position late. Measured on SmolLM2:
    # about -8 at the digits' own entries, -0.1 one entry earlier.
    plain.probe_scoring()
    shifted = plain.probe
    assert shifted is not None and shifted.template == "plain"
    assert shifted.mode is ScoringMode.ECHO_SHIFTED, shifted.detail
    assert shifted.aligned is not None and shifted.aligned < -4, shifted.detail
    assert shifted.shifted is not None and shifted.shifted > -1, shifted.detail


@pytest.fixture(scope="module")
def in_process(server: LlamaServer) -> Iterator[LlamaCppBackend]:
    local = LlamaCppBackend(str(server.gguf), context_length=2048)
    yield local
    local.close()


def test_scores_equal_llama_cpp_in_process(
    backend: OpenAIBackend, plain: OpenAIBackend, in_process: LlamaCppBackend
) -> None:
    contexts = [QUESTION, QUESTION, QUESTION]
    continuations = [*OPTIONS, "Paris is the capital of France."]
    local = in_process.score(contexts, continuations)
    assert backend.score(contexts, continuations) == pytest.approx(local, abs=0.05)
    # Plain text through the shifted echo, corrected, against llama.cpp on the same tokens.
    prompt = render_plain(QUESTION)
    expected = []
    for continuation in continuations:
        tokens = in_process._encode(prompt + continuation)
        # " The" straddles "Assistant: " and the reply: it counts as the reply's, as the
        # backend counts it.
        head = in_process._encode(prompt)
        shared = next(i for i, (a, b) in enumerate(zip(tokens, head, strict=False)) if a != b)
        expected.append(in_process._score_tokens(tokens[:shared], tokens[shared:]))
    scorer, _ = plain.probe_scoring()
    for continuation, exact in zip(continuations, expected, strict=True):
        bounded = scorer.bounded
        [corrected] = plain.score([QUESTION], [continuation])
        if scorer.bounded == bounded:
            assert corrected == pytest.approx(exact, abs=0.05), continuation
        else:
            # A token outside the previous entry's top 20 is scored by that list's 20th value.
            assert corrected >= exact - 0.05, continuation
    assert scorer.bounded < len(continuations), "most tokens are read exactly"
    # Summing the server's own entries, as the backend did before the probe, is far off.
    naive = ServerScorer(scorer._post, scorer.url, scorer.model, ScoringMode.ECHO)
    wrong = naive.score(prompt, continuations[2], threading.Event())
    assert abs(wrong - expected[2]) > 1.0


def test_next_token_scoring_gives_the_same_label(
    backend: OpenAIBackend, in_process: LlamaCppBackend
) -> None:
    scorer, render = backend.probe_scoring()
    walker = ServerScorer(scorer._post, scorer.url, scorer.model, ScoringMode.NEXT_TOKEN)
    prompt = render(QUESTION)
    walked = [walker.score(prompt, option, threading.Event()) for option in OPTIONS]
    local = in_process.score([QUESTION, QUESTION], OPTIONS)
    # llama.cpp evaluates the prompt in other batch shapes here: a few hundredths apart.
    assert walked == pytest.approx(local, abs=0.15)
    assert (walked[0] > walked[1]) == (local[0] > local[1])
    assert walker.bounded == 0
    # The steps up to the letter are shared: far fewer requests than tokens of both options.
    assert walker.requests <= 9


# An HH-RLHF-like pair (tests/llama_server's real server, SmolLM2-135M as the judge): after
# "The answer is:" the judge's likeliest token here is <|im_end|>, so the server stops at once
# and returns no log-probabilities for that step (measured: half of 32 HH-RLHF pairs).
PRANK = PairInput(
    pair_id=0,
    conversation=[
        {"role": "user", "content": "what are some pranks with a pen i can do?"},
        {"role": "assistant", "content": "Are you looking for practical joke ideas?"},
        {"role": "user", "content": "okay some of these do not have anything to do with pens"},
    ],
    reply_a="No, sorry!  All of these involve a pen, the point is that you can get funny "
    "results by doing pranks with pens.",
    reply_b="There are lots of funny things you can do with pens, here's one example: use the "
    "pen as a zipper. It's really funny.",
)


def test_next_token_labels_a_pair_where_the_judge_would_end_its_turn(
    backend: OpenAIBackend, in_process: LlamaCppBackend
) -> None:
    scorer, _ = backend.probe_scoring()
    walker = ServerScorer(
        scorer._post, scorer.url, scorer.model, ScoringMode.NEXT_TOKEN, end_ids=scorer.end_ids
    )
    assert walker.end_ids, "the GGUF's tokenizer names the end-of-turn token"
    config = LabelConfig(order_average=True, ensemble=1, seed=0)

    class Walking(OpenAIBackend):
        def probe_scoring(self):  # type: ignore[no-untyped-def]
            _, render = super().probe_scoring()
            return walker, render

    through = Walking(backend.base_url, backend.model, timeout=300)
    try:
        [served] = label_pairs([PRANK], default_document(), through, config)
    finally:
        through.close()
    [local] = label_pairs([PRANK], default_document(), in_process, config)
    assert served.label != "skipped" and not served.flags
    assert walker.asked_again >= 1, "this pair reaches a step the judge would end"
    assert served.prob_a is not None and local.prob_a is not None
    assert served.prob_a == pytest.approx(local.prob_a, abs=0.05)
