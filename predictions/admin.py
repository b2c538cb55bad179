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
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from predictions import retention
from predictions.audit import admin as audit_admin  # noqa: F401  (registers LogEntry's admin)
from predictions.audit.access import predictions_accessed
from predictions.models import Prediction

# The owner is left out (data minimisation); owner_hash links one patient's rows.
DETAIL_FIELDS = (
    "message_id",
    "created_at",
    "condition",
    "site",
    "risk_level",
    "risk_score",
    "confidence",
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
        "created_at",
        "risk_level",
        "score",
        "site_name",
        "model_version",
    ]
    list_filter = ["risk_level", SiteFilter, "model_version"]
    date_hierarchy = "created_at"
    # Exact matches on ids: no LIKE scans over the whole table.
    search_fields = ["=message_id", "=request_id"]
    search_help_text = "Exact message_id (pred_...) or request id."
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    fields = DETAIL_FIELDS
    readonly_fields = DETAIL_FIELDS

    @admin.display(description="Site", ordering="site")
    def site_name(self, obj: Prediction) -> str:
        return SITE_NAMES.get(obj.site, obj.site)

    @admin.display(description="Score", ordering="risk_score")
    def score(self, obj: Prediction) -> str:
        return f"{obj.risk_score:.2f}"

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
