"""Issue 31 point 9 in a real browser: admins edit settings in the app, at desktop and 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.auth.models import AdminChange, ApiToken
from app.dealers.models import Rooftop
from app.deps import Database
from tests.app.web.conftest import PASSWORD, World
from tests.support import ServedApp

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots31b")
ADMIN_PAGES = (
    "/admin",
    "/admin/rooftops/bayview-toyota",
    "/admin/templates?rooftop=bayview-toyota&kind=ready_for_pickup&language=es",
    "/admin/changes",
)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, email: str, then: str) -> None:
    page.goto(f"/login?next={then}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.fixture
def phone(browser: Any, web: ServedApp) -> Iterator[Any]:
    context = browser.new_context(
        base_url=web.url, viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def page_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_admin_maps_a_status_and_a_reload_posts_nothing(
    world: World, page: Any, database: Database
) -> None:
    log_in(page, "admin@bayview.example", "/admin/rooftops/bayview-toyota")
    page.goto("/admin/rooftops/bayview-toyota")
    page.get_by_label("New raw status 1", exact=True).fill("HOLD")
    page.get_by_label("Stage for new raw status 1").select_option("awaiting_parts")
    page.get_by_role("button", name="Save status map").click()
    page.wait_for_url("**/admin/rooftops/bayview-toyota")
    assert "Saved the status map of Bayview Toyota." in page.get_by_role("status").inner_text()
    shot(page, "admin-rooftop-saved-desktop")
    page.reload()
    assert page.get_by_role("status").count() == 0
    with database.transaction() as session:
        rooftop = session.get_one(Rooftop, world.toyota_id)
        assert rooftop.config["status_map"]["HOLD"] == "awaiting_parts"
        assert session.scalar(select(func.count()).select_from(AdminChange)) == 1
    page.goto("/admin/changes")
    assert "rooftop bayview-toyota: status_map" in page.locator("table.changes").inner_text()
    shot(page, "admin-changes-desktop")


def test_a_new_token_is_shown_once_and_refresh_does_not_create_another(
    world: World, page: Any, database: Database
) -> None:
    log_in(page, "admin@bayview.example", "/admin")
    page.goto("/admin#tokens")
    page.get_by_label("Name", exact=True).last.fill("bi-tool")
    page.locator("#t-role").select_option("director")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url("**/admin")
    token = page.locator("#new-token").input_value()
    assert token.startswith("pw_")
    shot(page, "admin-token-desktop")
    page.reload()
    page.wait_for_selector("#tokens")
    assert page.locator("#new-token").count() == 0
    with database.transaction() as session:
        named = select(func.count()).select_from(ApiToken).where(ApiToken.name == "bi-tool")
        assert session.scalar(named) == 1


def test_a_template_is_edited_with_its_segments_counted(world: World, page: Any) -> None:
    log_in(page, "admin@bayview.example", "/admin/templates")
    page.goto(ADMIN_PAGES[2])
    assert "2 SMS segments (GSM-7)" in page.locator("#segments").inner_text()
    page.get_by_label("Text of ready for pickup (es)").fill(
        "{{ first_name }}: su auto ya puede recogerse."
    )
    page.get_by_role("button", name="Preview").click()
    assert "Sam: su auto ya puede recogerse." in page.locator(".bubble").inner_text()
    assert "1 SMS segment (GSM-7)" in page.locator("#segments").inner_text()
    page.get_by_role("button", name="Save for Bayview Toyota").click()
    page.wait_for_url("**/admin/templates?*")
    assert "Saved the override ready_for_pickup.es" in page.get_by_role("status").inner_text()
    shot(page, "admin-template-saved-desktop")


def test_every_admin_page_fits_a_390_px_phone(world: World, phone: Any) -> None:
    log_in(phone, "admin@bayview.example", "/admin")
    for n, url in enumerate(ADMIN_PAGES):
        phone.goto(url)
        phone.wait_for_load_state()
        shot(phone, f"admin-phone-{n}")
        assert page_width(phone) <= 390, (url, page_width(phone))
    # The user form reads as a form: labels above fields, nothing cut off.
    phone.goto("/admin#users")
    box = phone.get_by_label("DMS advisor id (advisors; the id on their ROs)").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
