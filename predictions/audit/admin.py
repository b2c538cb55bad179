"""The audit log's admin: auditlog's read-only pages, with the channel and the IP
address shown, date-range and actor filters, and two ways to export:

- "Export everything that matches" (links above the list): streams every entry the
  current filters and search select, however many (like the API export).
- The actions on selected entries, for small hand-picked sets. A page holds at most
  `list_per_page` rows, so a selection's POST stays under DATA_UPLOAD_MAX_NUMBER_FIELDS
  (50): 40 ids + the action, the CSRF token, `index` and `select_across` fields.
"""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

from predictions.admin_filters import ActorFilter, DateRangeFilter
from predictions.audit import export
from predictions.audit.access import export_logged
from predictions.audit.trail import channel_of, remote_addr_of
from predictions.models import EXPORT_PERMISSION

admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(LogEntryAdmin):
    """auditlog's read-only admin, plus channel, IP, filters and exports."""

    actions = ["export_csv", "export_jsonl", "export_fhir"]
    list_display = [*LogEntryAdmin.list_display, "channel", "remote_addr"]
    list_filter = [*LogEntryAdmin.list_filter, DateRangeFilter, ActorFilter]
    list_per_page = 40
    change_list_template = "admin/auditlog/logentry/change_list_export.html"

    @admin.display(description="Channel")
    def channel(self, obj: LogEntry) -> str:
        return channel_of(obj)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXPORT_PERMISSION)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        context = {**(extra_context or {}), "can_export": self.has_export_permission(request),
                   "export_formats": sorted(export.FORMATS)}
        return super().changelist_view(request, context)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "export/<str:export_format>/",
                self.admin_site.admin_view(self.export_matching_view),
                name="auditlog_logentry_export",
            )
        ]
        return own + super().get_urls()

    def export_matching_view(
        self, request: HttpRequest, export_format: str
    ) -> StreamingHttpResponse:
        """Every entry the changelist's current filters and search select, streamed."""
        if not (self.has_view_permission(request) and self.has_export_permission(request)):
            raise PermissionDenied
        if export_format not in export.FORMATS:
            raise Http404("No such export format")
        try:
            queryset = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters as exc:
            raise SuspiciousOperation("Unknown filter") from exc
        return self._export(
            request, queryset, export_format, filters={"admin_filter": request.GET.urlencode()}
        )

    def _export(
        self,
        request: HttpRequest,
        queryset: QuerySet[LogEntry],
        export_format: str,
        *,
        filters: dict[str, Any],
    ) -> StreamingHttpResponse:
        now = timezone.now()
        export_logged(
            actor=request.user,
            export_format=export_format,
            filters=filters,
            via="admin",
            remote_addr=remote_addr_of(request),
        )
        return export.export_response(
            queryset.order_by("timestamp", "pk"), export_format=export_format, now=now
        )

    def _export_selected(
        self, request: HttpRequest, queryset: QuerySet[LogEntry], export_format: str
    ) -> StreamingHttpResponse:
        return self._export(
            request, queryset, export_format, filters={"admin_selection": queryset.count()}
        )

    @admin.action(description="Export selected entries as CSV", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> HttpResponseBase:
        return self._export_selected(request, queryset, "csv")

    @admin.action(description="Export selected entries as JSON Lines", permissions=["export"])
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> HttpResponseBase:
        return self._export_selected(request, queryset, "jsonl")

    @admin.action(
        description="Export selected entries as FHIR R4 AuditEvent bundle", permissions=["export"]
    )
    def export_fhir(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> HttpResponseBase:
        return self._export_selected(request, queryset, "fhir")
