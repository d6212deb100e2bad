"""Importing a prompt set from an uploaded file: the import job's parameters."""

from pydantic import Field, field_validator, model_validator

from app.ids import PositiveId
from app.prompt_files import ImportSpec, PromptFormat
from app.recipe.evaluation import XSTEST_PROMPT_PURPOSES, SuitePurpose
from app.specs.base import StageSpec

MAX_NAME_CHARS = 200
SUITE_NAME_SEPARATOR = " · "
# An XSTest file becomes one set per purpose, each named "<name> · <purpose>".
MAX_XSTEST_NAME_CHARS = MAX_NAME_CHARS - max(
    len(SUITE_NAME_SEPARATOR + purpose.value) for purpose in XSTEST_PROMPT_PURPOSES.values()
)
XSTEST_PURPOSE_MESSAGE = (
    "An XSTest file takes each prompt's purpose from its label (safe: over-refusal, unsafe: "
    "refusal-expected) and becomes one set per purpose; leave the purpose empty."
)


def suite_set_name(name: str, purpose: SuitePurpose) -> str:
    """The name of the set that one purpose's prompts of an XSTest file go into."""
    return f"{name}{SUITE_NAME_SEPARATOR}{purpose.value}"


class PromptImportSpec(StageSpec):
    """An uploaded prompt file to read into a new prompt set (`worker.prompt_import`)."""

    name: str = Field(
        min_length=1, max_length=MAX_NAME_CHARS, title="Name", description="the new set's name"
    )
    description: str = Field("", title="Description", description="Shown on the set's page.")
    format: PromptFormat = Field(title="Format", description="a format")
    field: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        title="JSON field (JSON lines only)",
        description="The field that holds the prompt; dotted paths reach into objects.",
    )
    column: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        title="CSV column (CSV only)",
        description="The column that holds the prompt.",
    )
    purpose: SuitePurpose | None = Field(
        None,
        title="Evaluation suite",
        description="What the set tests, when it is an evaluation suite (empty: not a suite).",
    )
    path: str = Field(
        min_length=1, max_length=4096, title="Upload", description="the server's copy of the file"
    )
    filename: str = Field(
        min_length=1,
        max_length=4096,
        title="File",
        description="The file's name as the user gave it: errors and the set's source name it.",
    )
    user_id: PositiveId | None = Field(
        None, title="Imported by", description="the user who uploaded it"
    )

    @field_validator("field", "column", "purpose", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # A blank form box, and job rows stored before this spec, give "" for "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _prompt_location(self) -> "PromptImportSpec":
        if self.format == PromptFormat.JSONL and not self.field:
            raise ValueError("Name the JSON field that holds the prompt.")
        if self.format == PromptFormat.CSV and not self.column:
            raise ValueError("Name the CSV column that holds the prompt.")
        if self.format == PromptFormat.XSTEST:
            if self.purpose is not None:
                raise ValueError(XSTEST_PURPOSE_MESSAGE)
            if len(self.name) > MAX_XSTEST_NAME_CHARS:
                raise ValueError(f"At most {MAX_XSTEST_NAME_CHARS} characters for an XSTest file.")
        return self

    def file_spec(self) -> ImportSpec:
        """How app.prompt_files reads the file."""
        return ImportSpec(format=self.format, field=self.field, column=self.column)
