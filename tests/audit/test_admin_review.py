"""The clinician's review tools in the admin: segmentation, prefix search, confidence
explained, the CSV export of the filtered list, and the dashboard."""

from __future__ import annotations

import csv
import io

import pytest
from auditlog.models import LogEntry

from tests.audit.conftest import ROLES, browser_for
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db

PREDICTIONS = "/admin/predictions/prediction/"
EXPORT = "/admin/predictions/prediction/export/"
DASHBOARD = "/admin/predictions/prediction/dashboard/"
ALLOWED = {"clinical_staff", "superuser"}


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", [EXPORT, DASHBOARD])
def test_each_role_against_the_export_and_the_dashboard(role, url, user_for):
    PredictionFactory.create()
    response = browser_for(user_for(role)).get(url)
    if role in ALLOWED:
        assert response.status_code == 200
    elif role in ("anonymous", "patient"):
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    else:
        assert response.status_code == 403
        assert not LogEntry.objects.filter(object_repr="predictions export").exists()


def test_the_list_shows_segmentation_and_explains_confidence(clinical_staff):
    PredictionFactory.create(segmentation="automatic", confidence=0.61, risk_score=0.456)
    page = browser_for(clinical_staff).get(PREDICTIONS).content.decode()
    assert ">automatic<" in page
    assert "0.46" in page and "0.456" not in page
    assert 'title="Not the score: how often, on held-out children' in page


def test_it_filters_by_segmentation(clinical_staff):
    target = PredictionFactory.create(segmentation="automatic")
    PredictionFactory.create(segmentation="provided")
    response = browser_for(clinical_staff).get(PREDICTIONS, {"segmentation__exact": "automatic"})
    assert [p.pk for p in response.context["cl"].result_list] == [target.pk]


def test_it_searches_message_ids_by_prefix(clinical_staff):
    target = PredictionFactory.create(message_id="pred_ABCdef123")
    PredictionFactory.create(message_id="pred_ABXdef123")
    response = browser_for(clinical_staff).get(PREDICTIONS, {"q": "pred_ABC"})
    assert [p.pk for p in response.context["cl"].result_list] == [target.pk]


def test_the_detail_page_explains_confidence(clinical_staff):
    row = PredictionFactory.create(confidence=0.61)
    page = browser_for(clinical_staff).get(f"{PREDICTIONS}{row.pk}/change/").content.decode()
    assert "0.61 (Not the score" in page


def test_the_export_is_the_filtered_list_without_image_data_and_is_audited(clinical_staff):
    high = PredictionFactory.create(risk_level="high", risk_score=0.876)
    PredictionFactory.create(risk_level="low", risk_score=0.1)
    response = browser_for(clinical_staff).get(EXPORT, {"risk_level__exact": "high"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body_of(response))))
    assert [r["message_id"] for r in rows] == [high.message_id]
    assert rows[0]["risk_score"] == "0.88"
    for private in ("image_sha256", "owner", "owner_hash", "request_id", "recommendation"):
        assert private not in rows[0]
    entry = LogEntry.objects.get(object_repr="predictions export")
    assert entry.actor == clinical_staff
    assert entry.action == LogEntry.Action.ACCESS
    assert entry.additional_data == {
        "via": "admin", "format": "csv", "filters": "risk_level__exact=high"
    }


def test_the_changelist_links_the_export_with_its_filters(clinical_staff):
    page = browser_for(clinical_staff).get(PREDICTIONS, {"site__exact": "conjunctiva"})
    assert f'href="{EXPORT}?site__exact=conjunctiva"' in page.content.decode()


def test_an_unknown_export_filter_is_a_400(clinical_staff):
    assert browser_for(clinical_staff).get(EXPORT, {"nope__exact": "1"}).status_code == 400


def test_the_dashboard_counts_by_week_risk_site_and_segmentation(clinical_staff):
    PredictionFactory.create_batch(3, risk_level="high", segmentation="automatic")
    PredictionFactory.create(risk_level="low", site="fingernail")
    response = browser_for(clinical_staff).get(DASHBOARD)
    figures = response.context["figures"]
    assert figures.total == 4 and figures.automatic == 3
    [week] = figures.by_risk
    assert week.counts == {"high": 3, "low": 1}
    assert figures.by_site[0].counts == {"conjunctiva": 3, "fingernail": 1}
    page = response.content.decode()
    assert "<svg" in page and "75%" in page
    assert 'src="http' not in page and 'href="http' not in page  # nothing off-site


@pytest.mark.parametrize("rows", [3, 30])
def test_the_dashboard_query_count_does_not_grow_with_rows(
    rows, clinical_staff, django_assert_num_queries
):
    PredictionFactory.create_batch(rows)
    browser = browser_for(clinical_staff)
    browser.get(DASHBOARD)
    # session, user, 2 permission reads, and the three figures.
    with django_assert_num_queries(7):
        assert browser.get(DASHBOARD).status_code == 200


@pytest.mark.parametrize("rows", [3, 30])
def test_the_export_query_count_does_not_grow_with_rows(
    rows, clinical_staff, django_assert_num_queries
):
    PredictionFactory.create_batch(rows)
    browser = browser_for(clinical_staff)
    browser.get(EXPORT)
    # session, user, 2 permission reads, the changelist's filters, the audit entry
    # (content type, insert, chain lock, link, head), the rows in one cursor.
    with django_assert_num_queries(10):
        response = browser.get(EXPORT)
        assert len(body_of(response).splitlines()) == rows + 1
