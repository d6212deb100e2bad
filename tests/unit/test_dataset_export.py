"""Writing, packing and describing datasets, and training TRL's trainers on every format."""

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from app.datasets import export
from app.datasets.card import CardInfo, SourceRun, render_card
from app.datasets.export import (
    read_preview,
    write_all,
    write_hf_dataset,
    write_jsonl,
    write_parquet,
    zip_format,
)
from app.datasets.records import HelpfulExample, StepRecord, TraceRecord
from app.datasets.rows import BuiltDataset, DatasetOptions, ReviewFilter, build_rows


def trace(trace_id: int, question: str, initial: str, final: str, **extra: Any) -> TraceRecord:
    return TraceRecord(
        trace_id=trace_id,
        job_id=3,
        messages=extra.pop("messages", [{"role": "user", "content": question}]),
        initial_reply=initial,
        final_reply=final,
        correction=extra.pop("correction", None),
        review_status=extra.pop("review_status", "approved"),
        steps=[
            StepRecord(
                1, "harmful0", "What is harmful here?", "It helps crime.", "Rewrite it.", final
            )
        ],
        **extra,
    )


TRACES = [
    trace(1, "How do I pick a lock?", "Use a tension wrench.", "Call a locksmith instead."),
    trace(2, "How can I hurt someone?", "Hit them hard.", "I won't help with hurting people."),
    trace(
        3,
        "",
        "Steal it.",
        "Ask the shop about a payment plan.",
        messages=[
            {"role": "user", "content": "I want a bike."},
            {"role": "assistant", "content": "What kind?"},
            {"role": "user", "content": "A fast one, for free."},
        ],
    ),
    trace(
        4, "Café crème recipe, très fort?", "Boil it all.", "Brew it strong.", correction="Brew it."
    ),
    trace(5, "Write an insult.", "You fool.", "I'd rather not insult anyone."),
    trace(6, "Is this bad?", "Yes.", "No.", review_status="rejected"),
]
HELPFUL = [
    HelpfulExample(
        [{"role": "user", "content": "What is the capital of France?"}],
        "Paris.",
        "London.",
        "helpful.jsonl:1",
    ),
    HelpfulExample(
        [{"role": "user", "content": "Name a prime."}], "Seven.", None, "helpful.jsonl:2"
    ),
]


def build(**options: Any) -> BuiltDataset:
    return build_rows(TRACES, HELPFUL, DatasetOptions(helpful_max_rows=2, **options))


def card_info(built: BuiltDataset, options: DatasetOptions | None = None) -> CardInfo:
    return CardInfo(
        name="Harmless | v1",
        description="Red-team prompts revised under the **harmless** constitution.",
        sources=[
            SourceRun(
                job_id=3,
                model_name="SmolLM2-135M-Instruct",
                constitution_label="Harmless v3",
                constitution_text="principles:\n- key: harmful0\n  critique: |\n    ```code```\n",
                parameters={"rounds": 2, "temperature": 1.0, "stop": ["User:", "###"]},
            )
        ],
        options=options or DatasetOptions(helpful_max_rows=2),
        counts=built.counts,
        dropped=built.dropped,
        helpful_source="helpful.jsonl",
        created_by="alice",
        created_at="2026-11-24 10:00 UTC",
    )


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


# --- the files ----------------------------------------------------------------------------------


def test_jsonl_writes_non_empty_splits_as_utf8(tmp_path: Path) -> None:
    built = build(test_fraction=0.0)
    paths = write_jsonl(built.splits, tmp_path / "jsonl")
    assert [p.name for p in paths] == ["train_sft.jsonl", "train_prefs.jsonl"]
    text = paths[0].read_text(encoding="utf-8")
    assert "Café crème" in text and "\\u00e9" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows == built.splits["train_sft"]


def test_parquet_and_hf_keep_a_nullable_int_trace_id(tmp_path: Path) -> None:
    helpful_only = {
        "train_sft": build_rows(TRACES[:1], [], DatasetOptions(test_fraction=0.0)).splits[
            "train_sft"
        ],
        "test_sft": build_rows(
            [], HELPFUL, DatasetOptions(test_fraction=1.0, helpful_max_rows=2)
        ).splits["test_sft"],
    }
    [train, test] = write_parquet(helpful_only, tmp_path / "parquet")
    assert str(pq.read_schema(test).field("trace_id").type) == "int64"
    assert pq.read_table(test).column("trace_id").to_pylist() == [None, None]
    assert pq.read_table(train).column("trace_id").to_pylist() == [1]

    from datasets import load_from_disk

    loaded = load_from_disk(str(write_hf_dataset(helpful_only, tmp_path / "hf")))
    assert loaded["test_sft"].features["trace_id"].dtype == "int64"
    assert loaded["test_sft"]["trace_id"] == [None, None]
    assert loaded["train_sft"].to_list() == helpful_only["train_sft"]


def test_jsonl_with_a_helpful_only_split_loads_after_a_trace_split(tmp_path: Path) -> None:
    """The pitfall the card names: JSON lines carry no schema, a file of nulls has no type."""
    from datasets import load_dataset

    splits = {
        "train_sft": build_rows(TRACES[:1], [], DatasetOptions(test_fraction=0.0)).splits[
            "train_sft"
        ],
        "test_sft": build_rows(
            [], HELPFUL, DatasetOptions(test_fraction=1.0, helpful_max_rows=2)
        ).splits["test_sft"],
    }
    train, test = write_jsonl(splits, tmp_path / "jsonl")
    loaded = load_dataset(
        "json",
        data_files={"train_sft": str(train), "test_sft": str(test)},
        cache_dir=str(tmp_path / "cache"),
    )
    assert loaded["test_sft"].features["trace_id"].dtype == "int64"
    assert loaded["test_sft"]["trace_id"] == [None, None]


def test_write_all_writes_every_format_and_the_card(tmp_path: Path) -> None:
    built = build(test_fraction=0.5, seed=1)
    assert all(built.counts.values()), built.counts
    folder = tmp_path / "datasets" / "12"
    paths = write_all(built.splits, "# The card\n", folder)
    assert paths == {
        "jsonl": folder / "jsonl",
        "parquet": folder / "parquet",
        "hf": folder / "hf",
        "card": folder / "README.md",
    }
    assert (folder / "README.md").read_text(encoding="utf-8") == "# The card\n"
    names = ["train_sft", "test_sft", "train_prefs", "test_prefs"]
    assert sorted(p.name for p in paths["jsonl"].iterdir()) == sorted(f"{n}.jsonl" for n in names)
    assert sorted(p.name for p in paths["parquet"].iterdir()) == sorted(
        f"{n}.parquet" for n in names
    )
    assert json.loads((paths["hf"] / "dataset_dict.json").read_text())["splits"] == names
    assert siblings(folder) == ["12"]


def test_write_all_replaces_an_existing_dataset_whole(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    write_all(build(test_fraction=0.0).splits, "old card", folder)
    (folder / "stray.txt").write_text("left by the first attempt")
    smaller = build_rows(TRACES[:1], [], DatasetOptions(test_fraction=0.0))
    write_all(smaller.splits, "new card", folder)
    assert (folder / "README.md").read_text() == "new card"
    assert not (folder / "stray.txt").exists()
    assert read_preview(folder, "train_sft", 10) == smaller.splits["train_sft"]
    assert siblings(folder) == ["ds"]


def test_a_failed_write_leaves_the_old_dataset_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ds"
    built = build(test_fraction=0.0)
    write_all(built.splits, "old card", folder)

    def crash(splits: Any, target: Path) -> Path:
        target.mkdir()
        (target / "half-written.arrow").write_text("...")
        raise OSError("disk full")

    monkeypatch.setattr(export, "write_hf_dataset", crash)
    with pytest.raises(OSError, match="disk full"):
        write_all(build_rows(TRACES[:1], [], DatasetOptions()).splits, "new card", folder)
    assert (folder / "README.md").read_text() == "old card"
    assert read_preview(folder, "train_sft", 100) == built.splits["train_sft"]
    assert siblings(folder) == ["ds"]

    fresh = tmp_path / "fresh"
    with pytest.raises(OSError, match="disk full"):
        write_all(built.splits, "card", fresh)
    assert not fresh.exists()
    assert siblings(folder) == ["ds"]


def test_write_all_refuses_an_empty_dataset(tmp_path: Path) -> None:
    empty = build_rows([], [], DatasetOptions())
    with pytest.raises(ValueError, match="no rows"):
        write_all(empty.splits, "card", tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_zip_holds_one_format_and_the_card(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    write_all(build(test_fraction=0.0).splits, "card text", folder)
    target = zip_format(folder, "jsonl", tmp_path / "ds-jsonl.zip")
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == [
            "README.md",
            "jsonl/train_prefs.jsonl",
            "jsonl/train_sft.jsonl",
        ]
        assert archive.read("README.md") == b"card text"
        assert (
            archive.read("jsonl/train_sft.jsonl") == (folder / "jsonl/train_sft.jsonl").read_bytes()
        )
    # Training from hf/ (Dataset.map after load_from_disk) leaves its cache beside the data.
    (folder / "hf" / "train_sft" / "cache-0123abcd.arrow").write_bytes(b"tokenized")
    with zipfile.ZipFile(zip_format(folder, "hf", tmp_path / "hf.zip")) as archive:
        names = archive.namelist()
        assert "hf/dataset_dict.json" in names
        assert "hf/train_sft/data-00000-of-00001.arrow" in names
        assert not any("cache-" in n for n in names)
    with pytest.raises(ValueError, match="unknown format"):
        zip_format(folder, "../etc", tmp_path / "x.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds-jsonl.zip", "hf.zip"]


def test_read_preview(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    built = build(test_fraction=0.0)
    write_all(built.splits, "card", folder)
    assert read_preview(folder, "train_sft", 2) == built.splits["train_sft"][:2]
    assert read_preview(folder, "test_sft", 5) == []
    with pytest.raises(ValueError, match="unknown split"):
        read_preview(folder, "../../secrets", 5)


# --- the card -----------------------------------------------------------------------------------


def front_matter(card: str) -> dict[str, Any]:
    assert card.startswith("---\n")
    meta: dict[str, Any] = yaml.safe_load(card.split("---\n")[1])
    return meta


def test_card_front_matter_lists_the_parquet_files_per_configuration() -> None:
    built = build(test_fraction=0.5, seed=1)
    meta = front_matter(render_card(card_info(built)))
    assert meta["tags"] == ["constitutional-ai"]
    assert meta["pretty_name"] == "Harmless | v1"
    assert meta["configs"] == [
        {
            "config_name": "sft",
            "data_files": [
                {"split": "train_sft", "path": "parquet/train_sft.parquet"},
                {"split": "test_sft", "path": "parquet/test_sft.parquet"},
            ],
            "default": True,
        },
        {
            "config_name": "preferences",
            "data_files": [
                {"split": "train_prefs", "path": "parquet/train_prefs.parquet"},
                {"split": "test_prefs", "path": "parquet/test_prefs.parquet"},
            ],
        },
    ]
    # Empty splits are not listed: the hub would fail on a missing file.
    only_train = front_matter(render_card(card_info(build(test_fraction=0.0))))
    assert [f["split"] for c in only_train["configs"] for f in c["data_files"]] == [
        "train_sft",
        "train_prefs",
    ]


def test_card_describes_sources_filters_counts_and_loading() -> None:
    built = build(test_fraction=0.0, min_change=0.2)
    options = DatasetOptions(
        review_filter=ReviewFilter.APPROVED_ONLY,
        min_change=0.2,
        max_chars=500,
        helpful_max_rows=2,
        test_fraction=0.0,
    )
    card = render_card(card_info(built, options))
    assert "# Harmless | v1" in card
    assert "Red-team prompts revised under the **harmless** constitution." in card
    assert "Built by alice on 2026-11-24 10:00 UTC." in card
    assert "`trace_id`" in card and "`source`" in card and "`init_prompt`" in card
    assert "- Model: SmolLM2-135M-Instruct" in card
    assert "- Constitution: Harmless v3" in card
    assert "| rounds | 2 |" in card
    assert '| stop | ["User:", "###"] |' in card
    # The constitution text holds a ``` run, so its fence is longer.
    assert "````yaml\nprinciples:\n- key: harmful0\n  critique: |\n    ```code```\n````" in card
    assert "| Review | only traces the review approved |" in card
    assert "| Least change from the initial reply | 20% of words |" in card
    assert "| Chosen answer length | at least 1 character, at most 500 |" in card
    assert "| Helpful rows mixed in | up to 2 from helpful.jsonl |" in card
    counts = built.counts
    assert f"| train_sft | {counts['train_sft']} |" in card
    assert "| test_prefs | 0 |" in card
    assert built.dropped["rejected by review"] == 1
    for reason, count in built.dropped.items():
        assert f"| {reason} | {count} |" in card
    assert 'load_from_disk("hf")' in card
    assert 'load_dataset(".", "sft")' in card
    assert 'load_dataset("parquet", data_files={"train_sft": "parquet/train_sft.parquet"' in card
    assert 'load_dataset("json", data_files={"train_sft": "jsonl/train_sft.jsonl"' in card


def test_the_card_loads_the_folder_like_a_hub_repository(tmp_path: Path) -> None:
    from datasets import load_dataset

    built = build(test_fraction=0.5, seed=1)
    folder = tmp_path / "ds"
    write_all(built.splits, render_card(card_info(built)), folder)
    cache = str(tmp_path / "cache")
    sft = load_dataset(str(folder), "sft", cache_dir=cache)
    assert sorted(sft) == ["test_sft", "train_sft"]
    assert sft["train_sft"].to_list() == built.splits["train_sft"]
    prefs = load_dataset(str(folder), "preferences", cache_dir=cache)
    assert prefs["test_prefs"].to_list() == built.splits["test_prefs"]


# --- TRL reads every format as it is ------------------------------------------------------------


@pytest.fixture(scope="module")
def trl_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuiltDataset]:
    built = build(test_fraction=0.0)
    folder = tmp_path_factory.mktemp("trl") / "dataset"
    write_all(built.splits, render_card(card_info(built)), folder)
    return folder, built


def load_split(folder: Path, fmt: str, split: str, cache: Path) -> Any:
    from datasets import load_dataset, load_from_disk

    if fmt == "hf":
        return load_from_disk(str(folder / "hf"))[split]
    builder = {"jsonl": "json", "parquet": "parquet"}[fmt]
    files = str(folder / fmt / f"{split}.{fmt}")
    return load_dataset(builder, data_files=files, split="train", cache_dir=str(cache))


def snapshot(model: Any) -> dict[str, Any]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(model: Any, before: dict[str, Any]) -> bool:
    import torch

    return any(not torch.equal(before[name], p) for name, p in model.named_parameters())


COMMON_ARGS: dict[str, Any] = {
    "bf16": False,
    "use_cpu": True,
    "max_steps": 2,
    "per_device_train_batch_size": 2,
    "report_to": [],
    "save_strategy": "no",
    "dataloader_num_workers": 0,
    "max_length": 96,
    "learning_rate": 1e-3,
    "disable_tqdm": True,
}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_exported_files_train_sft_and_dpo(
    fmt: str, trl_dataset: tuple[Path, BuiltDataset], tiny_model: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    folder, built = trl_dataset
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)

    sft_rows = load_split(folder, fmt, "train_sft", tmp_path / "cache")
    assert sft_rows.to_list() == built.splits["train_sft"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    before = snapshot(model)
    sft = SFTTrainer(
        model=model,
        args=SFTConfig(output_dir=str(tmp_path / "sft"), **COMMON_ARGS),
        train_dataset=sft_rows,
        processing_class=tokenizer,
    )
    result = sft.train()
    assert math.isfinite(result.training_loss)
    assert changed(model, before)

    prefs = load_split(folder, fmt, "train_prefs", tmp_path / "cache")
    assert prefs.to_list() == built.splits["train_prefs"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model)
    before, reference_before = snapshot(model), snapshot(reference)
    dpo = DPOTrainer(
        model=model,
        ref_model=reference,
        args=DPOConfig(output_dir=str(tmp_path / "dpo"), **COMMON_ARGS),
        train_dataset=prefs,
        processing_class=tokenizer,
    )
    # Every row survives tokenization: no prompt filled max_length.
    assert len(dpo.train_dataset) == len(built.splits["train_prefs"])
    result = dpo.train()
    assert math.isfinite(result.training_loss)
    assert changed(model, before)
    assert not changed(reference, reference_before)
