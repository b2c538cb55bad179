"""WSGI entry point. Loads the models at import so each worker is warm before serving."""

import os

from django.core.wsgi import get_wsgi_application

from healthguard.request_body import body_input_wrap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthguard.settings")

# gunicorn's request body read in Django's chunk sizes, not 1 KiB steps (see module).
application = body_input_wrap(get_wsgi_application())

from predictions.inference import registry_load  # noqa: E402  (needs Django set up)

registry_load()
