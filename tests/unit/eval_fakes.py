"""Fakes for evaluation tests: models that answer in a fixed style, and a judge whose verdicts
follow rules a test can predict (it reads the question it is asked, as a real judge would)."""

import re
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from app.constitutions import create_constitution, default_document
from app.models import LanguageModel
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.recipe.eval_axes import Axis
from app.recipe.eval_results import ClassedReply, JudgedPair, Suite, evaluation_result
from app.recipe.evaluation import RefusalClass, SuitePurpose
from worker.backends.base import Conversation, Generation, GenerationParams, OptionsQuestion
from worker.backends.fake import FakeBackend
from worker.pipeline.refusal_judge import CLASS_QUESTION, REASON_QUESTION

STYLES = {
    "complier": "Sure, here is exactly how to do it, step by step.",
    "explainer": "I won't help with that because it could hurt someone; instead, try a locksmith.",
    "evader": "I can't help with that.",
}


class StyleBackend(FakeBackend):
    """Answers every prompt with its style's sentence."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams
    ) -> list[Generation]:
        self.calls.append([list(c) for c in conversations])
        return [Generation(self.text, 5, len(self.text.split()), "stop") for _ in conversations]


_OPTION = re.compile(r" \((A|B)\) \[\[\[(.*?)\]\]\]", re.S)
_REPLY = re.compile(r"\n\nAssistant: (.*?)\n\n", re.S)


class RuleJudge(FakeBackend):
    """Prefers a reply that gives a reason ("because"); classes "can't"/"won't" as refusals."""

    def score_options(self, questions: Sequence[OptionsQuestion]) -> list[list[float]]:
        out = []
        for context, options in questions:
            text = context[-1]["content"]
            if text.endswith(CLASS_QUESTION):
                reply = _REPLY.findall(text)[-1]
                refuses = "can't" in reply or "won't" in reply
                out.append([-3.0, -0.5, -2.0] if refuses else [-0.2, -3.0, -3.0])
            elif text.endswith(REASON_QUESTION):
                reply = _REPLY.findall(text)[-1]
                out.append([-0.3, -2.0] if "because" in reply else [-2.0, -0.3])
            else:
                shown = dict(_OPTION.findall(text))
                out.append([-1.0 if "because" in shown[letter] else -2.5 for letter in "AB"])
            assert len(out[-1]) == len(options)
        return out


def make_evaluation_rows(
    session: Session, prompts_per_suite: int = 3, version_id: int | None = None
) -> dict[str, object]:
    """A published default constitution (or the version `version_id`, where one is there
    already), a red-team and an over-refusal suite, three styled models and a judge; the ids an
    EvaluationSpec needs."""
    if version_id is None:
        _, version = create_constitution(
            session=session, doc=default_document(), user=None, publish=True
        )
        version_id = version.id
    suites = {}
    for purpose in (SuitePurpose.RED_TEAM, SuitePurpose.OVER_REFUSAL):
        suite = store_prompt_set(
            session=session,
            name=f"suite {purpose.value}",
            prompts=[
                ParsedPrompt(
                    text=f"{purpose.value} question {i}?", context=None, line=i, metadata={}
                )
                for i in range(prompts_per_suite)
            ],
            purpose=purpose,
        )
        suites[purpose] = suite.id
    models = {}
    for name in [*STYLES, "judge"]:
        row = LanguageModel(name=name, backend="transformers", path=f"fake-{name}")
        session.add(row)
        session.commit()
        models[name] = row.id
    return {"version": version_id, "suites": suites, "models": models}


def three_models_result(names: Sequence[str] = ("careful", "eager", "evasive")) -> dict[str, Any]:
    """A stored evaluation result (app.recipe.eval_results) for models 1, 2 and 3, each compared
    with each on both axes, with refusal, over-refusal and evasiveness rates: what a finished
    run leaves, without running one."""
    suites = [
        Suite(1, "red", SuitePurpose.RED_TEAM),
        Suite(2, "safe", SuitePurpose.OVER_REFUSAL),
        Suite(3, "decline", SuitePurpose.REFUSAL_EXPECTED),
    ]
    # Model 1 is the most harmless, model 2 the most helpful; model 3 loses both.
    wins = {Axis.HARMLESS: {(1, 2): 0.8, (1, 3): 0.7, (2, 3): 0.6}}
    wins[Axis.HELPFUL] = {(1, 2): 0.3, (1, 3): 0.7, (2, 3): 0.8}
    pairs = [
        JudgedPair(prompt, 1 if axis is Axis.HARMLESS else 2, axis, a, b, p + (prompt % 3 - 1) / 10)
        for axis, table in wins.items()
        for (a, b), p in table.items()
        for prompt in range(12)
    ]
    refuses = {1: 6, 2: 2, 3: 9}  # of 12 replies per suite
    replies = [
        ClassedReply(
            prompt,
            suite.id,
            model,
            RefusalClass.REFUSES if prompt < refuses[model] else RefusalClass.COMPLIES,
            model == 3,  # model 3 refuses without a reason
        )
        for suite in suites
        for model in (1, 2, 3)
        for prompt in range(12)
    ]
    return evaluation_result(
        pairs=pairs,
        replies=replies,
        suites=suites,
        models=dict(enumerate(names, start=1)),
        samples=50,
        seed=0,
    )
