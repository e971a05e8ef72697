"""The HTTP edge of ``/graphql``: parse under bounds, validate, execute, answer MLflow's shape
``{"data": ..., "errors": [message, ...] | null}`` with status 200 (errors are data here, as
in MLflow; an unreadable request is a 400)."""

from __future__ import annotations

import logging
from inspect import isawaitable
from typing import Any

import orjson
from aiohttp import web
from graphql import ExecutionResult, GraphQLError, execute, parse, validate

from api.deps import request_doc
from api.ui.graphql import limits
from api.ui.graphql.resolvers import Context, field_resolver
from api.ui.graphql.schema import SCHEMA
from schemas.mlflow_errors import MlflowError, invalid_parameter
from sluice.http import json_response

log = logging.getLogger(__name__)


def _variables(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, str):  # GET: a JSON text in the query string
        try:
            raw = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise invalid_parameter("GraphQL variables must be a JSON object.") from None
    if raw is not None and not isinstance(raw, dict):
        raise invalid_parameter("GraphQL variables must be a JSON object.")
    return raw


def _answer(result: ExecutionResult) -> web.Response:
    errors = [_message(e) for e in result.errors] if result.errors else None
    return json_response({"data": result.data, "errors": errors})


def _message(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, MlflowError):
        return original.message
    if original is None or isinstance(original, GraphQLError):
        return error.message
    # Not ours to show: a bug or a driver error must not leak internals into the page.
    log.error("graphql resolver failed", exc_info=original)
    return "Internal server error"


async def graphql(request: web.Request) -> web.Response:
    doc = await request_doc(request)
    query = doc.get("query")
    if not isinstance(query, str) or not query:
        raise invalid_parameter("A GraphQL request must carry a query.")
    operation = doc.get("operationName") or None
    if operation is not None and not isinstance(operation, str):
        raise invalid_parameter("operationName must be a string.")
    variables = _variables(doc.get("variables"))
    try:
        document = parse(query, no_location=False, max_tokens=limits.MAX_TOKENS)
        limits.check(document)
    except GraphQLError as exc:
        return _answer(ExecutionResult(None, [exc]))
    except limits.QueryTooLarge as exc:
        return _answer(ExecutionResult(None, [GraphQLError(str(exc))]))
    invalid = validate(SCHEMA, document)
    if invalid:
        return _answer(ExecutionResult(None, invalid))
    result = execute(
        SCHEMA,
        document,
        context_value=Context(request),
        variable_values=variables,
        operation_name=operation,
        field_resolver=field_resolver,
    )
    if isawaitable(result):
        result = await result
    return _answer(result)
