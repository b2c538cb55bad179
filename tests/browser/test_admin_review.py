"""The clinician's admin list fits a 1280 px screen; the dashboard draws without a CDN."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from tests.factories import PredictionFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def clinician(transactional_db) -> User:
    user = User.objects.create_user(username="clinician", password="pw-clinic-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_prediction"))
    PredictionFactory.create_batch(8, segmentation="automatic", risk_level="high", risk_score=0.8)
    PredictionFactory.create_batch(5, model_version="conjunctiva-2026-11-30-abcdef")
    return user


def sign_in(page) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", "clinician")
    page.fill("#id_password", "pw-clinic-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_the_prediction_list_fits_1280_px(new_page, clinician, artifacts):
    page = new_page(viewport={"width": 1280, "height": 800})
    sign_in(page)
    page.goto("/admin/predictions/prediction/")
    page.locator("#result_list").wait_for()
    page.screenshot(path=str(artifacts / "admin-predictions-1280.png"))
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # The table itself, not only the page: the admin scrolls a wide table in its box.
    table_overflow = page.evaluate(
        "(() => { const t = document.querySelector('#result_list');"
        " return t.scrollWidth - t.parentElement.clientWidth; })()"
    )
    assert table_overflow <= 0
    row_heights = page.evaluate(
        "[...document.querySelectorAll('#result_list tbody tr')].map(r => r.offsetHeight)"
    )
    assert max(row_heights) < 50  # no cell wraps onto a second line
    headers = page.locator("#result_list thead th").all_inner_texts()
    assert any("SEGMENTATION" in h.upper() for h in headers)


def test_the_dashboard_renders_its_bars(new_page, clinician, artifacts):
    page = new_page(viewport={"width": 1280, "height": 900})
    sign_in(page)
    page.goto("/admin/predictions/prediction/dashboard/")
    assert page.locator(".dashboard-bars rect").count() >= 2
    page.screenshot(path=str(artifacts / "admin-dashboard-1280.png"), full_page=True)
