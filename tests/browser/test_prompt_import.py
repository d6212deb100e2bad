"""A person signs in, imports the HH-RLHF file, watches the job finish, and searches the prompts."""

import gzip
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO_ROOT
from tests.live import ADMIN_PASSWORD, LiveApp

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def sign_in(page: Any, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page.goto("/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/constitutions$"))


def test_import_watch_the_job_and_search(
    page: Any,
    app: LiveApp,
    tmp_path: Path,
    shared_data_or_none: Callable[[str], Path | None],
) -> None:
    upload = shared_data_or_none("hh-rlhf/harmless-base-test-dev.jsonl.gz")
    if upload is None:
        upload = tmp_path / "small.jsonl.gz"
        # Every other prompt mentions a lock, so the search below matches some, not all.
        topics = ["pick lock number", "bake loaf number"]
        rows = [
            json.dumps({"chosen": f"\n\nHuman: How do I {topics[i % 2]} {i}?\n\nAssistant: no"})
            for i in range(30)
        ]
        upload.write_bytes(gzip.compress("\n".join(rows).encode()))
    sign_in(page)
    page.click("header >> text=Prompt sets")
    page.click("text=Import a prompt set")
    page.fill("input[name=name]", "HH harmless dev")
    page.select_option("select[name=format]", "hh-rlhf")
    page.set_input_files("input[name=file]", str(upload))
    page.click("button:has-text('Import')")

    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    # The status fragment polls itself until the worker has finished the import.
    page.wait_for_selector('#job-status[data-status="succeeded"]', timeout=90_000)
    assert "imported" in page.inner_text("#job-status")
    page.click("text=Open the imported prompt set")
    page.wait_for_url(re.compile(r"/prompt-sets/\d+"))
    total = int(re.search(r"(\d+) prompts", page.inner_text("#results .count")).group(1))  # type: ignore[union-attr]
    assert total > 0
    assert page.locator("ol.prompts > li").count() == min(50, total)

    page.fill("input[name=q]", "lock")
    # expect() polls from Playwright's side: wait_for_function would need eval (the CSP forbids it).
    expect(page.locator("#results .count")).to_contain_text("matching")
    count_text = page.inner_text("#results .count")
    matches = int(count_text.split()[0])
    assert 0 < matches < total
    texts = page.locator("#results .prompt-text").all_inner_texts()
    assert texts and all("lock" in t.lower() for t in texts)
    assert "q=lock" in page.url  # the search is in the address, so it can be shared

    if os.environ.get("UPDATE_SCREENSHOT"):
        # The README's picture shows the project's own example prompts, not the HH-RLHF data.
        page.goto("/prompt-sets")
        page.click("text=Example prompts (built-in)")
        page.fill("input[name=q]", "how")
        expect(page.locator("#results .count")).to_contain_text("matching")
        page.screenshot(path=str(REPO_ROOT / "docs" / "screenshot.png"), full_page=False)


def test_a_bad_file_is_reported_on_the_form(page: Any, app: LiveApp, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": "fine too"}\n{"prompt": \n')
    sign_in(page)
    page.goto("/prompt-sets/import")
    page.fill("input[name=name]", "Broken set")
    page.select_option("select[name=format]", "jsonl")
    page.fill("input[name=field]", "prompt")
    page.set_input_files("input[name=file]", str(bad))
    page.click("button:has-text('Import')")
    error = page.inner_text(".field-error[role=alert]")
    assert "line 3" in error and "bad.jsonl" in error
    assert page.input_value("input[name=name]") == "Broken set"
    assert page.input_value("input[name=field]") == "prompt"


def test_an_admin_adds_an_author_who_can_then_import(page: Any, app: LiveApp) -> None:
    sign_in(page)
    page.goto("/admin/users")
    page.fill("form[action='/admin/users'] input[name=username]", "dana")
    page.fill("form[action='/admin/users'] input[name=password]", "dana's password")
    page.select_option("form[action='/admin/users'] select[name=role]", "author")
    page.click("button:has-text('Add user')")
    page.wait_for_selector("td:has-text('dana')")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login"))
    sign_in(page, "dana", "dana's password")
    page.goto("/prompt-sets")
    assert page.locator("text=Import a prompt set").count() == 1
    assert page.locator("header >> text=Users").count() == 0
    page.goto("/admin/users")
    assert "403" in page.inner_text("main")
