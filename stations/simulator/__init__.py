"""Simulated OCPP 1.6J charge points, for the demo network, end-to-end tests and load runs.

    from stations.simulator import ChargerConfig, SimulatedChargePoint

    async with SimulatedChargePoint(identity="VW-AMS-01", password="…", url="ws://127.0.0.1:8000/ocpp") as cp:
        await cp.wait_booted()
        started = await cp.start_session(1, "04A1B2C3")
        await cp.stop_session(1)

Many at once: `Fleet` (fleet.py), or `python -m stations.simulator --help`.
"""

from .charger import (
    CallStats,
    ChargerConfig,
    ConnectionLost,
    ConnectionRefusedByServer,
    NotConnected,
    SimulatedChargePoint,
    SimulatorError,
    StartResult,
    StopResult,
)
from .fleet import BehaviourSettings, Fleet

__all__ = [
    "BehaviourSettings",
    "CallStats",
    "ChargerConfig",
    "ConnectionLost",
    "ConnectionRefusedByServer",
    "Fleet",
    "NotConnected",
    "SimulatedChargePoint",
    "SimulatorError",
    "StartResult",
    "StopResult",
]
