"""The audit log's admin: auditlog's read-only pages, plus exports of the selection."""

from __future__ import annotations

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone

from predictions.audit import export
from predictions.audit.access import export_logged
from predictions.audit.trail import remote_addr_of
from predictions.models import EXPORT_PERMISSION

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
        export_logged(
            actor=request.user,
            export_format=export_format,
            filters={"admin_selection": queryset.count()},
            via="admin",
            remote_addr=remote_addr_of(request),
        )
        return export.export_response(
            queryset.order_by("timestamp", "pk"), export_format=export_format, now=now
        )

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
