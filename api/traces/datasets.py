"""``/api/3.0/mlflow/datasets/search``: MLflow 3's evaluation datasets, which the traces tab
lists next to an experiment's traces.

Sluice stores no evaluation datasets (it serves none of the routes that create them), so a valid
search answers an empty page; the request is still checked as MLflow's SQL store checks it
(page size, page token, filter keys, order keys), so a bad request is the same 400.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from api.deps import request_doc
from api.page_tokens import decode_offset
from api.search.lexer import Kind, strip_quotes, tokenize
from schemas.fields import get_list, get_string
from schemas.int_fields import get_int32
from schemas.mlflow_errors import invalid_parameter
from sluice.http import json_response

DEFAULT_MAX_RESULTS: Final = 1000  # the proto's default
MAX_RESULTS: Final = 50000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD
# Listed in the order MLflow's messages show them (a Python set: the order is its hash order).
FILTER_KEYS: Final = ("created_time", "name", "last_updated_by", "last_update_time", "created_by")
ORDER_KEYS: Final = ("created_time", "name", "last_update_time")


async def search_evaluation_datasets(request: web.Request) -> web.Response:
    doc = await request_doc(request, repeated=frozenset({"experiment_ids", "order_by"}))
    check_request(doc)
    return json_response({})


def check_request(doc: dict[str, Any]) -> None:
    get_list(doc, "experiment_ids")
    filter_string = get_string(doc, "filter_string")
    max_results = get_int32(doc, "max_results", default=DEFAULT_MAX_RESULTS)
    order_by = get_list(doc, "order_by")
    token = get_string(doc, "page_token")
    # MLflow's handler passes ``max_results or None``: 0 is reported as None.
    if max_results <= 0:
        shown = None if max_results == 0 else max_results
        raise invalid_parameter(
            f"Invalid value {shown} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    if max_results > MAX_RESULTS:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            f"It must be at most {MAX_RESULTS}"
        )
    decode_offset(token)
    if filter_string:
        _check_filter(filter_string)
    for item in order_by:
        _check_order(str(item))


def _check_filter(text: str) -> None:
    tokens = tokenize(text)
    for pos, token in enumerate(tokens):
        follows = tokens[pos + 1] if pos + 1 < len(tokens) else None
        if token.kind is Kind.IDENT and follows is not None and follows.kind is Kind.OP:
            _identifier(token.text, FILTER_KEYS)


def _identifier(text: str, valid: tuple[str, ...]) -> None:
    entity, dot, _ = text.partition(".")
    if not dot:
        key = strip_quotes(text) or text
        if key not in valid:
            shown = "{" + ", ".join(f"'{k}'" for k in valid) + "}"
            raise invalid_parameter(
                f"Invalid attribute key '{key}' specified. Valid keys are: {shown}"
            )
    elif entity != "tags":
        raise invalid_parameter(f"Invalid identifier token '{entity}' specified")


def _check_order(item: str) -> None:
    words = item.replace("`", '"').split()
    if len(words) > 2 or not words:
        raise invalid_parameter(f"Invalid order_by clause '{item}'. Could not be parsed.")
    if len(words) == 2 and words[1].lower() not in ("asc", "desc"):
        raise invalid_parameter(f"Invalid ordering key in order_by clause '{item}'.")
    _identifier(words[0], ORDER_KEYS)
    if "." in words[0]:
        raise invalid_parameter("Invalid order_by entity: tag")
