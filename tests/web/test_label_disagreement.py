"""The people's label queue in order of the ensemble's disagreement: the comparisons whose
principles pulled opposite ways most first, an order the skip link and the label's redirect keep."""

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.models import Comparison, Role, User
from tests.conftest import post
from tests.web.test_label_order import PROBS, comparisons, shown

# Per stored comparison (as PROBS, whose 4th is skipped): each principle's P(A) in its two orders.
PRINCIPLES: list[dict[str, tuple[float, float]]] = [
    {"harm": (0.9, 0.8)},  # one principle: last
    {"harm": (0.9, 0.9), "help": (0.6, 0.6)},  # alike, spread 0.3
    {"harm": (0.1, 0.1), "help": (0.9, 0.9)},  # opposed 0.4
    {},  # skipped: never served
    {"harm": (0.55, 0.55), "help": (0.45, 0.45)},  # opposed 0.05
    {"harm": (0.3, 0.3), "help": (0.8, 0.8)},  # opposed 0.2
    {"harm": (0.7, 0.7), "help": (0.75, 0.75)},  # alike, spread 0.05
]
DISAGREEMENT_ORDER = [2, 5, 4, 1, 6, 0]


def test_the_queue_serves_the_most_disagreed_first_and_keeps_the_order(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    assert len(PRINCIPLES) == len(PROBS)
    run_id, ids = comparisons(session)
    for comparison_id, principles in zip(ids, PRINCIPLES, strict=True):
        comparison = session.get(Comparison, comparison_id)
        assert comparison is not None
        comparison.principle_keys = list(principles)
        comparison.details = [
            {"principle": key, "order": order, "prob_a": p, "reasoning": ""}
            for key, both in principles.items()
            for order, p in zip(("AB", "BA"), both, strict=True)
        ]
        session.add(comparison)
    session.commit()
    expected = [ids[i] for i in DISAGREEMENT_ORDER]
    reviewer = make_client(Role.REVIEWER)
    review = f"/feedback/runs/{run_id}/review"

    page = reviewer.get(f"{review}?order=disagreement").text
    assert 'value="disagreement" selected' in page
    walked = []
    while (current := shown(page)) is not None:
        walked.append(current)
        skip = re.search(r'href="([^"]+)" id="skip"', page)
        assert skip is not None
        link = skip.group(1).replace("&amp;", "&")
        assert "order=disagreement" in link
        page = reviewer.get(review + link).text
    assert walked == expected

    # A label's redirect keeps the order and serves the next most disagreed.
    saved = post(
        reviewer,
        f"/comparisons/{expected[0]}/label",
        data={"choice": "A", "order": "disagreement"},
    )
    assert saved.status_code == 303 and "order=disagreement" in saved.headers["location"]
    assert shown(reviewer.get(saved.headers["location"]).text) == expected[1]
    # After a skip, a label keeps both.
    after_skip = post(
        reviewer,
        f"/comparisons/{expected[2]}/label",
        data={"choice": "B", "order": "disagreement", "after": str(expected[1])},
    )
    assert shown(reviewer.get(after_skip.headers["location"]).text) == expected[3]
    # The run page links to this order.
    assert f'href="{review}?order=disagreement"' in reviewer.get(f"/feedback/runs/{run_id}").text
