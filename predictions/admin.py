"""Admin for staff: predictions read-only (the audit log's admin is
`predictions.audit.admin`, imported here so that Django's autodiscovery finds it).

A prediction is a record of what the model said: nobody adds or edits one here, and
only superusers delete (through `retention.predictions_delete`, which writes a DELETE
entry without the clinical content). Opening a prediction, or a page of the list, is
an audited ACCESS event.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html

from predictions import dashboard, prediction_export, retention
from predictions.audit import admin as audit_admin  # noqa: F401  (registers LogEntry's admin)
from predictions.audit.access import predictions_accessed, predictions_exported
from predictions.audit.trail import remote_addr_of
from predictions.models import Prediction, RiskLevel

# The app list beside every admin page takes ~300 px of a 1280 px screen, and the
# prediction list needs them; the breadcrumbs and the index still lead everywhere.
admin.site.enable_nav_sidebar = False

CONFIDENCE_HELP = (
    "Not the score: how often, on held-out children, a result at this risk level agreed "
    "with the blood test (model card). Same for every result of one level and model; "
    "0 = no held-out evaluation."
)

# The owner is left out (data minimisation); owner_hash links one patient's rows.
DETAIL_FIELDS = (
    "message_id",
    "created_at",
    "condition",
    "site",
    "risk_level",
    "risk_score",
    "confidence_explained",
    "hb_estimate_g_dl",
    "hb_interval_low_g_dl",
    "hb_interval_high_g_dl",
    "recommendation",
    "segmentation",
    "model_version",
    "request_id",
    "image_sha256",
    "image_size_bytes",
    "image_width",
    "image_height",
    "processing_time_ms",
    "owner_hash",
)


# The body sites in words for staff (the admin is in English; the pages translate).
SITE_NAMES = {"conjunctiva": "Inner eyelid", "fingernail": "Fingernails"}


class SiteFilter(admin.SimpleListFilter):
    title = "site"
    parameter_name = "site"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(SITE_NAMES.items())

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Prediction]
    ) -> QuerySet[Prediction]:
        value = self.value()
        return queryset.filter(site=value) if value else queryset


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = [
        "message_id",
        "created",
        "risk_level",
        "score",
        "confidence_column",
        "segmented",
        "hb_estimate",
        "site_name",
    ]
    # model_version is a filter, on the detail page and in the CSV: as a column it
    # pushed the table past 1280 px (tests/browser/test_admin_review.py).
    # Segmentation is the main reliability signal: an outline beats automatic.
    list_filter = ["risk_level", "segmentation", SiteFilter, "model_version"]
    date_hierarchy = "created_at"
    search_fields = ["=request_id"]  # message_id: by prefix, see get_search_results
    search_help_text = "The start of a message_id (pred_...), or an exact request id."
    change_list_template = "admin/predictions/prediction/change_list_tools.html"
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    fields = DETAIL_FIELDS
    readonly_fields = DETAIL_FIELDS

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: Prediction) -> str:
        # Compact (one line), in the site's time zone: the list must fit 1280 px.
        return timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Site", ordering="site")
    def site_name(self, obj: Prediction) -> str:
        return SITE_NAMES.get(obj.site, obj.site)

    @admin.display(description="Score", ordering="risk_score")
    def score(self, obj: Prediction) -> str:
        # Two decimals, as the API gives it: the evaluation does not support more.
        return f"{obj.risk_score:.2f}"

    @admin.display(description="Hb g/dL (90%)", ordering="hb_estimate_g_dl")
    def hb_estimate(self, obj: Prediction) -> str:
        # One column for estimate and interval: the list must fit 1280 px.
        if obj.hb_estimate_g_dl is None:
            return "-"
        return f"{obj.hb_estimate_g_dl:.1f} ({self.hb_interval(obj)})"

    @admin.display(description="Hb 90% interval (g/dL)")
    def hb_interval(self, obj: Prediction) -> str:
        low, high = obj.hb_interval_low_g_dl, obj.hb_interval_high_g_dl
        return "-" if low is None or high is None else f"{low:.1f}-{high:.1f}"

    @admin.display(
        description=format_html('<abbr title="{}">Confidence</abbr>', CONFIDENCE_HELP),
        ordering="confidence",
    )
    def confidence_column(self, obj: Prediction) -> str:
        return f"{obj.confidence:.2f}"

    @admin.display(description="Segmentation", ordering="segmentation")
    def segmented(self, obj: Prediction) -> str:
        return "outline" if obj.segmentation == "provided" else str(obj.segmentation)

    @admin.display(description="Confidence")
    def confidence_explained(self, obj: Prediction) -> str:
        return f"{obj.confidence:.2f} ({CONFIDENCE_HELP})"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Prediction], search_term: str
    ) -> tuple[QuerySet[Prediction], bool]:
        term = search_term.strip()
        if term.startswith("pred_"):
            # A case-sensitive prefix: LIKE 'pred_abc%' can use the message_id index.
            return queryset.filter(message_id__startswith=term), False
        return super().get_search_results(request, queryset, search_term)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="predictions_prediction_dashboard",
            ),
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="predictions_prediction_export",
            ),
        ]
        return own + super().get_urls()

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        figures = dashboard.dashboard_figures()
        levels = [level.value for level in RiskLevel]
        context = {
            **self.admin_site.each_context(request),
            "title": "Predictions dashboard",
            "opts": self.model._meta,
            "figures": figures,
            "risk_bars": _bars(figures.by_risk, levels, figures.max_week_total),
            "site_bars": _bars(figures.by_site, figures.sites, figures.max_week_total),
            "levels": levels,
        }
        return TemplateResponse(request, "admin/predictions/prediction/dashboard.html", context)

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The predictions the changelist's filters and search select, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            queryset = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters as exc:
            raise SuspiciousOperation("Unknown filter") from exc
        predictions_exported(
            actor=request.user,
            filters=request.GET.urlencode(),
            via="admin",
            remote_addr=remote_addr_of(request),
        )
        return prediction_export.csv_response(
            queryset.order_by("created_at", "id"), now=timezone.now()
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Prediction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Prediction | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Prediction | None:
        prediction = super().get_object(request, object_id, from_field)
        if prediction is not None and request.method == "GET":
            predictions_accessed(request=request, predictions=[prediction], via="admin")
        return prediction

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if isinstance(
            response, TemplateResponse
        ) else None
        if changelist is not None:
            # Evaluate the page once, log it, and let the template reuse the same rows.
            changelist.result_list = list(changelist.result_list)
            predictions_accessed(
                request=request, predictions=changelist.result_list, via="admin"
            )
        return response

    def delete_model(self, request: HttpRequest, obj: Prediction) -> None:
        retention.predictions_delete(
            queryset=Prediction.objects.filter(pk=obj.pk), reason="admin", request=request
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        retention.predictions_delete(queryset=queryset, reason="admin", request=request)


BAR_WIDTH = 480  # px of the longest bar in the dashboard's SVG


def _bars(
    rows: list[dashboard.WeekRow], keys: list[str], longest: int
) -> list[dict[str, Any]]:
    """Stacked bar segments (x, width, count) per week, for the dashboard's SVG."""
    out = []
    for row in rows:
        x = 0.0
        segments = []
        for index, key in enumerate(keys):
            count = row.counts.get(key, 0)
            width = BAR_WIDTH * count / longest if longest else 0.0
            segments.append(
                {"key": key, "count": count, "x": round(x, 1), "width": round(width, 1),
                 "index": index}
            )
            x += width
        out.append({"week": row.week, "total": row.total, "segments": segments})
    return out
