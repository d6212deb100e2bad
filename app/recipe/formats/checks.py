"""The checks every format shares: each failure is a `ConstitutionFileError` naming the file
and the value's JSON path (`$.principles[2].key`), plus the limits that mirror the database."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from app.recipe.documents import ROLES, ConstitutionDoc, ConstitutionFileError, PrincipleDoc

MAX_TEXT_CHARS = 4000
MAX_PRINCIPLES = 500
# These mirror the column sizes in app.models.constitutions: a longer value would pass here
# and then fail inside the database with an error the user cannot act on.
MAX_KEY_CHARS = 64
MAX_NAME_CHARS = 200
MAX_TITLE_CHARS = 200
MAX_NOTE_CHARS = 2000


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def at(path: str, key: str | int) -> str:
    """JSON path of a child: $.harmful3, $.principles[2], $["odd key"]."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def show(value: Any) -> str:
    return repr(value) if isinstance(value, str | int | float) else kind_of(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Checker:
    """Type and content checks that fail with the file's name and the value's JSON path."""

    file: str

    def fail(self, path: str, problem: str) -> NoReturn:
        raise ConstitutionFileError(self.file, path, problem)

    def object(self, value: Any, path: str, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected {what}, found {kind_of(value)}")
        return value

    def array(self, value: Any, path: str, what: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, f"expected {what}, found {kind_of(value)}")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, found {kind_of(value)}")
        return value

    def text(self, value: Any, path: str, *, limit: int = MAX_TEXT_CHARS) -> str:
        """A string with something in it, within the size limit."""
        text = self.string(value, path)
        if not text.strip():
            self.fail(path, "empty")
        if len(text) > limit:
            self.fail(path, f"longer than {limit} characters")
        return text

    def key(self, key: str, path: str) -> None:
        if not key.strip():
            self.fail(path, "empty")
        if len(key) > MAX_KEY_CHARS:
            self.fail(path, f"key longer than {MAX_KEY_CHARS} characters")

    def field(self, obj: dict[str, Any], name: str, path: str) -> Any:
        if name not in obj:
            self.fail(at(path, name), "missing")
        return obj[name]

    def known_fields(self, obj: dict[str, Any], path: str, known: tuple[str, ...]) -> None:
        # A misspelt optional field would otherwise vanish without a word.
        for name in obj:
            if name not in known:
                self.fail(at(path, str(name)), "unknown field; expected " + ", ".join(known))

    def at_most_principles(self, count: int, path: str) -> None:
        if count > MAX_PRINCIPLES:
            self.fail(path, f"more than {MAX_PRINCIPLES} principles ({count})")

    def json_object(self, value: Any, path: str) -> dict[str, Any]:
        obj = self.object(value, path, "an object")
        try:
            json.dumps(obj)  # the database stores it as JSON; YAML dates and such cannot go
        except (TypeError, ValueError) as exc:
            self.fail(path, f"not plain JSON data ({exc})")
        return obj


def enabled_principles(doc: ConstitutionDoc) -> list[PrincipleDoc]:
    """The principles an export carries: the other formats cannot mark one as disabled, and a
    disabled principle must not come back to life in someone else's run."""
    principles = [p for p in doc.principles if p.enabled]
    keys = [p.key for p in principles]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate principle keys in {doc.name!r}")
    return principles


def extra_section(extra: dict[str, Any], *names: str) -> dict[str, Any]:
    """extra[name1][name2]…, or {} where absent or not an object (extra is user data)."""
    value: Any = extra
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def read_messages(check: Checker, value: Any, path: str) -> list[dict[str, str]]:
    items = check.array(value, path, "a list of messages")
    if not items:
        check.fail(path, "empty")
    messages = []
    for i, item in enumerate(items):
        message_path = at(path, i)
        message = check.object(item, message_path, 'an object with "role" and "content"')
        check.known_fields(message, message_path, ("role", "content"))
        role_path = at(message_path, "role")
        role = check.string(check.field(message, "role", message_path), role_path)
        if role not in ROLES:
            check.fail(role_path, "must be one of " + ", ".join(ROLES))
        content_path = at(message_path, "content")
        content = check.string(check.field(message, "content", message_path), content_path)
        messages.append({"role": role, "content": content})
    return messages


def optional_string(
    check: Checker, obj: dict[str, Any], name: str, path: str, limit: int | None
) -> str:
    field_path = at(path, name)
    text = check.string(obj.get(name, ""), field_path)
    if limit is not None and len(text) > limit:
        check.fail(field_path, f"longer than {limit} characters")
    return text


def string_list(check: Checker, obj: dict[str, Any], name: str, path: str) -> list[str]:
    list_path = at(path, name)
    items = check.array(check.field(obj, name, path), list_path, "a list of strings")
    return [check.string(s, at(list_path, i)) for i, s in enumerate(items)]


def add_fields(target: dict[str, Any], fields: Any) -> None:
    """Puts back fields of the original file this project has no use for."""
    if isinstance(fields, dict):
        for name, value in fields.items():
            target.setdefault(name, value)
