"""The route table: every route group's router is included, under the paths clients call.

``create_app`` includes one router per group (``_routes_*``); a group left out would answer 404
only on its own paths, so the table is checked whole, through the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from agentcore.backends import FakeBackend

ROUTES = {
    ("get", "/health"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{model_id}"),
    ("post", "/v1/chat/completions"),
    ("post", "/v1/completions"),
    ("get", "/v1/sessions"),
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions/{sid}"),
    ("delete", "/v1/sessions/{sid}"),
    ("post", "/v1/responses"),
    ("get", "/v1/responses/{rid}"),
    ("delete", "/v1/responses/{rid}"),
}


def test_every_route_group_is_served(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(FakeBackend(["hi"]))
    paths = app.openapi()["paths"]
    assert {(method, path) for path, ops in paths.items() for method in ops} == ROUTES
