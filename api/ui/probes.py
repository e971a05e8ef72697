"""Small answers the UI's pages ask for on every load: who the user is (with access control
on), UI telemetry settings (disabled: Sluice sends nothing anywhere), the AI assistant's
configuration (not offered) and the deployments gateway (none)."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from schemas.mlflow_errors import endpoint_not_found
from sluice.auth import current_user_of
from sluice.http import json_response

TELEMETRY_DISABLED: Final = {
    "disable_ui_events": [],
    "disable_ui_telemetry": True,
    "ui_rollout_percentage": 0,
}
NO_ASSISTANT_CONFIG: Final[dict[str, Any]] = {
    "providers": {},
    "projects": {},
    "remote_access_allowed": False,
}
NO_ASSISTANT_PROVIDERS: Final[dict[str, Any]] = {
    "providers": [],
    "resolved": None,
    "gateway_vendor_options": {},
}


async def current_user(request: web.Request) -> web.Response:
    """MLflow's auth app answers this; without it the route does not exist (404), which is
    how the UI learns that access control is off."""
    user = current_user_of(request)
    if user is None:
        raise endpoint_not_found()
    # is_basic_auth gates the UI's change-password dialog, whose route Sluice does not serve
    # (passwords are set with `sluice user-add`).
    return json_response(
        {"user": {"username": user.name, "is_admin": user.is_admin}, "is_basic_auth": False}
    )


async def ui_telemetry(_: web.Request) -> web.Response:
    return json_response(TELEMETRY_DISABLED)


async def ui_telemetry_events(_: web.Request) -> web.Response:
    """Events the UI would send; with telemetry disabled it sends none, and any that arrive
    are dropped unread."""
    return json_response({"status": "disabled"})


async def gateway_proxy(_: web.Request) -> web.Response:
    """MLflow without a deployments target (MLFLOW_DEPLOYMENTS_TARGET) answers as a gateway
    with no endpoints; Sluice never has one (it would proxy to a user-chosen URL)."""
    return json_response({"endpoints": []})


async def assistant_config(_: web.Request) -> web.Response:
    return json_response(NO_ASSISTANT_CONFIG)


async def assistant_providers(_: web.Request) -> web.Response:
    return json_response(NO_ASSISTANT_PROVIDERS)
