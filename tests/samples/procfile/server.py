"""Says which container answered (its hostname) and, on /headers, the forwarding headers it
got: the routing tests tell replicas apart and check what the router passes on."""

import http.server
import json
import os
import socket


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as browsers and load testers use it
    # Headers and body go out in two writes: without this, Nagle and delayed ACKs hold
    # each answer on a reused connection for ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path == "/headers":
            names = ("Host", "X-Forwarded-Proto", "X-Forwarded-For", "Authorization")
            body = json.dumps({name: self.headers.get(name) for name in names}).encode()
        else:
            body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops connection attempts under load


Server(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
