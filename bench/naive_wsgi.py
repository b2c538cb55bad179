"""The naive pipeline the benchmark compares against, served by the same gunicorn.

    gunicorn -c gunicorn.conf.py bench.naive_wsgi:application   (with DB_CONN_MAX_AGE=0)

It is the production application with three choices undone, here and not in the
production modules, so the comparison runs the same Django, DRF, middleware, audit
and database code and differs only in what is measured:

- full-resolution decoding (no libjpeg DCT scaling): a 12 MP photo is decoded to all its
  12 million pixels before being shrunk to 224x224;
- a fresh TFLite interpreter for every request (load, allocate, its warm-up invoke)
  instead of one per process loaded at start;
- no database connection reuse: the bench starts this app with DB_CONN_MAX_AGE=0, so
  Django opens and closes a PostgreSQL connection for every request.
"""

from __future__ import annotations

from typing import Any

from healthguard.wsgi import application
from ml import images as ml_images
from ml import runtime as ml_runtime
from predictions import inference, services

__all__ = ["application"]

# Larger than any image's short side: _jpeg_flags then picks IMREAD_COLOR (full size).
_NO_REDUCTION = 1 << 30
_decode_reduced = ml_images.decode_image
_model_get_shared = inference.model_get


def decode_full_resolution(data: bytes, header: Any = None, **kwargs: Any) -> Any:
    kwargs["target"] = _NO_REDUCTION
    return _decode_reduced(data, header, **kwargs)


def model_get_fresh(*, site: str) -> ml_runtime.Model:
    from django.conf import settings

    shared = _model_get_shared(site=site)  # the same checks and errors as production
    path = settings.HEALTHGUARD_MODEL_DIR / site / ml_runtime.MODEL_FILE
    return ml_runtime.Model(path, shared.card)


# Patched where prediction_create looks the names up.
services.decode_image = decode_full_resolution
services.model_get = model_get_fresh
