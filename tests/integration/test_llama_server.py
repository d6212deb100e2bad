"""The OpenAI-compatible backend against a real server: llama-cpp-python's, on the bundled GGUF.

Generation goes through `/v1/chat/completions`; scoring through `/v1/completions` with `echo`
and `logprobs`. llama-cpp-python 0.3.36 echoes the prompt's log-probabilities one position
late: the probe must find that, and the corrected scores must equal llama.cpp's own (the same
GGUF in this process, worker/backends/llama_cpp_backend.py). Scoring by next-token
log-probabilities (the way llama.cpp's own server and Ollama must be used) is checked against
the same numbers.
"""

import threading
from collections.abc import Iterator

import pytest

from tests.conftest import missing
from tests.llama_server import LlamaServer, llama_server_missing, running_llama_server
from worker.backends.base import GenerationParams
from worker.backends.llama_cpp_backend import LlamaCppBackend
from worker.backends.openai_backend import OpenAIBackend
from worker.backends.server_probe import ScoringMode, ServerProbe
from worker.backends.server_scoring import ServerScorer

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
    assert first.text.strip() and first.text == again.text, "greedy: the same reply twice"
    assert 0 < first.completion_tokens <= 24 and first.prompt_tokens > 5
    assert first.finish_reason in {"stop", "length"}
    [cut] = backend.generate([conversation], GenerationParams(max_new_tokens=4, temperature=0))
    assert cut.finish_reason == "length" and cut.completion_tokens == 4


def test_the_probe_finds_the_shift(backend: OpenAIBackend, server: LlamaServer) -> None:
    probe = backend.probe
    assert probe is not None
    assert probe.mode is ScoringMode.ECHO_SHIFTED, probe.detail
    # Measured on SmolLM2-135M: about -8.2 at the digits' own entries, -0.12 one entry earlier.
    assert probe.aligned is not None and probe.aligned < -4, probe.detail
    assert probe.shifted is not None and probe.shifted > -1, probe.detail
    # The model id is the GGUF's path: its tokenizer gives the chat template.
    assert probe.template == "tokenizer" and server.model == str(server.gguf)


@pytest.fixture(scope="module")
def in_process(server: LlamaServer) -> Iterator[LlamaCppBackend]:
    local = LlamaCppBackend(str(server.gguf), context_length=2048)
    yield local
    local.close()


def test_corrected_scores_equal_llama_cpp_in_process(
    backend: OpenAIBackend, in_process: LlamaCppBackend
) -> None:
    contexts = [QUESTION, QUESTION, QUESTION]
    continuations = [*OPTIONS, "Paris is the capital of France."]
    through_server = backend.score(contexts, continuations)
    local = in_process.score(contexts, continuations)
    assert through_server == pytest.approx(local, abs=0.05)
    # Summing the server's own entries, as the backend did before the probe, is far off.
    scorer, render = backend.probe_scoring()
    naive = ServerScorer(scorer._post, scorer.url, scorer.model, ScoringMode.ECHO)
    wrong = naive.score(render(QUESTION), continuations[2], threading.Event())
    assert abs(wrong - local[2]) > 1.0


def test_next_token_scoring_gives_the_same_label(
    backend: OpenAIBackend, in_process: LlamaCppBackend
) -> None:
    scorer, render = backend.probe_scoring()
    walker = ServerScorer(scorer._post, scorer.url, scorer.model, ScoringMode.NEXT_TOKEN)
    prompt = render(QUESTION)
    walked = [walker.score(prompt, option, threading.Event()) for option in OPTIONS]
    local = in_process.score([QUESTION, QUESTION], OPTIONS)
    assert walked == pytest.approx(local, abs=0.05)
    assert (walked[0] > walked[1]) == (local[0] > local[1])
    assert walker.bounded == 0
    # The steps up to the letter are shared: far fewer requests than tokens of both options.
    assert walker.requests <= 9
