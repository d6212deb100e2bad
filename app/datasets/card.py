"""The dataset card: Markdown with the YAML front matter that the Hugging Face hub reads.

The front matter's `configs` point at the Parquet files, one configuration for the SFT splits
and one for the preference splits (their columns differ), so `load_dataset(folder, "sft")`
works on the folder as it does on a hub repository.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from app.datasets.rows import PREFERENCE_SPLITS, SFT_SPLITS, DatasetOptions, ReviewFilter

__all__ = ["CONFIG_NAMES", "CardInfo", "SourceRun", "render_card"]

CONFIG_NAMES = {"sft": SFT_SPLITS, "preferences": PREFERENCE_SPLITS}

_REVIEW_FILTERS = {
    ReviewFilter.ALL: "every trace, reviewed or not",
    ReviewFilter.EXCLUDE_REJECTED: "every trace except those the review rejected",
    ReviewFilter.APPROVED_ONLY: "only traces the review approved",
}


@dataclass(frozen=True)
class SourceRun:
    """One generation run the dataset draws on."""

    job_id: int
    model_name: str
    constitution_label: str  # e.g. "Harmless v3"
    constitution_text: str  # the version's principles and system prompt, as YAML or text
    parameters: dict[str, Any]  # the generation run's parameters


@dataclass(frozen=True)
class CardInfo:
    name: str
    description: str
    sources: list[SourceRun]
    options: DatasetOptions
    counts: dict[str, int]  # rows per split
    dropped: dict[str, int]  # rows or traces left out, by reason
    helpful_source: str | None  # the helpful file's name, when one was mixed in
    created_by: str
    created_at: str


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    # A pipe ends a table cell and a newline ends the row.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def markdown_table(header: tuple[str, str], rows: list[tuple[object, object]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {_cell(key)} | {_cell(value)} |" for key, value in rows]
    return "\n".join(lines)


def fenced_block(text: str, language: str) -> str:
    # A fence longer than any backtick run inside, so the text cannot close it early.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _present(info: CardInfo, splits: tuple[str, ...]) -> list[str]:
    return [name for name in splits if info.counts.get(name, 0) > 0]


def _front_matter(info: CardInfo) -> str:
    configs: list[dict[str, Any]] = []
    for config, splits in CONFIG_NAMES.items():
        present = _present(info, splits)
        if present:
            files = [{"split": name, "path": f"parquet/{name}.parquet"} for name in present]
            configs.append({"config_name": config, "data_files": files})
    if configs:
        configs[0]["default"] = True
    meta = {"pretty_name": info.name, "tags": ["constitutional-ai"], "configs": configs}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


_COLUMNS = """\
SFT splits (`train_sft`, `test_sft`), TRL's conversational language-modelling form:

- `messages`: the conversation, ending with the assistant's chosen answer (the reviewer's
  correction where there is one, else the final revision).

Preference splits (`train_prefs`, `test_prefs`), TRL's conversational explicit-prompt form:

- `prompt`: the conversation, ending with the user's turn.
- `chosen`: the chosen answer, as one assistant message.
- `rejected`: the model's initial reply (or the helpful file's worse answer), likewise.

Every row also has:

- `trace_id`: the trace the row comes from (null for mixed-in helpful rows), and `source`:
  `trace:<id>` or `helpful:<file>:<line>`. Together they link every row back to its trace, its
  critiques and its reviews.
- `corrected`: whether a reviewer's correction is the chosen answer.
- Hugging Face's recipe columns, from the last critique/revision round: `init_prompt` (the last
  user turn), `init_response` (the initial reply), `critic_prompt`, `critic_response`,
  `revision_prompt`, `revision_response` (the model's own revision). Empty strings where a row
  has no such round (helpful rows).

TRL's `SFTTrainer` and `DPOTrainer` read these splits as they are and drop the extra columns."""


def _sources(info: CardInfo) -> str:
    if not info.sources:
        return "No generation run is recorded."
    parts = []
    for run in info.sources:
        parts.append(f"### Run {run.job_id}\n")
        parts.append(f"- Model: {run.model_name}")
        parts.append(f"- Constitution: {run.constitution_label}\n")
        if run.parameters:
            parts.append(
                markdown_table(("Parameter", "Value"), sorted(run.parameters.items())) + "\n"
            )
        if run.constitution_text.strip():
            parts.append("The constitution version:\n")
            parts.append(fenced_block(run.constitution_text, "yaml") + "\n")
    return "\n".join(parts).rstrip()


def _filters(info: CardInfo) -> str:
    options = info.options
    helpful = "none"
    if options.helpful_max_rows:
        helpful = f"up to {options.helpful_max_rows} from {info.helpful_source or 'a file'}"
    rows: list[tuple[object, object]] = [
        ("Review", _REVIEW_FILTERS[options.review_filter]),
        ("Least change from the initial reply", f"{options.min_change:.0%} of words"),
        ("Chosen answer length", _length(options.min_chars, options.max_chars)),
        ("Longest conversation", _limit(options.max_prompt_chars)),
        ("One row per conversation", "yes" if options.drop_duplicates else "no"),
        ("Disjoint prompts for SFT and preferences", "yes" if options.split_halves else "no"),
        ("Held-out share (per prompt)", f"{options.test_fraction:.0%}"),
        ("Split seed", options.seed),
        ("Helpful rows mixed in", helpful),
    ]
    return markdown_table(("Filter", "Setting"), rows)


def _length(low: int, high: int | None) -> str:
    unit = "character" if low == 1 else "characters"
    return f"at least {low} {unit}" + (f", at most {high}" if high is not None else "")


def _limit(high: int | None) -> str:
    return "no limit" if high is None else f"{high} characters"


def _loading(info: CardInfo) -> str:
    sft, prefs = _present(info, SFT_SPLITS), _present(info, PREFERENCE_SPLITS)
    config = "sft" if sft else "preferences"
    some = sft or prefs

    def files(folder: str, suffix: str, names: list[str]) -> str:
        return ", ".join(f'"{n}": "{folder}/{n}.{suffix}"' for n in names)

    lines = [
        "from datasets import load_dataset, load_from_disk",
        "",
        "# All splits, as saved by the workbench:",
        'splits = load_from_disk("hf")',
        "# One configuration, through this card's `configs` (the Parquet files):",
        f'rows = load_dataset(".", "{config}")',
        "# Parquet or JSON lines directly; SFT and preference splits are loaded apart:",
        f'rows = load_dataset("parquet", data_files={{{files("parquet", "parquet", some)}}})',
        f'rows = load_dataset("json", data_files={{{files("jsonl", "jsonl", some)}}})',
    ]
    return (
        "Paths are relative to this folder.\n\n"
        + fenced_block("\n".join(lines), "python")
        + "\n\nIn JSON lines `trace_id` is null in helpful rows, and readers infer types per "
        "file: a file holding only helpful rows has no type for it, so list a file with trace "
        "rows first or pass `features=`. Parquet and `hf/` carry the schema."
    )


def render_card(info: CardInfo) -> str:
    """The card's Markdown, front matter included."""
    total = sum(info.counts.values())
    runs = ", ".join(str(run.job_id) for run in info.sources) or "none"
    intro = (
        f"A Constitutional AI dataset of {total} rows built from critique/revision traces of "
        f"generation run(s) {runs}: each prompt's reply was critiqued and revised under a "
        "constitution, reviewers could approve, reject or correct the outcome, and the traces "
        "that passed the filters below became supervised (SFT) rows and preference rows (the "
        "revision or correction over the initial reply)."
    )
    split_rows: list[tuple[object, object]] = [
        (name, info.counts.get(name, 0)) for name in (*SFT_SPLITS, *PREFERENCE_SPLITS)
    ]
    dropped = (
        markdown_table(("Reason", "Left out"), list(info.dropped.items()))
        if info.dropped
        else "Nothing was left out."
    )
    sections = [
        _front_matter(info),
        f"# {info.name}\n",
        info.description.strip() + "\n" if info.description.strip() else "",
        intro + "\n",
        f"Built by {info.created_by} on {info.created_at}.\n",
        "## Splits\n",
        markdown_table(("Split", "Rows"), split_rows) + "\n",
        "## Columns\n",
        _COLUMNS + "\n",
        "## Source runs\n",
        _sources(info) + "\n",
        "## Filters\n",
        _filters(info) + "\n",
        "## Left out\n",
        dropped + "\n",
        "## Loading\n",
        _loading(info) + "\n",
    ]
    return "\n".join(section for section in sections if section)
