# ruff: noqa: PLC0415  (mlflow lives only in the reference venv: imported when run there)
"""Writes mlflow_surface.json: every REST endpoint of the reference MLflow with the fields of its
request and response messages, read from MLflow's own protobuf descriptors.

Run it with the reference venv's interpreter (it imports mlflow), from the repository root:

    $SLUICE_MLFLOW_REF_VENV/bin/python -m tests.compat.surface.dump

The JSON is checked in: the case generators read it without mlflow installed, and a diff of it
after an MLflow upgrade shows what moved. The generators enumerate these field lists, so a field
or route MLflow adds is covered by the same generators.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("mlflow_surface.json")

# protobuf FieldDescriptor.TYPE_* numbers -> names the generators use.
_TYPES = {
    1: "double",
    2: "float",
    3: "int64",
    4: "uint64",
    5: "int32",
    8: "bool",
    9: "string",
    11: "message",
    12: "bytes",
    13: "uint32",
    14: "enum",
    16: "sfixed64",
    18: "sint64",
}


def _field(field: Any, messages: dict[str, Any]) -> dict[str, Any]:
    try:
        repeated = bool(field.is_repeated)
    except AttributeError:
        repeated = field.label == field.LABEL_REPEATED
    out: dict[str, Any] = {"name": field.name, "type": _TYPES.get(field.type, str(field.type))}
    if repeated:
        out["repeated"] = True
    if field.type == 11:
        out["message"] = field.message_type.full_name
        _message(field.message_type, messages)
    if field.type == 14:
        out["enum"] = [value.name for value in field.enum_type.values]
    if field.has_default_value:
        # proto2 `[default = ...]`: what a field MLflow cannot parse falls back to.
        default = field.default_value
        out["default"] = default.name if field.type == 14 and hasattr(default, "name") else default
    return out


def _message(descriptor: Any, messages: dict[str, Any]) -> str:
    name = str(descriptor.full_name)
    if name not in messages:
        messages[name] = []  # placeholder first: messages may refer to themselves
        messages[name] = [_field(f, messages) for f in descriptor.fields]
    return name


def main() -> None:
    from mlflow.protos import databricks_pb2
    from mlflow.protos.mlflow_artifacts_pb2 import MlflowArtifactsService
    from mlflow.protos.model_registry_pb2 import ModelRegistryService
    from mlflow.protos.service_pb2 import MlflowService
    from mlflow.protos.webhooks_pb2 import WebhookService
    from mlflow.server import handlers

    messages: dict[str, Any] = {}
    endpoints: list[dict[str, Any]] = []
    for service in (MlflowService, ModelRegistryService, MlflowArtifactsService, WebhookService):
        for method in service.DESCRIPTOR.methods:
            for endpoint in method.GetOptions().Extensions[databricks_pb2.rpc].endpoints:
                endpoints.append(
                    {
                        "method": endpoint.method,
                        "path": endpoint.path,
                        "version": f"{endpoint.since.major}.0",
                        "rpc": f"{service.DESCRIPTOR.name}.{method.name}",
                        "request": _message(method.input_type, messages),
                        "response": _message(method.output_type, messages),
                    }
                )
    protos = {(e["method"], e["version"], e["path"]) for e in endpoints}
    # Routes MLflow registers by hand (no proto rpc): path, method, handler function.
    extra = []
    for url, function, methods in handlers.get_endpoints():  # type: ignore[no-untyped-call]
        for method in methods:
            extra.append({"method": method, "url": url, "handler": function.__name__})
    extra = [
        e
        for e in extra
        if not any(
            e["url"].endswith(f"/{v}{p.replace('{', '<').replace('}', '>')}") and e["method"] == m
            for m, v, p in protos
        )
    ]
    OUT.write_text(
        json.dumps(
            {
                "mlflow": _version(),
                "endpoints": endpoints,
                "hand_registered": extra,
                "messages": messages,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    print(f"{OUT}: {len(endpoints)} endpoints, {len(messages)} messages", file=sys.stderr)


def _version() -> str:
    import mlflow

    return str(mlflow.__version__)


if __name__ == "__main__":
    main()
