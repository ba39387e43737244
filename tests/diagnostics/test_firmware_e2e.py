"""End to end over real sockets: a uvicorn process (PostgreSQL, the Redis channel layer) and
the simulated charger connected to it; a firmware campaign started from this process drives
the charger through Downloading, Downloaded, Installing to Installed and a reboot on the new
version, and the campaign finishes."""

import asyncio

import pytest

from diagnostics.models import (
    CampaignStatus,
    FirmwareCampaign,
    FirmwareTargetStatus,
)
from diagnostics.services import firmware
from stations.models import ChargePoint
from tests.diagnostics import live
from tests.diagnostics.live import in_thread, poll
from tests.factories import ChargePointFactory, ConnectorFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live]


@pytest.fixture
def charge_point(transactional_db):
    cp = ChargePointFactory(identity="E2E-FW", is_connected=False)
    ConnectorFactory(charge_point=cp, connector_id=1)
    return cp


def simulator(base: str, **kwargs):
    return live.simulator("E2E-FW", base, **kwargs)


def test_firmware_campaign_drives_the_charger_to_installed(asgi_process, charge_point):
    base, _ = asgi_process

    async def scenario():
        async with simulator(base, firmware_version="1.0.0") as cp:
            await cp.wait_booted(timeout=20)
            fresh = await in_thread(ChargePoint.objects.select_related("operator").get, pk=charge_point.pk)
            campaign = await in_thread(
                firmware.campaign_create,
                operator=fresh.operator,
                name="2.1.0 roll-out",
                firmware_version="2.1.0",
                location="https://firmware.example.com/fw-2.1.0.bin",
                charge_points=[fresh],
            )
            started = await in_thread(firmware.campaign_start, campaign=campaign, timeout=20)
            await poll(
                lambda: FirmwareCampaign.objects.filter(
                    pk=campaign.pk, status=CampaignStatus.FINISHED
                ).exists(),
                timeout=40,
            )
            await poll(
                lambda: ChargePoint.objects.filter(pk=charge_point.pk, firmware_version="2.1.0").exists(),
                timeout=40,
            )
            return started, [text for _, text in cp.events if text.startswith("firmware ")]

    started, steps = asyncio.run(scenario())
    assert steps == [
        "firmware Downloading",
        "firmware Downloaded",
        "firmware Installing",
        "firmware Installed",
    ]
    assert started.status == CampaignStatus.RUNNING
    campaign = FirmwareCampaign.objects.get(pk=started.pk)
    assert campaign.status == CampaignStatus.FINISHED
    target = campaign.targets.get()
    assert target.status == FirmwareTargetStatus.INSTALLED
    assert target.command.action == "UpdateFirmware" and target.command.status == "accepted"
    assert ChargePoint.objects.get(pk=charge_point.pk).firmware_version == "2.1.0"
