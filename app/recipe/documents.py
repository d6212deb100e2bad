"""A constitution version as plain data: what importers produce, exporters consume, and the
database stores. Format-specific details a file needs for an exact round trip live in `extra`."""

from dataclasses import dataclass, field
from typing import Any, Literal

FewShotKind = Literal["critique-revision", "comparison"]
ROLES = ("system", "user", "assistant")


@dataclass
class PrincipleDoc:
    key: str
    critique_request: str
    revision_request: str
    # Used by the AI-feedback stage when a model picks the better of two replies.
    comparison_instruction: str = ""
    tags: list[str] = field(default_factory=list)
    enabled: bool = True


@dataclass
class FewShotDoc:
    """An example conversation prepended to the model's prompt, as chat turns."""

    kind: FewShotKind
    messages: list[dict[str, str]]  # [{"role": "user" | "assistant" | "system", "content": ...}]
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConstitutionDoc:
    name: str
    principles: list[PrincipleDoc]
    description: str = ""
    system_prompt: str = ""
    few_shots: list[FewShotDoc] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ConstitutionFileError(ValueError):
    """A problem in an imported file, naming the file and the JSON path: str(err) reads
    "CritiqueRevisionInstructions.json: $.harmful3.edit_request: missing"."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        super().__init__(f"{file}: {path}: {problem}" if path else f"{file}: {problem}")

    def __reduce__(self) -> tuple[type["ConstitutionFileError"], tuple[str, str, str]]:
        return (type(self), (self.file, self.path, self.problem))
