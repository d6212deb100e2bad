"""Bounded integers for the ids and numbers a request carries.

Route parameters take these types, so FastAPI answers a bad value with a 422 that names the
field (app/main.py renders it) instead of passing SQLite or PostgreSQL a number they cannot
store; `parse_id` does the same for ids read from a form by hand.
"""

from typing import Annotated

from pydantic import BeforeValidator, Field

# The largest id a BIGINT (SQLite's INTEGER, PostgreSQL's bigint) holds.
MAX_ID = 2**63 - 1
MAX_ID_DIGITS = len(str(MAX_ID))

PositiveId = Annotated[int, Field(ge=1, le=MAX_ID, description="a row id")]
# A cursor ("after", "before") or a filter where 0 means none: from the start, every run.
IdOrZero = Annotated[int, Field(ge=0, le=MAX_ID, description="a row id, or 0 for none")]
# The edit counter a form sends back, to refuse a save over someone else's newer one.
LockVersion = Annotated[int, Field(ge=0, le=MAX_ID, description="the row's edit counter")]
PageNumber = Annotated[int, Field(ge=1, le=1_000_000, description="a page of a listing")]


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# An id a filter form may leave empty ("all runs"): blank is None, anything else an id.
OptionalId = Annotated[PositiveId | None, BeforeValidator(_blank_is_none)]


def parse_id(raw: str | None) -> int | None:
    """The id in `raw` (ASCII digits, spaces around allowed), or None if it is not one.

    `str.isdigit` is not enough: it accepts "²" and other digits `int` refuses.
    """
    text = (raw or "").strip()
    if not text or len(text) > MAX_ID_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None
