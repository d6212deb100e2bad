"""The README's picture of a first run: the default constitution, the built-in example prompts
and the default model (SmolLM2-135M-Instruct) with the form's defaults, from the browser.

Starts the app as the tests do (`cai init`, uvicorn, a celery worker; tests/live.py), launches a
run of a few sampled prompts from the Generate form as it is filled in, waits for it, and takes
`docs/first-run.png` of one trace's page. Needs Chromium (`apt-get install chromium`); with
llama-cpp-python installed (`make install-llama`) the GGUF runs on llama.cpp, in about a minute.

    .venv/bin/python -m docs.first_run_screenshot --prompts 3
"""

import argparse
import re
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_prompt_import import sign_in
from tests.live import live_app

OUT = Path(__file__).resolve().parent / "first-run.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--trace", type=int, default=1, help="which trace of the run (1 = first)")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="first-run-"))
    with (
        live_app(
            folder,
            database_url=f"sqlite:///{folder / 'cai.sqlite'}",
            broker_url=f"sqla+sqlite:///{folder / 'broker.sqlite'}",
        ) as app,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_context(
            base_url=app.base_url, viewport={"width": 1280, "height": 1000}
        ).new_page()
        sign_in(page)
        page.goto("/generate")
        page.select_option("select[name=constitution_version_id]", label="Default constitution v1")
        page.select_option("select[name=prompt_set_id]", label="Example prompts (built-in) (50)")
        # Choosing the model fills in its sampling settings; nothing else is changed.
        page.select_option("select[name=model_id]", label="SmolLM2-135M-Instruct")
        page.fill("input[name=sample_size]", str(args.prompts))
        expect(page.locator("#estimate")).to_contain_text("new tokens")  # the estimate has come
        page.click("button:has-text('Start the run')")
        page.wait_for_url(re.compile(r"/jobs/\d+$"))
        expect(page.locator("#job-status")).to_have_attribute(
            "data-status", "succeeded", timeout=args.timeout * 1000
        )
        page.click("text=All traces of this run")
        page.locator("a[href^='/traces/']").nth(args.trace - 1).click()
        page.wait_for_url(re.compile(r"/traces/\d+"))
        page.screenshot(path=str(OUT), full_page=False)
        browser.close()
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
