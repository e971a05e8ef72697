"""Root fields answered by the REST read paths (the same functions, the same JSON), and the
default field resolver that reads that JSON under GraphQL's camelCase names.

With access control on, a run or experiment is only returned to a caller with READ on its
experiment (the REST routes check this at the edge; here every resolved object is checked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from graphql import (
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    get_named_type,
)

from api.deps import Deps, deps_key
from api.experiments import handlers as experiments
from api.metrics import handlers as metrics
from api.registry import versions
from api.runs import handlers as runs
from api.ui.graphql.schema import SCHEMA
from schemas.access import Level
from sluice.auth import require_experiment, viewer_of

_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    """runUuid -> run_uuid: GraphQL's field names are the REST JSON's in camelCase."""
    return _CAMEL.sub("_", name).lower()


def snake_keys(value: Any) -> Any:
    """An input object (GraphQL names) as a REST request document."""
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


@dataclass(slots=True)
class Context:
    request: web.Request
    # one request's experiments by id: a page of runs mostly shares one experiment
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def deps(self) -> Deps:
        return self.request.app[deps_key]


# What MLflow's GraphQL answers for a field its protobuf message leaves unset (the message's
# default: an unset end time is "0", a run without inputs has empty lists), by type name.
_UNSET: Final[dict[str, Any]] = {
    "String": "",
    "LongString": 0,
    "Int": 0,
    "Float": 0.0,
    "Boolean": False,
}


def field_resolver(source: Any, info: GraphQLResolveInfo, **_: Any) -> Any:
    """Dict sources (REST JSON) by snake_case key, unset fields as protobuf defaults; a Float
    that REST wrote as a string ("NaN", "Infinity") is null, as MLflow answers NaN."""
    if not isinstance(source, dict):
        return None
    value = source.get(snake(info.field_name))
    named = get_named_type(info.return_type)
    if value is None:
        return _unset(info, named)
    if isinstance(value, str) and named.name == "Float":
        return None
    return value


def _unset(info: GraphQLResolveInfo, named: GraphQLNamedType) -> Any:
    output = info.return_type
    if isinstance(output, GraphQLNonNull):
        output = output.of_type
    if isinstance(output, GraphQLList):
        return []
    if isinstance(named, GraphQLObjectType):
        return None if named.name == "ApiError" else {}
    return _UNSET.get(named.name)


async def _experiment(ctx: Context, experiment_id: str) -> dict[str, Any]:
    if experiment_id not in ctx.experiments:
        doc = await experiments.read_experiment(ctx.deps.pool, {"experiment_id": experiment_id})
        ctx.experiments[experiment_id] = doc["experiment"]
    return ctx.experiments[experiment_id]


async def _readable(ctx: Context, experiment_id: str) -> None:
    await require_experiment(ctx.request, int(experiment_id), Level.READ)


async def get_experiment(_: Any, info: GraphQLResolveInfo, input: Any = None) -> Any:
    ctx: Context = info.context
    doc = snake_keys(input or {})
    answer = await experiments.read_experiment(ctx.deps.pool, doc)
    await _readable(ctx, answer["experiment"]["experiment_id"])
    return answer


async def get_run(_: Any, info: GraphQLResolveInfo, input: Any = None) -> Any:
    ctx: Context = info.context
    answer = await runs.read_run(ctx.deps, snake_keys(input or {}))
    await _readable(ctx, answer["run"]["info"]["experiment_id"])
    return answer


async def search_runs(_: Any, info: GraphQLResolveInfo, input: Any = None) -> Any:
    ctx: Context = info.context
    doc = snake_keys(input or {})
    for experiment_id in doc.get("experiment_ids") or []:
        await _readable(ctx, str(experiment_id))
    return await runs.run_search_page(ctx.deps, doc)


async def sampled_histories(_: Any, info: GraphQLResolveInfo, input: Any = None) -> Any:
    ctx: Context = info.context
    return await metrics.sampled_histories(ctx.request, snake_keys(input or {}))


async def search_model_versions(_: Any, info: GraphQLResolveInfo, input: Any = None) -> Any:
    ctx: Context = info.context
    return await versions.model_version_page(
        ctx.deps.pool, snake_keys(input or {}), viewer_of(ctx.request)
    )


async def run_experiment(run: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    return await _experiment(info.context, str(run["info"]["experiment_id"]))


async def run_model_versions(run: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    ctx: Context = info.context
    run_id = str(run["info"]["run_id"])
    page = await versions.model_version_page(
        ctx.deps.pool, {"filter": f"run_id='{run_id}'"}, viewer_of(ctx.request)
    )
    return page.get("model_versions", [])


def install() -> None:
    """Attach the resolvers to the schema's fields (once, at import)."""
    roots = {
        ("Query", "mlflowGetExperiment"): get_experiment,
        ("Query", "mlflowGetRun"): get_run,
        ("Query", "mlflowSearchRuns"): search_runs,
        ("Mutation", "mlflowSearchRuns"): search_runs,
        ("Query", "mlflowGetMetricHistoryBulkInterval"): sampled_histories,
        ("Query", "mlflowSearchModelVersions"): search_model_versions,
        ("MlflowRunExtension", "experiment"): run_experiment,
        ("MlflowRunExtension", "modelVersions"): run_model_versions,
    }
    for (type_name, field_name), resolve in roots.items():
        SCHEMA.type_map[type_name].fields[field_name].resolve = resolve  # type: ignore[attr-defined]


install()
