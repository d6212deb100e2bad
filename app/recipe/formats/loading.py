"""Uploaded bytes to JSON or YAML values, within app.safe_parse's limits (depth, number
size, no YAML aliases) and without silently repeated keys; every failure names the file."""

from __future__ import annotations

import json
from typing import Any

import yaml

from app.recipe.documents import ConstitutionFileError
from app.safe_parse import LimitedYAMLLoader, ParseLimitError, load_json


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys without a word: a principle would vanish.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _StrictLoader(LimitedYAMLLoader):
    """safe_load without aliases (a few nested aliases expand into gigabytes once the data
    is turned into JSON), deep nesting or huge integers (see LimitedYAMLLoader), and without
    silently repeated keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                continue  # SafeLoader itself reports keys it cannot use
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerates the byte-order mark some editors add
    except UnicodeDecodeError as exc:
        raise ConstitutionFileError(file, "", f"not UTF-8 text (byte {exc.start})") from None


def read_json(data: bytes, file: str) -> Any:
    return _parse_json(_decode(data, file), file)


def _parse_json(text: str, file: str) -> Any:
    try:
        return load_json(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ConstitutionFileError(file, "", f"duplicate key {exc.args[0]!r}") from None
    except ParseLimitError as exc:
        raise ConstitutionFileError(file, "", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ConstitutionFileError(
            file, "", f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    except ValueError as exc:  # NaN or Infinity
        raise ConstitutionFileError(file, "", f"not valid JSON ({exc})") from None


def read_json_or_yaml(data: bytes, file: str) -> Any:
    text = _decode(data, file)
    try:
        return _parse_json(text, file)
    except ConstitutionFileError as json_error:
        try:
            return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader underneath
        except yaml.YAMLError as exc:
            # Report the error of the language the file was evidently meant to be in.
            if text.lstrip()[:1] in ("{", "["):
                raise json_error from None
            raise ConstitutionFileError(
                file, "", f"not valid YAML ({_yaml_problem(exc)})"
            ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1} column {mark.column + 1}: {exc.problem}"
    return str(exc)
