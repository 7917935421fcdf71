"""A cap on the size of every form body with files, before any of it is read.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` counts a form's fields but not its file parts,
which it streams to disk however large they are — a login page or a survey link would
take a gigabyte from anyone. This handler runs first on every multipart body and refuses
one larger than the service takes with ``RequestDataTooBig``, which the pages and the
API already answer as a 413 (the survey page keeping the rater's draft). Only the
people import takes a file, and gets room for its 2 MB CSV.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler

# Routes whose form carries a file, and how large a body they take.
FILE_ROUTES = {"people-import", "api-people-import"}
FILE_ROUTE_MAX_BYTES = 2 * 1024 * 1024 + 64 * 1024


def body_limit_for(request: Any) -> int:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name in FILE_ROUTES:
        return max(FILE_ROUTE_MAX_BYTES, int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


class BodySizeLimit(FileUploadHandler):
    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: str | None = None
    ) -> None:
        if content_length > body_limit_for(self.request):
            raise RequestDataTooBig("The request body is larger than the service takes.")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
