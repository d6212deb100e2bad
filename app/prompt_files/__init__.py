"""Parse uploaded prompt files into prompts, pure and stdlib only.

Five formats are read: Anthropic HH-RLHF transcripts, JSON lines with the prompt in a named
field, CSV with the prompt in a named column, XSTest's prompt CSV (its label says which suite a
prompt belongs to), and plain text with one prompt per line. Any of
them may be gzip-compressed. Every problem in a file is raised as a `PromptFileError` that names
the line, so the web app can show the user exactly what to fix; nothing here touches the
database, the web framework or the task queue, so the same code serves uploads and the worker.
For an upload, `max_bytes` bounds what the file may expand to: it is counted while the file is
read, so a small gzip file that would expand to gigabytes stops at the limit.
"""

from app.prompt_files.base import ImportSpec, ParsedPrompt, PromptFileError, PromptFormat
from app.prompt_files.duplicates import drop_duplicates, normalise_prompt, prompt_hash
from app.prompt_files.hh_rlhf import split_hh_transcript
from app.prompt_files.json_lines import load_json_line
from app.prompt_files.lines import read_text_lines
from app.prompt_files.parse import count_prompts, parse_prompt_file
from app.prompt_files.xstest import (
    LabelledCompletion,
    XSTestFileError,
    load_labelled_completions,
    split_by_purpose,
)

__all__ = [
    "ImportSpec",
    "LabelledCompletion",
    "ParsedPrompt",
    "PromptFileError",
    "PromptFormat",
    "XSTestFileError",
    "count_prompts",
    "drop_duplicates",
    "load_json_line",
    "load_labelled_completions",
    "normalise_prompt",
    "parse_prompt_file",
    "prompt_hash",
    "read_text_lines",
    "split_by_purpose",
    "split_hh_transcript",
]
