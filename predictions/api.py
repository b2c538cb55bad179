"""DRF views: thin, they call services and selectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from predictions import selectors, services
from predictions.audit.access import predictions_accessed
from predictions.exceptions import MissingImage
from predictions.filters import PredictionFilter
from predictions.models import Prediction
from predictions.serializers import (
    ErrorSerializer,
    PredictionRequestSerializer,
    PredictionSerializer,
    RefusalSerializer,
)
from predictions.throttles import PredictAnonThrottle, PredictUserThrottle


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


def server_timing(timings: services.PredictionTimings) -> str:
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in timings.stages.items())


class PredictView(APIView):
    """Analyse one inner-eyelid photo and return the anemia risk."""

    permission_classes = [permissions.AllowAny]
    parser_classes = [MultiPartParser]
    throttle_classes = [PredictAnonThrottle, PredictUserThrottle]

    @extend_schema(
        operation_id="predict",
        request={"multipart/form-data": PredictionRequestSerializer},
        responses={
            201: PredictionSerializer,
            400: _error("Missing, empty, undecodable image or bad dimensions"),
            413: _error("Image larger than 5 MB"),
            415: _error("Not a PNG or JPEG"),
            422: OpenApiResponse(
                response=RefusalSerializer,
                description="The photo was refused, and nothing was stored: the photo gate "
                "found it is not like the training photos (`not_a_conjunctiva`, "
                "`not_fingernails`) or too badly lit or outlined to judge (`photo_quality`), "
                "with `details.reasons` and `details.advice`; or the malware scanner "
                "flagged the file (`malware_detected`, only when CLAMD_ADDRESS is set).",
            ),
            429: _error("Too many requests"),
            503: _error("Database or model unavailable"),
        },
    )
    def post(self, request: Request) -> Response:
        images = request.FILES.getlist("image")
        if len(images) != 1:
            raise MissingImage(details={"image_fields_received": len(images)})
        form = PredictionRequestSerializer(data={"image": images[0], **_site(request)})
        form.is_valid(raise_exception=True)
        timings = services.PredictionTimings()
        prediction = services.prediction_create(
            image_bytes=images[0].read(),
            site=form.validated_data["site"],
            owner=request.user,
            request_id=getattr(request._request, "request_id", ""),
            timings=timings,
        )
        if not request.user.is_authenticated and _from_a_browser(request):
            selectors.session_remember(request.session, prediction.message_id)
        response = Response(PredictionSerializer(prediction).data, status=status.HTTP_201_CREATED)
        response["Server-Timing"] = server_timing(timings)
        return response


def _from_a_browser(request: Request) -> bool:
    """A caller holding our CSRF or session cookie (our pages set them).

    Only such callers get their results remembered in a session: a cookie-less API
    client would otherwise add one session row per prediction that nobody can use.
    """
    cookies = request.COOKIES
    return settings.CSRF_COOKIE_NAME in cookies or settings.SESSION_COOKIE_NAME in cookies


def _site(request: Request) -> dict[str, Any]:
    site = request.data.get("site")
    return {"site": site} if site not in (None, "") else {}


@extend_schema(
    responses={
        200: PredictionSerializer,
        400: _error("A filter value is not valid"),
        401: _error("Not signed in"),
        403: _error("Not allowed"),
        404: _error("No such result visible to you"),
    }
)
class ResultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stored results, newest first. Patients see their own; staff with the
    `view_prediction` permission see all; an anonymous browser session may open the
    results it created."""

    queryset = Prediction.objects.none()  # for the schema generator; see get_queryset
    serializer_class = PredictionSerializer
    filterset_class = PredictionFilter
    lookup_field = "message_id"
    lookup_value_regex = r"pred_[A-Za-z0-9_-]{1,40}"

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action == "retrieve":
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Prediction]:
        if getattr(self, "swagger_fake_view", False):
            return Prediction.objects.none()
        return selectors.prediction_list(
            user=self.request.user,
            session_message_ids=selectors.session_message_ids(self.request.session),
        )

    # Staff reads are audited (ACCESS entries): the page shown, or the one result opened.
    def paginate_queryset(
        self, queryset: QuerySet[Prediction] | Sequence[Prediction]
    ) -> Sequence[Prediction] | None:
        page = super().paginate_queryset(queryset)
        predictions_accessed(request=self.request, predictions=page or [], via="api")
        return page

    def get_object(self) -> Prediction:
        prediction = super().get_object()
        predictions_accessed(request=self.request, predictions=[prediction], via="api")
        return prediction
