"""OCPP load on the real stack, against a bare `ocpp`-library server as the ceiling.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chargedesk_bench REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/ocpp_load.py --chargers 5000 --active 250 --rate 1000 --duration 20

What it does, twice (ChargeDesk, then the ceiling):
1. starts the server in its own process: ChargeDesk's ASGI app on uvicorn (Redis channel layer,
   PostgreSQL; a fresh bench database, migrated, with the chargers provisioned), or a bare
   server of the `ocpp` library's own ChargePoint on `websockets` with no Django and no
   database (it validates frames with the library's jsonschema, as the library does);
2. connects --chargers simulated chargers (HTTP Basic, ocpp1.6) that each boot, and holds them;
3. --active of them start a transaction and send MeterValues (nine samples each, like a real
   three-phase charger) at --rate messages per second in all, for --duration seconds, each
   waiting for its answer (OCPP-J allows one CALL in flight);
4. prints held connections, connect time, MeterValues per second answered, p50/p99 round-trip,
   and for ChargeDesk how many samples were stored. The load client speaks OCPP-J frames
   directly (orjson), so its own cost stays small next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-charger-password-01"
ID_TAG = "BENCHTAG01"
SAMPLES_PER_MESSAGE = 9  # energy, power, current and voltage per phase, SoC


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


# --- The bare ceiling server ----------------------------------------------------------------


def serve_bare(port: int) -> None:
    import websockets
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from ocpp.v16.enums import Action, RegistrationStatus

    class Bare(ChargePoint):
        @on(Action.boot_notification)
        def boot(self, **_):
            now = dt.datetime.now(dt.UTC).isoformat()
            return call_result.BootNotification(
                current_time=now, interval=300, status=RegistrationStatus.accepted
            )

        @on(Action.heartbeat)
        def heartbeat(self, **_):
            return call_result.Heartbeat(current_time=dt.datetime.now(dt.UTC).isoformat())

        @on(Action.status_notification)
        def status_notification(self, **_):
            return call_result.StatusNotification()

        @on(Action.start_transaction)
        def start_transaction(self, **_):
            return call_result.StartTransaction(
                transaction_id=random.randint(1, 2**31 - 1), id_tag_info={"status": "Accepted"}
            )

        @on(Action.meter_values)
        def meter_values(self, **_):
            return call_result.MeterValues()

    async def handler(ws):
        await Bare(ws.request.path.rsplit("/", 1)[-1], ws).start()

    async def main():
        async with websockets.serve(handler, "127.0.0.1", port, subprotocols=["ocpp1.6"], max_size=65536):
            await asyncio.Future()

    asyncio.run(main())


# --- The load client ------------------------------------------------------------------------


class Charger:
    __slots__ = ("identity", "meter", "n", "tx", "ws")

    def __init__(self, identity: str):
        self.identity, self.ws, self.n, self.tx, self.meter = identity, None, 0, None, 0

    async def call(self, action: str, payload: dict):
        self.n += 1
        await self.ws.send(orjson.dumps([2, str(self.n), action, payload]).decode())
        reply = orjson.loads(await self.ws.recv())
        if reply[0] != 3:
            raise RuntimeError(f"{self.identity} {action}: {reply}")
        return reply[2]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def meter_payload(c: Charger) -> dict:
    c.meter += 55
    sv = [
        {
            "value": str(c.meter),
            "measurand": "Energy.Active.Import.Register",
            "unit": "Wh",
            "context": "Sample.Periodic",
        }
    ]
    sv.append(
        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W", "context": "Sample.Periodic"}
    )
    for phase in ("L1", "L2", "L3"):
        sv.append(
            {
                "value": "16.0",
                "measurand": "Current.Import",
                "unit": "A",
                "phase": phase,
                "context": "Sample.Periodic",
            }
        )
        sv.append(
            {
                "value": "230.1",
                "measurand": "Voltage",
                "unit": "V",
                "phase": f"{phase}-N",
                "context": "Sample.Periodic",
            }
        )
    sv.append({"value": "47", "measurand": "SoC", "unit": "Percent", "context": "Sample.Periodic"})
    return {
        "connectorId": 1,
        "transactionId": c.tx,
        "meterValue": [{"timestamp": now_iso(), "sampledValue": sv}],
    }


def _cpu_of(pid: int) -> tuple[str, int, float]:
    """(command name, parent pid, user + system CPU seconds) of a process, all its threads."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return "", 0, 0.0
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of the server (with its worker processes), PostgreSQL (all its
    processes), Redis and this client."""
    totals = {"server": 0.0, "PostgreSQL": 0.0, "Redis": 0.0, "client": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        name, parent, seconds = _cpu_of(pid)
        if server_pid in (pid, parent):
            totals["server"] += seconds
        elif pid == os.getpid():
            totals["client"] += seconds
        elif name == "postgres":
            totals["PostgreSQL"] += seconds
        elif name.startswith("redis-server"):
            totals["Redis"] += seconds
    return totals


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def run_load(url: str, prefix: str, args) -> dict:
    import websockets

    chargers = [Charger(f"{prefix}{i:05d}") for i in range(1, args.chargers + 1)]
    gate = asyncio.Semaphore(args.connect_concurrency)
    failures: list[str] = []

    async def connect(c: Charger):
        async with gate:
            auth = base64.b64encode(f"{c.identity}:{PASSWORD}".encode()).decode()
            try:
                c.ws = await websockets.connect(
                    f"{url}/{c.identity}",
                    subprotocols=["ocpp1.6"],
                    additional_headers={"Authorization": f"Basic {auth}"},
                    open_timeout=60,
                    ping_interval=None,
                    max_queue=4,
                )
                await c.call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Load"})
            except Exception as exc:  # counted and reported, not fatal
                failures.append(f"{c.identity}: {exc!r}")
                c.ws = None

    t0 = time.perf_counter()
    await asyncio.gather(*(connect(c) for c in chargers))
    connect_s = time.perf_counter() - t0
    held = [c for c in chargers if c.ws is not None]
    active = held[: args.active]
    for c in active:
        await c.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
        result = await c.call(
            "StartTransaction", {"connectorId": 1, "idTag": ID_TAG, "meterStart": 0, "timestamp": now_iso()}
        )
        c.tx = result["transactionId"]

    latencies: list[float] = []
    errors = 0
    period = len(active) / args.rate  # each active charger sends one MeterValues per period
    stop_at = time.perf_counter() + args.duration

    async def meter_loop(c: Charger):
        nonlocal errors
        next_at = time.perf_counter() + random.random() * period
        while True:
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() >= stop_at:
                return
            sent = time.perf_counter()
            try:
                await c.call("MeterValues", meter_payload(c))
            except Exception:
                errors += 1
                return
            latencies.append(time.perf_counter() - sent)
            next_at += period
            if next_at < time.perf_counter():  # fell behind: don't burst to catch up
                next_at = time.perf_counter()

    t1 = time.perf_counter()
    cpu_before = cpu_snapshot(args.server_pid)
    await asyncio.gather(*(meter_loop(c) for c in active))
    load_s = time.perf_counter() - t1
    cpu_after = cpu_snapshot(args.server_pid)
    cpu = {k: (cpu_after[k] - cpu_before[k]) / load_s for k in cpu_before}
    still_open = sum(1 for c in held if c.ws.state.name == "OPEN")
    await asyncio.gather(*(c.ws.close() for c in held), return_exceptions=True)
    return {
        "held": len(held),
        "still_open": still_open,
        "connect_s": connect_s,
        "failures": failures,
        "meter_values": len(latencies),
        "rate": len(latencies) / load_s if load_s else 0.0,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "errors": errors,
        "cpu": cpu,
    }


# --- ChargeDesk's side ----------------------------------------------------------------------


def prepare_chargedesk(args, env: dict) -> None:
    import psycopg

    url = env["DATABASE_URL"]
    name = url.rsplit("/", 1)[-1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    code = "from stations.models import Operator; Operator.objects.get_or_create(slug='bench', name='Bench')"
    subprocess.run([*manage, "shell", "-v", "0", "-c", code], cwd=ROOT, env=env, check=True)
    quiet = {"cwd": ROOT, "env": env, "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([*manage, "provision_idtag", ID_TAG], **quiet)
    subprocess.run(
        [*manage, "provision_chargepoint", "--operator", "bench", "--password", PASSWORD,
         "--connectors", "1", "--prefix", "LOAD-", "--count", str(args.chargers)],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def stored_samples(env: dict) -> int:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute("SELECT count(*) FROM charging_metersample").fetchone()[0]


def start(cmd: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    wait_port(port, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def report(name: str, r: dict) -> None:
    print(
        f"{name:<22} held {r['held']:>6} (open after load {r['still_open']:>6})  "
        f"connect+boot {r['connect_s']:6.1f} s  MeterValues {r['meter_values']:>7} "
        f"at {r['rate']:7.1f}/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}"
    )
    cores = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu"].items())
    print(f"{'':<22} CPU during the load, in cores: {cores}")
    if r["failures"]:
        print(f"{'':<22} {len(r['failures'])} chargers failed to connect, e.g. {r['failures'][0]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chargers", type=int, default=5000)
    parser.add_argument("--active", type=int, default=250, help="chargers in a session sending MeterValues")
    parser.add_argument("--rate", type=float, default=1000, help="MeterValues per second in all")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument(
        "--processes", type=int, default=1, help="ChargeDesk server processes (uvicorn --workers)"
    )
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chargedesk_bench"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2"),
        "DATABASE_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    if not env["DATABASE_URL"].startswith("postgres"):
        raise SystemExit("the benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    print(f"{args.chargers} chargers, {args.active} in session, ", end="")
    print(
        f"{args.rate:.0f} MeterValues/s for {args.duration:.0f} s; ChargeDesk on {args.processes} process(es)"
    )
    prepare_chargedesk(args, env)
    results = {}
    port = free_port()
    server = start(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "off", "--log-level", "warning",
         "--ws-max-size", "262144", "--backlog", "4096", "--workers", str(args.processes)],
        env, port,
    )  # fmt: skip
    args.server_pid = server.pid
    try:
        before = stored_samples(env)
        results["ChargeDesk"] = asyncio.run(run_load(f"ws://127.0.0.1:{port}/ocpp", "LOAD-", args))
        results["ChargeDesk"]["stored"] = stored_samples(env) - before
    finally:
        stop(server)
    if not args.skip_ceiling:
        port = free_port()
        bare = start([sys.executable, __file__, "--serve-bare", str(port)], env, port)
        args.server_pid = bare.pid
        try:
            results["bare ocpp library"] = asyncio.run(run_load(f"ws://127.0.0.1:{port}/ocpp", "LOAD-", args))
        finally:
            stop(bare)
    print()
    for name, r in results.items():
        report(name, r)
    cd = results["ChargeDesk"]
    print(f"{'':<22} samples stored: {cd['stored']} (expected {cd['meter_values'] * SAMPLES_PER_MESSAGE})")
    if "bare ocpp library" in results:
        ceiling = results["bare ocpp library"]
        ratio = cd["rate"] / ceiling["rate"] if ceiling["rate"] else float("nan")
        print(f"ChargeDesk / ceiling: {ratio:.2f} of the bare server's MeterValues rate "
              f"(p99 {cd['p99_ms']:.1f} ms vs {ceiling['p99_ms']:.1f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
