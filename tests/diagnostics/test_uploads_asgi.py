"""The ASGI guard of the upload endpoint refuses an oversized upload before Django reads it:
by its Content-Length, or while it streams; other paths and small uploads pass untouched."""

import asyncio

import pytest
from django.core.asgi import get_asgi_application

from diagnostics.asgi_upload_limit import MULTIPART_OVERHEAD, UploadSizeLimit


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.DIAGNOSTICS_UPLOAD_MAX_BYTES = 1000


LIMIT = 1000 + MULTIPART_OVERHEAD


def scope(path="/diagnostics/upload/tok/", length=None):
    headers = [(b"content-type", b"text/plain")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


def call(app, scope, chunks):
    """Run an ASGI app with the body in ``chunks``; returns (status, body, chunks read)."""
    sent, read = [], []
    pending = list(chunks)

    async def receive():
        if not pending:
            await asyncio.sleep(3600)
        chunk = pending.pop(0)
        read.append(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, len(read)


class Recorder:
    """An inner app that reads the whole body and answers 200 with its size."""

    def __init__(self):
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def test_a_declared_oversized_upload_is_refused_before_the_app_reads_anything():
    inner = Recorder()
    status, body, read = call(UploadSizeLimit(inner), scope(length=LIMIT + 1), [b"x" * 10])
    assert status == 413 and b"larger than" in body
    assert not inner.called and read == 0


def test_a_streamed_upload_without_length_is_cut_off_at_the_limit():
    chunks = [b"x" * 30_000] * 10  # 300 kB, no Content-Length
    status, _, read = call(UploadSizeLimit(get_asgi_application()), scope(), chunks)
    assert status == 413
    assert read < len(chunks)  # the rest was never received


def test_small_uploads_and_other_paths_pass_through():
    inner = Recorder()
    status, body, _ = call(UploadSizeLimit(inner), scope(length=500), [b"y" * 500])
    assert (status, body) == (200, b"500")
    inner = Recorder()
    status, body, _ = call(UploadSizeLimit(inner), scope(path="/api/v1/x/", length=LIMIT * 2), [b"z" * 10])
    assert status == 200 and inner.called


def test_a_bad_content_length_is_a_bad_request():
    status, _, _ = call(UploadSizeLimit(Recorder()), scope(length="ten"), [b"x"])
    assert status == 400
