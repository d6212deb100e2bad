"""Reading numbers from submitted forms, with a message per field a person can act on."""

from typing import Any

# Field name -> (int or float, lowest, highest).
NumberFields = dict[str, tuple[type, float, float]]


def parse_numbers(
    form: dict[str, str], fields: NumberFields, errors: dict[str, str]
) -> dict[str, Any]:
    """The fields' values; a missing, malformed or out-of-range one adds to `errors`.

    A whole-number field also takes "1e3" or "8.0" (what a person may paste), as long as the
    value is whole.
    """
    values: dict[str, Any] = {}
    for name, (kind, low, high) in fields.items():
        raw = form.get(name, "").strip()
        try:
            number = float(raw)
            value = int(number) if kind is int else number
            if kind is int and value != number:
                raise ValueError(raw)
        except (ValueError, OverflowError):
            errors[name] = f"A {'whole ' if kind is int else ''}number from {low:g} to {high:g}."
            continue
        if not low <= value <= high:
            errors[name] = f"From {low:g} to {high:g}."
        values[name] = value
    return values


def form_id(raw: str | None) -> int:
    """A row id chosen in a form; 0 (no such row) for anything that is not a whole number."""
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else 0
