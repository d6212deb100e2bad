"""Password hashing, session tokens and CSRF tokens."""

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Only digests of session tokens are stored, so a leaked table signs nobody in."""
    return hashlib.sha256(token.encode()).hexdigest()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """As slow as checking a real password, so timing does not tell which usernames exist."""
    verify_password(_dummy_hash(), password)


def csrf_token_for(secret_key: str, session_token: str) -> str:
    # Bound to the session: a new session (sign-in, sign-out) means a new token, and a
    # token is useless with another browser's session.
    return hmac.new(secret_key.encode(), f"csrf:{session_token}".encode(), "sha256").hexdigest()


def login_csrf_token_for(secret_key: str, pre_session_value: str) -> str:
    # A different label, so a pre-session value can never stand in for a session token.
    return hmac.new(
        secret_key.encode(), f"login-csrf:{pre_session_value}".encode(), "sha256"
    ).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given)


def new_one_time_password() -> str:
    return secrets.token_urlsafe(12)
