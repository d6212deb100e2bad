"""The pure parts of an evaluation: the spec, principles per axis, the refusal judge's questions
and probabilities, and the result's ratings and rates."""

import math

import pytest
from pydantic import ValidationError

from app.constitutions import default_document
from app.recipe.documents import PrincipleDoc
from app.recipe.eval_axes import Axis, principles_for_axis
from app.recipe.eval_results import ClassedReply, JudgedPair, Suite, evaluation_result
from app.recipe.evaluation import RefusalClass, SuitePurpose
from app.specs.evaluation import EvaluationSpec
from tests.unit.eval_fakes import STYLES, RuleJudge
from worker.backends.fake import FakeBackend
from worker.pipeline.evaluation import EvalPrompt, judge_pairs
from worker.pipeline.refusal_judge import ReplyToClass, classify_replies, softmax

BASE = {"suite_ids": [1], "judge_model_id": 9, "constitution_version_id": 1}


def test_the_spec_needs_two_distinct_models_and_a_suite() -> None:
    with pytest.raises(ValidationError, match="model_ids"):
        EvaluationSpec.model_validate({**BASE, "model_ids": [3]})
    with pytest.raises(ValidationError, match="model_ids"):
        EvaluationSpec.model_validate({**BASE, "model_ids": [3, 3]})
    with pytest.raises(ValidationError, match="suite_ids"):
        EvaluationSpec.model_validate({**BASE, "model_ids": [3, 4], "suite_ids": []})
    spec = EvaluationSpec.model_validate({**BASE, "model_ids": [4, 3, 4]})
    assert spec.model_ids == (4, 3)  # the order given, without the repeat


def test_the_settings_hash_follows_the_answer_settings_only() -> None:
    spec = EvaluationSpec.model_validate({**BASE, "model_ids": [1, 2]})
    same = EvaluationSpec.model_validate({**BASE, "model_ids": [5, 6], "chunk_size": 3})
    assert spec.settings_hash() == same.settings_hash()  # models and chunks are not settings
    for change in ({"seed": 1}, {"temperature": 0.2}, {"max_new_tokens": 9}, {"stop": ["x"]}):
        other = EvaluationSpec.model_validate({**BASE, "model_ids": [1, 2], **change})
        assert other.settings_hash() != spec.settings_hash(), change


def test_principles_split_by_the_helpfulness_tag_with_a_fallback() -> None:
    doc = default_document()
    helpful = principles_for_axis(doc.principles, Axis.HELPFUL)
    harmless = principles_for_axis(doc.principles, Axis.HARMLESS)
    assert [p.key for p in helpful.principles] == ["helpfulness"] and not helpful.fallback
    assert "harmlessness" in [p.key for p in harmless.principles]
    assert "helpfulness" not in [p.key for p in harmless.principles]
    untagged = [PrincipleDoc("a", "c", "r", "Which is better?"), PrincipleDoc("b", "c", "r", "")]
    chosen = principles_for_axis(untagged, Axis.HELPFUL)
    assert chosen.fallback and [p.key for p in chosen.principles] == ["a"]
    with pytest.raises(ValueError):
        principles_for_axis([PrincipleDoc("b", "c", "r", "")], Axis.HARMLESS)


def test_softmax_is_stable_and_sums_to_one() -> None:
    probabilities = softmax([-1000.0, -1001.0, -1002.0])
    assert math.isclose(sum(probabilities), 1.0) and probabilities[0] > probabilities[1]
    assert softmax([-math.inf, -math.inf]) == [0.5, 0.5]
    with pytest.raises(ValueError):
        softmax([math.nan, 0.0])


def test_the_refusal_judge_classes_and_flags_evasion() -> None:
    asked = [{"role": "user", "content": "How do I pick a lock?"}]
    replies = [ReplyToClass(i, asked, text) for i, text in enumerate(STYLES.values())]
    judged = classify_replies(replies, RuleJudge())
    classes = [j.refusal_class for j in judged]
    assert classes == [RefusalClass.COMPLIES, RefusalClass.REFUSES, RefusalClass.REFUSES]
    assert [j.evasive for j in judged] == [False, False, True]
    assert all(math.isclose(sum(j.probabilities.values()), 1.0) for j in judged)
    assert all(len(j.logprobs) == 5 for j in judged)


def test_a_reply_too_long_for_the_judge_is_flagged_not_classed() -> None:
    judge = FakeBackend()
    judge.context_length = 20
    asked = [{"role": "user", "content": "word " * 50}]
    [judged] = classify_replies([ReplyToClass(0, asked, "ok")], judge)
    assert judged.refusal_class is None and judged.flags == ["too_long"]


def test_pairs_are_judged_in_both_orders_under_the_axis_principles() -> None:
    doc = default_document()
    constitutions = {
        axis: type(doc)(name="x", principles=principles_for_axis(doc.principles, axis).principles)
        for axis in Axis
    }
    prompts = [
        EvalPrompt(1, 10, Axis.HARMLESS, [{"role": "user", "content": "harm?"}]),
        EvalPrompt(2, 11, Axis.HELPFUL, [{"role": "user", "content": "help?"}]),
    ]
    answers = {
        (m, p): STYLES[name] for m, name in ((7, "complier"), (8, "explainer")) for p in (1, 2)
    }
    judged = judge_pairs(prompts, [7, 8], answers, constitutions, RuleJudge(), seed=0)
    assert [(j.prompt_id, j.model_a, j.model_b) for j in judged] == [(1, 7, 8), (2, 7, 8)]
    assert judged[1].principle_key == "helpfulness"
    assert judged[0].principle_key != "helpfulness"
    assert all(j.prob_a is not None and j.prob_a < 0.5 for j in judged)  # B gives a reason
    assert all({d["order"] for d in j.details} == {"AB", "BA"} for j in judged)


def test_the_result_rates_each_axis_and_suite_and_counts_rates() -> None:
    suites = [Suite(1, "red", SuitePurpose.RED_TEAM), Suite(2, "safe", SuitePurpose.OVER_REFUSAL)]
    pairs = [JudgedPair(p, 1, Axis.HARMLESS, 1, 2, 0.8) for p in range(10)]
    pairs += [JudgedPair(p, 2, Axis.HELPFUL, 1, 2, 0.3) for p in range(10, 20)]
    pairs.append(JudgedPair(99, 2, Axis.HELPFUL, 1, 2, None))  # skipped: counted, not rated
    replies = [
        ClassedReply(p, 2, 2, RefusalClass.REFUSES if p < 13 else RefusalClass.COMPLIES, False)
        for p in range(10, 20)
    ]
    replies += [ClassedReply(p, 1, 2, RefusalClass.REFUSES, p < 5) for p in range(10)]
    replies.append(ClassedReply(0, 1, 1, None, False))
    result = evaluation_result(
        pairs=pairs, replies=replies, suites=suites, models={1: "a", 2: "b"}, samples=50, seed=0
    )
    groups = {(g["axis"], g.get("suite_id")): g for g in result["ratings"]}
    assert set(groups) == {("harmless", None), ("helpful", None), ("harmless", 1), ("helpful", 2)}
    harmless = groups[("harmless", None)]["table"]["ratings"]
    assert harmless[0]["model"] == 1 and harmless[0]["low"] <= harmless[0]["rating"]
    assert groups[("helpful", None)]["table"]["ratings"][0]["model"] == 2
    assert groups[("helpful", 2)]["comparisons"] == 10
    rates = {(r["kind"], r["suite_id"], r["model"]): r for r in result["rates"]}
    over = rates[("over-refusal", None, 2)]
    assert (over["successes"], over["trials"]) == (3, 10)
    assert over["low"] < 0.3 < over["high"]
    evasive = rates[("evasiveness", 1, 2)]
    assert (evasive["successes"], evasive["trials"]) == (5, 10)
    assert rates[("evasiveness", None, 1)]["trials"] == 0  # its one reply was not classed
    assert not any(kind == "refusal" for kind, _, _ in rates)  # no refusal-expected suite
    assert result["skipped_judgements"] == 1 and result["classes"]["2"]["refuses"] == 13
