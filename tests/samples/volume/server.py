"""Writes and reads a note under /data, to show that a volume outlives deployments."""

import http.server
import os
from pathlib import Path

NOTE = Path("/data/note.txt")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/write":
            NOTE.write_text(os.environ.get("NOTE", "kept"))
        body = (NOTE.read_text() if NOTE.exists() else "nothing").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
