import math
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_duration(seconds: float) -> str:
    """Rounded the way a person says it: "40 s", "3 min", "1 h 5 min"."""
    if seconds < 55:  # from 55 s it rounds to a minute
        return f"{max(1, round(seconds / 10) * 10 if seconds >= 10 else math.ceil(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
