"""DRF views: thin, they call services and selectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from predictions import idempotency, patients, selectors, services
from predictions.audit.access import predictions_accessed
from predictions.audit.auth import token_requested
from predictions.audit.trail import remote_addr_of
from predictions.errors import ERROR_CODES
from predictions.exceptions import MissingImage
from predictions.filters import PredictionFilter
from predictions.models import Prediction
from predictions.serializers import (
    PredictionRequestSerializer,
    PredictionSerializer,
    RefusalSerializer,
)
from predictions.throttles import PredictAnonThrottle, PredictUserThrottle, TokenThrottle

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "enum": list(ERROR_CODES),
                    "description": "Stable machine-readable code: branch on this, not on "
                    "the message. New codes may be added.",
                },
                "message": {
                    "type": "string",
                    "description": "For people, in the language asked for with "
                    "Accept-Language (en, fr). May change between versions.",
                },
                "details": {
                    "description": "Field errors or facts about the error (e.g. "
                    "max_bytes, retry_after_seconds); an empty object when none."
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=_ERROR_SCHEMA, description=description)


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
        parameters=[
            OpenApiParameter(
                name=idempotency.HEADER,
                type=OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=False,
                description=(
                    "A fresh key per upload (a UUID), reused when the same upload is sent "
                    "again after a lost connection: the stored result comes back (200, "
                    f"`{idempotency.REPLAYED_HEADER}: true`) instead of a second "
                    "prediction. 1-255 characters from A-Z a-z 0-9 - _ . : ~ + / =. "
                    "Scoped to the caller (user, browser session, or client address) and "
                    "kept 24 hours."
                ),
            ),
            OpenApiParameter(
                "Location",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                response=[200, 201],
                description="The result's URL, /api/results/{message_id}.",
            )
        ],
        description=(
            "Send the photo as multipart field `image`. The 201 body is the only copy an "
            "anonymous API client gets: keep it. `GET /api/results/{message_id}` (the "
            "`Location` header) answers only to the account that made the result, staff, "
            "or the browser session that made it; a cookie-less anonymous client gets 404."
        ),
        responses={
            201: OpenApiResponse(
                response=PredictionSerializer, description="The result (keep it: see above)."
            ),
            200: OpenApiResponse(
                response=PredictionSerializer,
                description=(
                    f"A replay: this {idempotency.HEADER} and upload were already analysed; "
                    "the original result, with the header "
                    f"`{idempotency.REPLAYED_HEADER}: true`. Nothing new is stored."
                ),
            ),
            400: _error(
                "Missing, empty, undecodable image or bad dimensions; "
                "an invalid Idempotency-Key (idempotency_key_invalid)"
            ),
            409: _error(
                "An upload with this Idempotency-Key is still being analysed "
                "(idempotency_key_in_flight): send it again in a moment"
            ),
            413: _error("Image larger than 5 MB"),
            415: _error("Not a PNG or JPEG"),
            422: OpenApiResponse(
                response=RefusalSerializer,
                description="The photo was refused, and nothing was stored: the photo gate "
                "found it is not like the training photos (`not_a_conjunctiva`, "
                "`not_fingernails`) or too badly lit or outlined to judge (`photo_quality`), "
                "with `details.reasons` and `details.advice`; or the malware scanner "
                "flagged the file (`malware_detected`, only when CLAMD_ADDRESS is set); or this "
                "Idempotency-Key was used for a different upload (`idempotency_key_reused`).",
            ),
            429: _error("Too many requests"),
            503: _error("Database or model unavailable"),
        },
    )
    def post(self, request: Request) -> Response:
        key = idempotency.key_parse(request.headers.get(idempotency.HEADER))
        images = request.FILES.getlist("image")
        if len(images) != 1:
            raise MissingImage(details={"image_fields_received": len(images)})
        form = PredictionRequestSerializer(data={"image": images[0], **_site(request)})
        form.is_valid(raise_exception=True)
        timings = services.PredictionTimings()
        outcome = idempotency.prediction_create_once(
            key=key,
            scope=idempotency.caller_scope(request) if key is not None else "",
            image_bytes=images[0].read(),
            site=form.validated_data["site"],
            owner=request.user,
            request_id=getattr(request._request, "request_id", ""),
            timings=timings,
        )
        prediction = outcome.prediction
        if not request.user.is_authenticated and _from_a_browser(request):
            selectors.session_remember(request.session, prediction.message_id)
        data = PredictionSerializer(prediction).data
        if outcome.replayed:
            response = Response(data, status=status.HTTP_200_OK)
            response[idempotency.REPLAYED_HEADER] = "true"
        else:
            response = Response(data, status=status.HTTP_201_CREATED)
        response["Location"] = reverse("result-detail", args=[prediction.message_id])
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

    @extend_schema(
        operation_id="results_destroy",
        description=(
            "Erase one of your own results (GDPR erasure). The row is deleted; the audit "
            "trail keeps a DELETE entry naming the message_id, without the result. Only "
            "the signed-in owner may: any other result, staff's reads included, is a 404 "
            "(staff erase through the admin)."
        ),
        responses={
            204: OpenApiResponse(description="Deleted"),
            401: _error("Not signed in"),
            404: _error("No such result of yours"),
        },
    )
    def destroy(self, request: Request, message_id: str) -> Response:
        own = selectors.own_prediction_list(user=request.user).filter(message_id=message_id)
        if not patients.patient_results_delete(request=request._request, queryset=own):
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)

class TokenView(ObtainAuthToken):
    """POST /api/token: exchange a username and password for the account's API token.

    DRF's view, throttled per client address like sign-in, and audited (issued or
    refused). The same token is returned until an administrator deletes it.
    """

    throttle_classes = [TokenThrottle]
    parser_classes = [FormParser, MultiPartParser, JSONParser]

    @extend_schema(
        operation_id="token_obtain",
        auth=[],
        request=inline_serializer(
            "TokenRequest",
            {"username": serializers.CharField(), "password": serializers.CharField()},
        ),
        responses={
            200: inline_serializer(
                "TokenResponse",
                {
                    "token": serializers.CharField(
                        help_text="Send as `Authorization: Token <token>`."
                    )
                },
            ),
            400: _error("Wrong username or password (code `invalid`)"),
            429: _error("Too many attempts from this address"),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.ValidationError:
            token_requested(user=None, remote_addr=remote_addr_of(request))
            raise
        user = serializer.validated_data["user"]
        token, created = Token.objects.get_or_create(user=user)
        token_requested(user=user, remote_addr=remote_addr_of(request), created=created)
        return Response({"token": token.key})


_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("predict", "predict", "POST a photo (multipart `image`): the anemia risk."),
    ("results", "result-list", "GET your stored results (staff: all), newest first."),
    ("token", "api-token", "POST username and password: your API token."),
    ("audit_export", "audit-export", "GET the audit log export (compliance officers)."),
    ("schema", "schema", "GET the OpenAPI 3 schema."),
    ("docs", "api-docs", "The schema as Swagger UI."),
)


class ApiRootView(APIView):
    """GET /api/: the endpoints of this API."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="api_root",
        auth=[],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Name -> URL")},
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                name: {"url": request.build_absolute_uri(reverse(url_name)), "about": about}
                for name, url_name, about in _ENDPOINTS
            }
        )
