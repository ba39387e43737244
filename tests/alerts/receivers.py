"""HTTP servers the alerts tests send to: a webhook receiver (checking our signature), a push
service, an SMS gateway — all one small server on 127.0.0.1 that records what it gets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alerts import signing


class Receiver:
    """An HTTP server on 127.0.0.1 (a free port) in a thread. It records every request as a
    dict (method, path, headers (case-insensitive), body) and answers with the status code
    ``respond(request)`` returns, or with the next of ``statuses`` (the last one repeats).
    With ``secret`` it checks the ChargeDesk signature first and answers 401 to a bad one.
    (Also used by the web push and SMS/mobile tests.)"""

    def __init__(
        self,
        statuses: tuple[int, ...] = (200,),
        *,
        respond: Callable[[dict], int] | None = None,
        secret: str | None = None,
    ):
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        self.respond = respond
        self.secret = secret
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {"method": "POST", "path": self.path, "headers": self.headers, "body": body}
                receiver.requests.append(request)
                if receiver.secret is not None and not signing.verify(
                    receiver.secret, self.headers.get("ChargeDesk-Signature", ""), body
                ):
                    status = 401
                elif receiver.respond is not None:
                    status = receiver.respond(request)
                else:
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                answer = b"ok" if status < 300 else f"status {status} from receiver".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}/hook"
