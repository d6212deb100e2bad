"""Named training presets: the values that fill a training spec (app/specs/training.py), by
preset and method. Plain data, so the launch form, the worker and the tests share it.

A setting a preset leaves out takes the spec's default.
"""

from typing import Literal

PresetName = Literal["cpu-smoke", "hf-7b"]
Settings = dict[str, float | int | bool]

PRESETS: dict[PresetName, dict[str, Settings]] = {
    # About a minute per method with SmolLM2-135M on two CPU cores: enough steps to see the loss
    # move and to prove the whole path (data, training, saving) works, not to teach anything.
    # Measured with ~270-token rows, batch 2, fp32: SFT ~9.5 s a step, DPO ~13 s (policy and
    # reference over chosen and rejected), reward ~11 s; hence 6, 5 and 6 steps.
    "cpu-smoke": {
        "sft": {
            "learning_rate": 1e-5,
            "num_train_epochs": 1.0,
            "max_steps": 6,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_length": 384,
        },
        "dpo": {
            "learning_rate": 5e-6,
            "num_train_epochs": 1.0,
            "max_steps": 5,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            # Four passes per row (policy and reference, chosen and rejected): shorter rows.
            "max_length": 256,
            "beta": 0.1,
        },
        "reward": {
            "learning_rate": 1e-5,
            "num_train_epochs": 1.0,
            "max_steps": 6,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            # The reward trainer drops (does not truncate) longer pairs, so allow whole replies.
            "max_length": 512,
        },
    },
    # Hugging Face's Constitutional AI recipe on a 7B model: SFT lr 2e-5 for one epoch, then DPO
    # with beta 0.1 and lr 5e-7 for three epochs. The recipe ran on 8 GPUs; here one large GPU
    # gets an effective batch of 16 through accumulation, bf16 weights and gradient
    # checkpointing. A full 7B fine-tune with AdamW needs about 60 GB (plus a 14 GB reference
    # for DPO); on a smaller card turn on use_lora and raise the learning rate.
    # Checkpoints every 100 steps, the spec's default: a lost worker costs at most those.
    "hf-7b": {
        "sft": {
            "learning_rate": 2e-5,
            "num_train_epochs": 1.0,
            "max_steps": -1,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 4,
            "max_length": 2048,
            "logging_steps": 10,
            "warmup_ratio": 0.1,
            "gradient_checkpointing": True,
        },
        "dpo": {
            "learning_rate": 5e-7,
            "num_train_epochs": 3.0,
            "max_steps": -1,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 8,
            "max_length": 1024,
            "beta": 0.1,
            "logging_steps": 10,
            "warmup_ratio": 0.1,
            "gradient_checkpointing": True,
        },
        # The recipe trains no reward model; these are our choice, after common practice
        # (InstructGPT, TRL's examples): one epoch, since reward models overfit quickly, at
        # lr 1e-5 with the same effective batch of 16 and room for a whole conversation.
        "reward": {
            "learning_rate": 1e-5,
            "num_train_epochs": 1.0,
            "max_steps": -1,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 4,
            "max_length": 2048,
            "logging_steps": 10,
            "warmup_ratio": 0.05,
            "gradient_checkpointing": True,
        },
    },
}
