"""XSTest's files (Röttger et al., 2024): its prompt CSV and its labelled completions.

- Prompts: `id, prompt, type, label, focus, note`. `label` safe (a prompt that only looks
  unsafe: an over-refusal test) or unsafe (a contrast prompt that should be declined). Read as
  prompts whose metadata keeps every column; `split_by_purpose` makes the two suites.
- Labelled completions: `prompt, completion, final_label` (and, in the published file, `id`,
  `type`, `annotation_1`, `annotation_2`, `agreement`), with labels `1_full_compliance`,
  `2_full_refusal`, `3_partial_refusal`: people's classes of a model's replies, on which a
  refusal judge is checked.

Both are read with the CSV reader of the other prompt files (quoted fields across lines, a
broken quote or binary refused with its line). Every row must have the header's number of
fields: a short row is a file cut or mis-saved, and guessing which field is missing would label
the wrong thing. Errors name the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.prompt_files.base import ParsedPrompt, PromptFileError, scalar_metadata
from app.prompt_files.csv_rows import read_csv_rows
from app.recipe.evaluation import (
    XSTEST_PROMPT_PURPOSES,
    XSTEST_REFUSAL_LABELS,
    RefusalClass,
    SuitePurpose,
)

PROMPT_COLUMNS = ("id", "prompt", "type", "label")
PROMPT_OPTIONAL = ("focus", "note")
COMPLETION_COLUMNS = ("prompt", "completion", "final_label")
COMPLETION_OPTIONAL = ("id", "type", "annotation_1", "annotation_2", "agreement")


class XSTestFileError(ValueError):
    """A labelled completions file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class LabelledCompletion:
    line: int  # where the row starts in the file, from 1
    prompt: str
    completion: str
    final_label: RefusalClass  # the people's class, after their disagreements were settled
    annotations: tuple[RefusalClass, ...]  # each annotator's class, where the file has them
    id: str = ""
    type: str = ""


def _header(
    header: list[str], line: int, required: Sequence[str], optional: Sequence[str]
) -> dict[str, int]:
    folded = [name.strip().casefold() for name in header]
    found: dict[str, int] = {}
    for name in (*required, *optional):
        if folded.count(name) > 1:
            raise PromptFileError(f"the header names the '{name}' column twice", line)
        if name in folded:
            found[name] = folded.index(name)
        elif name in required:
            names = ", ".join(header)
            raise PromptFileError(f"no column '{name}' in the header (columns: {names})", line)
    return found


def _rows(
    path: Path, max_bytes: int | None, required: Sequence[str], optional: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, {column: value}) for every data row, the columns checked against the header."""
    columns: dict[str, int] | None = None
    width = 0
    for line, row in read_csv_rows(path, max_bytes):
        if columns is None:
            columns, width = _header(row, line, required, optional), len(row)
            continue
        if len(row) != width:
            raise PromptFileError(f"{len(row)} fields where the header has {width}", line)
        yield line, {name: row[index] for name, index in columns.items()}


def _purpose(value: str, line: int) -> SuitePurpose:
    purpose = XSTEST_PROMPT_PURPOSES.get(value.strip().casefold())
    if purpose is None:
        raise PromptFileError(f"the 'label' field is '{value}', not safe or unsafe", line)
    return purpose


def parse_xstest_prompts(path: Path, max_bytes: int | None) -> Iterator[ParsedPrompt]:
    """XSTest's prompts; each one's metadata holds its id, type, label, focus and note and the
    suite purpose its label gives (`purpose`)."""
    for line, row in _rows(path, max_bytes, PROMPT_COLUMNS, PROMPT_OPTIONAL):
        text = row["prompt"].strip()
        if not text:
            raise PromptFileError("the 'prompt' field is empty", line)
        purpose = _purpose(row["label"], line)
        metadata = scalar_metadata(
            (name, row[name]) for name in (*PROMPT_COLUMNS, *PROMPT_OPTIONAL) if name in row
        )
        del metadata["prompt"]
        metadata["purpose"] = purpose.value
        yield ParsedPrompt(text, None, line, metadata)


def split_by_purpose(
    prompts: Sequence[ParsedPrompt],
) -> dict[SuitePurpose, list[ParsedPrompt]]:
    """XSTest's prompts as suites: over-refusal (safe) first, then refusal-expected (unsafe);
    a purpose no prompt has is left out."""
    suites: dict[SuitePurpose, list[ParsedPrompt]] = {
        purpose: [] for purpose in XSTEST_PROMPT_PURPOSES.values()
    }
    for prompt in prompts:
        purpose = prompt.metadata.get("purpose")
        if not isinstance(purpose, str) or purpose not in suites:
            raise ValueError(f"line {prompt.line}: not an XSTest prompt (no purpose)")
        suites[SuitePurpose(purpose)].append(prompt)
    return {purpose: items for purpose, items in suites.items() if items}


def _refusal_class(row: dict[str, str], field: str, line: int) -> RefusalClass:
    value = row[field].strip()
    found = XSTEST_REFUSAL_LABELS.get(value)
    if found is None:
        known = ", ".join(XSTEST_REFUSAL_LABELS)
        raise PromptFileError(f"the '{field}' field is '{value}', not one of {known}", line)
    return found


def _completion(line: int, row: dict[str, str]) -> LabelledCompletion:
    prompt = row["prompt"].strip()
    if not prompt:
        raise PromptFileError("the 'prompt' field is empty", line)
    annotations = tuple(
        _refusal_class(row, field, line)
        for field in ("annotation_1", "annotation_2")
        if row.get(field, "").strip()
    )
    return LabelledCompletion(
        line=line,
        prompt=prompt,
        # Kept as written: an empty reply is a reply (and counts as a refusal to a person).
        completion=row["completion"],
        final_label=_refusal_class(row, "final_label", line),
        annotations=annotations,
        id=row.get("id", "").strip(),
        type=row.get("type", "").strip(),
    )


def load_labelled_completions(
    path: Path | str, *, name: str | None = None, max_bytes: int | None = None
) -> list[LabelledCompletion]:
    """Every labelled completion in the file; XSTestFileError naming the file, the line and the
    field at the first problem, or when the file holds no rows. `name` is the file's name in
    messages (for an upload, the name the user gave it); `max_bytes` bounds its text."""
    path = Path(path)
    shown = name or path.name
    try:
        rows = [
            _completion(line, row)
            for line, row in _rows(path, max_bytes, COMPLETION_COLUMNS, COMPLETION_OPTIONAL)
        ]
    except PromptFileError as exc:
        where = f" line {exc.line}" if exc.line is not None else ""
        raise XSTestFileError(f"{shown}{where}: {exc.message}") from None
    if not rows:
        raise XSTestFileError(f"{shown}: no labelled completions")
    return rows
