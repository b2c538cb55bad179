"""Admin for staff: predictions read-only, the audit log with its exports.

A prediction is a record of what the model said: nobody adds or edits one here, and
only superusers delete (through `retention.predictions_delete`, which writes a DELETE
entry without the clinical content). Opening a prediction, or a page of the list, is
an audited ACCESS event.
"""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from predictions import audit, audit_export, retention
from predictions.models import Prediction

EXPORT_PERMISSION = "predictions.export_auditlog"


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


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = [
        "message_id",
        "created_at",
        "risk_level",
        "score",
        "site",
        "model_version",
    ]
    list_filter = ["risk_level", "site", "model_version"]
    date_hierarchy = "created_at"
    # Exact matches on ids: no LIKE scans over the whole table.
    search_fields = ["=message_id", "=request_id"]
    search_help_text = "Exact message_id (pred_...) or request id."
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    fields = DETAIL_FIELDS
    readonly_fields = DETAIL_FIELDS

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
            audit.predictions_accessed(request=request, predictions=[prediction], via="admin")
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
            audit.predictions_accessed(
                request=request, predictions=changelist.result_list, via="admin"
            )
        return response

    def delete_model(self, request: HttpRequest, obj: Prediction) -> None:
        retention.predictions_delete(
            queryset=Prediction.objects.filter(pk=obj.pk), reason="admin", request=request
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        retention.predictions_delete(queryset=queryset, reason="admin", request=request)


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(LogEntryAdmin):
    """auditlog's read-only admin, plus exports of the selected entries."""

    actions = ["export_csv", "export_jsonl", "export_fhir"]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXPORT_PERMISSION)

    def _export(
        self, request: HttpRequest, queryset: QuerySet[LogEntry], export_format: str
    ) -> StreamingHttpResponse:
        now = timezone.now()
        audit.export_logged(
            actor=request.user,
            export_format=export_format,
            filters={"admin_selection": queryset.count()},
            via="admin",
            remote_addr=audit.remote_addr_of(request),
        )
        response = StreamingHttpResponse(
            audit_export.export_stream(
                queryset.order_by("timestamp", "pk"), export_format=export_format
            ),
            content_type=audit_export.FORMATS[export_format][0],
        )
        filename = audit_export.filename_for(export_format, now=now)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @admin.action(description="Export selected entries as CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> HttpResponseBase:
        return self._export(request, queryset, "csv")

    @admin.action(description="Export selected entries as JSON Lines", permissions=["export"])
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> HttpResponseBase:
        return self._export(request, queryset, "jsonl")

    @admin.action(
        description="Export selected entries as FHIR R4 AuditEvent bundle", permissions=["export"]
    )
    def export_fhir(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> HttpResponseBase:
        return self._export(request, queryset, "fhir")
