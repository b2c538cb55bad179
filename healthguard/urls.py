from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from ops import metrics
from predictions import api, health
from predictions.audit import api as audit_api

router = SimpleRouter(trailing_slash=False)
router.register("results", api.ResultViewSet, basename="result")

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("api/predict", api.PredictView.as_view(), name="predict"),
    path("api/audit/export", audit_api.AuditExportView.as_view(), name="audit-export"),
    path("api/", api.ApiRootView.as_view(), name="api-root"),
    path("api/token", api.TokenView.as_view(), name="api-token"),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its bootstrap script from a URL of its own (no inline script)
    # and our template drops the inline style: the page stays under the CSP.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("api/auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("predictions.urls")),
]

handler400 = "predictions.handlers.handler400"
handler403 = "predictions.handlers.handler403"
handler404 = "predictions.handlers.handler404"
handler500 = "predictions.handlers.handler500"
