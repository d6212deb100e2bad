"""Case-insensitive "contains" search that treats % and _ in the user's text literally."""

from typing import Any

from sqlalchemy import ColumnElement, or_

LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(text: str, *columns: Any) -> ColumnElement[bool]:
    """True where any of the columns contains `text`, ignoring case."""
    pattern = contains_pattern(text)
    return or_(*(column.ilike(pattern, escape=LIKE_ESCAPE) for column in columns))
