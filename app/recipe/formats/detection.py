"""Which format a set of uploaded files is in, and the document read from it."""

from __future__ import annotations

from app.recipe.documents import ConstitutionDoc, ConstitutionFileError
from app.recipe.formats.anthropic import ANTHROPIC_FILES, read_anthropic
from app.recipe.formats.huggingface import doc_from_huggingface
from app.recipe.formats.loading import read_json_or_yaml
from app.recipe.formats.project import PROJECT_FORMAT, doc_from_project

_KNOWN_FORMATS = (
    "not a constitution in any known format "
    "(Anthropic's files, Hugging Face's recipe, or this project's JSON/YAML)"
)


def detect_and_read(files: dict[str, bytes], name: str) -> tuple[str, ConstitutionDoc]:
    """("anthropic" | "huggingface" | "project", doc) for uploaded files keyed by base name.

    Several files are read only as Anthropic's set; one file is Anthropic's by its name, else
    Hugging Face's or this project's by its content. `name` names Anthropic and Hugging Face
    imports; a project file carries its own name."""
    if not files:
        raise ConstitutionFileError("upload", "", "no files were given")
    names = list(files)
    if len(names) > 1 or names[0] in ANTHROPIC_FILES:
        # read_anthropic names the first file that is not one of Anthropic's.
        return "anthropic", read_anthropic(files, name)
    file = names[0]
    value = read_json_or_yaml(files[file], file)
    if isinstance(value, dict):
        if "constitutions" in value:
            return "huggingface", doc_from_huggingface(value, file, name)
        if value.get("format") == PROJECT_FORMAT:
            return "project", doc_from_project(value, file)
    raise ConstitutionFileError(file, "$", _KNOWN_FORMATS)
