"""Named presets for RL of a policy against a preference model (app/specs/rl.py): plain data the
launch form, the worker and the tests share. A setting a preset leaves out takes the spec's
default.
"""

from typing import Literal

RLPresetName = Literal["cpu-smoke", "trl-defaults-gpu"]
RLSettings = dict[str, float | int | str]

RL_PRESETS: dict[RLPresetName, RLSettings] = {
    # SmolLM2-135M on two CPU cores: two steps of two prompts with two short completions each,
    # to prove the loop (generate, score, update, save, sample table), not to teach. Measured
    # (tests/slow/test_rl_smollm2.py) on a shared machine at load average ~7.7: 4 steps of 24
    # tokens took 327 s, hence 2 steps of 16 tokens.
    "cpu-smoke": {
        "algorithm": "grpo",
        "learning_rate": 1e-5,
        "beta": 0.05,
        "num_generations": 2,
        "max_completion_length": 16,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "sample_every": 1,
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
