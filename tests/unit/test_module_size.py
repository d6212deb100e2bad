"""No module in app/ or worker/ grows past a size one can hold in one's head (issue 12)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 400
CHECKED = ("app", "worker")


def modules_over(root: Path, limit: int = MAX_LINES) -> list[str]:
    """'path (N lines)' for each .py file under `root`'s app/ and worker/ over `limit` lines."""
    found = []
    for folder in CHECKED:
        for path in sorted((root / folder).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                found.append(f"{path.relative_to(root)} ({lines} lines)")
    return found


def test_no_module_is_over_400_lines() -> None:
    over = modules_over(REPO)
    assert not over, f"over {MAX_LINES} lines; split by idea: " + ", ".join(over)


def test_the_check_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "app" / "deep").mkdir(parents=True)
    (tmp_path / "worker").mkdir()
    (tmp_path / "app" / "deep" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "app" / "short.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "worker" / "notes.txt").write_text("x\n" * 1000)
    assert modules_over(tmp_path) == [f"{Path('app/deep/long.py')} ({MAX_LINES + 1} lines)"]
