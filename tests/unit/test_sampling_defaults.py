"""A model's sampling defaults: its generation_config.json, else the small-chat defaults."""

import json
from pathlib import Path

import pytest

from app.sampling import PAPER, SMALL_CHAT, model_sampling_defaults, preset_values
from app.specs.feedback import ReplyPairSpec
from app.specs.generation import GenerationSpec


def folder_with(tmp_path: Path, config: object) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "generation_config.json").write_text(json.dumps(config))
    return folder


def test_a_folder_gives_its_own_settings_and_transformers_defaults_for_the_rest(
    tmp_path: Path,
) -> None:
    folder = folder_with(tmp_path, {"temperature": 0.2, "top_p": 0.9, "bos_token_id": 1})
    found = model_sampling_defaults("transformers", str(folder))
    # top_k and the penalty are what the model's own generate() would use when they are unset.
    assert found.values() == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 50,
        "repetition_penalty": 1.0,
    }
    assert "generation_config.json" in found.source


def test_do_sample_false_means_greedy(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"do_sample": False, "temperature": 0.6})
    assert model_sampling_defaults("transformers", str(folder)).temperature == 0.0


@pytest.mark.parametrize(
    "config", [{"bos_token_id": 1, "eos_token_id": 2}, "not an object", {"temperature": "hot"}]
)
def test_a_config_without_usable_sampling_settings_gives_the_small_chat_defaults(
    tmp_path: Path, config: object
) -> None:
    found = model_sampling_defaults("transformers", str(folder_with(tmp_path, config)))
    assert found.values() == SMALL_CHAT.values()


def test_out_of_range_values_are_clamped_to_what_the_form_accepts(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"temperature": 9, "top_p": 0, "top_k": -4})
    found = model_sampling_defaults("transformers", str(folder))
    assert (found.temperature, found.top_p, found.top_k) == (5.0, 0.01, 0)


def test_gguf_files_servers_and_unknown_paths_get_the_small_chat_defaults(tmp_path: Path) -> None:
    gguf = model_sampling_defaults("transformers", str(tmp_path / "m.gguf"))
    assert gguf.values() == SMALL_CHAT.values() and "GGUF" in gguf.source
    assert model_sampling_defaults("openai", "gpt").values() == SMALL_CHAT.values()
    missing = model_sampling_defaults("transformers", "nobody/not-cached-model")
    assert missing.values() == SMALL_CHAT.values()


def test_the_papers_preset_and_the_specs_defaults() -> None:
    assert preset_values("paper", "transformers", "x.gguf") == PAPER
    assert (PAPER.temperature, PAPER.top_p) == (1.0, 1.0)
    for spec_type in (GenerationSpec, ReplyPairSpec):
        fields = spec_type.model_fields
        assert {
            name: fields[name].default
            for name in ("temperature", "top_p", "top_k", "repetition_penalty")
        } == SMALL_CHAT.values()


def test_a_job_stored_before_the_new_fields_resumes_without_them() -> None:
    old = {
        "constitution_version_id": 1,
        "prompt_set_id": 1,
        "model_id": 1,
        "temperature": 1.0,
        "top_p": 1.0,
    }
    spec = GenerationSpec.from_parameters(old)
    assert (spec.top_k, spec.repetition_penalty) == (0, 1.0)
    fresh = GenerationSpec.from_parameters({**old, "repetition_penalty": 1.2})
    assert fresh.repetition_penalty == 1.2
