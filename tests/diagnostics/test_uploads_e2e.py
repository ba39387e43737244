"""End to end over real sockets: a uvicorn process (PostgreSQL, the Redis channel layer), the
simulated charger connected to it, and GetDiagnostics sent from this process: the charger
uploads its file to our endpoint, where it lands on the LogUpload."""

import asyncio

import pytest

from diagnostics.models import (
    LogUpload,
    LogUploadStatus,
)
from diagnostics.services import uploads
from stations.models import ChargePoint
from tests.diagnostics import live
from tests.diagnostics.live import in_thread, poll
from tests.factories import ChargePointFactory, ConnectorFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]


@pytest.fixture
def media(tmp_path, monkeypatch, settings):
    """One MEDIA_ROOT for this process and the server's (set before the server starts)."""
    root = tmp_path / "media"
    monkeypatch.setenv("MEDIA_ROOT", str(root))
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def charge_point(transactional_db):
    cp = ChargePointFactory(identity="E2E-DIAG", is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1)
    return cp


def simulator(base: str, **kwargs):
    return live.simulator("E2E-DIAG", base, **kwargs)


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_get_diagnostics_makes_the_charger_upload_its_file_to_the_log_upload(
    media, asgi_process, charge_point, method
):
    base, _ = asgi_process

    async def scenario():
        async with simulator(base, diagnostics_upload_method=method) as cp:
            await cp.wait_booted(timeout=20)
            fresh = await in_thread(ChargePoint.objects.select_related("operator").get, pk=charge_point.pk)
            requested = await in_thread(uploads.upload_request, charge_point=fresh, base_url=base, timeout=20)
            await poll(
                lambda: LogUpload.objects.filter(pk=requested.pk, status=LogUploadStatus.RECEIVED).exists()
            )
            # The simulator records its upload once our answer is in (its wait_until is not
            # woken by diagnostics steps, so look for it here).
            for _ in range(100):
                if cp.uploads:
                    break
                await asyncio.sleep(0.05)
            return requested, list(cp.uploads)

    requested, charger_uploads = asyncio.run(scenario())
    assert requested.command.status == "accepted"
    assert charger_uploads[0]["ok"], charger_uploads
    assert charger_uploads[0]["location"] == f"{base}/diagnostics/upload/{requested.token}/"
    upload = LogUpload.objects.get(pk=requested.pk)
    assert upload.status == LogUploadStatus.RECEIVED
    assert upload.filename == charger_uploads[0]["file_name"]
    with upload.file.open("rb") as f:
        content = f.read()
    assert content.startswith(b"ChargeDesk simulator diagnostics")
    assert b"identity: E2E-DIAG" in content
    assert upload.size == len(content)
    assert str(media) in upload.file.path
