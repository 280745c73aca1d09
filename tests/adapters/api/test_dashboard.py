"""The dashboard in a real headless browser (Debian's chromium driven by Playwright) against
the real processes: sign in with an admin key, read the metrics, the chart and the timeline,
open a diff, roll back with a confirmation; a plain key sees no Roll back and is refused.
Screenshots (desktop and phone width) are kept as test artifacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.api.conftest import ApiProcesses, artifacts_dir, bearer

pytestmark = pytest.mark.parametrize("stack", ["services"], indirect=True)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("EVOBOT_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # Playwright drives the system browser: no browser download (`playwright install`)
        launched = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _evolved_agent(api: ApiProcesses) -> tuple[str, str]:
    """An agent at v2 after a comment, with a rating on each version."""
    agent, key = await api.create_agent("shopco", domain="retail")
    agent_id = agent["instance_id"]
    first = await api.execute(agent_id, key, "Which laptop is best for travel?")
    await api.web.post(f"/v1/agents/{agent_id}/feedback", headers=bearer(key), json={
        "execution_id": first["execution_id"], "rating": 1,
        "comment": "answer in Spanish please"})

    async def at_v2() -> bool:
        return (await api.state(agent_id, key))["version"] == 2

    await api.until(at_v2, "the evolution to v2")
    second = await api.execute(agent_id, key, "Which phone has the best camera?")
    await api.web.post(f"/v1/agents/{agent_id}/feedback", headers=bearer(key), json={
        "execution_id": second["execution_id"], "rating": 5})
    return agent_id, key


async def test_dashboard_in_a_real_browser(api: ApiProcesses, browser: Any,
                                           tmp_path: Path) -> None:
    agent_id, admin_key = await _evolved_agent(api)
    member_key = (await api.cli("apikey", "create", agent_id)).splitlines()[-1]
    shots = artifacts_dir(tmp_path)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()

    await _sign_in(page, api.base_url, admin_key)
    assert await page.inner_text("#active-version") == "v2"
    assert await page.locator("#chart svg circle.point.rating").count() == 2
    assert await page.locator("#chart svg circle.point.success").count() == 2
    timeline = page.locator("#timeline li.decision-promoted")
    assert await timeline.count() == 1
    assert "v1 → v2" in await timeline.inner_text()
    await page.screenshot(path=str(shots / "dashboard-desktop.png"), full_page=True)

    # open a diff
    diff = timeline.locator("details.diff")
    assert not await diff.locator("pre").is_visible()
    await diff.locator("summary").click()
    assert await diff.locator("pre .add", has_text="Answer in Spanish please.").is_visible()

    # readable on a phone: nothing wider than the screen
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(shots / "dashboard-phone.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})

    await _roll_back(page)
    assert (await api.state(agent_id, admin_key))["version"] == 1

    await page.click("text=Sign out")
    await page.wait_for_url("**/dashboard/login")
    await _plain_key_is_refused(page, api.base_url, member_key, agent_id)
    await context.close()


async def _sign_in(page: Any, base_url: str, key: str) -> None:
    await page.goto(f"{base_url}/dashboard")
    await page.wait_for_url("**/dashboard/login")
    await page.fill("#api_key", key)
    await page.click("button:has-text('Sign in')")
    await page.wait_for_url("**/dashboard/agents/**")


async def _roll_back(page: Any) -> None:
    await page.click("a:has-text('Roll back to v1')")
    await page.wait_for_url("**/rollback?to=1")
    assert "Roll back to v1?" in await page.inner_text("h1")
    await page.click("#confirm-rollback")
    await page.wait_for_url("**?done=v1")
    assert await page.inner_text("[role=status]") == "Rolled back: v1 is active."
    assert await page.inner_text("#active-version") == "v1"


async def _plain_key_is_refused(page: Any, base_url: str, key: str, agent_id: str) -> None:
    await _sign_in(page, base_url, key)
    assert await page.locator("text=Roll back to").count() == 0
    response = await page.goto(f"{base_url}/dashboard/agents/{agent_id}/rollback?to=2")
    assert response.status == 403
    assert "Only an admin key can roll back" in await page.inner_text("[role=alert]")
