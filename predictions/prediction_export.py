"""The CSV export of predictions for clinical staff (the admin's "Export as CSV").

No image data and nothing that links rows to a person: no image hash, no owner or
owner fingerprint, no request id. Rows are read with a server-side cursor in chunks
and written in ~64 KiB pieces, so memory stays flat whatever the count.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from predictions.models import Prediction

CHUNK_ROWS = 2000
FLUSH_BYTES = 64 * 1024

COLUMNS = (
    "message_id",
    "created_at",
    "condition",
    "site",
    "risk_level",
    "risk_score",
    "confidence",
    "segmentation",
    "model_version",
    "image_width",
    "image_height",
    "image_size_bytes",
    "processing_time_ms",
)


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(queryset: QuerySet[Prediction]) -> Iterator[str]:
    """The CSV text in pieces; the score rounded to 2 decimals, as the API gives it."""
    writer = csv.writer(_Echo())
    buffer = [writer.writerow(COLUMNS)]
    size = len(buffer[0])
    score_at = COLUMNS.index("risk_score")
    created_at = COLUMNS.index("created_at")
    for values in queryset.values_list(*COLUMNS).iterator(chunk_size=CHUNK_ROWS):
        row = list(values)
        row[score_at] = f"{row[score_at]:.2f}"
        row[created_at] = row[created_at].astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        line = writer.writerow(row)
        buffer.append(line)
        size += len(line)
        if size >= FLUSH_BYTES:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def csv_response(queryset: QuerySet[Prediction], *, now: dt.datetime) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_stream(queryset), content_type="text/csv; charset=utf-8")
    filename = f"predictions-{now.strftime('%Y%m%dT%H%M%SZ')}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
