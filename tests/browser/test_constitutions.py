"""An author creates a constitution, edits and reorders principles, publishes, diffs, imports."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_prompt_import import sign_in
from tests.live import LiveApp

pytestmark = [pytest.mark.browser]

ANTHROPIC = [
    "CritiqueRevisionInstructions.json",
    "RLMadisonInstructions.json",
    "CritiqueRevisionFewShotPrompts.json",
    "RLMadisonFewShotPrompts.json",
]


def principle_keys(page: Any) -> list[str]:
    return page.eval_on_selector_all("#principles > li", "items => items.map(i => i.dataset.key)")


def test_create_edit_reorder_publish_and_diff(page: Any, app: LiveApp) -> None:
    sign_in(page)
    page.fill("input[name=name]", "Browser constitution")
    page.click("button:has-text('Create a draft')")
    page.wait_for_url(re.compile(r"/versions/\d+$"))
    keys = principle_keys(page)
    assert len(keys) >= 12

    # Edit the first principle in place: the row turns into a form and back, with no page load.
    first = page.locator("#principles > li").first
    page.evaluate("window.noReload = true")
    first.locator("a:has-text('Edit')").click()
    form = page.locator("#principles > li.editing")
    form.locator("textarea[name=critique_request]").fill(
        "Point out each way the reply could hurt someone."
    )
    form.locator("textarea[name=critique_request]").press("Tab")
    form.locator("button:has-text('Save')").click()
    page.wait_for_selector(
        "#principles > li:first-child dd.critique:has-text('could hurt someone')"
    )
    assert page.evaluate("window.noReload") is True

    # Validation appears beside the field.
    page.locator("#principles > li").nth(1).locator("a:has-text('Edit')").click()
    page.locator("#principles > li.editing textarea[name=revision_request]").fill("")
    page.locator("#principles > li.editing button:has-text('Save')").click()
    page.wait_for_selector("#principles > li.editing .field-error:has-text('cannot be empty')")
    page.locator("#principles > li.editing a:has-text('Cancel')").click()
    page.wait_for_selector("#principles > li.editing", state="detached")

    # Move the first principle down one place.
    page.locator("#principles > li").first.locator("button[title='Move down']").click()
    # expect() polls from Playwright's side: wait_for_function needs eval, which the CSP forbids.
    expect(page.locator("#principles > li").first).to_have_attribute("data-key", keys[1])
    assert principle_keys(page)[:2] == [keys[1], keys[0]]
    assert page.evaluate("window.noReload") is True

    # Preview shows the turns the model will get.
    page.locator("#principles > li").first.locator("a:has-text('Preview')").click()
    page.wait_for_selector("#principles > li:first-child .preview .turn-box")

    page.fill("input[name=note]", "first version")
    page.click("button:has-text('Publish as a new version')")
    page.wait_for_selector("h1:has-text('v1')")
    assert page.locator("text=Add a principle").count() == 0

    page.click("button:has-text('start a new draft from v1')")
    page.wait_for_selector("h1:has-text('draft')")
    page.fill("#new-principle input[name=key]", "patience")
    page.fill(
        "#new-principle textarea[name=critique_request]", "Say where the reply was impatient."
    )
    page.fill("#new-principle textarea[name=revision_request]", "Rewrite it patiently.")
    page.click("button:has-text('Add the principle')")
    page.wait_for_selector("#principles > li[data-key=patience]")
    page.click("button:has-text('Publish as a new version')")
    page.wait_for_selector("h1:has-text('v2')")

    page.click("text=all versions")
    page.select_option("select[name=a]", label="v1")
    page.select_option("select[name=b]", label="v2")
    page.click("button:has-text('Show the differences')")
    page.wait_for_selector(".diff-item.added[data-key=patience]")
    assert "1 added, 0 removed, 0 changed" in page.inner_text(".summary")


def test_import_anthropics_files(
    page: Any, app: LiveApp, shared_data: Callable[[str], Path]
) -> None:
    files = [str(shared_data(f"cai-paper/prompts/{name}")) for name in ANTHROPIC]
    sign_in(page)
    page.goto("/constitutions/import")
    page.set_input_files("input[name=files]", files)
    page.fill("input[name=name]", "Anthropic's constitution")
    page.click("button:has-text('Import')")
    page.wait_for_url(re.compile(r"/versions/\d+$"))
    assert len(principle_keys(page)) == 16
    # Every principle got its comparison instruction from RLMadisonInstructions.json.
    assert page.locator("#principles > li dd.comparison .hint").count() == 0
    assert page.locator(".few-shot").count() >= 5
