"""What a training run is asked to do: a plain, JSON-storable spec and named presets.

A job stores `TrainingSpec.to_dict()` in its parameters; the worker rebuilds the spec with
`from_dict` and turns it into TRL's own config (worker/training/presets.py). Kept free of torch
and TRL so the web app can fill its form from the presets.
"""

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Method(StrEnum):
    SFT = "sft"
    DPO = "dpo"
    REWARD = "reward"


@dataclass(frozen=True)
class TrainingSpec:
    """The parameters of one run, as stored in a job's JSON parameters."""

    method: Method
    learning_rate: float
    num_train_epochs: float
    max_steps: int  # -1: train for num_train_epochs
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    max_length: int  # tokens; SFT and DPO truncate, the reward trainer drops longer pairs
    beta: float = 0.1  # DPO only: how far the policy may move from the reference
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    seed: int = 0
    logging_steps: int = 1
    save_steps: int = 0  # 0: save only at the end or on a stop request
    warmup_ratio: float = 0.0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("learning_rate", self.learning_rate > 0, "must be positive"),
            ("num_train_epochs", self.num_train_epochs > 0, "must be positive"),
            ("max_steps", self.max_steps == -1 or self.max_steps > 0, "must be -1 or positive"),
            ("per_device_train_batch_size", self.per_device_train_batch_size >= 1, "must be >= 1"),
            ("gradient_accumulation_steps", self.gradient_accumulation_steps >= 1, "must be >= 1"),
            ("max_length", self.max_length >= 8, "must be at least 8 tokens"),
            ("beta", self.beta > 0, "must be positive"),
            ("lora_r", self.lora_r >= 1, "must be >= 1"),
            ("lora_alpha", self.lora_alpha >= 1, "must be >= 1"),
            ("lora_dropout", 0 <= self.lora_dropout < 1, "must be in [0, 1)"),
            ("seed", self.seed >= 0, "must be >= 0"),
            ("logging_steps", self.logging_steps >= 1, "must be >= 1"),
            ("save_steps", self.save_steps >= 0, "must be >= 0"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "must be in [0, 1)"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"training spec field {name}={getattr(self, name)!r}: {rule}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["method"] = self.method.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingSpec":
        """A spec from stored JSON; a bad, missing or unknown field raises ValueError naming it."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"training spec has unknown fields: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, spec_field in known.items():
            if name not in data:
                if spec_field.default is dataclasses.MISSING:
                    raise ValueError(f"training spec field {name} is missing")
                continue
            values[name] = _coerce(name, spec_field.type, data[name])
        return cls(**values)


def _coerce(name: str, kind: Any, value: Any) -> Any:
    # bool is a subclass of int in Python, so `True` must not pass for a batch size (or 1 for a
    # flag); a float field takes an int because JSON writes 1.0 as 1.
    if kind is Method:
        try:
            return Method(value)
        except ValueError:
            choices = ", ".join(m.value for m in Method)
            raise ValueError(
                f"training spec field method={value!r}: must be one of {choices}"
            ) from None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:  # pragma: no cover - every field is one of the kinds above
        raise TypeError(f"training spec field {name} has an unsupported type {kind!r}")
    if not ok:
        raise ValueError(
            f"training spec field {name}={value!r}: expected {kind.__name__}, "
            f"got {type(value).__name__}"
        )
    return value


PRESETS: dict[str, dict[Method, TrainingSpec]] = {
    # About a minute per method with SmolLM2-135M on two CPU cores: enough steps to see the loss
    # move and to prove the whole path (data, training, saving) works, not to teach anything.
    # Measured with ~270-token rows, batch 2, fp32: SFT ~9.5 s a step, DPO ~13 s (policy and
    # reference over chosen and rejected), reward ~11 s; hence 6, 5 and 6 steps.
    "cpu-smoke": {
        Method.SFT: TrainingSpec(
            method=Method.SFT,
            learning_rate=1e-5,
            num_train_epochs=1,
            max_steps=6,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=1,
            max_length=384,
        ),
        Method.DPO: TrainingSpec(
            method=Method.DPO,
            learning_rate=5e-6,
            num_train_epochs=1,
            max_steps=5,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=1,
            # Four passes per row (policy and reference, chosen and rejected): shorter rows.
            max_length=256,
            beta=0.1,
        ),
        Method.REWARD: TrainingSpec(
            method=Method.REWARD,
            learning_rate=1e-5,
            num_train_epochs=1,
            max_steps=6,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=1,
            # The reward trainer drops (does not truncate) longer pairs, so allow whole replies.
            max_length=512,
        ),
    },
    # Hugging Face's Constitutional AI recipe on a 7B model: SFT lr 2e-5 for one epoch, then DPO
    # with beta 0.1 and lr 5e-7 for three epochs. The recipe ran on 8 GPUs; here one large GPU
    # gets an effective batch of 16 through accumulation, bf16 weights and gradient
    # checkpointing. A full 7B fine-tune with AdamW needs about 60 GB (plus a 14 GB reference
    # for DPO); on a smaller card turn on use_lora and raise the learning rate.
    "hf-7b": {
        Method.SFT: TrainingSpec(
            method=Method.SFT,
            learning_rate=2e-5,
            num_train_epochs=1,
            max_steps=-1,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=4,
            max_length=2048,
            logging_steps=10,
            save_steps=500,
            warmup_ratio=0.1,
            gradient_checkpointing=True,
        ),
        Method.DPO: TrainingSpec(
            method=Method.DPO,
            learning_rate=5e-7,
            num_train_epochs=3,
            max_steps=-1,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=8,
            max_length=1024,
            beta=0.1,
            logging_steps=10,
            save_steps=500,
            warmup_ratio=0.1,
            gradient_checkpointing=True,
        ),
        # The recipe trains no reward model; these are our choice, after common practice
        # (InstructGPT, TRL's examples): one epoch, since reward models overfit quickly, at
        # lr 1e-5 with the same effective batch of 16 and room for a whole conversation.
        Method.REWARD: TrainingSpec(
            method=Method.REWARD,
            learning_rate=1e-5,
            num_train_epochs=1,
            max_steps=-1,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=4,
            max_length=2048,
            logging_steps=10,
            save_steps=500,
            warmup_ratio=0.05,
            gradient_checkpointing=True,
        ),
    },
}


def preset_spec(name: str, method: Method) -> TrainingSpec:
    """The named preset for `method`; ValueError lists the presets when the name is unknown."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}: choose from {', '.join(PRESETS)}")
    return PRESETS[name][method]
