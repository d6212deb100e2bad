"""The web process never imports the model stack: it starts fast and stays small."""

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

HEAVY = ["torch", "transformers", "trl", "worker"]


def test_the_web_app_imports_no_model_stack_and_no_worker_code(tmp_path: object) -> None:
    code = (
        "import sys, json\n"
        "from app.main import create_app\n"
        "create_app()\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    env = {"DATA_DIR": str(tmp_path), "ENVIRONMENT": "test", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_check_would_see_torch_if_it_were_imported(tmp_path: object) -> None:
    code = "import sys, torch\nprint('torch' in sys.modules)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
