"""A real git smart-HTTP server on loopback (`git http-backend` behind http.server) that
demands a token, like a private repository on a forge. It records every Authorization
header it sees, so tests can prove the token went in a header and nowhere else."""

import base64
import contextlib
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


class PrivateGitServer:
    """token None: a public server. stall_first: the first upload-pack request (a clone's
    fetch) hangs this many seconds first, so a test can catch a deployment mid-fetch."""

    def __init__(
        self, root: Path, token: str | None, user: str = "x-access-token", stall_first: float = 0
    ):
        self.root, self.seen_auth, self.stall_first = root, [], stall_first
        self.expected = (
            "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode() if token else None
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve()

            def do_POST(self):
                self._serve()

            def _serve(self):
                auth = self.headers.get("Authorization", "")
                server.seen_auth.append(auth)
                if server.expected and auth != server.expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="private"')
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "POST" and server.stall_first:
                    stall, server.stall_first = server.stall_first, 0
                    time.sleep(stall)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._cgi(body)  # a client killed meanwhile (a fault test) hung up

            def _cgi(self, body: bytes):
                parts = urlsplit(self.path)
                env = {
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": parts.path,
                    "QUERY_STRING": parts.query,
                    "REQUEST_METHOD": self.command,
                    "REMOTE_USER": "tester",
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "PATH": "/usr/bin:/bin",
                }
                if self.headers.get("Git-Protocol"):
                    env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
                out = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True
                ).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
