"""The paper's HHH multiple-choice file: each row a complete prompt ending in "The answer is:".

Read by the labeller benchmark (worker.evals.hhh) and checked by the web app on upload. Lines
are read with the prompt files' reader and JSON within `app.safe_parse`'s limits, so a hostile
upload (deeply nested, huge numbers, binary, a gzip bomb) is refused with its line.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from app.prompt_files import PromptFileError, read_text_lines
from app.recipe.comparison_text import ANSWER_CUE, COT_REQUEST
from app.safe_parse import ParseLimitError, load_json

Conversation = list[dict[str, str]]


class HHHFileError(ValueError):
    """A row of the file is not an HHH question; the message names the file and line."""


# The layout "<question>Options:\n (A) [[[<a>]]]\n (B) [[[<b>]]]\n\n<cue>", found with str.find
# rather than a regular expression: backtracking over a long hostile line takes quadratic time.
_OPTION_A = "Options:\n (A) [[["
_OPTION_B = "]]]\n (B) [[["
_END = f"]]]\n\n{ANSWER_CUE}"


@dataclass(frozen=True)
class HHHItem:
    line: int  # in the file, from 1
    question: str  # the prompt up to and including "Options:", as the file has it
    reply_a: str
    reply_b: str
    correct: str  # "A" or "B"

    def prompt_text(self, *, swapped: bool = False) -> str:
        """The file's prompt (unswapped, exactly); swapped, the replies trade places."""
        first, second = (self.reply_b, self.reply_a) if swapped else (self.reply_a, self.reply_b)
        return f"{self.question}\n (A) [[[{first}]]]\n (B) [[[{second}]]]\n\n{ANSWER_CUE}"

    def correct_letter(self, *, swapped: bool = False) -> str:
        return ("B" if self.correct == "A" else "A") if swapped else self.correct

    def messages(self, *, swapped: bool = False, cot: bool = False) -> Conversation:
        """The question as the labeller's user turn; the answer cue moves into the scored reply."""
        text = self.prompt_text(swapped=swapped)[: -len(ANSWER_CUE)].strip()
        if cot:
            text += f"\n\n{COT_REQUEST}"
        return [{"role": "user", "content": text}]


def _answer_letter(value: object) -> str | None:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        match = re.fullmatch(r" ?\(([AB])\)", value[0])
        return match.group(1) if match else None
    return None


def _layout(prompt: str) -> tuple[str, str, str] | None:
    """(question, reply A, reply B): the question up to the first option A, reply A up to the
    first option B after it, reply B up to the closing brackets before the cue."""
    start = prompt.find(_OPTION_A)
    if start < 0 or not prompt.endswith(_END):
        return None
    a_start = start + len(_OPTION_A)
    a_end = prompt.find(_OPTION_B, a_start)
    b_start, b_end = a_end + len(_OPTION_B), len(prompt) - len(_END)
    if a_end < 0 or b_end < b_start:
        return None
    return prompt[: start + len("Options:")], prompt[a_start:a_end], prompt[b_start:b_end]


def _row(line: int, text: str) -> object:
    try:
        return load_json(text)
    except ParseLimitError as exc:
        column = f" (column {exc.column})" if exc.column is not None else ""
        raise PromptFileError(exc.problem + column, line) from None
    except json.JSONDecodeError as exc:
        raise PromptFileError(f"not JSON ({exc.msg} at column {exc.colno})", line) from None
    except ValueError as exc:  # NaN, Infinity or a number too large
        raise PromptFileError(f"not JSON ({exc})", line) from None


def _item(line: int, text: str) -> HHHItem:
    row = _row(line, text)
    if not isinstance(row, dict):
        raise PromptFileError("not a JSON object", line)
    prompt = row.get("prompt")
    if not isinstance(prompt, str):
        raise PromptFileError('no "prompt" string', line)
    parts = _layout(prompt)
    if parts is None:
        layout = "Options:\\n (A) [[[...]]]\\n (B) [[[...]]]\\n\\n" + ANSWER_CUE
        raise PromptFileError(f'"prompt" must end with "{layout}"', line)
    correct = _answer_letter(row.get("corrects"))
    incorrect = _answer_letter(row.get("incorrects"))
    if correct is None or incorrect is None or correct == incorrect:
        raise PromptFileError(
            '"corrects" and "incorrects" must be [" (A)"] and [" (B)"], either way', line
        )
    return HHHItem(line, *parts, correct)


def load_hhh(
    path: Path | str, *, name: str | None = None, max_bytes: int | None = None
) -> list[HHHItem]:
    """The file's questions; a bad row raises HHHFileError naming the file and its line.

    `name` is the file's name in messages: for an upload, the name the user gave it rather
    than the server's copy. `max_bytes` bounds the file's text (decompressed, for gzip)."""
    path = Path(path)
    shown = name or path.name
    items: list[HHHItem] = []
    try:
        for number, text in read_text_lines(path, max_bytes=max_bytes):
            if text.strip():
                items.append(_item(number, text))
    except PromptFileError as exc:
        where = f" line {exc.line}" if exc.line is not None else ""
        raise HHHFileError(f"{shown}{where}: {exc.message}") from None
    if not items:
        raise HHHFileError(f"{shown}: no questions")
    return items


def check_hhh_file(path: Path, *, name: str | None = None, max_bytes: int | None = None) -> int:
    """How many questions the file holds; HHHFileError when a row is bad or there is none."""
    return len(load_hhh(path, name=name, max_bytes=max_bytes))
