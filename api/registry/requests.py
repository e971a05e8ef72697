"""Registry request fields (pure): the getters every registry handler shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.registry.rules import parse_version, validate_tag
from schemas.fields import expect_object, get_list, get_string
from schemas.mlflow_errors import invalid_parameter

Doc = Mapping[str, Any]


def name_of(doc: Doc, field: str = "name") -> str:
    return get_string(doc, field, required=True)


def unchecked_name_of(doc: Doc) -> str:
    """The name of a handler MLflow gives no request schema (get-download-uri): its store's
    own check answers a missing name, without the API docs hint of the schema check."""
    name = get_string(doc, "name", default="")
    if not name:
        raise invalid_parameter("Missing value for required parameter 'name'.")
    return name


def unchecked_version_of(doc: Doc) -> int:
    """The version of such a handler: protobuf's "" for a missing one, then the store's check."""
    return parse_version(get_string(doc, "version", default=""))


def version_of(doc: Doc) -> int:
    return parse_version(get_string(doc, "version", required=True))


def tags_of(doc: Doc) -> list[tuple[str, str]]:
    """``tags[]`` validated; a repeated key keeps its last value."""
    tags: dict[str, str] = {}
    for i, item in enumerate(get_list(doc, "tags")):
        obj = expect_object(item, f"tags[{i}]")
        key = get_string(obj, "key", path=f"tags[{i}].key", required=True)
        value = get_string(obj, "value", path=f"tags[{i}].value", default="")
        validate_tag(key, value)
        tags[key] = value
    return list(tags.items())


def tag_of(doc: Doc) -> tuple[str, str]:
    key = get_string(doc, "key", required=True)
    value = get_string(doc, "value", default="")
    validate_tag(key, value)
    return key, value
