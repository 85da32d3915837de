"""The OpenAPI 3.1 document for /api/v1 (served at /api/v1/openapi.json)."""

_ERROR = {"$ref": "#/components/responses/Error"}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}}


def _op(summary, ok, ok_schema, params=(), body=None, errors=("400", "401", "404")):
    op = {
        "summary": summary,
        "parameters": list(params),
        "responses": {
            ok: {"description": "OK", "content": {"application/json": {"schema": ok_schema}}}
        },
    }
    for code in errors:
        op["responses"][code] = _ERROR
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


_APP = {"$ref": "#/components/schemas/App"}
_ENV_CHOICE = {"type": "object", "properties": {"environment": {"enum": ["production", "staging"]}}}
_DEPLOYMENT = {"$ref": "#/components/schemas/Deployment"}
_ENV = {
    "type": "object",
    "properties": {
        "production": {"type": "object", "additionalProperties": {"type": "string"}},
        "staging": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Slipway API", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/apps": {
            "get": _op(
                "List apps",
                "200",
                {"type": "object", "properties": {"apps": {"type": "array", "items": _APP}}},
            ),
            "post": _op(
                "Create an app",
                "201",
                _APP,
                body={
                    "type": "object",
                    "required": ["name", "repository"],
                    "properties": {
                        "name": {"type": "string"},
                        "repository": {"type": "string"},
                        "branch": {"type": "string"},
                        "port": {"type": ["integer", "null"]},
                        "build": {"enum": ["auto", "dockerfile", "python", "node", "go", "static"]},
                        "deploy": {"type": "boolean"},
                        "env": _ENV,
                    },
                },
                errors=("400", "401", "409"),
            ),
        },
        "/apps/{name}": {
            "get": _op("Get an app", "200", _APP, [_NAME]),
            "patch": _op("Change an app's settings", "200", _APP, [_NAME], body={"type": "object"}),
            "delete": _op(
                "Delete an app (runs in a worker)",
                "202",
                {"type": "object"},
                [_NAME],
                errors=("401", "404", "409"),
            ),
        },
        "/apps/{name}/deployments": {
            "get": _op("List deployments", "200", {"type": "object"}, [_NAME]),
            "post": _op(
                "Deploy",
                "202",
                {"type": "object"},
                [_NAME],
                body={
                    "type": "object",
                    "properties": {"environment": {"enum": ["production", "staging"]}},
                },
                errors=("400", "401", "404", "409"),
            ),
        },
        "/apps/{name}/logs": {
            "get": _op(
                "Runtime log of the live container after a nanosecond cursor (X-Last-Log-Nano)",
                "200",
                {"type": "object"},
                [
                    _NAME,
                    {"name": "since", "in": "query", "schema": {"type": "integer"}},
                    {
                        "name": "environment",
                        "in": "query",
                        "schema": {"enum": ["production", "staging"]},
                    },
                ],
            )
        },
        "/apps/{name}/webhook": {
            "get": _op(
                "Webhook URLs and secret to paste into a Git provider",
                "200",
                {"type": "object"},
                [_NAME],
            )
        },
        "/apps/{name}/restart": {
            "post": _op(
                "Restart (new container, switch, retire old)",
                "202",
                _DEPLOYMENT,
                [_NAME],
                body=_ENV_CHOICE,
                errors=("400", "401", "404", "409"),
            )
        },
        "/apps/{name}/stop": {
            "post": _op(
                "Stop an environment",
                "202",
                {"type": "object"},
                [_NAME],
                body=_ENV_CHOICE,
                errors=("400", "401", "404", "409"),
            )
        },
        "/apps/{name}/start": {
            "post": _op(
                "Start a stopped environment",
                "202",
                {"type": "object"},
                [_NAME],
                body=_ENV_CHOICE,
                errors=("400", "401", "404", "409"),
            )
        },
        "/apps/{name}/promote": {
            "post": _op(
                "Promote staging's live image to production (through the gates)",
                "202",
                {"type": "object"},
                [_NAME],
                errors=("400", "401", "403", "404", "409"),
            )
        },
        "/apps/{name}/deployments/{number}/rollback": {
            "post": _op(
                "Roll back to this deployment's image",
                "202",
                _DEPLOYMENT,
                [_NAME, _NUMBER],
                errors=("401", "404", "409"),
            )
        },
        "/apps/{name}/deployments/{number}/redeploy": {
            "post": _op(
                "Build this deployment's source again",
                "202",
                _DEPLOYMENT,
                [_NAME, _NUMBER],
                errors=("401", "404", "409"),
            )
        },
        "/apps/{name}/archives": {
            "post": {
                "summary": "Deploy an uploaded .tar.gz of the source",
                "parameters": [_NAME],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["archive"],
                                "properties": {
                                    "archive": {"type": "string", "format": "binary"},
                                    "environment": {"enum": ["production", "staging"]},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": {"description": "Queued"},
                    "400": _ERROR,
                    "401": _ERROR,
                    "404": _ERROR,
                    "413": _ERROR,
                },
            }
        },
        "/apps/{name}/domains": {
            "get": _op("Custom domains", "200", {"type": "object"}, [_NAME]),
            "post": _op(
                "Add a custom domain (routed at once)",
                "201",
                {"type": "object"},
                [_NAME],
                body={
                    "type": "object",
                    "required": ["hostname"],
                    "properties": {
                        "hostname": {"type": "string"},
                        "environment": {"enum": ["production", "staging"]},
                    },
                },
                errors=("400", "401", "404", "409"),
            ),
        },
        "/apps/{name}/domains/{hostname}": {
            "delete": _op(
                "Remove a custom domain",
                "200",
                {"type": "object"},
                [
                    _NAME,
                    {
                        "name": "hostname",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
            )
        },
        "/apps/{name}/volumes": {
            "get": _op("Volumes with their size", "200", {"type": "object"}, [_NAME]),
            "post": _op(
                "Add a volume (mounted from the next deployment)",
                "201",
                {"type": "object"},
                [_NAME],
                body={
                    "type": "object",
                    "required": ["name", "mount_path"],
                    "properties": {
                        "name": {"type": "string"},
                        "mount_path": {"type": "string"},
                        "environment": {"enum": ["production", "staging"]},
                    },
                },
                errors=("400", "401", "404", "409"),
            ),
        },
        "/apps/{name}/volumes/{id}": {
            "delete": _op(
                "Stop mounting a volume (?delete_data=true deletes its data)",
                "200",
                {"type": "object"},
                [_NAME, _ID],
            )
        },
        "/apps/{name}/promotion-policy": {
            "get": _op("The promotion gates", "200", {"type": "object"}, [_NAME]),
            "put": _op(
                "Set the gates: require_approval, check_path, check_expected_status, check_timeout",
                "200",
                {"type": "object"},
                [_NAME],
                body={"type": "object"},
            ),
        },
        "/apps/{name}/promotions": {
            "get": _op("Promotion requests", "200", {"type": "object"}, [_NAME])
        },
        "/apps/{name}/promotions/{id}/approve": {
            "post": _op(
                "Approve (not the requester: the owner or staff)",
                "202",
                _DEPLOYMENT,
                [_NAME, _ID],
                errors=("401", "403", "404", "409"),
            )
        },
        "/apps/{name}/promotions/{id}/reject": {
            "post": _op(
                "Reject",
                "200",
                {"type": "object"},
                [_NAME, _ID],
                errors=("401", "403", "404", "409"),
            )
        },
        "/apps/{name}/stats": {
            "get": _op("CPU and memory of the live containers", "200", {"type": "object"}, [_NAME])
        },
        "/apps/{name}/notifications": {
            "get": _op("Notification targets", "200", {"type": "object"}, [_NAME]),
            "post": _op(
                "Add a target (answer carries its signing secret once)",
                "201",
                {"type": "object"},
                [_NAME],
                body={
                    "type": "object",
                    "required": ["url"],
                    "properties": {
                        "url": {"type": "string"},
                        "events": {"type": "array", "items": {"type": "string"}},
                    },
                },
            ),
        },
        "/apps/{name}/notifications/{id}": {
            "delete": _op(
                "Remove a target", "200", {"type": "object"}, [_NAME, _ID], errors=("401", "404")
            )
        },
        "/apps/{name}/notifications/{id}/deliveries": {
            "get": _op("A target's delivery log", "200", {"type": "object"}, [_NAME, _ID])
        },
        "/apps/{name}/addons": {
            "get": _op("Add-ons", "200", {"type": "object"}, [_NAME]),
            "post": _op(
                "Attach an add-on",
                "202",
                {"type": "object"},
                [_NAME],
                body={
                    "type": "object",
                    "required": ["kind"],
                    "properties": {
                        "kind": {"enum": ["postgres", "mariadb", "redis"]},
                        "environment": {"enum": ["production", "staging"]},
                    },
                },
                errors=("400", "401", "404", "409"),
            ),
        },
        "/apps/{name}/addons/{id}": {
            "get": _op("An add-on", "200", {"type": "object"}, [_NAME, _ID]),
            "delete": _op(
                "Detach (?delete_data=true also deletes its volume and backups)",
                "202",
                {"type": "object"},
                [_NAME, _ID],
                errors=("401", "404", "409"),
            ),
        },
        "/apps/{name}/addons/{id}/restart": {
            "post": _op(
                "Restart an add-on",
                "202",
                {"type": "object"},
                [_NAME, _ID],
                errors=("401", "404", "409"),
            )
        },
        "/apps/{name}/addons/{id}/backups": {
            "get": _op("Backups with size and age", "200", {"type": "object"}, [_NAME, _ID]),
            "post": _op(
                "Take a backup now",
                "202",
                {"type": "object"},
                [_NAME, _ID],
                errors=("401", "404", "409"),
            ),
        },
        "/apps/{name}/addons/{id}/backups/{backup}/restore": {
            "post": _op(
                "Restore a backup",
                "202",
                {"type": "object"},
                [
                    _NAME,
                    _ID,
                    {
                        "name": "backup",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
                errors=("401", "404", "409"),
            )
        },
        "/apps/{name}/deployments/{number}": {
            "get": _op("Get a deployment", "200", _DEPLOYMENT, [_NAME, _NUMBER])
        },
        "/apps/{name}/deployments/{number}/cancel": {
            "post": _op(
                "Cancel a deployment",
                "200",
                _DEPLOYMENT,
                [_NAME, _NUMBER],
                errors=("401", "404", "409"),
            )
        },
        "/apps/{name}/deployments/{number}/logs": {
            "get": _op(
                "Build and deploy log after a cursor",
                "200",
                {"type": "object"},
                [_NAME, _NUMBER, {"name": "after", "in": "query", "schema": {"type": "integer"}}],
            )
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Error": {
                "description": "An error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            },
            "App": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "repository": {"type": "string"},
                    "branch": {"type": "string"},
                    "status": {"type": "string"},
                    "urls": {"type": "object"},
                    "port": {"type": ["integer", "null"]},
                },
            },
            "Deployment": {
                "type": "object",
                "properties": {
                    "number": {"type": "integer"},
                    "status": {"type": "string"},
                    "environment": {"type": "string"},
                    "error": {"type": ["object", "null"]},
                    "image": {"type": ["string", "null"]},
                    "commit": {"type": ["string", "null"]},
                    "started_at": {"type": ["string", "null"]},
                    "finished_at": {"type": ["string", "null"]},
                },
            },
        },
    },
}
