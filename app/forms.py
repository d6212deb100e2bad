"""Reading numbers from submitted forms, with a message per field a person can act on."""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from fastapi import Depends, Request
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from app.ids import MAX_ID, parse_id
from app.specs import StageSpec

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


# --- Stage specs from forms -------------------------------------------------------------------

Spec = TypeVar("Spec", bound=StageSpec)


@dataclass(frozen=True)
class FieldView:
    """What the `spec_field` macro (templates/_fields.html) needs to render one spec field."""

    name: str
    label: str
    help: str
    input: str  # "number", "percent", "checkbox", "lines", "ids", "text", "choice"


def _bounds(info: FieldInfo) -> tuple[float, float]:
    low, high = -math.inf, math.inf
    for rule in info.metadata:
        low = float(getattr(rule, "ge", getattr(rule, "gt", low)))
        high = float(getattr(rule, "le", getattr(rule, "lt", high)))
    return low, high


def _bare(annotation: Any) -> Any:
    """int for `int | None`, the annotation itself otherwise."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if type(None) in get_args(annotation) and len(args) == 1 else annotation


def _is_id(annotation: Any) -> bool:
    """Whether an element type is a row id (PositiveId and the like: bounded up to MAX_ID)."""
    if get_origin(annotation) is not Annotated or get_args(annotation)[0] is not int:
        return False
    rules = [r for meta in get_args(annotation)[1:] for r in getattr(meta, "metadata", [meta])]
    return any(getattr(rule, "le", 0) >= MAX_ID for rule in rules)


def _input_kind(info: FieldInfo) -> str:
    kind = _bare(info.annotation)
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get("form") == "percent":
        return "percent"  # a share (0 to 1) the form shows and reads in percent
    if get_origin(kind) in (tuple, list) and _is_id(get_args(kind)[0]):
        return "ids"  # several rows chosen: one id per line, or one form value each
    if kind is bool:
        return "checkbox"
    if kind in (int, float):
        return "id" if _bounds(info)[1] >= MAX_ID else "number"
    if get_origin(kind) in (tuple, list):
        return "lines"
    if (isinstance(kind, type) and issubclass(kind, Enum)) or get_origin(kind) is Literal:
        return "choice"
    return "text"


def spec_number_fields(spec_type: type[StageSpec], names: Iterable[str]) -> NumberFields:
    """The named number fields of a spec with the spec's own bounds, for `parse_numbers` where a
    form reads a few of them without building the whole spec (the launch form's estimate)."""
    fields: NumberFields = {}
    for name in names:
        info = spec_type.model_fields[name]
        kind = _bare(info.annotation)
        if kind not in (int, float):
            raise TypeError(f"{spec_type.__name__}.{name} is not a number field")
        fields[name] = (kind, *_bounds(info))
    return fields


def spec_fields(spec_type: type[StageSpec]) -> dict[str, FieldView]:
    return {
        name: FieldView(
            name=name,
            label=info.title or name.replace("_", " ").capitalize(),
            help=info.description or "",
            input=_input_kind(info),
        )
        for name, info in spec_type.model_fields.items()
    }


def spec_form_values(spec: StageSpec | type[StageSpec]) -> dict[str, str]:
    """A spec (or a spec type's defaults) as the text a form shows."""
    spec_type = spec if isinstance(spec, type) else type(spec)
    values: dict[str, str] = {}
    for name, info in spec_type.model_fields.items():
        if isinstance(spec, type):
            value = None if info.is_required() else info.get_default(call_default_factory=True)
        else:
            value = getattr(spec, name)
        if value is None:
            values[name] = ""
        elif isinstance(value, bool):
            values[name] = "true" if value else ""
        elif _input_kind(info) == "percent":
            values[name] = f"{round(value * 100, 9):g}"
        elif isinstance(value, tuple | list):
            values[name] = "\n".join(str(v) for v in value)
        elif isinstance(value, Enum):
            values[name] = str(value.value)
        else:
            values[name] = str(value)
    return values


def parse_spec(
    spec_type: type[Spec], form: Mapping[str, str], *, only: Iterable[str] | None = None
) -> tuple[Spec | None, dict[str, str]]:
    """The spec a form describes, or None and a message per bad field.

    Numbers go through `parse_numbers` with the spec's own bounds, ids through `parse_id`; an
    unticked checkbox (absent from the form) is False; a "lines" field is one value per line;
    an "ids" field (a tuple of ids) takes each value of a multi-valued form or one id per line;
    a "percent" field (`json_schema_extra={"form": "percent"}`) is read in percent, stored as a
    share.
    Fields outside `only` take the spec's defaults.
    """
    names = set(only) if only is not None else set(spec_type.model_fields)
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    for name, info in spec_type.model_fields.items():
        if name not in names:
            continue
        kind = _input_kind(info)
        raw = form.get(name, "")
        if kind == "checkbox":
            data[name] = raw.strip().lower() not in ("", "0", "false", "off")
        elif kind == "ids":
            # A multi-valued form (starlette's FormData) gives each value; a plain one, lines.
            getlist = getattr(form, "getlist", None)
            texts = [str(t) for t in getlist(name)] if getlist else raw.splitlines()
            ids = [parse_id(text) for text in texts if text.strip()]
            if None in ids:
                errors[name] = f"Choose {info.description or info.title or name}."
            data[name] = [i for i in ids if i is not None]
        elif kind == "lines":
            # Blank is no values (a cleared box, no setting ticked), not the default.
            data[name] = [line for line in raw.splitlines() if line.strip()]
        elif not raw.strip():
            if info.is_required():
                what = info.description or info.title or name
                errors[name] = f"Choose {what}." if kind in ("id", "choice") else "Required."
            elif _bare(info.annotation) is not info.annotation:  # optional: blank is None
                data[name] = None
        elif kind == "id":
            value = parse_id(raw)
            if value is None:
                errors[name] = f"Choose {info.description or name}."
            data[name] = value
        elif kind == "number":
            low, high = _bounds(info)
            number_type = _bare(info.annotation)
            data.update(parse_numbers({name: raw}, {name: (number_type, low, high)}, errors))
        elif kind == "percent":
            low, high = _bounds(info)
            percent = parse_numbers({name: raw}, {name: (float, low * 100, high * 100)}, errors)
            data.update({name: value / 100 for name, value in percent.items()})
        else:
            data[name] = raw.strip()
    # Validated even when a field failed above, so the spec's own rules on the other fields
    # show at the same time; a field keeps its first message.
    try:
        spec = spec_type.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            message = str(error["msg"]).removeprefix("Value error, ")
            errors.setdefault(field, message)
        return None, errors
    return (None, errors) if errors else (spec, {})
