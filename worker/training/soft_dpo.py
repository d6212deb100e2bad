"""DPO on soft labels: TRL's DPOTrainer with a per-row label smoothing ε = 1 - p.

The conservative DPO loss (cDPO, Mitchell 2023) with smoothing ε is, for h the difference of
the chosen and rejected log-ratios against the reference,

    -(1 - ε) · log sigmoid(βh) - ε · log sigmoid(-βh)  =  -log sigmoid(βh) + ε · βh

(as -log sigmoid(-x) = -log sigmoid(x) + x). TRL 1.16's DPOConfig has one `label_smoothing`
for every row, and its sigmoid loss does not use it; here ε comes from each row's `soft_label`
p (1 where a person decided, so those rows keep the plain DPO loss).

TRL's `_compute_loss` is one long function: rather than copying it, this trainer lets it run
(it computes TRL's own sigmoid loss and its metrics) and adds the mean of ε·βh, with h rebuilt
from the log-probabilities of the same forward passes, caught by forward hooks. Only the plain
setting is accepted (sigmoid loss, reverse KL, no length weighting), where that h is TRL's.
"""

from typing import Any

import torch
from torch import nn
from trl import DPOTrainer

from worker.training.data import SOFT_LABEL
from worker.training.soft_labels import keep_soft_labels


class SoftDPOTrainer(DPOTrainer):
    """DPOTrainer whose sigmoid loss takes each row's label smoothing from 1 - `soft_label`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain = (
            list(self.loss_types) == ["sigmoid"]
            and self.f_divergence_type == "reverse_kl"
            and self.ld_alpha is None
            and not self.use_weighting
            and not self.label_smoothing
            and not self._is_vision_dataset
        )
        if not plain:
            raise ValueError(
                "soft-label DPO needs TRL's plain sigmoid loss: loss_type 'sigmoid', reverse KL, "
                "no ld_alpha, no WPO weighting, no label_smoothing, text rows"
            )
        keep_soft_labels(self)

    def _compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool) -> Any:
        targets = inputs.pop(SOFT_LABEL)
        calls: list[torch.Tensor] = []

        def catch(_module: nn.Module, _args: Any, output: Any) -> None:
            log_probs = getattr(output, "log_probs", None)
            if log_probs is not None:  # the fused-head calls; a plain one (return_outputs) has none
                calls.append(log_probs)

        # The policy is called first; the reference next, either its own model or (LoRA) the
        # policy with its adapter off. With precomputed reference log-probs it is not called.
        watched = [model] if self.ref_model is None else [model, self.ref_model]
        handles = [module.register_forward_hook(catch) for module in watched]
        try:
            result = super()._compute_loss(model, inputs, return_outputs)
        finally:
            for handle in handles:
                handle.remove()
        loss, outputs = result if return_outputs else (result, None)
        seq_len = inputs["completion_mask"].size(1) - 1
        policy_logps = calls[0][:, -seq_len:].sum(dim=1)
        if self.precompute_ref_logps:
            ref_logps = torch.cat([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]])
        else:
            ref_logps = calls[1][:, -seq_len:].sum(dim=1).detach()
        chosen, rejected = (policy_logps - ref_logps.to(policy_logps.dtype)).chunk(2, dim=0)
        scaled_margins = self.beta * (chosen - rejected)
        smoothing = (1 - targets).to(device=scaled_margins.device, dtype=scaled_margins.dtype)
        # TRL's loss is mean -log sigmoid(βh) (plus any router loss); ε·βh makes each row cDPO.
        loss = loss + (smoothing * scaled_margins).mean()
        return (loss, outputs) if return_outputs else loss
