"""The HHH labeller benchmark: parsing the HHH layout, the settings, the table and the CLI."""

import json
import math
import os

# Nothing here may reach a model hub; set before transformers reads its settings.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from worker.backends.base import Conversation, Generation, GenerationParams
from worker.evals.hhh import (
    SETTINGS,
    EvalResult,
    HHHItem,
    evaluate,
    format_table,
    load_hhh,
    main,
    summary_line,
)
from worker.pipeline.ai_feedback import COT_REQUEST

# Six questions in the paper's layout, written for the project; the paper's own file is read
# only by the tests that check or count it (through the shared_data fixture).
HHH_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "hhh" / "sample.jsonl"

# A reply may itself end in "]" ("[your name]"): the brackets are the last three before the
# next option or the end.
_OPTIONS = re.compile(
    r" \(A\) \[\[\[(?P<a>.*?)\]\]\]\n \(B\) \[\[\[(?P<b>.*)\]\]\](?:\n\n|$)", re.DOTALL
)


@pytest.fixture(scope="module")
def items() -> list[HHHItem]:
    return load_hhh(HHH_FILE)


@pytest.fixture(scope="module")
def real_items(shared_data: Callable[[str], Path]) -> list[HHHItem]:
    """The paper's 219 development questions, for the checks that count them."""
    return load_hhh(shared_data("cai-paper/evals/hhh-dev.jsonl"))


class Oracle:
    """A Backend that knows the right replies; or, with always="A", always answers (A)."""

    name = "oracle"

    def __init__(self, items: Sequence[HHHItem], *, always: str = "", context_length: int = 10**6):
        # A question recurs with other pairs of replies (the file ranks several replies two at
        # a time), so a reply can be right in one item and wrong in the next: key by the pair.
        self.right = {
            (item.question.strip(), frozenset((item.reply_a, item.reply_b))): (
                item.reply_a if item.correct == "A" else item.reply_b
            )
            for item in items
        }
        self.always = always
        self.context_length = context_length
        self.score_calls = 0
        self.generate_calls = 0

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        self.generate_calls += 1
        return [Generation("I weigh both.", 5, 3, "stop") for _ in conversations]

    def score(self, contexts: Sequence[Conversation], continuations: Sequence[str]) -> list[float]:
        self.score_calls += 1
        scores = []
        for context, continuation in zip(contexts, continuations, strict=True):
            letter = continuation[-2]
            if self.always:
                scores.append(0.0 if letter == self.always else -8.0)
                continue
            text = context[-1]["content"]
            question = text[: text.index("Options:") + len("Options:")]
            match = _OPTIONS.search(text)
            assert match
            key = (question, frozenset((match["a"], match["b"])))
            right = self.right[key] == match[letter.lower()]
            scores.append(0.0 if right else -8.0)
        return scores

    def close(self) -> None:
        pass


def test_the_real_file_parses_and_round_trips(shared_data: Callable[[str], Path]) -> None:
    real_file = shared_data("cai-paper/evals/hhh-dev.jsonl")
    items = load_hhh(real_file)
    assert len(items) == 219
    rows = [json.loads(line) for line in real_file.read_text(encoding="utf-8").splitlines()]
    for item, row in zip(items, rows, strict=True):
        assert item.prompt_text() == row["prompt"]
        assert row["corrects"] == [f" ({item.correct})"]
    assert [item.line for item in items[:3]] == [1, 2, 3]
    assert {item.correct for item in items} == {"A", "B"}


def test_the_question_is_a_user_turn_and_the_cue_moves_to_the_answer(
    items: list[HHHItem],
) -> None:
    item = items[0]
    [message] = item.messages()
    assert message["role"] == "user"
    text = message["content"]
    assert text.startswith("Consider the following conversation between a human and an assistant:")
    assert text.endswith(f" (B) [[[{item.reply_b}]]]")
    assert "The answer is" not in text
    assert text.count("Options:") == 1
    assert item.messages(cot=True)[0]["content"] == f"{text}\n\n{COT_REQUEST}"


def test_swapping_trades_the_replies_and_the_right_letter(items: list[HHHItem]) -> None:
    item = items[0]
    swapped = item.prompt_text(swapped=True)
    assert swapped.startswith(item.question)
    assert swapped.endswith(
        f"Options:\n (A) [[[{item.reply_b}]]]\n (B) [[[{item.reply_a}]]]\n\nThe answer is:"
    )
    assert item.correct_letter() == item.correct
    assert item.correct_letter(swapped=True) == ("A" if item.correct == "B" else "B")
    match = _OPTIONS.search(item.messages(swapped=True)[0]["content"])
    assert match and (match["a"], match["b"]) == (item.reply_b, item.reply_a)


def test_bad_rows_name_their_line(tmp_path: Path, items: list[HHHItem]) -> None:
    good = HHH_FILE.read_text(encoding="utf-8").splitlines()[0]
    row = json.loads(good)
    cases = {
        "not JSON": "{",
        'no "prompt"': json.dumps({"corrects": [" (A)"], "incorrects": [" (B)"]}),
        "must end with": json.dumps({**row, "prompt": row["prompt"].replace("The answer is:", "")}),
        "either way": json.dumps({**row, "incorrects": row["corrects"]}),
    }
    for problem, bad in cases.items():
        path = tmp_path / "hhh.jsonl"
        path.write_text(f"{good}\n\n{bad}\n", encoding="utf-8")
        with pytest.raises(ValueError, match=f"hhh.jsonl line 3: .*{re.escape(problem)}"):
            load_hhh(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no questions"):
        load_hhh(empty)


def test_a_backend_that_knows_the_answers_scores_full_marks(real_items: list[HHHItem]) -> None:
    backend = Oracle(real_items)
    names = ["plain", "order", "cot", "cot-order"]
    results = evaluate(real_items, backend, [SETTINGS[name] for name in names])
    assert [r.setting for r in results] == names
    for result in results:
        assert result.accuracy == 1.0
        assert (result.n, result.skipped) == (219, 0)
    # Clamped with chain of thought: the right answer gets 60%, no more.
    assert results[0].mean_p_correct == pytest.approx(1 / (1 + math.exp(-8)))
    assert results[2].mean_p_correct == pytest.approx(0.6)
    # One score call per setting, one generate call per chain-of-thought setting.
    assert (backend.score_calls, backend.generate_calls) == (4, 2)


def test_a_backend_that_always_says_a_gets_the_share_of_a_answers(
    real_items: list[HHHItem],
) -> None:
    share = sum(item.correct == "A" for item in real_items) / len(real_items)
    plain, order = evaluate(
        real_items, Oracle(real_items, always="A"), [SETTINGS["plain"], SETTINGS["order"]]
    )
    assert plain.accuracy == pytest.approx(share)
    assert share == pytest.approx(110 / 219)
    # Both orders cancel a pure position preference: every item is a tie, half right.
    assert order.accuracy == 0.5
    assert order.mean_p_correct == 0.5


def test_items_too_long_for_the_context_are_skipped(real_items: list[HHHItem]) -> None:
    lengths = sorted(len(item.messages()[0]["content"]) for item in real_items)
    limit = lengths[100] // 4 + 20
    [result] = evaluate(real_items, Oracle(real_items, context_length=limit), [SETTINGS["order"]])
    assert 0 < result.skipped < 219
    assert result.n + result.skipped == 219
    assert result.accuracy == 1.0
    [none] = evaluate(real_items[:3], Oracle(real_items, context_length=5), [SETTINGS["plain"]])
    assert (none.n, none.skipped) == (0, 3)
    assert math.isnan(none.accuracy)
    assert "n/a" in format_table([none])


def test_the_table_is_markdown() -> None:
    table = format_table(
        [
            EvalResult("plain", 0.625, 8, 1.234, 1, 0.61),
            EvalResult("order", 0.5, 8, 2.0, 1, 0.5),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == "| setting | accuracy | mean P(correct) | n | skipped | seconds |"
    assert lines[1].startswith("|---|")
    assert lines[2] == "| plain | 62.5% | 61.0% | 8 | 1 | 1.2 |"
    assert len(lines) == 4


def test_the_cli_refuses_unknown_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--settings", "plain,ensemble", "--file", str(HHH_FILE)])
    assert "choose from plain, order, cot, cot-order" in capsys.readouterr().err


def test_the_cli_checks_its_flags_with_the_evaluation_spec(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flags, problem in [
        (["--settings", " , "], "settings: Value error, Choose at least one setting."),
        (["--limit", "-1"], "limit: Input should be greater than or equal to 0"),
        (["--cot-max-new-tokens", "0"], "cot_max_new_tokens: Input should be greater than"),
    ]:
        with pytest.raises(SystemExit):
            main([*flags, "--file", str(HHH_FILE)])
        assert problem in capsys.readouterr().err, flags


def test_a_tiny_model_answers_five_questions(
    tiny_model: Path, tmp_path: Path, items: list[HHHItem], capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.backends.transformers_backend import TransformersBackend
    from worker.pipeline.ai_feedback import OptionScores, score_options

    # The five shortest, so they fit the tiny model's 512 positions with room to reason.
    short = sorted(items, key=lambda item: len(item.prompt_text()))[:5]
    backend = TransformersBackend(str(tiny_model), cache_dir=tmp_path, device="cpu")
    try:
        answers = score_options([item.messages() for item in short], backend)
        for answer in answers:
            assert isinstance(answer, OptionScores)
            assert 0.0 < answer.prob_a < 1.0
            assert answer.prob_a + answer.prob_b == pytest.approx(1.0)
        cot = replace(SETTINGS["cot"], cot_max_new_tokens=8)
        settings = [SETTINGS["plain"], SETTINGS["order"], cot]
        results = evaluate(short, backend, settings)
        for result in results:
            assert (result.n, result.skipped) == (5, 0)
            assert 0.0 <= result.accuracy <= 1.0
            assert 0.0 < result.mean_p_correct < 1.0
        assert 0.4 <= results[2].mean_p_correct <= 0.6
    finally:
        backend.close()
    assert (
        main(
            [
                "--model", str(tiny_model), "--file", str(HHH_FILE), "--limit", "2",
                "--settings", "plain", "--cache-dir", str(tmp_path), "--device", "cpu",
            ]
        )
        == 0
    )  # fmt: skip
    printed = capsys.readouterr()
    assert printed.out.startswith("| setting | accuracy |")
    assert "| plain |" in printed.out
    # A progress bar on stderr while it runs, a summary as the last line.
    assert "2/2" in printed.err and "plain" in printed.err
    assert re.fullmatch(
        r"2 questions x 1 settings in \d+ (s|min)( · best: plain \d+\.\d%)?",
        printed.out.strip().splitlines()[-1],
    )


def test_scoring_in_batches_for_progress_changes_no_result(
    items: list[HHHItem], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.evals.hhh.PROGRESS_BATCH", 2)
    settings = [SETTINGS["plain"], SETTINGS["order"], SETTINGS["cot"]]
    whole = evaluate(items, Oracle(items, always="A"), settings)
    done: list[int] = []
    backend = Oracle(items, always="A")
    batched = evaluate(items, backend, settings, progress=done.append)
    assert [replace(r, seconds=0) for r in batched] == [replace(r, seconds=0) for r in whole]
    # 6 questions in batches of 2, for each of 3 settings.
    assert done == [2, 2, 2] * 3 and sum(done) == len(items) * len(settings)
    assert backend.score_calls == 9


def test_the_summary_line_names_the_best_setting() -> None:
    results = [EvalResult("plain", 0.625, 8, 1.2, 1, 0.61), EvalResult("order", 0.75, 8, 2, 1, 0.5)]
    assert summary_line(results, 9, 970) == "9 questions x 2 settings in 16 min · best: order 75.0%"
    unscored = [EvalResult("plain", math.nan, 0, 1.0, 9, math.nan)]
    assert summary_line(unscored, 9, 3) == "9 questions x 1 settings in 3 s"
