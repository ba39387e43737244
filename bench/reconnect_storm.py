"""Reconnect storm: thousands of chargers reconnect at once after the server restarts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chargedesk_bench_storm \\
    REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/reconnect_storm.py --chargers 3000

What it does, once per configuration (``--configs``; by default the admission path as it was,
``before``, then as it is, ``after``, in the same run on the same database):
1. serves ChargeDesk on uvicorn (--processes, one by default; Redis channel layer and cache,
   PostgreSQL; a fresh bench database with --chargers chargers and an operator admin to log in);
2. connects every charger (HTTP Basic, ocpp1.6, BootNotification) and holds them; each charger
   reconnects on its own whenever its socket drops, with a short jittered back-off, as
   firmware does;
3. samples a logged-in operator's dashboard page and the API list
   /api/v1/operator/charge-points/ at idle, from a separate process;
4. kills the server (SIGKILL: a crash, nothing is drained) and starts it again; every charger
   reconnects at once. It prints how many came back (accepted and booted) and when, counted
   from the moment the new server listened (50/90/100 %), and the dashboard and API latency
   sampled during the storm, next to the idle figures.

``before`` turns the new admission machinery off through the environment
(OCPP_AUTH_CACHE_SECONDS=0: every connect runs the slow password hash;
OCPP_HANDSHAKE_CONCURRENCY=0: no bound on handshakes in progress), so the gain is measured
against the same code, machine and noise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ocpp_load import cpu_snapshot, free_port, pct, wait_port  # noqa: E402

PASSWORD = "bench-charger-password-01"
PREFIX = "STORM-"
ADMIN_EMAIL = "storm-admin@bench.example"
BOOT = {"chargePointVendor": "Bench", "chargePointModel": "Storm"}
CONFIGS = {
    "before": {"OCPP_AUTH_CACHE_SECONDS": "0", "OCPP_HANDSHAKE_CONCURRENCY": "0"},
    "after": {},
    # Each change alone, to tell their shares apart.
    "fingerprint-only": {"OCPP_HANDSHAKE_CONCURRENCY": "0"},
    "bound-only": {"OCPP_AUTH_CACHE_SECONDS": "0"},
    # Other bounds than the default (4).
    "bound-2": {"OCPP_HANDSHAKE_CONCURRENCY": "2"},
    "bound-8": {"OCPP_HANDSHAKE_CONCURRENCY": "8"},
    "bound-32": {"OCPP_HANDSHAKE_CONCURRENCY": "32"},
}


# --- The database and the server --------------------------------------------------------------


def prepare(args, env: dict) -> None:
    import psycopg

    url = env["DATABASE_URL"]
    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    code = "from stations.models import Operator; Operator.objects.get_or_create(slug='bench', name='Bench')"
    subprocess.run([*manage, "shell", "-v", "0", "-c", code], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*manage, "provision_chargepoint", "--operator", "bench", "--password", PASSWORD,
         "--connectors", "1", "--prefix", PREFIX, "--count", str(args.chargers)],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def session_cookie(env: dict) -> str:
    """A logged-in operator admin's session id (made through Django's own test client)."""
    code = (
        "from django.test import Client\n"
        "from stations.models import Operator, User\n"
        "from stations.models.accounts import Role\n"
        f"u = User.objects.filter(email='{ADMIN_EMAIL}').first() or User.objects.create_user("
        f"email='{ADMIN_EMAIL}', password='storm-admin-password-1', role=Role.OPERATOR_ADMIN, "
        "operator=Operator.objects.get(slug='bench'))\n"
        "c = Client(); c.force_login(u); print(c.cookies['sessionid'].value)\n"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def serve(env: dict, port: int, processes: int) -> subprocess.Popen:
    # A session of its own: the crash kills the supervisor and its workers together.
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "off", "--log-level", "warning",
         "--backlog", "8192", "--ws-ping-interval", "0", "--workers", str(processes)],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    wait_port(port, proc)
    return proc


def crash(proc: subprocess.Popen) -> None:
    """SIGKILL to the server and its worker processes: a crash, nothing drained."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def clear_cache(env: dict) -> None:
    """The bench's own Redis database (REDIS_URL): counters and fingerprints of the last run go."""
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()


# --- The dashboard sampler (a process of its own, so the fleet's loop does not delay it) -------


def sampler(base: str, cookie: str, stop, out, interval: float) -> None:
    import requests

    s = requests.Session()
    s.cookies.set("sessionid", cookie)
    results = []
    paths = [("dashboard", "/dashboard/"), ("api", "/api/v1/operator/charge-points/")]
    i = 0
    while not stop.is_set():
        name, path = paths[i % 2]
        i += 1
        t = time.perf_counter()
        try:
            status = s.get(base + path, timeout=30, allow_redirects=False).status_code
        except requests.RequestException:
            status = 0
        results.append((name, time.perf_counter() - t, status))
        time.sleep(interval)
    out.send(results)


class Sampling:
    def __init__(self, base: str, cookie: str, interval: float = 0.2):
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=sampler, args=(base, cookie, self.stop, send, interval), daemon=True)
        self.proc.start()

    def finish(self) -> list[tuple[str, float, int]]:
        self.stop.set()
        results = self.recv.recv()
        self.proc.join(10)
        return results


def latency_line(label: str, samples: list[tuple[str, float, int]]) -> str:
    parts = []
    for name in ("dashboard", "api"):
        mine = [s for s in samples if s[0] == name]
        ok = [s[1] for s in mine if s[2] == 200]
        parts.append(
            f"{name} {len(ok)}/{len(mine)} ok, p50 {pct(ok, 50) * 1000:6.0f} ms, "
            f"p90 {pct(ok, 90) * 1000:6.0f} ms, max {max(ok, default=float('nan')) * 1000:6.0f} ms"
        )
    return f"  {label:<18}" + "; ".join(parts)


# --- The fleet --------------------------------------------------------------------------------


class Fleet:
    """Chargers that hold a socket and reconnect whenever it drops, as firmware does."""

    def __init__(self, url: str, count: int, backoff_max: float):
        self.url, self.backoff_max = url, backoff_max
        self.identities = [f"{PREFIX}{i:05d}" for i in range(1, count + 1)]
        self.booted_at: dict[str, float] = {}
        self.attempts = 0
        self.refused = 0
        self.tasks: list[asyncio.Task] = []
        self.open_latency: list[float] = []
        self.boot_latency: list[float] = []

    async def life(self, identity: str) -> None:
        import websockets

        auth = base64.b64encode(f"{identity}:{PASSWORD}".encode()).decode()
        failures = 0
        while True:
            self.attempts += 1
            t = time.perf_counter()
            try:
                async with websockets.connect(
                    f"{self.url}/{identity}",
                    subprotocols=["ocpp1.6"],
                    additional_headers={"Authorization": f"Basic {auth}"},
                    open_timeout=60,
                    ping_interval=None,
                    close_timeout=1,
                    max_queue=4,
                ) as ws:
                    opened = time.perf_counter()
                    await ws.send(orjson.dumps([2, "b1", "BootNotification", BOOT]).decode())
                    reply = orjson.loads(await ws.recv())
                    if reply[0] != 3 or reply[2].get("status") != "Accepted":
                        raise RuntimeError(f"boot answered {reply}")
                    done = time.perf_counter()
                    self.open_latency.append(opened - t)
                    self.boot_latency.append(done - opened)
                    self.booted_at[identity] = done
                    failures = 0
                    await ws.wait_closed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if "HTTP 403" in str(exc) or "rejected" in str(exc):
                    self.refused += 1
            failures += 1
            # Jittered exponential back-off, as chargers do (OCPP 2.0.1's RetryBackOff*).
            await asyncio.sleep(min(self.backoff_max, 0.25 * 2 ** min(failures, 6)) * random.uniform(0.5, 1))

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.life(i)) for i in self.identities]

    async def wait_booted(self, since: float, timeout: float) -> list[float]:
        """Seconds after ``since`` at which each charger booted again, once all have or at timeout."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            back = [t for t in self.booted_at.values() if t >= since]
            if len(back) == len(self.identities):
                break
            await asyncio.sleep(0.05)
        return sorted(t - since for t in self.booted_at.values() if t >= since)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def at_share(times: list[float], total: int, share: float) -> float:
    need = max(1, round(total * share))
    return times[need - 1] if len(times) >= need else float("nan")


async def run_config(name: str, args, base_env: dict, cookie: str) -> dict:
    env = {**base_env, **CONFIGS[name]}
    clear_cache(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port, args.processes)
    fleet = Fleet(f"ws://127.0.0.1:{port}/ocpp", args.chargers, args.backoff_max)
    result: dict = {"name": name}
    try:
        t0 = time.perf_counter()
        fleet.start()
        first = await fleet.wait_booted(t0, args.timeout)
        result["first"] = (len(first), first[-1] if first else float("nan"))
        # Idle: all connected, nothing happening.
        idle = Sampling(base, cookie)
        await asyncio.sleep(args.idle)
        result["idle"] = idle.finish()
        # The restart: a crash, then the same server again on the same port.
        crash(server)
        killed = time.perf_counter()
        server = serve(env, port, args.processes)
        ready = time.perf_counter()
        spy = None
        if args.py_spy:  # where the server's time goes in the storm (py-spy: pip install py-spy)
            spy = subprocess.Popen(
                [args.py_spy, "record", "--gil", "-p", str(server.pid), "-o", f"storm-{name}.txt",
                 "-f", "raw", "-r", "200", "--nonblocking", "-d", str(int(args.py_spy_seconds))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        storm = Sampling(base, cookie)
        cpu0 = cpu_snapshot(server.pid)
        attempts0 = fleet.attempts
        back = await fleet.wait_booted(ready, args.timeout)
        storm_s = (back[-1] if back else 0) or 0.001
        cpu1 = cpu_snapshot(server.pid)
        result["storm_samples"] = storm.finish()
        if spy is not None:
            spy.wait()
        result.update(
            back=back,
            restart_s=ready - killed,
            attempts=fleet.attempts - attempts0,
            cpu={k: (cpu1[k] - cpu0[k]) / storm_s for k in cpu0},
        )
    finally:
        await fleet.stop()
        crash(server)
    return result


def report(r: dict, total: int) -> None:
    back = r["back"]
    print(f"\n[{r['name']}] {CONFIGS[r['name']] or 'as configured'}")
    n, last = r["first"]
    print(f"  first connect     {n}/{total} booted in {last:.1f} s")
    print(
        f"  storm             {len(back)}/{total} reconnected and booted; "
        f"50 % at {at_share(back, total, 0.5):.1f} s, 90 % at {at_share(back, total, 0.9):.1f} s, "
        f"100 % at {at_share(back, total, 1.0):.1f} s after the restarted server listened "
        f"(restart took {r['restart_s']:.1f} s; {r['attempts']} connection attempts)"
    )
    cores = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu"].items())
    print(f"  CPU in the storm  {cores} (cores)")
    print(latency_line("dashboard idle", r["idle"]))
    print(latency_line("during the storm", r["storm_samples"]))


async def main_async(args, env: dict, cookie: str) -> None:
    results = []
    for name in args.configs:
        print(f"running {name} …", flush=True)
        results.append(await run_config(name, args, env, cookie))
    print(
        f"\n{args.chargers} chargers, {args.processes} uvicorn process(es), "
        f"reconnect back-off up to {args.backoff_max} s"
    )
    for r in results:
        report(r, args.chargers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chargers", type=int, default=3000)
    parser.add_argument("--configs", nargs="+", default=["before", "after"], choices=list(CONFIGS))
    parser.add_argument("--idle", type=float, default=5, help="seconds of idle dashboard sampling")
    parser.add_argument("--timeout", type=float, default=300, help="give up waiting for the fleet after this")
    parser.add_argument("--backoff-max", type=float, default=2.0, help="longest reconnect back-off, seconds")
    parser.add_argument("--processes", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--py-spy", metavar="PATH", help="profile the storm with this py-spy binary")
    parser.add_argument("--py-spy-seconds", type=float, default=8)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chargedesk_bench_storm"
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        "DATABASE_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    if not env["DATABASE_URL"].startswith("postgres"):
        raise SystemExit("the benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    prepare(args, env)
    cookie = session_cookie(env)
    asyncio.run(main_async(args, env, cookie))


if __name__ == "__main__":
    main()
