"""Reading and writing constitutions in the file formats people actually have.

Three formats, each turned into the plain `ConstitutionDoc`, one module each:

- `anthropic`: Anthropic's published prompt files (the Constitutional AI paper's four JSON
  files; `anthropic_dialogue` reads and writes their dialogue strings);
- `huggingface`: Hugging Face's open recipe (`{"constitutions": [...], "system_chat": [...]}`);
- `project`: this project's own JSON/YAML, which carries everything the database holds.

`detection` tells which format an upload is in; `loading` turns bytes into JSON/YAML values
within app.safe_parse's limits; `checks` holds the checks and errors they share.

The database keeps only the instructions themselves (no "CritiqueRequest:" wrappers), so an
import strips the wrappers and an export puts the standard ones back. Where an imported file
deviates from the standard layout, the exact original strings go into `extra` (its layout is
in each format's module) and are written back only while they still say what the document
says, so a file round-trips exactly but an edit made in the app is never undone.

Pure: standard library and PyYAML only, so the web app and the worker can both use it.
"""

from app.recipe.formats.anthropic import ANTHROPIC_FILES, read_anthropic, write_anthropic
from app.recipe.formats.checks import (
    MAX_KEY_CHARS,
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_PRINCIPLES,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
)
from app.recipe.formats.detection import detect_and_read
from app.recipe.formats.huggingface import read_huggingface, write_huggingface
from app.recipe.formats.project import (
    PROJECT_FORMAT,
    PROJECT_FORMAT_VERSION,
    read_project,
    write_project,
)

__all__ = [
    "ANTHROPIC_FILES",
    "MAX_KEY_CHARS",
    "MAX_NAME_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_PRINCIPLES",
    "MAX_TEXT_CHARS",
    "MAX_TITLE_CHARS",
    "PROJECT_FORMAT",
    "PROJECT_FORMAT_VERSION",
    "detect_and_read",
    "read_anthropic",
    "read_huggingface",
    "read_project",
    "write_anthropic",
    "write_huggingface",
    "write_project",
]
