"""Named presets for RL of a policy against a preference model (app/specs/rl.py): plain data the
launch form, the worker and the tests share. A setting a preset leaves out takes the spec's
default.
"""

from typing import Literal

RLPresetName = Literal["cpu-smoke", "trl-defaults-gpu"]
RLSettings = dict[str, float | int | str]

RL_PRESETS: dict[RLPresetName, RLSettings] = {
    # A couple of minutes with SmolLM2-135M on two CPU cores: four steps of two prompts with two
    # short completions each, to prove the loop (generate, score, update, save), not to teach.
    "cpu-smoke": {
        "algorithm": "grpo",
        "learning_rate": 1e-5,
        "beta": 0.05,
        "num_generations": 2,
        "max_completion_length": 24,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "sample_every": 2,
    },
    # TRL 1.16's own RLOOConfig defaults (rloo_config.py): learning_rate 1e-6, beta 0.05,
    # num_generations 2, max_completion_length 512, temperature 1.0, top_p 1.0. TRL's trainer
    # cites the RLOO paper (Ahmadian et al. 2024, arXiv 2402.14740), but its hyperparameters
    # could not be checked here, so these are TRL's defaults and not the paper's. The batch
    # (8 completions a step, 4 prompts x 2) and the 500 steps are our choice for one large GPU.
    "trl-defaults-gpu": {
        "algorithm": "rloo",
        "learning_rate": 1e-6,
        "beta": 0.05,
        "num_generations": 2,
        "max_completion_length": 512,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_steps": 500,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "sample_every": 25,
        "logging_steps": 5,
    },
}
