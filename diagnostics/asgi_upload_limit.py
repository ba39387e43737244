"""An ASGI guard for the diagnostics upload endpoint.

Django's ASGI handler reads a request's whole body (into a temporary file) before any view
runs, so the view's own size checks come after an oversized upload was already received. This
wrapper refuses such an upload first: by its Content-Length, or, without one, as soon as the
streamed body passes the limit. Wrap the HTTP application with it in ``config/asgi.py``::

    "http": UploadSizeLimit(django_asgi_app),

The view still checks each upload against its own request's limit; this is the outer bound.
"""

from __future__ import annotations

from django.conf import settings

UPLOAD_PREFIX = "/diagnostics/upload/"
# A multipart body carries its headers and boundaries besides the file (as the view allows).
MULTIPART_OVERHEAD = 64 * 1024


class UploadSizeLimit:
    def __init__(self, app, prefix: str = UPLOAD_PREFIX):
        self.app = app
        self.prefix = prefix

    @staticmethod
    def limit() -> int:
        return settings.DIAGNOSTICS_UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        limit = self.limit()
        length = dict(scope.get("headers") or ()).get(b"content-length")
        try:
            if length is not None and int(length) > limit:
                return await self._refuse(send, limit)
        except ValueError:
            return await self._refuse(send, limit, status=400, text=b"Content-Length is not a number.\n")
        received = 0
        too_large = False

        async def limited_receive():
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django treats a disconnect while reading the body as an aborted request
                    # and answers nothing: the 413 below is the only answer.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, send)
        if too_large:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send, limit: int, status: int = 413, text: bytes | None = None) -> None:
        body = text or f"The upload is larger than {limit} bytes.\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
