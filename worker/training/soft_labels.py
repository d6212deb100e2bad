"""A preference model trained on soft labels: TRL's RewardTrainer with a cross-entropy loss.

TRL 1.16's RewardTrainer learns hard pairs, -log sigmoid(r_c - r_r). The paper's preference model
learns the feedback model's probability p that `chosen` is better:

    -[p · log sigmoid(r_c - r_r) + (1 - p) · log sigmoid(r_r - r_c)]

which is TRL's loss where p = 1. Each row's p travels in the `soft_label` column
(worker/training/data.py): it is kept through TRL's column pruning (the signature columns) and
its collator (`WithSoftLabels`), and taken out of the batch before the model sees it.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F
from trl import RewardTrainer

from worker.training.data import SOFT_LABEL

Collator = Callable[[list[dict[str, Any]]], dict[str, Any]]


class WithSoftLabels:
    """Wraps a trainer's collator: the rows' `soft_label` becomes a float tensor in the batch,
    and the wrapped collator sees the rows without it."""

    def __init__(self, inner: Collator) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        targets = torch.tensor([float(row[SOFT_LABEL]) for row in examples], dtype=torch.float)
        batch = self.inner([{k: v for k, v in row.items() if k != SOFT_LABEL} for row in examples])
        batch[SOFT_LABEL] = targets
        return batch


def keep_soft_labels(trainer: Any) -> None:
    """Makes a TRL trainer keep the `soft_label` column up to its loss: among the columns that
    `remove_unused_columns` keeps, and through the collator."""
    trainer._set_signature_columns_if_needed()
    if SOFT_LABEL not in trainer._signature_columns:
        trainer._signature_columns = [*trainer._signature_columns, SOFT_LABEL]
    trainer.data_collator = WithSoftLabels(trainer.data_collator)


def soft_preference_loss(
    rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """The batch's mean cross-entropy between sigmoid(r_c - r_r) and the targets p."""
    margin = rewards_chosen - rewards_rejected
    targets = targets.to(margin.dtype)
    per_pair = -(targets * F.logsigmoid(margin) + (1 - targets) * F.logsigmoid(-margin))
    return per_pair.mean()


class SoftRewardTrainer(RewardTrainer):
    """RewardTrainer whose loss is the cross-entropy against each row's `soft_label`.

    TRL's own compute_loss runs the model and records its metrics (accuracy, margin, rewards);
    the loss it returns is then replaced by the soft one, from the same forward pass.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.args, "center_rewards_coefficient", None) is not None:
            # Kept simple: the soft loss below does not add TRL's centring term.
            raise ValueError("soft labels do not support center_rewards_coefficient")
        keep_soft_labels(self)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        targets = inputs.pop(SOFT_LABEL)
        if "margin" in inputs:
            raise ValueError("soft labels and a margin column cannot be combined")
        _, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        rewards_chosen, rewards_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        loss = soft_preference_loss(rewards_chosen, rewards_rejected, targets)
        return (loss, outputs) if return_outputs else loss

    def prediction_step(
        self,
        model: Any,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        # Trainer's own step would call the model with the batch as it is (a classifier has no
        # labels), soft_label included; the evaluation loss is the soft loss instead.
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        logits = None if prediction_loss_only else outputs.logits.detach()
        return loss.detach(), logits, None
