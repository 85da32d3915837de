"""Tells the audit log where a request came from (paas.actor)."""

from paas.actor import Actor, acting

# The first path segment says which way in a request took.
SOURCES = {"api": "api", "admin": "admin", "hooks": "webhook"}


def audit_actor(get_response):
    def middleware(request):
        segment = request.path.strip("/").split("/", 1)[0]
        with acting(Actor(SOURCES.get(segment, "dashboard"), request)):
            return get_response(request)

    return middleware
