"""The admin for each role: prediction pages read-only, the audit log for compliance."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from predictions.models import Prediction
from tests.audit.conftest import ROLES, browser_for
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db

ADMIN = "/admin/"
PREDICTIONS = "/admin/predictions/prediction/"
AUDITLOG = "/admin/auditlog/logentry/"

# Who may open what: anonymous users and patients (not staff) are sent to the login.
LOGIN = "login"
EXPECTED: dict[str, dict[str, int | str]] = {
    "index": {"clinical_staff": 200, "compliance_officer": 200, "superuser": 200},
    "prediction_list": {"clinical_staff": 200, "compliance_officer": 403, "superuser": 200},
    "prediction_view": {"clinical_staff": 200, "compliance_officer": 403, "superuser": 200},
    "prediction_add": {"clinical_staff": 403, "compliance_officer": 403, "superuser": 403},
    "prediction_delete": {"clinical_staff": 403, "compliance_officer": 403, "superuser": 200},
    "prediction_history": {"clinical_staff": 200, "compliance_officer": 403, "superuser": 200},
    "auditlog_list": {"clinical_staff": 403, "compliance_officer": 200, "superuser": 200},
    "auditlog_view": {"clinical_staff": 403, "compliance_officer": 200, "superuser": 200},
}


def url_of(page: str, prediction: Prediction) -> str:
    entry = LogEntry.objects.get_for_object(prediction).get()
    return {
        "index": ADMIN,
        "prediction_list": PREDICTIONS,
        "prediction_view": f"{PREDICTIONS}{prediction.pk}/change/",
        "prediction_add": f"{PREDICTIONS}add/",
        "prediction_delete": f"{PREDICTIONS}{prediction.pk}/delete/",
        "prediction_history": f"{PREDICTIONS}{prediction.pk}/history/",
        "auditlog_list": AUDITLOG,
        "auditlog_view": f"{AUDITLOG}{entry.pk}/change/",
    }[page]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_each_role_against_each_admin_page(role, page, user_for):
    prediction = PredictionFactory.create()
    response = browser_for(user_for(role)).get(url_of(page, prediction))
    expected = EXPECTED[page].get(role, LOGIN)
    if expected == LOGIN:
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    else:
        assert response.status_code == expected


def test_the_prediction_list_shows_the_review_columns(clinical_staff):
    PredictionFactory.create(
        risk_level="high", risk_score=0.87, site="conjunctiva", model_version="m-1"
    )
    html = browser_for(clinical_staff).get(PREDICTIONS).content.decode()
    for text in ("high", "0.87", "conjunctiva", "m-1", "column-created", "column-segmented"):
        assert text in html


def test_the_prediction_view_is_read_only(clinical_staff):
    prediction = PredictionFactory.create()
    browser = browser_for(clinical_staff)
    page = browser.get(f"{PREDICTIONS}{prediction.pk}/change/").content.decode()
    assert 'name="_save"' not in page and prediction.message_id in page
    assert "Owner" not in page.replace("Owner hash", "")  # no user identity shown
    response = browser.post(f"{PREDICTIONS}{prediction.pk}/change/", {"risk_level": "low"})
    assert response.status_code == 403
    assert Prediction.objects.get(pk=prediction.pk).risk_level == prediction.risk_level


def test_even_a_superuser_cannot_edit_a_prediction(superuser):
    prediction = PredictionFactory.create(risk_level="high")
    browser_for(superuser).post(f"{PREDICTIONS}{prediction.pk}/change/", {"risk_level": "low"})
    assert Prediction.objects.get(pk=prediction.pk).risk_level == "high"


@pytest.mark.parametrize(
    ("query", "found"),
    [({"q": "MSG"}, True), ({"q": "req-find-me-01"}, True), ({"q": "pred_nothing"}, False)],
)
def test_it_searches_by_message_id_and_request_id(query, found, clinical_staff):
    target = PredictionFactory.create(request_id="req-find-me-01")
    PredictionFactory.create_batch(2)
    if query["q"] == "MSG":
        query = {"q": target.message_id}
    response = browser_for(clinical_staff).get(PREDICTIONS, query)
    assert [p.pk for p in response.context["cl"].result_list] == ([target.pk] if found else [])


@pytest.mark.parametrize(
    "query",
    [
        {"risk_level__exact": "high"},
        {"site__exact": "conjunctiva"},
        {"model_version__exact": "m-2"},
    ],
)
def test_it_filters_by_risk_level_site_and_model_version(query, clinical_staff):
    target = PredictionFactory.create(risk_level="high", model_version="m-2", site="conjunctiva")
    PredictionFactory.create(risk_level="low", model_version="m-1", site="fingernail")
    response = browser_for(clinical_staff).get(PREDICTIONS, query)
    assert [p.pk for p in response.context["cl"].result_list] == [target.pk]


def test_it_drills_down_by_date(clinical_staff):
    prediction = PredictionFactory.create()
    day = prediction.created_at
    response = browser_for(clinical_staff).get(
        PREDICTIONS,
        {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day},
    )
    assert response.status_code == 200
    assert [p.pk for p in response.context["cl"].result_list] == [prediction.pk]


@pytest.mark.parametrize("rows", [3, 30])
def test_the_prediction_list_query_count_does_not_grow_with_rows(
    rows, clinical_staff, django_assert_num_queries
):
    PredictionFactory.create_batch(rows, model_version="m-1")
    browser = browser_for(clinical_staff)
    browser.get(PREDICTIONS)  # warm the content type cache
    # session, user, 2 permission reads, count, page, the audit of the page (4, see
    # test_access_log), date hierarchy (2), filter choices for model version (1): the site
    # filter's choices are the known sites, not a query.
    with django_assert_num_queries(13):
        assert browser.get(PREDICTIONS).status_code == 200


def test_a_superuser_delete_is_audited_without_the_clinical_content(superuser):
    prediction = PredictionFactory.create(risk_level="high", recommendation="See a doctor.")
    response = browser_for(superuser).post(
        f"{PREDICTIONS}{prediction.pk}/delete/", {"post": "yes"}, HTTP_X_REQUEST_ID="req-del-000001"
    )
    assert response.status_code == 302
    assert not Prediction.objects.filter(pk=prediction.pk).exists()
    entry = LogEntry.objects.get(action=LogEntry.Action.DELETE)
    assert (entry.object_repr, entry.actor, entry.cid) == (
        prediction.message_id,
        superuser,
        "req-del-000001",
    )
    assert entry.changes is None and entry.additional_data == {"reason": "admin"}


def test_a_superuser_bulk_delete_is_audited(superuser):
    doomed = PredictionFactory.create_batch(3)
    response = browser_for(superuser).post(
        PREDICTIONS,
        {"action": "delete_selected", "_selected_action": [p.pk for p in doomed], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Prediction.objects.exists()
    deleted = LogEntry.objects.filter(action=LogEntry.Action.DELETE)
    assert sorted(deleted.values_list("object_repr", flat=True)) == sorted(
        p.message_id for p in doomed
    )


def test_clinical_staff_cannot_delete_through_the_bulk_action(clinical_staff):
    doomed = PredictionFactory.create()
    response = browser_for(clinical_staff).post(
        PREDICTIONS, {"action": "delete_selected", "_selected_action": [doomed.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302, 403)
    assert Prediction.objects.filter(pk=doomed.pk).exists()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("clinical_staff", False), ("compliance_officer", True), ("superuser", True)],
)
def test_the_audit_export_action_is_for_compliance(role, allowed, user_for):
    PredictionFactory.create_batch(2)
    ids = list(LogEntry.objects.values_list("pk", flat=True))
    response = browser_for(user_for(role)).post(
        AUDITLOG, {"action": "export_csv", "_selected_action": ids}
    )
    if not allowed:
        assert response.status_code in (302, 403)
        assert not LogEntry.objects.filter(object_pk="export").exists()
        return
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert len(body.strip().splitlines()) == 1 + len(ids)
    export = LogEntry.objects.get(object_pk="export")
    assert export.actor == user_for(role)
    assert export.additional_data["via"] == "admin"


def test_the_audit_log_list_query_count_does_not_grow_with_rows(
    compliance_officer, django_assert_max_num_queries
):
    browser = browser_for(compliance_officer)

    def queries_for_list() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert browser.get(AUDITLOG).status_code == 200
        return len(ctx)

    PredictionFactory.create_batch(3)
    queries_for_list()  # warm caches
    few = queries_for_list()
    PredictionFactory.create_batch(40)
    assert queries_for_list() == few
    with django_assert_max_num_queries(12):
        browser.get(AUDITLOG)
