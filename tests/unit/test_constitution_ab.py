"""Constitution A/B: win rates with Wilson intervals per group, and two runs' revisions judged
pairwise by the labelling engine (a fake judge that prefers a reply giving a reason)."""

import json
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import worker.backends.loading
from app.cli import main
from app.constitutions import default_document
from app.models import Job, JobStatus, Prompt, Trace, TraceStep
from app.recipe.constitution_ab import ALL, win_rates
from app.recipe.evaluation import SuitePurpose
from app.recipe.intervals import wilson_interval
from tests.unit.eval_fakes import RuleJudge, make_evaluation_rows
from worker.constitution_ab_rows import ABRunsError, load_ab_items
from worker.pipeline.constitution_ab import ABItem, RunReply, compare_runs


def test_win_rates_count_wins_apart_from_ties_and_skips_per_group() -> None:
    rates = win_rates(
        [
            (["harm"], 0.9),
            (["harm", "harm"], 0.2),  # a group named twice counts once
            (["harm", "honest"], 0.5),  # a tie: in neither count
            (["honest"], None),  # skipped
            (["honest"], 0.7),
        ]
    )
    assert [r.group for r in rates] == [ALL, "harm", "honest"]
    everything, harm, honest = rates
    assert (everything.rate.successes, everything.rate.trials) == (2, 3)
    assert (everything.ties, everything.skipped) == (1, 1)
    assert everything.mean_prob == pytest.approx((0.9 + 0.2 + 0.5 + 0.7) / 4)
    assert (harm.rate.successes, harm.rate.trials, harm.ties) == (1, 2, 1)
    assert (honest.rate.successes, honest.rate.trials, honest.skipped) == (1, 1, 1)
    assert (harm.rate.low, harm.rate.high) == pytest.approx(wilson_interval(1, 2))
    assert harm.to_json()["value"] == 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        win_rates([(["x"], 1.5)])


def test_an_empty_group_has_no_rate_and_the_whole_interval() -> None:
    (everything,) = win_rates([])
    assert everything.rate.value is None and (everything.rate.low, everything.rate.high) == (0, 1)
    assert everything.mean_prob is None


REASON = "I won't do that because it could hurt someone; try a locksmith instead."
BARE = "I can't help with that."


def test_b_beats_a_and_only_b_revisions_help_under_a_judge_that_wants_reasons() -> None:
    items = [
        ABItem(
            prompt_id=i,
            conversation=[{"role": "user", "content": f"How do I pick lock {i}?"}],
            a=RunReply(initial=REASON, final=BARE, principles=("harmless",)),
            b=RunReply(initial=BARE, final=REASON, principles=("harmless", "ethical")),
        )
        for i in range(3)
    ]
    judge = RuleJudge()
    report = compare_runs(items, default_document(), judge)
    assert report["prompts"] == 3
    b_over_a = {row["group"]: row for row in report["b_over_a"]}
    assert (b_over_a[ALL]["wins"], b_over_a[ALL]["decided"]) == (3, 3)
    assert b_over_a[ALL]["low"] > 0.3 and b_over_a[ALL]["high"] == pytest.approx(1.0)
    # Per judging principle: the groups are the principles the engine sampled, 3 in all.
    assert sum(row["decided"] for g, row in b_over_a.items() if g != ALL) == 3
    a_rev = {row["group"]: row for row in report["revision_over_initial"]["a"]}
    b_rev = {row["group"]: row for row in report["revision_over_initial"]["b"]}
    assert a_rev[ALL]["wins"] == 0 and a_rev["harmless"]["decided"] == 3
    assert b_rev["harmless"]["wins"] == b_rev["ethical"]["wins"] == 3
    assert b_rev[ALL]["mean_prob"] > 0.5 > a_rev[ALL]["mean_prob"]
    # Nine comparisons, both orders each: all in one scoring batch of the labelling engine.
    assert compare_runs([], default_document(), judge)["b_over_a"][0]["decided"] == 0


def stored_runs(session: Session) -> tuple[int, int, int, int]:
    """Two generation runs over a red-team suite (A's third prompt missing), with traces in
    which A's revisions drop the reason and B's add one; and a judge and a version's id."""
    rows: dict[str, Any] = make_evaluation_rows(session, prompts_per_suite=3)
    suite = rows["suites"][SuitePurpose.RED_TEAM]
    prompts = session.exec(
        select(Prompt).where(Prompt.prompt_set_id == suite).order_by(col(Prompt.position))
    ).all()
    runs = []
    for name, (initial, final), count in (("a", (REASON, BARE), 2), ("b", (BARE, REASON), 3)):
        job = Job(kind="generate", queue="gpu", status=JobStatus.SUCCEEDED)
        session.add(job)
        session.flush()
        for prompt in prompts[:count]:
            trace = Trace(
                job_id=job.id or 0,
                prompt_id=prompt.id or 0,
                constitution_version_id=rows["version"],
                model_id=rows["models"]["complier"],
                initial_reply=initial,
                final_reply=final,
            )
            session.add(trace)
            session.flush()
            session.add(
                TraceStep(
                    trace_id=trace.id or 0,
                    round=0,
                    principle_key=f"principle-{name}",
                    critique_request="",
                    critique="",
                    revision_request="",
                    revision=final,
                )
            )
        runs.append(job.id or 0)
    session.commit()
    return runs[0], runs[1], rows["models"]["judge"], rows["version"]


def test_two_stored_runs_are_compared_on_their_shared_prompts_from_the_cli(
    engine: Engine,
    session: Session,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_a, run_b, judge, version = stored_runs(session)
    items = load_ab_items(session, run_a, run_b)
    assert len(items) == 2 and items[0].a.principles == ("principle-a",)
    assert items[0].conversation[-1]["content"] == "red-team question 0?"
    with pytest.raises(ABRunsError, match="two different runs"):
        load_ab_items(session, run_a, run_a)
    monkeypatch.setattr(worker.backends.loading, "load_backend", lambda model: RuleJudge())
    args = ["--run-a", str(run_a), "--run-b", str(run_b), "--judge", str(judge)]
    assert main(["compare-runs", *args, "--version-id", str(version)]) == 0
    out = capsys.readouterr().out
    assert "2 prompts in common" in out
    assert "principle-b" in out and "principle-a" in out
    assert main(["compare-runs", *args, "--version-id", str(version), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["b_over_a"][0]["wins"] == 2
    assert report["revision_over_initial"]["a"][0]["wins"] == 0
    assert main(["compare-runs", "--run-a", "999", *args[2:], "--version-id", "1"]) == 2
    assert "not a generation run" in capsys.readouterr().err
