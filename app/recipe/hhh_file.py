"""The paper's HHH multiple-choice file: each row a complete prompt ending in "The answer is:".

Read by the labeller benchmark (worker.evals.hhh) and checked by the web app on upload.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from app.recipe.comparison_text import ANSWER_CUE, COT_REQUEST

Conversation = list[dict[str, str]]


class HHHFileError(ValueError):
    """A row of the file is not an HHH question; the message names the file and line."""


_LAYOUT = re.compile(
    r"(?P<question>.*?Options:)\n \(A\) \[\[\[(?P<a>.*?)\]\]\]\n \(B\) \[\[\[(?P<b>.*)\]\]\]"
    + re.escape(f"\n\n{ANSWER_CUE}"),
    re.DOTALL,
)


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


def _item(line: int, text: str) -> HHHItem:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    prompt = row.get("prompt")
    if not isinstance(prompt, str):
        raise ValueError('no "prompt" string')
    match = _LAYOUT.fullmatch(prompt)
    if not match:
        raise ValueError(
            f'"prompt" must end with "Options:\\n (A) [[[...]]]\\n (B) [[[...]]]\\n\\n{ANSWER_CUE}"'
        )
    correct = _answer_letter(row.get("corrects"))
    incorrect = _answer_letter(row.get("incorrects"))
    if correct is None or incorrect is None or correct == incorrect:
        raise ValueError('"corrects" and "incorrects" must be [" (A)"] and [" (B)"], either way')
    return HHHItem(line, match["question"], match["a"], match["b"], correct)


def load_hhh(path: Path | str) -> list[HHHItem]:
    """The file's questions; a bad row raises ValueError naming the file and its line."""
    path = Path(path)
    items: list[HHHItem] = []
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                items.append(_item(number, text))
            except ValueError as exc:
                raise HHHFileError(f"{path.name} line {number}: {exc}") from None
    if not items:
        raise HHHFileError(f"{path.name}: no questions")
    return items


def check_hhh_file(path: Path) -> int:
    """How many questions the file holds; HHHFileError when a row is bad or there is none."""
    try:
        return len(load_hhh(path))
    except UnicodeDecodeError as exc:
        raise HHHFileError(f"{Path(path).name} is not UTF-8 text: {exc}") from None
