"""The rows a trainer reads, from a dataset folder built by the dataset stage.

`<folder>/hf` is a `DatasetDict.save_to_disk` folder with splits among train_sft, test_sft,
train_prefs and test_prefs. Each trainer gets TRL's conversational columns and nothing else:

- SFT: `prompt` (the messages before the reply) and `completion` (the reply), so the loss
  falls on the assistant's answer only (`assistant_only_loss` fails on SmolLM2's template).
- DPO and reward: `prompt`, `chosen`, `rejected`. TRL 1.16's RewardTrainer takes the explicit
  prompt form as it is and prepends the prompt to both replies itself. Also `soft_label`, the
  target p for `chosen` (worker/training/soft_labels.py reads it; TRL's own trainers drop it),
  and `comparison_id` where the dataset has it, so a held-out pair can be set beside the labels
  people gave its comparison.
"""

from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk

from app.specs.training import Method

SFT_SPLITS = ("train_sft", "test_sft")
PREFERENCE_SPLITS = ("train_prefs", "test_prefs")
_PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
SOFT_LABEL = "soft_label"
COMPARISON_ID = "comparison_id"


class TrainingInputError(Exception):
    """The dataset folder cannot feed this training: a split or column is missing or empty."""


def load_training_split(dataset_folder: Path, method: Method) -> tuple[Dataset, Dataset | None]:
    """(train rows, eval rows or None) in the format the method's trainer reads."""
    splits = _load_splits(dataset_folder)
    train_name, eval_name = SFT_SPLITS if method is Method.SFT else PREFERENCE_SPLITS
    if train_name not in splits:
        available = ", ".join(sorted(splits)) or "none"
        raise TrainingInputError(
            f"dataset {dataset_folder} has no {train_name} split for {method.value} training "
            f"(splits: {available})"
        )
    train = _prepare(splits[train_name], method, dataset_folder, train_name)
    if len(train) == 0:
        raise TrainingInputError(f"dataset {dataset_folder}: split {train_name} is empty")
    evaluation = None
    if eval_name in splits and len(splits[eval_name]) > 0:
        evaluation = _prepare(splits[eval_name], method, dataset_folder, eval_name)
    return train, evaluation


def _load_splits(dataset_folder: Path) -> DatasetDict:
    hf_folder = dataset_folder / "hf"
    if not hf_folder.is_dir():
        raise TrainingInputError(f"dataset {dataset_folder} has no hf/ folder to train from")
    loaded = load_from_disk(str(hf_folder))
    if not isinstance(loaded, DatasetDict):
        raise TrainingInputError(
            f"dataset {dataset_folder}: hf/ holds a single Dataset, not named splits"
        )
    return loaded


def _prepare(rows: Dataset, method: Method, folder: Path, split: str) -> Dataset:
    if method is Method.SFT:
        _require(rows, ("messages",), folder, split)
        return rows.map(
            _to_prompt_completion,
            fn_kwargs={"where": f"dataset {folder}: split {split}"},
            remove_columns=rows.column_names,
        )
    _require(rows, _PREFERENCE_COLUMNS, folder, split)
    kept = [*_PREFERENCE_COLUMNS, *([COMPARISON_ID] if COMPARISON_ID in rows.column_names else [])]
    where = f"dataset {folder}: split {split}"
    soft = rows[SOFT_LABEL] if SOFT_LABEL in rows.column_names else [None] * len(rows)
    decided = rows["corrected"] if "corrected" in rows.column_names else [False] * len(rows)
    targets = [
        preference_target(label, decided_by_person=bool(person), where=where)
        for label, person in zip(soft, decided, strict=True)
    ]
    return rows.select_columns(kept).add_column(SOFT_LABEL, targets)


def preference_target(soft_label: float | None, *, decided_by_person: bool, where: str) -> float:
    """p for `chosen`: the feedback model's probability, or 1 where a person decided (in a
    feedback dataset, `corrected` marks a pair whose winner people chose) or there is no soft
    label (a dataset of hard pairs)."""
    if soft_label is None or decided_by_person:
        return 1.0
    value = float(soft_label)
    if not 0.0 <= value <= 1.0:
        raise TrainingInputError(f"{where}: a soft_label must lie in [0, 1], not {value}")
    return value


def _require(rows: Dataset, columns: tuple[str, ...], folder: Path, split: str) -> None:
    missing = [name for name in columns if name not in rows.column_names]
    if missing:
        raise TrainingInputError(
            f"dataset {folder}: split {split} lacks column(s) {', '.join(missing)}"
        )


def _to_prompt_completion(row: dict[str, list[dict[str, str]]], where: str) -> dict[str, object]:
    messages = row["messages"]
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise TrainingInputError(
            f"{where}: an SFT row must end with the assistant's reply after another message"
        )
    return {"prompt": messages[:-1], "completion": [messages[-1]]}
