"""A trained preference model's report on its held-out pairs (app/recipe/calibration.py).

Scores the trainer's prepared evaluation rows (TRL tokenised them and dropped pairs longer than
max_length; every other column is still there), so each score sits beside its own row's target
and comparison id.
"""

from collections.abc import Callable
from typing import Any

import torch
from transformers import Trainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from app.recipe.calibration import CalibrationReport, PairPrediction, calibration_report, sigmoid
from worker.training.data import COMPARISON_ID, SOFT_LABEL

# comparison ids -> the reply people preferred, for the comparisons people labelled without a
# tie (the worker reads them from SQL; tests and the CLI may pass nothing).
PeoplePrefer = Callable[[list[int]], dict[int, str]]


def held_out_report(
    trainer: Trainer, *, people_prefer: PeoplePrefer | None = None, batch_size: int = 8
) -> CalibrationReport | None:
    """The report on `trainer.eval_dataset`; None when there is nothing to score."""
    rows: Any = trainer.eval_dataset
    if rows is None or isinstance(rows, dict) or len(rows) == 0:
        return None
    margins = score_margins(trainer, rows, batch_size=batch_size)
    columns = set(rows.column_names)
    targets = rows[SOFT_LABEL] if SOFT_LABEL in columns else [1.0] * len(margins)
    ids = rows[COMPARISON_ID] if COMPARISON_ID in columns else [None] * len(margins)
    preferred = people_prefer([int(i) for i in ids if i is not None]) if people_prefer else {}
    predictions = []
    for index, margin in enumerate(margins):
        comparison_id = ids[index]
        people = None
        if comparison_id is not None and int(comparison_id) in preferred:
            people = preferred[int(comparison_id)] == _chosen_text(rows[index]["chosen"])
        predictions.append(
            PairPrediction(
                predicted=sigmoid(margin),
                target=float(targets[index]),
                people_prefer_chosen=people,
            )
        )
    return calibration_report(predictions)


def score_margins(trainer: Trainer, rows: Any, *, batch_size: int) -> list[float]:
    """r_chosen - r_rejected for each prepared row, in order, with the model in eval mode."""
    model: Any = trainer.model
    assert model is not None
    collate = DataCollatorForPreference(pad_token_id=int(model.config.pad_token_id))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    margins: list[float] = []
    try:
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                part = rows.select(range(start, min(start + batch_size, len(rows))))
                batch = collate(
                    [
                        {"chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]}
                        for r in part
                    ]
                )
                logits = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    use_cache=False,
                ).logits.squeeze(-1)
                chosen, rejected = torch.chunk(logits.float(), chunks=2)
                margins.extend((chosen - rejected).tolist())
    finally:
        model.train(was_training)
    return margins


def _chosen_text(chosen: Any) -> str:
    # Conversational rows: the reply is the last message (TRL may have put the prompt before it).
    if isinstance(chosen, list):
        return str(chosen[-1]["content"]) if chosen else ""
    return str(chosen)
