"""The vendored chart library (static/vendor/README.md) is here, is the version the README
names, and is served with the right content type and the security headers."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import REPO_ROOT
from tests.web.test_headers import assert_secure

UPLOT = "1.6.32"
VENDOR = REPO_ROOT / "static" / "vendor"


def test_uplot_is_vendored_with_its_licence_and_the_version_the_readme_names() -> None:
    script = (VENDOR / "uplot" / "uPlot.iife.min.js").read_text(encoding="utf-8")
    assert script.startswith(f"/*! https://github.com/leeoniya/uPlot (v{UPLOT}) */")
    # Nothing the CSP would refuse: no eval, no compiled functions.
    assert "eval(" not in script and "new Function" not in script
    assert ".u-legend" in (VENDOR / "uplot" / "uPlot.min.css").read_text(encoding="utf-8")
    assert "MIT License" in (VENDOR / "uplot" / "LICENSE").read_text(encoding="utf-8")
    assert f"## uPlot {UPLOT}" in (VENDOR / "README.md").read_text(encoding="utf-8")


def test_the_chart_files_are_served_as_script_and_style(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    for path, kind in [
        ("/static/vendor/uplot/uPlot.iife.min.js", "javascript"),
        ("/static/vendor/uplot/uPlot.min.css", "text/css"),
        ("/static/charts.js", "javascript"),
        ("/static/curves.js", "javascript"),
        ("/static/eval_charts.js", "javascript"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], (path, response.headers["content-type"])
        assert_secure(response, path)
