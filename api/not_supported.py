"""The MLflow 3 GenAI families Sluice does not implement (schemas/routes.py,
NOT_SUPPORTED_FAMILIES): each answers MLflow's NOT_IMPLEMENTED (501) naming the feature, as
MLflow itself answers the AI gateway's routes when the gateway is disabled. server-info says
``features_enabled.gateway: false`` to match; the README lists them under "Not supported"."""

from __future__ import annotations

from typing import NoReturn

from aiohttp import web

from schemas.mlflow_errors import MlflowError


def _not_supported(feature: str) -> NoReturn:
    raise MlflowError(
        "NOT_IMPLEMENTED",
        f"The {feature} feature is not supported by this server (Sluice serves MLflow's "
        "tracking, model registry, artifact and logged-model APIs).",
    )


async def gateway(request: web.Request) -> NoReturn:
    _not_supported("AI Gateway")


async def issues(request: web.Request) -> NoReturn:
    _not_supported("Issues")


async def scorers(request: web.Request) -> NoReturn:
    _not_supported("Scorers and GenAI evaluation")


async def evaluation_datasets(request: web.Request) -> NoReturn:
    _not_supported("Evaluation datasets")


async def prompt_optimization(request: web.Request) -> NoReturn:
    _not_supported("Prompt optimization (prompt lab)")
