"""Bounded parsing of files people upload: JSON and YAML with a depth and number-size limit,
and binary streams (gzip included) that stop once they have given too many bytes.

Python's own parsers fail on hostile input in ways a caller cannot report: JSON or YAML nested
tens of thousands deep raises RecursionError, an integer of thousands of digits raises a bare
ValueError (the interpreter's int-string limit), and a small gzip file can expand to gigabytes.
Everything here refuses such input early with a `ParseLimitError` that says where, so every
upload format gives the user the same clear message. Pure: standard library and PyYAML only.
"""

from __future__ import annotations

import io
import json
import math
import re
from itertools import accumulate
from typing import Any

import yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_DIGITS",
    "BoundedReader",
    "LimitedYAMLLoader",
    "ParseLimitError",
    "check_json_limits",
    "load_json",
]

# Real files nest a few levels (a principle's messages, an HH-RLHF row's turns); 64 leaves
# plenty of room and stays far below the interpreter's recursion limit.
MAX_DEPTH = 64
# No field in any format this project reads is a number of more than a few digits.
MAX_NUMBER_DIGITS = 100

# One JSON string (whole, or unterminated to the end), an opening or closing bracket, or a
# run of digits outside strings. Strings are skipped whole, so brackets and digits inside
# them do not count.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[{]|[\]}]|[0-9]+', re.DOTALL)
_LONG_DIGITS = re.compile(f"[0-9]{{{MAX_NUMBER_DIGITS + 1},}}")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class ParseLimitError(ValueError):
    """Input over one of the limits; `problem` says which, `line`/`column` where (from 1)."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(problem, line, column)  # all three, so the error pickles whole
        self.problem = problem
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is None:
            return self.problem
        column = f" column {self.column}" if self.column is not None else ""
        return f"line {self.line}{column}: {self.problem}"


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _too_deep(max_depth: int) -> str:
    return f"nested more than {max_depth} levels deep"


def _too_long(digits: int) -> str:
    return f"a number of {digits} digits (at most {MAX_NUMBER_DIGITS} are allowed)"


def check_json_limits(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Raises `ParseLimitError` naming the line and column where `text`, read as JSON, nests
    deeper than `max_depth` or holds a number longer than `MAX_NUMBER_DIGITS` digits.

    A scan, not a parse: invalid JSON passes when it is within the limits, for json.loads to
    report. The common case (few brackets, no long digit run) is two str.counts and a search;
    otherwise strings are cut out and the depth summed up, all in C, and only a file that
    fails is walked token by token to say where."""
    brackets = text.count("[") + text.count("{")
    if brackets <= max_depth and not _LONG_DIGITS.search(text):
        return
    outside = _JSON_STRING.sub("", text)
    # Unclamped: a closing bracket too many is an error json.loads stops at, before any deeper.
    deepest = max(
        accumulate(map(_DEPTH_STEP.__getitem__, _NOT_BRACKET.sub("", outside))), default=0
    )
    if deepest <= max_depth and not _LONG_DIGITS.search(outside):
        return
    _locate_limit(text, max_depth)


def _locate_limit(text: str, max_depth: int) -> None:
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        first = token.group()[0]
        if first == '"':
            continue
        if first in "[{":
            depth += 1
            if depth > max_depth:
                raise ParseLimitError(_too_deep(max_depth), *_position(text, token.start()))
        elif first in "]}":
            depth = max(depth - 1, 0)
        elif len(token.group()) > MAX_NUMBER_DIGITS:
            raise ParseLimitError(_too_long(len(token.group())), *_position(text, token.start()))


def _bounded_int(text: str) -> int:
    # The scan has refused long numbers already; this keeps int() from ever seeing one.
    digits = len(text.lstrip("-"))
    if digits > MAX_NUMBER_DIGITS:
        raise ParseLimitError(_too_long(digits))
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e999 becomes infinity, which is not JSON and which PostgreSQL's jsonb refuses.
        raise ParseLimitError(f"the number {text[:40]} is too large")
    return value


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, but they are not JSON.
    raise ValueError(f"{name} is not valid JSON")


def load_json(text: str, **options: Any) -> Any:
    """json.loads within the limits: `ParseLimitError` for deep nesting, long or infinite
    numbers (and ValueError for NaN/Infinity), `json.JSONDecodeError` for invalid JSON.
    `options` go to json.loads (object_pairs_hook, say)."""
    check_json_limits(text)
    return json.loads(
        text,
        parse_int=_bounded_int,
        parse_float=_finite_float,
        parse_constant=_reject_constant,
        **options,
    )


class LimitedYAMLLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (a few nested ones expand into gigabytes: "billion
    laughs"), nesting deeper than `MAX_DEPTH` (the composer recurses once per level) and
    integers longer than `MAX_NUMBER_DIGITS` digits; each as a YAMLError with its mark."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here", event.start_mark
            )
        if self._depth >= MAX_DEPTH:
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, _too_deep(MAX_DEPTH), event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = len(str(node.value).lstrip("+-").replace("_", ""))
        if digits > MAX_NUMBER_DIGITS:
            raise yaml.constructor.ConstructorError(None, None, _too_long(digits), node.start_mark)
        return int(super().construct_yaml_int(node))


LimitedYAMLLoader.add_constructor("tag:yaml.org,2002:int", LimitedYAMLLoader.construct_yaml_int)


class BoundedReader(io.RawIOBase):
    """A binary stream that raises `ParseLimitError` once more than `max_bytes` have been
    read from it; wrap a gzip stream in it to bound what the file expands to while it is
    read, without decompressing it first."""

    def __init__(self, stream: io.BufferedIOBase, max_bytes: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = max_bytes
        self.max_bytes = max_bytes

    def readable(self) -> bool:
        return True

    def _count(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            raise ParseLimitError(
                f"more than {self.max_bytes / 2**20:g} MB once decompressed (the upload limit)"
            )
        return data

    def _at_most(self, size: int | None) -> int:
        # Never ask for more than one byte past the limit, so the stream stops right there.
        wanted = self._left + 1
        return wanted if size is None or size < 0 else min(size, wanted)

    def read(self, size: int | None = -1) -> bytes:
        return self._count(self._stream.read(self._at_most(size)))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(self._stream.readline(self._at_most(size)))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()
