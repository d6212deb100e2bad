"""Sign-in throttling: wrong passwords counted per account and per client address.

The failures are rows in the database, so every web process (and every server behind a load
balancer) counts the same ones. Two sign-ins racing past the check at once can each add a
failure, so the limit may be overshot by the number of requests in flight; it cannot be
overshot for long.
"""

import math
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.models import SignInFailure
from app.settings import Settings
from app.timeutil import utcnow

MAX_KEY_LENGTH = 64


def account_key(username: str) -> str:
    return username.strip().lower()[:MAX_KEY_LENGTH]


def retry_after(*, session: Session, username: str, address: str, settings: Settings) -> int | None:
    """Seconds until this account and address may try again; None when they may now."""
    window = timedelta(seconds=settings.SIGN_IN_WINDOW_SECONDS)
    now = utcnow()
    waits: list[float] = []
    for column, value, limit in (
        (SignInFailure.username, account_key(username), settings.SIGN_IN_FAILURES_PER_ACCOUNT),
        (
            SignInFailure.client_address,
            address[:MAX_KEY_LENGTH],
            settings.SIGN_IN_FAILURES_PER_ADDRESS,
        ),
    ):
        latest = session.exec(
            select(SignInFailure.at)
            .where(col(column) == value, col(SignInFailure.at) > now - window)
            .order_by(col(SignInFailure.at).desc())
            .limit(limit)
        ).all()
        if len(latest) >= limit:
            # Below the limit again once the limit-th latest failure has left the window.
            waits.append((latest[-1] + window - now).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None


def record_failure(*, session: Session, username: str, address: str, settings: Settings) -> None:
    session.add(
        SignInFailure(username=account_key(username), client_address=address[:MAX_KEY_LENGTH])
    )
    # Failures older than the window count for nothing: drop them as new ones come.
    cutoff = utcnow() - timedelta(seconds=settings.SIGN_IN_WINDOW_SECONDS)
    session.exec(delete(SignInFailure).where(col(SignInFailure.at) < cutoff))


def clear_account(*, session: Session, username: str) -> None:
    """After a successful sign-in the account starts afresh; the address's count stays."""
    session.exec(delete(SignInFailure).where(col(SignInFailure.username) == account_key(username)))


def wait_in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
