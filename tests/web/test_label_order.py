"""The people's label queue: in stored order, or where the feedback model was least sure first,
an order that the skip link, the label form and its redirect all keep."""

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import Comparison, Job, JobStatus, Prompt, ReplyPair, Role, User
from tests.conftest import post
from tests.web.test_feedback import setup

# P(A) of the comparisons, in the order they are stored; None: the feedback model skipped it.
# Binary fractions, so that the distances from 0.5 tie exactly.
PROBS: list[float | None] = [0.875, 0.625, 0.25, None, 0.375, 0.75, 0.625]
# By |P(A) - 0.5|, ties by id: 0.125 (2nd, 5th, 7th), 0.25 (3rd, 6th), 0.375 (1st); the skipped
# one never.
UNCERTAIN_ORDER = [1, 4, 6, 2, 5, 0]


def comparisons(session: Session) -> tuple[int, list[int]]:
    """A labelling run with a comparison per entry of PROBS: (run id, comparison ids)."""
    ids = setup(session)
    pairs_job = Job(kind="reply_pairs", queue="gpu", status=JobStatus.SUCCEEDED)
    label_job = Job(kind="label_pairs", queue="gpu", status=JobStatus.SUCCEEDED)
    session.add_all([pairs_job, label_job])
    session.flush()
    prompts = session.exec(select(Prompt).where(Prompt.prompt_set_id == ids["set"])).all()
    stored = []
    for index, prob in enumerate(PROBS):
        pair = ReplyPair(
            job_id=pairs_job.id or 0,
            prompt_id=prompts[index % len(prompts)].id or 0,
            model_id=ids["model"],
            reply_a=f"reply A{index}",
            reply_b=f"reply B{index}",
        )
        # One pair per prompt per job: each pair gets its own pairs job beyond the prompts.
        if index >= len(prompts):
            extra = Job(kind="reply_pairs", queue="gpu", status=JobStatus.SUCCEEDED)
            session.add(extra)
            session.flush()
            pair.job_id = extra.id or 0
        session.add(pair)
        session.flush()
        comparison = Comparison(
            job_id=label_job.id or 0,
            pair_id=pair.id or 0,
            constitution_version_id=ids["version"],
            model_id=ids["model"],
            principle_keys=["harmless"],
            prob_a=prob,
            prob_b=None if prob is None else 1 - prob,
            label="skipped" if prob is None else ("A" if prob > 0.5 else "B"),
        )
        session.add(comparison)
        session.flush()
        stored.append(comparison.id or 0)
    session.commit()
    return label_job.id or 0, stored


def shown(page: str) -> int | None:
    found = re.search(r'data-comparison="(\d+)"', page)
    return int(found.group(1)) if found else None


def test_the_queue_serves_the_least_sure_first_and_keeps_the_order(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    run_id, ids = comparisons(session)
    expected = [ids[i] for i in UNCERTAIN_ORDER]
    reviewer = make_client(Role.REVIEWER)
    review = f"/feedback/runs/{run_id}/review"

    # Stored order: the first comparison first, whatever its P.
    assert shown(reviewer.get(review).text) == ids[0]
    assert shown(reviewer.get(f"{review}?order=id").text) == ids[0]

    # Skipping walks the uncertainty order, and every skip link keeps it.
    page = reviewer.get(f"{review}?order=uncertain").text
    assert 'value="uncertain" selected' in page
    walked = []
    while (current := shown(page)) is not None:
        walked.append(current)
        skip = re.search(r'id="skip" href="([^"]+)"|href="([^"]+)" id="skip"', page)
        assert skip is not None
        link = (skip.group(1) or skip.group(2)).replace("&amp;", "&")
        assert "order=uncertain" in link
        page = reviewer.get(review + link).text
    assert walked == expected
    restart = re.search(r'href="([^"]+)" id="restart"', page)
    assert restart is not None and "order=uncertain" in restart.group(1)

    # Labelling the least sure one: the redirect keeps the order and serves the next least sure.
    form = reviewer.get(f"{review}?order=uncertain").text
    assert '<input type="hidden" name="order" value="uncertain">' in form
    saved = post(
        reviewer, f"/comparisons/{expected[0]}/label", data={"choice": "A", "order": "uncertain"}
    )
    assert saved.status_code == 303 and "order=uncertain" in saved.headers["location"]
    assert shown(reviewer.get(saved.headers["location"]).text) == expected[1]
    # After a skip, a label keeps both the skip and the order.
    after_skip = post(
        reviewer,
        f"/comparisons/{expected[2]}/label",
        data={"choice": "B", "order": "uncertain", "after": str(expected[1])},
    )
    assert shown(reviewer.get(after_skip.headers["location"]).text) == expected[3]

    # A bad order is a 422 that names the parameter, not a 500.
    bad = reviewer.get(f"{review}?order=random")
    assert bad.status_code == 422 and "order" in bad.text
    refused = post(
        reviewer, f"/comparisons/{expected[3]}/label", data={"choice": "A", "order": "x"}
    )
    assert refused.status_code == 422 and "order" in refused.text
