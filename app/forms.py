"""Reading numbers from submitted forms, with a message per field a person can act on."""

import math
from typing import Annotated, Any

from fastapi import Depends, Request

from app.ids import parse_id

# Field name -> (int or float, lowest, highest).
NumberFields = dict[str, tuple[type, float, float]]
# Longer than any number a person types ("0.000001", "1e-5", "2147483647"); a longer string is
# refused before float() reads it, which costs time in its length.
MAX_NUMBER_CHARS = 40


def parse_numbers(
    form: dict[str, str], fields: NumberFields, errors: dict[str, str]
) -> dict[str, Any]:
    """The fields' values; a missing, malformed or out-of-range one adds to `errors`.

    A whole-number field also takes "1e3" or "8.0" (what a person may paste), as long as the
    value is whole. "nan", "inf" and overlong strings are malformed.
    """
    values: dict[str, Any] = {}
    for name, (kind, low, high) in fields.items():
        raw = form.get(name, "").strip()
        try:
            if len(raw) > MAX_NUMBER_CHARS or not raw.isascii():
                raise ValueError(raw)
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            value = int(number) if kind is int else number
            if kind is int and value != number:
                raise ValueError(raw)
        except (ValueError, OverflowError):
            errors[name] = (
                f"A {'whole ' if kind is int else ''}number from {_show(low)} to {_show(high)}."
            )
            continue
        if not low <= value <= high:
            errors[name] = f"From {_show(low)} to {_show(high)}."
        values[name] = value
    return values


def _show(bound: float) -> str:
    # "10000000", not the "1e+07" of :g.
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def form_id(raw: str | None) -> int:
    """A row id chosen in a form; 0 (no such row) for anything that is not an id."""
    return parse_id(raw) or 0


async def submitted_form(request: Request) -> dict[str, str]:
    """The form's text fields. Reading the body is the only await: as a dependency it lets the
    route itself be a plain `def`, whose database work runs off the event loop."""
    data = await request.form()
    return {name: value for name, value in data.items() if isinstance(value, str)}


SubmittedForm = Annotated[dict[str, str], Depends(submitted_form)]
