# HealthGuard Vision service image.
#   docker build -t healthguard-vision .
#   docker run --rm -p 8000:8000 -e SECRET_KEY=... -e DATABASE_URL=postgresql://... healthguard-vision
# Configuration: environment variables only (see .env.example and deploy/README.md).

# ---- builder: dependencies, static files, translations ------------------------------
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# gettext only for compilemessages; every runtime dependency ships as a wheel, so no
# compiler is installed. Debian package versions follow the base image's release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-compile -r /tmp/requirements.txt

WORKDIR /app
COPY . .

# Build-time settings only: nothing here ends up in the runtime environment.
RUN SECRET_KEY=collectstatic-build-only DJANGO_SETTINGS_MODULE=healthguard.settings \
        python manage.py collectstatic --noinput \
    && if [ -d locale ]; then \
        SECRET_KEY=compilemessages-build-only python manage.py compilemessages; \
        find locale -name '*.po' -delete; \
    fi

# Leave the runtime only what it runs: pip/setuptools/wheel are never imported by the
# service (the distutils .pth hook goes with setuptools); deploy/slim_venv.py removes
# dependencies' test suites, .po sources and type stubs, translations of languages the
# service does not offer (settings.LANGUAGES), NumPy's build tools and unused OpenCV
# cascades, and prints what it saved. Then compile the bytecode once, here: without it
# every worker would compile its imports at each start (measured: 8 s more per process).
RUN pip uninstall -y pip setuptools wheel \
    && rm -f /opt/venv/lib/python3.11/site-packages/distutils-precedence.pth \
    && SECRET_KEY=slim-build-only python deploy/slim_venv.py \
        /opt/venv/lib/python3.11/site-packages --app /app \
    && python -m compileall -q -j 0 /opt/venv/lib/python3.11/site-packages /app

# ---- runtime ---------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=healthguard.settings \
    HEALTHGUARD_MODEL_DIR=/app/model \
    PORT=8000
# No PROMETHEUS_MULTIPROC_DIR here: gunicorn.conf.py sets it for the server and its
# workers only, so one-off commands (docker run ... python manage.py migrate) count
# their metrics in memory instead of failing on a directory only gunicorn creates.

RUN groupadd --gid 10001 healthguard \
    && useradd --uid 10001 --gid healthguard --no-create-home --no-log-init \
        --home-dir /app --shell /usr/sbin/nologin healthguard

# Code and venv stay owned by root: the service user can read them, not change them.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app

USER 10001:10001
EXPOSE 8000

# Liveness only (the process answers); readiness (/health/ready) is for orchestrators.
# deploy/probe.py sends the first ALLOWED_HOSTS entry as Host, so Django accepts it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "deploy/probe.py", "/health/live"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "healthguard.wsgi:application"]
