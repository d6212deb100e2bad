"""The card of a preference dataset labelled by AI feedback (RL-CAI)."""

import yaml

from app.datasets.card import SourceRun, fenced_block, markdown_table
from app.datasets.rows import PREFERENCE_SPLITS
from app.specs.datasets import FeedbackOptions

COLUMNS = """\
Preference splits (`train_prefs`, `test_prefs`), TRL's conversational explicit-prompt form:

- `prompt`: the conversation, ending with the user's turn.
- `chosen`: the reply the feedback model preferred (or a person, where one labelled the pair).
- `rejected`: the other reply of the pair.
- `soft_label`: the feedback model's probability for `chosen` (normalised over the two options,
  averaged over orders and principles, clamped with chain of thought). Below 0.5 when a
  person's label overrode the model's.
- `comparison_id`, `source` (`comparison:<id>`): the comparison, with its principles,
  probabilities and reasoning, in the workbench.
- `corrected`: a person's label decided the row.
- `trace_id` (always null here) and Hugging Face's recipe columns (empty), so the columns match
  the workbench's critique/revision datasets.
"""


def render_feedback_card(
    *,
    name: str,
    description: str,
    labelling: SourceRun,
    pairs: SourceRun | None,
    options: FeedbackOptions,
    counts: dict[str, int],
    dropped: dict[str, int],
    created_by: str,
    created_at: str,
) -> str:
    present = [split for split in PREFERENCE_SPLITS if counts.get(split)]
    meta = {
        "pretty_name": name,
        "tags": ["constitutional-ai", "rlaif"],
        "configs": [
            {
                "config_name": "preferences",
                "default": True,
                "data_files": [
                    {"split": split, "path": f"parquet/{split}.parquet"} for split in present
                ],
            }
        ],
    }
    total = sum(counts.values())
    parts = [
        "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n",
        f"# {name}\n",
        description.strip() + "\n" if description.strip() else "",
        f"{total} preference rows labelled by AI feedback: a feedback model compared two "
        "sampled replies per prompt under principles sampled from a constitution, scoring the "
        f"options' log-probabilities (labelling run {labelling.job_id}).\n",
        f"Built by {created_by} on {created_at}.\n",
        "## Splits\n",
        markdown_table(
            ("Split", "Rows"), [(split, counts.get(split, 0)) for split in PREFERENCE_SPLITS]
        ),
        "\n## Columns\n",
        COLUMNS,
        "## Labelling\n",
        f"- Feedback model: {labelling.model_name}",
        f"- Constitution: {labelling.constitution_label}\n",
        markdown_table(("Parameter", "Value"), sorted(labelling.parameters.items())) + "\n",
    ]
    if pairs is not None:
        parts += [
            "## Reply pairs\n",
            f"- Policy model: {pairs.model_name} (run {pairs.job_id})\n",
            markdown_table(("Parameter", "Value"), sorted(pairs.parameters.items())) + "\n",
        ]
    if labelling.constitution_text.strip():
        parts += [
            "The constitution version:\n",
            fenced_block(labelling.constitution_text, "yaml") + "\n",
        ]
    parts += [
        "## Filters\n",
        markdown_table(
            ("Filter", "Value"),
            [
                ("Least margin |P(A) - 0.5|", f"{options.min_margin:.0%}"),
                ("People's labels decide", "yes" if options.prefer_human else "no"),
                ("Held-out test share of prompts", f"{options.test_fraction:.0%}"),
                ("Seed", options.seed),
            ],
        )
        + "\n",
        markdown_table(("Reason", "Left out"), list(dropped.items()))
        if dropped
        else "Nothing was left out.",
        "\n## Loading\n",
        fenced_block(
            'from datasets import load_from_disk\nprefs = load_from_disk("hf")["train_prefs"]\n'
            '# or: load_dataset("parquet", data_files={"train": "parquet/train_prefs.parquet"})',
            "python",
        ),
    ]
    return "\n".join(part for part in parts if part) + "\n"
