import os


def app(environ, start_response):
    body = f"python says {os.environ.get('GREETING', 'hello')} v1".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
