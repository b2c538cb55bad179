"""WSGI entry point. Loads the models at import so each worker is warm before serving."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthguard.settings")

application = get_wsgi_application()

from predictions.inference import registry_load  # noqa: E402  (needs Django set up)

registry_load()
