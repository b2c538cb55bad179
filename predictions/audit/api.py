"""GET /api/audit/export: the audit log export for compliance officers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from predictions.audit import export
from predictions.audit.access import export_logged
from predictions.audit.trail import remote_addr_of
from predictions.models import EXPORT_PERMISSION


class CanExportAuditLog(permissions.BasePermission):
    message = "Only compliance officers may export the audit log."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user.is_authenticated and request.user.has_perm(EXPORT_PERMISSION))


class FirstRendererNegotiation(DefaultContentNegotiation):
    """`format` is this endpoint's own parameter (csv, jsonl, fhir), not DRF's renderer
    override: the export streams its own content, and errors are JSON."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


class AuditExportView(APIView):
    """Stream audit entries, oldest first, as CSV, JSON Lines or a FHIR R4 bundle of
    AuditEvents. The export is itself recorded as an ACCESS entry."""

    permission_classes = [CanExportAuditLog]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        operation_id="audit_export",
        parameters=[export.ExportParams],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR),
            (200, "application/fhir+json"): OpenApiResponse(OpenApiTypes.OBJECT),
            (400, "application/json"): OpenApiResponse(description="Invalid filter"),
            (401, "application/json"): OpenApiResponse(description="Not signed in"),
            (403, "application/json"): OpenApiResponse(description="Not a compliance officer"),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> StreamingHttpResponse:
        params = export.ExportParams(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        export_format: str = params.validated_data["format"]
        filters = export.filters_of(params.validated_data)
        export_logged(
            actor=request.user,
            export_format=export_format,
            filters=filters,
            via="api",
            remote_addr=remote_addr_of(request),
        )
        return export.export_response(
            export.audit_entries(**filters), export_format=export_format, now=timezone.now()
        )
