"""The uvicorn command line `manage.py serve` runs (and the live tests start)."""

from stations.management.commands.serve import uvicorn_command


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_a_stop_waits_a_bounded_time_for_connections_and_consumers(settings):
    settings.ASGI_GRACEFUL_SHUTDOWN_SECONDS = 7
    assert _option(uvicorn_command("127.0.0.1", 8000), "--timeout-graceful-shutdown") == "7"
    assert (
        _option(uvicorn_command("127.0.0.1", 8000, graceful_shutdown=2), "--timeout-graceful-shutdown") == "2"
    )


def test_websocket_messages_are_bounded_and_the_proxy_tells_the_client_address(settings):
    command = uvicorn_command("0.0.0.0", 9000, workers=3, log_level="info")
    assert _option(command, "--ws-max-size") == str(settings.OCPP_WS_MAX_BYTES)
    assert "--proxy-headers" in command
    assert (_option(command, "--workers"), _option(command, "--port"), _option(command, "--log-level")) == (
        "3",
        "9000",
        "info",
    )
