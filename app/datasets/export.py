"""Write built rows as JSON lines, Parquet and a `save_to_disk` folder, and pack them as zips.

A dataset folder holds `jsonl/`, `parquet/` and `hf/` (one file or split per non-empty split)
and `README.md`, the card. SFT and preference splits have different columns, so they are two
configurations, not one table: load SFT splits together and preference splits together.

Parquet and `hf/` carry an explicit schema (`trace_id` a nullable int64, null for helpful rows);
JSON lines carry none, so a reader infers it per file (see the card for the one pitfall).
"""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.datasets.rows import HF_COLUMNS, SFT_SPLITS, SPLIT_NAMES

if TYPE_CHECKING:
    from datasets import Features

__all__ = [
    "FORMATS",
    "features_for",
    "read_preview",
    "write_all",
    "write_hf_dataset",
    "write_jsonl",
    "write_parquet",
    "zip_format",
]

FORMATS = ("jsonl", "parquet", "hf")
CARD_NAME = "README.md"

Rows = Sequence[dict[str, Any]]
Splits = Mapping[str, Rows]


# Optional columns some datasets add to the preference rows, with their types: AI feedback keeps
# the feedback model's probability for the chosen reply (the soft label) and the comparison.
OPTIONAL_COLUMNS = {"soft_label": "float64", "comparison_id": "int64"}


def features_for(split: str, rows: Rows = ()) -> Features:
    """The schema of a split's rows, so every file of a kind has the same column types.

    Optional columns are included when the first row has them.
    """
    # datasets is imported here, not at the top: the web app imports this module for previews
    # and zips, and importing datasets costs most of a second.
    from datasets import Features, List, Value

    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split '{split}' (splits: {', '.join(SPLIT_NAMES)})")
    messages = List({"role": Value("string"), "content": Value("string")})
    common = {
        "trace_id": Value("int64"),
        "source": Value("string"),
        "corrected": Value("bool"),
        **{name: Value("string") for name in HF_COLUMNS},
    }
    common.update(
        {name: Value(kind) for name, kind in OPTIONAL_COLUMNS.items() if rows and name in rows[0]}
    )
    if split in SFT_SPLITS:
        return Features({"messages": messages, **common})
    return Features({"prompt": messages, "chosen": messages, "rejected": messages, **common})


def _non_empty(splits: Splits) -> list[tuple[str, Rows]]:
    for name in splits:
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split '{name}' (splits: {', '.join(SPLIT_NAMES)})")
    return [(name, splits[name]) for name in SPLIT_NAMES if splits.get(name)]


def write_jsonl(splits: Splits, folder: Path) -> list[Path]:
    """One `<split>.jsonl` per non-empty split, UTF-8 as it is (no \\u escapes)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in _non_empty(splits):
        path = folder / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as stream:
            for row in rows:
                stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths.append(path)
    return paths


def write_parquet(splits: Splits, folder: Path) -> list[Path]:
    """One `<split>.parquet` per non-empty split, with the split's explicit schema."""
    from datasets import Dataset

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in _non_empty(splits):
        path = folder / f"{name}.parquet"
        Dataset.from_list(list(rows), features=features_for(name, rows)).to_parquet(str(path))
        paths.append(path)
    return paths


def write_hf_dataset(splits: Splits, folder: Path) -> Path:
    """The non-empty splits as one `DatasetDict`, saved for `datasets.load_from_disk`."""
    from datasets import Dataset, DatasetDict

    DatasetDict(
        {
            name: Dataset.from_list(list(rows), features=features_for(name, rows))
            for name, rows in _non_empty(splits)
        }
    ).save_to_disk(str(folder))
    return folder


def _swap_into_place(staging: Path, folder: Path) -> None:
    """Rename `staging` to `folder`; an existing `folder` is replaced only once staging is whole."""
    if not folder.exists():
        staging.rename(folder)
        return
    retired = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex}")
    folder.rename(retired)
    try:
        staging.rename(folder)
    except BaseException:
        retired.rename(folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def write_all(splits: Splits, card_text: str, folder: Path) -> dict[str, Path]:
    """Write every format and the card into `folder`, all or nothing.

    Everything is written into a hidden sibling folder first and renamed into place at the end,
    so a crash leaves either no dataset or a whole one (and perhaps a `.<name>.tmp-*` sibling to
    remove). An existing `folder` is replaced whole: a retried build writes its dataset again
    rather than failing on what an earlier attempt left. Refuses splits without any row.
    """
    if not _non_empty(splits):
        raise ValueError("no rows to write: every split is empty")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex}")
    staging.mkdir()
    try:
        write_jsonl(splits, staging / "jsonl")
        write_parquet(splits, staging / "parquet")
        write_hf_dataset(splits, staging / "hf")
        (staging / CARD_NAME).write_text(card_text, encoding="utf-8")
        _swap_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "jsonl": folder / "jsonl",
        "parquet": folder / "parquet",
        "hf": folder / "hf",
        "card": folder / CARD_NAME,
    }


def _is_map_cache(path: Path) -> bool:
    # `Dataset.map` on a `load_from_disk` dataset (TRL tokenizing for training) caches its
    # results beside the data as cache-<fingerprint>.arrow: derived files, not the dataset.
    return path.name.startswith("cache-") and path.suffix == ".arrow"


def zip_format(folder: Path, fmt: str, target: Path) -> Path:
    """A zip of one format's files and the card, stored as `<fmt>/...` and `README.md`.

    Left out: the `cache-*.arrow` files that training from `hf/` leaves behind. Written under a
    temporary name and renamed, so a download never finds half a zip.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (formats: {', '.join(FORMATS)})")
    source = folder / fmt
    if not source.is_dir():
        raise FileNotFoundError(f"{source} does not exist")
    partial = target.with_name(f".{target.name}.part-{uuid.uuid4().hex}")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(source.rglob("*")):
                if path.is_file() and not _is_map_cache(path):
                    archive.write(path, path.relative_to(folder).as_posix())
            card = folder / CARD_NAME
            if card.is_file():
                archive.write(card, CARD_NAME)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def read_preview(folder: Path, split: str, limit: int) -> list[dict[str, Any]]:
    """The first `limit` rows of a split, from its JSON lines; [] for an empty split."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split '{split}' (splits: {', '.join(SPLIT_NAMES)})")
    path = folder / "jsonl" / f"{split}.jsonl"
    if limit <= 0 or not path.is_file():
        return []
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                rows.append(json.loads(line))
                if len(rows) >= limit:
                    break
    return rows
