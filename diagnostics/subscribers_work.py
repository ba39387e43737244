"""What diagnostics does with the chargers' reports: log uploads and firmware campaigns
follow the DiagnosticsStatusNotification and FirmwareStatusNotification events."""

from config.events import subscribe
from diagnostics.services import firmware, uploads


@subscribe("charge_point.diagnostics_status")
def diagnostics_status(*, charge_point_id: int, status: str, **_) -> None:
    uploads.on_diagnostics_status(charge_point_id=charge_point_id, status=status)


@subscribe("charge_point.firmware_status")
def firmware_status(*, charge_point_id: int, status: str, **_) -> None:
    firmware.on_firmware_status(charge_point_id=charge_point_id, status=status)
