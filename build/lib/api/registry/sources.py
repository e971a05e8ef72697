"""Model-version sources (pure): classify and refuse, never fetch.

A source is stored and handed back by get-download-uri; Sluice never dereferences it (no SSRF,
no file read: the CVE-2023-1177/2356/2780/6018, CVE-2024-1483/3848 family). Only these are
accepted (reliability.md B4.8, stricter than MLflow, which also takes other object stores):

- ``runs:/<run_id>/<path>``: ``run_id`` must be given and equal (MLflow's rule);
- ``models:/m-<id>``: ``model_id`` must be given and equal; ``models:/<name>/<version|alias>``;
- ``mlflow-artifacts:/<path>`` (or this server's ``http(s)://…/api/2.0/mlflow-artifacts/
  artifacts/<path>``): must lie under the run's (or logged model's) artifact root;
- ``s3://<bucket>/<key>`` inside the configured artifact bucket and prefix;
- the prompt placeholders ``dummy-source`` / ``prompt-template`` for prompt versions.

Everything is checked on the fully percent-decoded text as well as the raw one: ``..`` or ``.``
segments, backslashes, ``#`` fragments, NUL and other control characters are refused.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Final, Literal

from schemas.mlflow_errors import MlflowError, invalid_parameter

PROMPT_PLACEHOLDERS: Final = frozenset({"dummy-source", "prompt-template"})
_ARTIFACT_ROUTE: Final = ("api", "2.0", "mlflow-artifacts", "artifacts")
_MAX_DECODE_ROUNDS: Final = 8
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_LOGGED_MODEL_ID: Final = re.compile(r"^m-[0-9a-f]{32}$")

Kind = Literal["run", "logged_model", "model_version", "artifacts", "s3", "prompt"]


@dataclass(frozen=True, slots=True)
class Source:
    kind: Kind
    text: str
    ref: str = ""  # run id, logged model id, or registered model name
    version_or_alias: str = ""  # for models:/<name>/<v> and models:/<name>@<alias>
    parts: tuple[str, ...] = ()  # decoded path segments (artifacts: below mlflow-artifacts:/)


def relative_path_error(source: str) -> MlflowError:
    return invalid_parameter(
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, "
        "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
        "provided without relative path references present. Please provide an absolute path."
    )


def resource_error(source: str, id_name: str) -> MlflowError:
    return invalid_parameter(
        f"Invalid model version source: '{source}'. The {id_name} request parameter must "
        "identify the resource that contains the source."
    )


def scheme_error(source: str) -> MlflowError:
    return invalid_parameter(
        f"Invalid model version source: '{source}'. Sluice accepts runs:/, models:/, "
        "mlflow-artifacts:/ sources and s3:// sources inside its artifact bucket; it never "
        "reads local paths or other hosts."
    )


def fully_decoded(text: str) -> str:
    """Percent-decode until stable (double and triple encodings included), bounded."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            return text
        text = decoded
    raise invalid_parameter("Invalid path: too many levels of percent-encoding.")


def check_traversal(source: str) -> str:
    """The decoded source; raises when any decoding of it hides a traversal or a fragment."""
    decoded = fully_decoded(source)
    for form in (source, decoded):
        if "\\" in form or "#" in form or _CONTROL.search(form):
            raise relative_path_error(source)
        path = urllib.parse.urlsplit(form).path if "://" in form or ":/" in form else form
        if any(seg in ("..", ".") for seg in path.split("/")):
            raise relative_path_error(source)
    return decoded


def classify(source: str, is_prompt: bool) -> Source:
    """What ``source`` names; raises MlflowError (400) for anything not accepted."""
    if is_prompt:
        if source not in PROMPT_PLACEHOLDERS:
            raise invalid_parameter(
                f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder."
            )
        return Source("prompt", source)
    decoded = check_traversal(source)
    scheme = urllib.parse.urlsplit(decoded).scheme.lower()
    parse = _PARSERS.get(scheme)
    if parse is None:
        raise scheme_error(source)
    return parse(source, decoded)


def _segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


def _runs(source: str, decoded: str) -> Source:
    split = urllib.parse.urlsplit(decoded)
    if split.netloc:
        raise resource_error(source, "run_id")
    parts = _segments(split.path)
    if not parts:
        raise resource_error(source, "run_id")
    return Source("run", source, ref=parts[0], parts=parts[1:])


def _models(source: str, decoded: str) -> Source:
    split = urllib.parse.urlsplit(decoded)
    if split.netloc:
        raise resource_error(source, "model_id")
    parts = _segments(split.path)
    if len(parts) == 1 and _LOGGED_MODEL_ID.match(parts[0]):
        return Source("logged_model", source, ref=parts[0])
    if len(parts) == 1 and "@" in parts[0]:
        name, _, alias = parts[0].rpartition("@")
        return Source("model_version", source, ref=name, version_or_alias="@" + alias)
    if len(parts) == 2:
        return Source("model_version", source, ref=parts[0], version_or_alias=parts[1])
    raise resource_error(source, "model_id")


def _mlflow_artifacts(source: str, decoded: str) -> Source:
    split = urllib.parse.urlsplit(decoded)
    if split.netloc:
        raise scheme_error(source)  # another host: never followed
    return Source("artifacts", source, parts=_segments(split.path))


def _http(source: str, decoded: str) -> Source:
    parts = _segments(urllib.parse.urlsplit(decoded).path)
    n = len(_ARTIFACT_ROUTE)
    for i in range(len(parts) - n + 1):
        if parts[i : i + n] == _ARTIFACT_ROUTE:
            return Source("artifacts", source, parts=parts[i + n :])
    raise scheme_error(source)


def _s3(source: str, decoded: str) -> Source:
    split = urllib.parse.urlsplit(decoded)
    return Source("s3", source, ref=split.netloc, parts=_segments(split.path))


_PARSERS: Final = {
    "runs": _runs,
    "models": _models,
    "mlflow-artifacts": _mlflow_artifacts,
    "http": _http,
    "https": _http,
    "s3": _s3,
}


def artifact_parts(uri: str) -> tuple[str, ...] | None:
    """Decoded path segments of an ``mlflow-artifacts:`` root (a run's or model's), else None."""
    split = urllib.parse.urlsplit(uri)
    if split.scheme != "mlflow-artifacts":
        return None
    return _segments(fully_decoded(split.path))


def within(parts: tuple[str, ...], root: tuple[str, ...] | None) -> bool:
    return bool(root) and root is not None and parts[: len(root)] == root


def s3_within(source: Source, bucket: str, prefix: tuple[str, ...]) -> bool:
    return source.ref == bucket and source.parts[: len(prefix)] == prefix
