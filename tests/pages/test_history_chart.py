"""The history's chart (inline SVG, shapes and text, a table), labels, local dates,
the privacy page and the favicon."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.utils import timezone

from predictions import charts
from predictions.models import Prediction
from predictions.timezones import COOKIE_NAME, zone_from_cookie
from tests.factories import PredictionFactory
from tests.pages.conftest import csrf_token_from, html_part, logged_in, text_of

pytestmark = pytest.mark.django_db


def made_at(prediction, when: dt.datetime) -> None:
    Prediction.objects.filter(pk=prediction.pk).update(created_at=when)


@pytest.fixture
def three_checks(patient):
    start = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    rows = [
        PredictionFactory.create(owner=patient, risk_score=0.2, risk_level="low"),
        PredictionFactory.create(owner=patient, risk_score=0.55, risk_level="medium"),
        PredictionFactory.create(owner=patient, risk_score=0.9, risk_level="high", label="Amina"),
    ]
    for i, row in enumerate(rows):
        made_at(row, start + dt.timedelta(days=7 * i))
    return rows


def test_the_chart_is_an_inline_svg_with_a_shape_and_a_value_per_point(patient, three_checks):
    html = logged_in(patient).get("/history").content.decode()

    svg = html_part(r'<svg class="chart-svg".*?</svg>', html)
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "style=" not in svg  # the CSP allows no inline style
    for level in ("low", "medium", "high"):
        assert f'class="chart-point chart-{level}"' in svg
    # oldest to newest, each value written beside its marker
    assert re.findall(r'class="chart-value"[^>]*>([0-9.]+)<', svg) == ["0.20", "0.55", "0.90"]
    legend = html_part(r'<ul class="chart-legend">.*?</ul>', html)
    assert "Low risk" in legend and "Medium risk" in legend and "High risk" in legend


def test_markers_differ_by_shape_not_only_colour():
    circle, diamond, triangle = (
        charts.marker_path(s, 10, 10) for s in ("circle", "diamond", "triangle")
    )
    assert circle.count("a") == 2 and "L" not in circle  # two arcs
    assert diamond.count("L") == 3 and "a" not in diamond  # four corners
    assert triangle.count("L") == 2 and "a" not in triangle  # three corners
    assert charts.SHAPES == {"low": "circle", "medium": "diamond", "high": "triangle"}


def test_higher_scores_are_drawn_higher_and_later_checks_further_right():
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    chart = charts.score_chart(
        [charts.Sample(t + dt.timedelta(days=1), 0.9, "high"), charts.Sample(t, 0.1, "low")]
    )
    assert chart is not None
    low, high = chart.points
    assert (low.value_text, high.value_text) == ("0.10", "0.90")
    assert high.y < low.y and high.x > low.x
    assert charts.score_chart([]) is None


def test_the_table_lists_the_same_values_with_the_label(patient, three_checks):
    html = logged_in(patient).get("/history").content.decode()

    table = html_part(r'<table>.*?</table>', html)
    cells = re.findall(r"<td>(.*?)</td>", table, re.S)
    assert "0.90" in cells and "High risk" in cells and "Amina" in cells
    assert "For Amina" in text_of(logged_in(patient).get("/history"))


def test_there_is_no_hb_chart_until_rows_carry_an_estimate(patient, three_checks):
    response = logged_in(patient).get("/history")

    assert response.context["hb_chart"] is None
    assert "Estimated haemoglobin" not in text_of(response)


def test_the_hb_chart_lays_out_estimates_in_g_per_dl():
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    chart = charts.hb_chart([charts.Sample(t, 9.5), charts.Sample(t + dt.timedelta(days=3), 12.25)])
    assert chart is not None
    assert [p.value_text for p in chart.points] == ["9.5", "12.2"]
    assert [tick.text for tick in chart.y_ticks] == ["4.0", "8.0", "12.0", "16.0"]


def test_dates_are_shown_in_the_patients_time_zone(patient, three_checks):
    client = logged_in(patient)
    utc = text_of(client.get("/history"))
    client.cookies[COOKIE_NAME] = "Asia/Tokyo"
    tokyo = text_of(client.get("/history"))

    # 1 March 23:30 UTC is already 2 March in Tokyo.
    assert "March 1, 2026" in utc and "Dates and times in UTC" in utc
    assert "March 2, 2026, 8:30 a.m." in tokyo and "Dates and times in Asia/Tokyo" in tokyo
    result = client.get(f"/results/{three_checks[0].message_id}")
    assert "(Asia/Tokyo)" in text_of(result)


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../etc/passwd", "", "x" * 200])
def test_an_unknown_time_zone_falls_back_to_utc(value, patient, three_checks):
    assert zone_from_cookie(value) is None
    client = logged_in(patient)
    client.cookies[COOKIE_NAME] = value
    assert "Dates and times in UTC" in text_of(client.get("/history"))


def test_the_owner_labels_a_result_and_it_stays_out_of_the_audit_trail(patient):
    mine = PredictionFactory.create(owner=patient)
    client = logged_in(patient)
    before = LogEntry.objects.count()

    response = client.post(
        f"/results/{mine.message_id}/label",
        {"label": "  Amina  ", "csrfmiddlewaretoken": csrf_token_from(client, "/history")},
    )

    assert response["Location"] == f"/results/{mine.message_id}"
    mine.refresh_from_db()
    assert mine.label == "Amina"
    assert LogEntry.objects.count() == before  # a label change writes no audit entry
    assert "Amina" not in str(list(LogEntry.objects.values()))
    page = client.get(f"/results/{mine.message_id}")
    assert "The label was saved." in text_of(page)
    assert 'value="Amina"' in page.content.decode()


def test_a_blank_label_clears_it_and_a_long_one_is_refused(patient):
    mine = PredictionFactory.create(owner=patient, label="Amina")
    client = logged_in(patient)
    token = csrf_token_from(client, "/history")

    client.post(f"/results/{mine.message_id}/label", {"label": " ", "csrfmiddlewaretoken": token})
    mine.refresh_from_db()
    assert mine.label is None

    client.post(
        f"/results/{mine.message_id}/label", {"label": "x" * 41, "csrfmiddlewaretoken": token}
    )
    mine.refresh_from_db()
    assert mine.label is None


@pytest.mark.parametrize("who", ["other_patient", "staff"])
def test_only_the_owner_labels(who, request, patient):
    mine = PredictionFactory.create(owner=patient)
    client = logged_in(request.getfixturevalue(who))

    response = client.post(
        f"/results/{mine.message_id}/label",
        {"label": "Intruder", "csrfmiddlewaretoken": csrf_token_from(client, "/history")},
    )

    assert response.status_code == 404
    mine.refresh_from_db()
    assert mine.label is None


def test_an_anonymous_browser_cannot_label(client):
    checked = PredictionFactory.create(owner=None)
    response = client.post(
        f"/results/{checked.message_id}/label",
        {"label": "Amina", "csrfmiddlewaretoken": csrf_token_from(client, "/history")},
    )

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    checked.refresh_from_db()
    assert checked.label is None


def test_staff_do_not_see_a_label_on_someone_elses_result(staff, patient):
    theirs = PredictionFactory.create(owner=patient, label="Amina")

    assert "Amina" not in logged_in(staff).get(f"/results/{theirs.message_id}").content.decode()


def test_the_label_is_not_in_the_api_or_the_admin(staff, patient):
    from tests.conftest import client_for

    theirs = PredictionFactory.create(owner=patient, label="Amina")
    assert "label" not in client_for(patient).get(f"/api/results/{theirs.message_id}").json()
    from predictions.admin import PredictionAdmin

    assert "label" not in PredictionAdmin.list_display
    assert "label" not in PredictionAdmin.fields


def test_the_print_view_has_a_print_stylesheet_and_button(patient, three_checks):
    html = logged_in(patient).get("/history").content.decode()

    assert "css/patient.css" in html and "data-print" in html
    from tests.conftest import REPO_ROOT

    css = (REPO_ROOT / "static" / "css" / "patient.css").read_text()
    assert "@media print" in css and ".no-print" in css


def test_the_privacy_page_says_what_is_kept_and_for_how_long(client, settings):
    settings.AUDITLOG_RETENTION_DAYS = 180
    text = text_of(client.get("/privacy"))

    assert "never stored" in text
    assert "until you delete it" in text
    assert "IP address" in text
    assert "kept for 180 days" in text
    assert 'href="/privacy"' in client.get("/").content.decode()


def test_the_privacy_page_is_in_french(settings):
    text = text_of(Client(headers={"accept-language": "fr"}).get("/privacy"))

    assert "jamais enregistrée" in text


def test_there_is_a_favicon(client):
    html = client.get("/").content.decode()
    assert 'rel="icon"' in html and "favicon.svg" in html
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("favicon.ico")
    from tests.conftest import REPO_ROOT

    assert (REPO_ROOT / "static" / "favicon.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"


def test_the_history_page_queries_do_not_grow_with_the_results(patient, django_assert_num_queries):
    PredictionFactory.create_batch(30, owner=patient, label="Amina")
    client = logged_in(patient)
    client.get("/")
    now = timezone.now()
    assert now

    with django_assert_num_queries(5):  # session, user, count, page, chart series
        client.get("/history")
