"""A clone with nothing beside it must pass its tests: only the `shared_data` fixtures (in
tests/conftest.py) may reach for the real data kept in `../shared/data`."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# The ways a test could name the folder: a path string, path parts, or conftest's constant.
NAMES_SHARED_DATA = re.compile(r"shared/data|[\"']shared[\"']\s*/\s*[\"']data[\"']|SHARED_DATA")


def offenders(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "conftest.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if NAMES_SHARED_DATA.search(line) and path.resolve() != Path(__file__).resolve():
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_no_test_file_names_the_shared_data_outside_its_fixture() -> None:
    found = offenders(TESTS)
    assert not found, "use the shared_data fixture instead:\n" + "\n".join(found)


def test_the_check_catches_a_direct_path(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('SHARED_DATA = "../shared/data"\n')
    (tmp_path / "test_x.py").write_text('DATA = Path("..") / "shared" / "data" / "x.jsonl"\n')
    (tmp_path / "test_y.py").write_text('open("../shared/data/hh-rlhf/x.gz")\n')
    assert [line.split(":")[0] for line in offenders(tmp_path)] == ["test_x.py", "test_y.py"]
