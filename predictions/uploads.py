"""An upload handler that keeps files in memory and refuses them past the size limit.

Django's default handlers spool large uploads to a temporary file; an image here must
never touch disk, so this handler replaces both defaults. It stops reading as soon as
the running total passes MAX_UPLOAD_BYTES (and before reading anything when the
declared Content-Length is already far past it), so no more than the limit is buffered.

The chunks the parser hands over are kept as they are and joined once when the file is
complete: one copy of the image, where a BytesIO written chunk by chunk copies each chunk
in, re-copies the whole as it grows, and copies it all out again on `read()`. The joined
bytes become the file's BytesIO, which shares them, so the view's `read()` returns those
very bytes without another copy (CPython's BytesIO returns its buffer as is when a read
asks for all of it from the start).
"""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from predictions.exceptions import UploadTooLarge

# Multipart framing (boundaries, part headers, other small fields) on top of the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class LimitedMemoryUploadHandler(FileUploadHandler):
    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit: int = settings.MAX_UPLOAD_BYTES
        self.received = 0
        self.chunks: list[bytes] | None = None

    def handle_raw_input(
        self,
        input_data: Any,
        META: Any,
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> None:
        if content_length > self.limit + MULTIPART_OVERHEAD_BYTES:
            raise UploadTooLarge(limit=self.limit)

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0
        self.chunks = []

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.chunks is not None
        self.received += len(raw_data)
        if self.received > self.limit:
            self.chunks = None
            raise UploadTooLarge(limit=self.limit)
        self.chunks.append(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile | None:
        assert self.chunks is not None
        data = bytes(self.chunks[0]) if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = None
        return InMemoryUploadedFile(
            file=io.BytesIO(data),
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )
