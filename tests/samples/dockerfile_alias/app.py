import http.server
import os


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from an aliased base image")


http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Hello).serve_forever()
