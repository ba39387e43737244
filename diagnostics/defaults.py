"""The default fault rules every operator starts with (editable in the admin).

One entry an OCPP 1.6 error code: likely cause, severity, what to do, what to bring, and
whether a reset is worth trying. Operators add their own (per vendor and vendor code) on top.
"""

from __future__ import annotations

MULTIMETER = "Multimeter (CAT III 1000 V)"
INSULATION_TESTER = "Insulation resistance tester"
EVSE_TESTER = "EVSE test adapter (Type 2 / CCS)"
LAPTOP = "Laptop with the vendor's service tool"
TORQUE_SET = "Insulated screwdriver and torque set"
THERMAL_CAMERA = "Thermal camera"

DEFAULT_RULES: list[dict] = [
    {
        "error_code": "GroundFailure",
        "cause": "cable",
        "severity": "critical",
        "title": "Ground fault (residual current) at the connector",
        "recommended_action": "Take the connector out of service, inspect the cable and plug for damage "
        "or water ingress, measure insulation resistance, replace the cable assembly if it fails.",
        "tools": [MULTIMETER, INSULATION_TESTER, EVSE_TESTER],
        "spare_parts": ["Charging cable assembly", "RCD / RDC-DD module"],
        "self_heal": False,
    },
    {
        "error_code": "ConnectorLockFailure",
        "cause": "cable",
        "severity": "major",
        "title": "Connector lock does not engage or release",
        "recommended_action": "Check the lock actuator and its wiring; clean the socket; "
        "replace the actuator.",
        "tools": [TORQUE_SET, MULTIMETER],
        "spare_parts": ["Socket lock actuator", "Socket outlet"],
        "self_heal": True,
    },
    {
        "error_code": "OverCurrentFailure",
        "cause": "cable",
        "severity": "major",
        "title": "Over-current on the outlet",
        "recommended_action": "Check the cable and contactor for wear; compare with other cars at this "
        "connector before blaming the vehicle.",
        "tools": [MULTIMETER, EVSE_TESTER, THERMAL_CAMERA],
        "spare_parts": ["Charging cable assembly", "Contactor"],
        "self_heal": False,
    },
    {
        "error_code": "HighTemperature",
        "cause": "cable",
        "severity": "major",
        "title": "Over-temperature in the cable, plug or power stage",
        "recommended_action": "Inspect the plug pins and terminals for heat damage, check fans and filters.",
        "tools": [THERMAL_CAMERA, TORQUE_SET],
        "spare_parts": ["Charging cable assembly", "Cooling fan", "Air filter"],
        "self_heal": False,
    },
    {
        "error_code": "EVCommunicationError",
        "cause": "vehicle",
        "severity": "warning",
        "title": "Communication with the vehicle failed (control pilot / ISO 15118)",
        "recommended_action": "If several different cars fail here, test the control pilot with an EVSE "
        "adapter and check the cable; if one car fails everywhere, the car is at fault.",
        "tools": [EVSE_TESTER, MULTIMETER],
        "spare_parts": ["Charging cable assembly", "Communication board"],
        "self_heal": True,
    },
    {
        "error_code": "InternalError",
        "cause": "software",
        "severity": "major",
        "title": "Internal error of the charger's controller",
        "recommended_action": "Read the charger's logs (request diagnostics), compare firmware versions "
        "across failing units, update or roll back firmware.",
        "tools": [LAPTOP],
        "spare_parts": ["Controller board"],
        "self_heal": True,
    },
    {
        "error_code": "ResetFailure",
        "cause": "software",
        "severity": "major",
        "title": "The charger failed to reset",
        "recommended_action": "Power-cycle on site; check the firmware and the controller.",
        "tools": [LAPTOP],
        "spare_parts": ["Controller board"],
        "self_heal": False,
    },
    {
        "error_code": "LocalListConflict",
        "cause": "software",
        "severity": "warning",
        "title": "The local authorisation list conflicts with the central one",
        "recommended_action": "Send the full local list again.",
        "tools": [],
        "spare_parts": [],
        "self_heal": False,
    },
    {
        "error_code": "OverVoltage",
        "cause": "grid",
        "severity": "major",
        "title": "Supply voltage too high",
        "recommended_action": "Measure the supply at the charger and the site's main board; "
        "contact the utility.",
        "tools": [MULTIMETER],
        "spare_parts": ["Surge protection device"],
        "self_heal": False,
    },
    {
        "error_code": "UnderVoltage",
        "cause": "grid",
        "severity": "major",
        "title": "Supply voltage too low",
        "recommended_action": "Check the site's load and supply; contact the utility if the grid is weak.",
        "tools": [MULTIMETER],
        "spare_parts": [],
        "self_heal": False,
    },
    {
        "error_code": "PowerMeterFailure",
        "cause": "hardware",
        "severity": "major",
        "title": "The energy meter does not answer",
        "recommended_action": "Check the meter's bus wiring; replace the meter (sessions cannot be billed).",
        "tools": [MULTIMETER, LAPTOP],
        "spare_parts": ["MID energy meter"],
        "self_heal": True,
    },
    {
        "error_code": "PowerSwitchFailure",
        "cause": "hardware",
        "severity": "critical",
        "title": "Contactor or relay failure",
        "recommended_action": "Replace the contactor; check for welded contacts before re-energising.",
        "tools": [MULTIMETER, TORQUE_SET],
        "spare_parts": ["Contactor"],
        "self_heal": False,
    },
    {
        "error_code": "ReaderFailure",
        "cause": "hardware",
        "severity": "warning",
        "title": "RFID reader failure",
        "recommended_action": "Check the reader's cable; replace the reader. App and QR starts still work.",
        "tools": [TORQUE_SET],
        "spare_parts": ["RFID reader"],
        "self_heal": True,
    },
    {
        "error_code": "WeakSignal",
        "cause": "connectivity",
        "severity": "warning",
        "title": "Weak mobile signal",
        "recommended_action": "Check the antenna and its cable; consider an external antenna "
        "or a wired link.",
        "tools": [],
        "spare_parts": ["External LTE antenna"],
        "self_heal": False,
    },
    {
        "error_code": "OtherError",
        "cause": "unknown",
        "severity": "warning",
        "title": "Other error (see the vendor code)",
        "recommended_action": "Look the vendor error code up in the vendor's manual and add a rule for it.",
        "tools": [LAPTOP],
        "spare_parts": [],
        "self_heal": False,
    },
]
