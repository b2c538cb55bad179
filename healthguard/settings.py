"""Settings for HealthGuard Vision, read from the environment.

Development, staging and production differ only by environment variables (see
README.md, "Configuration"). A bad value raises ImproperlyConfigured naming the variable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from healthguard.env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = "1.0.0"

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set (it may be omitted only with DEBUG=1)")
    # Development only: a fixed, obviously insecure key so sessions survive restarts.
    SECRET_KEY = "django-insecure-development-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI's files served from our own static files: /api/docs/ works offline.
    "drf_spectacular_sidecar",
    "auditlog",
    "predictions",
    "healthguard.apps.HealthguardConfig",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "ops.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # One log line and one healthguard_api_requests_total count per request (after
    # WhiteNoise, so static files are neither); needs the request id set above.
    "ops.request_log.RequestLogMiddleware",
    # Upload requests run in one transaction, session write included (see module).
    "predictions.atomic_uploads.AtomicUploadMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "healthguard.login_throttle.LoginThrottleMiddleware",
    # auditlog's middleware, reading the actor when each entry is written so that
    # DRF token-authenticated users are recorded too (see predictions/audit/).
    "predictions.audit.trail.AuditActorMiddleware",
    # Dates in the patient's time zone (a cookie the pages' script sets), else UTC.
    "predictions.timezones.PatientTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "healthguard.urls"
WSGI_APPLICATION = "healthguard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, or a SQLite file so `make run` works on a bare machine.
# Persistent connections with a health check: a restarted PostgreSQL is picked up on
# the next request without restarting the workers.
_database_url = env_str("DATABASE_URL")
try:
    _default_db = dj_database_url.parse(
        _database_url or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _default_db["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast when the database is unreachable: readiness must answer within a second
    # or two, and predictions get a clean 503 rather than hanging a worker.
    _default_db.setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": env_int("DB_CONNECT_TIMEOUT", 2, minimum=1),
            # A server that goes silent on an open connection (network cut, not a
            # refusal) is noticed in seconds instead of TCP's default of minutes.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 3,
            "keepalives_count": 3,
            "tcp_user_timeout": env_int("DB_TCP_USER_TIMEOUT_MS", 5000, minimum=0),
        }
    )
# django-prometheus's wrappers of the same backends: query, connection and error
# counts per database in /metrics (django_db_*).
_default_db["ENGINE"] = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}.get(_default_db["ENGINE"], _default_db["ENGINE"])
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis when REDIS_URL is set, so that throttling counts across workers.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "login"
# After signing in (or up) a patient lands on their history, the reason they signed in.
LOGIN_REDIRECT_URL = "history"
LOGOUT_REDIRECT_URL = "home"
# Signed-in sessions last SESSION_COOKIE_AGE (two weeks, Django's default) and end at
# sign-out; an anonymous browser's session (the results it checked) ends when the browser
# closes: predictions.patients.session_remember sets that per session, so this stays off.
SESSION_EXPIRE_AT_BROWSER_CLOSE = False
# Django's database sessions, minus a look-up before each new session (see module).
SESSION_ENGINE = "healthguard.sessions"

# E-mail (password reset links): printed to the console unless EMAIL_HOST names an SMTP
# server. Patients without an e-mail address cannot reset a forgotten password.
EMAIL_HOST = env_str("EMAIL_HOST").strip()
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=120)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "HealthGuard Vision <noreply@localhost>")

# Uploads: kept in memory only, never spooled to disk, and refused past the limit while
# they stream in (see predictions/uploads.py).
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 5 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_HANDLERS = ["predictions.uploads.LimitedMemoryUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
DATA_UPLOAD_MAX_NUMBER_FILES = 2

# Idempotency-Key (predictions/idempotency.py): a claim still in flight after this many
# seconds was left by a request that died (a killed worker, a lost database) and may be
# taken over by a retry. Longer than gunicorn's worker timeout (30 s), so a claim is
# never taken from a request that is still running normally.
IDEMPOTENCY_TAKEOVER_SECONDS = env_int("IDEMPOTENCY_TAKEOVER_SECONDS", 60, minimum=1)

HEALTHGUARD_MODEL_DIR = Path(env_str("HEALTHGUARD_MODEL_DIR", str(BASE_DIR / "model")))
# Key for the owner fingerprint stored beside each prediction (HMAC of the user id):
# derived from SECRET_KEY unless set explicitly, so rotating it is a deliberate act.
OWNER_HASH_KEY = env_str("OWNER_HASH_KEY") or hashlib.sha256(
    b"healthguard-owner-hash:" + SECRET_KEY.encode()
).hexdigest()

# Audit trail (django-auditlog, predictions/audit/). The request id is the
# correlation id. Each entry is chained by an HMAC under AUDITLOG_CHAIN_KEY: derived
# from SECRET_KEY unless set, so set it explicitly before ever rotating SECRET_KEY
# (verify_auditlog reports a changed key). Access logs are kept
# AUDITLOG_RETENTION_DAYS (purge_auditlog; README "Audit trail" explains the default).
AUDITLOG_CID_GETTER = "predictions.audit.trail.current_cid"
AUDITLOG_CHAIN_KEY = env_str("AUDITLOG_CHAIN_KEY") or hashlib.sha256(
    b"healthguard-audit-chain:" + SECRET_KEY.encode()
).hexdigest()
AUDITLOG_RETENTION_DAYS = env_int("AUDITLOG_RETENTION_DAYS", 365, minimum=1)
# How entries join the chain (predictions/audit/chain.py). "inline": in the writer's own
# transaction, under the chain's one lock (every write in the fleet waits for it).
# "deferred": the writer stores the entry's seal only (one INSERT, no lock) and a linker
# links it within AUDITLOG_CHAIN_LINK_INTERVAL_MS plus one pass; every gunicorn
# worker runs one (only one links at a time), so gunicorn.conf.py makes it the default
# there. Elsewhere (runserver, manage.py commands, tests) nothing would link: inline.
AUDITLOG_CHAIN_LINKING = env_choice("AUDITLOG_CHAIN_LINKING", "inline", ("inline", "deferred"))
AUDITLOG_CHAIN_LINK_INTERVAL_MS = env_int(
    "AUDITLOG_CHAIN_LINK_INTERVAL_MS", 1000, minimum=50, maximum=60_000
)

REST_FRAMEWORK = {
    # Token first: DRF answers an unauthenticated call with the first class's
    # `WWW-Authenticate` header, so it is a 401 ("Token"), not a 403. Session auth stays
    # for the browsable API and the pages' own calls.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "predictions.handlers.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "predict_anon": env_str("THROTTLE_ANON_PREDICT", "30/minute"),
        "predict_user": env_str("THROTTLE_USER_PREDICT", "120/minute"),
        # Sign-in attempts (POSTs) per client address (healthguard/login_throttle.py),
        # and sign-ups and password-reset requests, each counted on its own.
        "login": env_str("THROTTLE_LOGIN", "10/minute"),
        "signup": env_str("THROTTLE_SIGNUP", "20/hour"),
        "password_reset": env_str("THROTTLE_PASSWORD_RESET", "10/hour"),
        # POST /api/token: password attempts per client address, like sign-in.
        "token": env_str("THROTTLE_TOKEN", "10/minute"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "HealthGuard Vision API",
    "DESCRIPTION": (
        "Anemia risk screening from a photo of the inner eyelid. A screening aid, "
        "not a diagnosis: a blood test decides."
    ),
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        # Names for the enums of the 422 refusal (import paths: resolved when the schema
        # is generated, not when settings load).
        "PhotoRefusalCodeEnum": "predictions.serializers.REFUSAL_CODES",
        "PhotoRefusalReasonEnum": "ml.gate.REASONS",
    },
}

# Production hardening; all of it is off in development (DEBUG=1).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Pages send the token from the form field ({% csrf_token %}), never from the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): everything from this origin only, no inline
# script or style, no plugins, never framed. The patient pages pass it
# (tests/security/test_headers.py). So does the Swagger UI at /api/docs/: its files are
# our static files (drf-spectacular-sidecar) and its bootstrap script is a separate
# same-origin URL (SpectacularSwaggerSplitView), so no CDN host and no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# CORS: only the API, only for the origins in CORS_ALLOWED_ORIGINS, never with cookies.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = False
# A browser app on an allowed origin may send Idempotency-Key and read the replay flag.
CORS_ALLOW_HEADERS = (*cors_default_headers, "idempotency-key")
CORS_EXPOSE_HEADERS = ["Idempotent-Replayed"]

# DEBUG shows settings and stack traces to whoever asks: it may only ever answer to
# local host names, so a production ALLOWED_HOSTS with DEBUG=1 stops the process.
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "testserver"}
_public_hosts = [h for h in ALLOWED_HOSTS if h not in _LOCAL_HOSTS and not h.endswith(".localhost")]
if DEBUG and _public_hosts:
    raise ImproperlyConfigured(
        f"DEBUG must be off on a server: ALLOWED_HOSTS names {', '.join(_public_hosts)}"
    )

METRICS_TOKEN = env_str("METRICS_TOKEN")

# Optional malware scan of every upload by clamd (predictions/malware.py): a unix socket
# path, or host:port. Unset: no scan (the appended-payload check always runs).
CLAMD_ADDRESS = env_str("CLAMD_ADDRESS").strip()
if CLAMD_ADDRESS and not CLAMD_ADDRESS.startswith("/"):
    _clamd_port = CLAMD_ADDRESS.rpartition(":")[2]
    if not _clamd_port.isdigit() or not 0 < int(_clamd_port) < 65536:
        raise ImproperlyConfigured(
            f"CLAMD_ADDRESS must be a unix socket path or host:port, got {CLAMD_ADDRESS!r}"
        )
CLAMD_TIMEOUT = env_int("CLAMD_TIMEOUT", 10, minimum=1, maximum=300)

LOG_LEVEL = env_choice(
    "LOG_LEVEL", "DEBUG" if DEBUG else "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)
LOG_FORMAT = env_choice("LOG_FORMAT", "text" if DEBUG else "json", ("json", "text"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "ops.request_id.RequestIdLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            # Extra fields passed to a log call (route, status, duration_ms...) are added
            # as keys; "timestamp" is ISO 8601 in UTC.
            "fmt": "%(levelname)s %(name)s %(process)d %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level"},
            "timestamp": True,
            "static_fields": {"service": "healthguard-api"},
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # 4xx are logged once, by healthguard.requests (route, status, duration, no raw
        # path); Django still logs 5xx here, with the traceback.
        "django.request": {"level": "ERROR"},
    },
}
CSRF_FAILURE_VIEW = "predictions.handlers.csrf_failure"
