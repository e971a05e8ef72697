"""Multipart artifact uploads (pure): the ``mpu/*`` request fields, validated, and the store
interface both backends implement.

The MLflow client (``HttpArtifactRepository._try_multipart_upload``, 3.17) uses multipart for a
file of at least ``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE`` bytes when server-info says
``multipart_uploads_enabled`` (or ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`` forces it):

1. ``POST mpu/create/<dir>`` ``{"path": <its local file path>, "num_parts": n}`` answers
   ``{"upload_id", "credentials": [{"url", "part_number", "headers"}]}``; the file lands at
   ``<dir>/<basename of path>``;
2. it PUTs bytes ``[(k-1)*chunk, k*chunk)`` to credential k's ``url`` with only that credential's
   ``headers`` (no Authorization) and keeps the response's ``ETag`` header;
3. ``POST mpu/complete/<dir>`` ``{"path", "upload_id", "parts": [{"part_number", "etag",
   "url"}]}`` sorted by part number; on any failure ``POST mpu/abort/<dir>`` ``{"path",
   "upload_id"}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from api.artifacts import paths
from api.artifacts.paths import Segments
from schemas.fields import expect_object, get_list, get_string
from schemas.int_fields import get_int64
from schemas.mlflow_errors import MlflowError, invalid_parameter, missing_parameter
from schemas.protojson import invalid_value

# S3's limits, applied to both backends so a client tuned for one works with the other.
MAX_PARTS: Final = 10_000
MAX_PART_BYTES: Final = 5 * 1024**3
MAX_UPLOAD_ID_CHARS: Final = 1024  # S3 upload ids are a few hundred characters
PART_PATH: Final = "/api/2.0/mlflow-artifacts/mpu/part"  # the local backend's part route

_HOST: Final = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

Doc = Mapping[str, Any]
PartUrl = Callable[[str, int], str]  # (upload id, part number) -> the URL the part is PUT to


@dataclass(frozen=True, slots=True)
class Credential:
    part_number: int
    url: str

    def to_json(self) -> dict[str, Any]:
        # No "headers": an empty proto map is omitted in MLflow's JSON; the client reads {}.
        return {"url": self.url, "part_number": self.part_number}


@dataclass(frozen=True, slots=True)
class CreatedUpload:
    upload_id: str
    credentials: tuple[Credential, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "credentials": [c.to_json() for c in self.credentials],
        }


@dataclass(frozen=True, slots=True)
class Part:
    number: int
    etag: str


class MultipartStore(Protocol):
    async def create_upload(
        self, target: Segments, num_parts: int, part_url: PartUrl
    ) -> CreatedUpload:
        """Start an upload to ``target``; one credential per part, numbered from 1."""

    async def complete_upload(
        self, target: Segments, upload_id: str, parts: Sequence[Part]
    ) -> None:
        """Assemble the parts into ``target`` atomically (readers see the old file or the new);
        400 for an unknown upload, one created for another target, or a bad part list."""

    async def abort_upload(self, target: Segments, upload_id: str) -> None:
        """Drop the upload and its parts; 400 for an unknown upload."""


def unsupported() -> MlflowError:
    # The exact text the client matches to fall back to a plain PUT.
    return MlflowError(
        "NOT_IMPLEMENTED", "Multipart upload is not supported for the current artifact repository"
    )


def unknown_upload(upload_id: str) -> MlflowError:
    return invalid_parameter(f"Unknown or expired multipart upload: '{upload_id}'")


def file_name(path: str) -> str:
    """The basename of the client's local file path (``/`` or ``\\`` separated: a Windows
    client's ``C:\\data\\m.bin`` names ``m.bin``, where MLflow on Linux would keep it whole)."""
    return re.split(r"[/\\]", path)[-1]


def target_of(directory: Segments, doc: Doc) -> Segments:
    """Where the upload lands: the URL directory plus the basename of ``path``, validated as
    one path exactly like a plain upload's (``api.artifacts.paths``)."""
    name = file_name(get_string(doc, "path", required=True))
    if not name:
        raise paths.invalid_path(get_string(doc, "path", required=True))
    return paths.from_decoded("/".join((*directory, name)))


def num_parts_of(doc: Doc) -> int:
    number = get_int64(doc, "num_parts", default=0)
    if not 1 <= number <= MAX_PARTS:
        raise invalid_value("num_parts", number, f"Must be between 1 and {MAX_PARTS}.")
    return number


def upload_id_of(doc: Doc) -> str:
    upload_id = get_string(doc, "upload_id", required=True)
    if len(upload_id) > MAX_UPLOAD_ID_CHARS:
        raise invalid_parameter(f"upload_id is longer than {MAX_UPLOAD_ID_CHARS} characters.")
    return upload_id


def parts_of(doc: Doc) -> list[Part]:
    """``parts`` as the client sends them: part numbers strictly ascending within 1..MAX_PARTS
    (S3's rule), each with the ETag its PUT answered. ``url`` is ignored."""
    items = get_list(doc, "parts", required=True)
    if not items:
        raise missing_parameter("parts")
    if len(items) > MAX_PARTS:
        raise invalid_parameter(f"At most {MAX_PARTS} parts can be completed.")
    parts: list[Part] = []
    for i, item in enumerate(items):
        obj = expect_object(item, f"parts[{i}]")
        number = get_int64(obj, "part_number", path=f"parts[{i}].part_number", required=True)
        if not 1 <= number <= MAX_PARTS or (parts and number <= parts[-1].number):
            raise invalid_value(
                f"parts[{i}].part_number",
                number,
                f"Part numbers must be ascending, unique and between 1 and {MAX_PARTS}.",
            )
        etag = get_string(obj, "etag", path=f"parts[{i}].etag", required=True)
        parts.append(Part(number, etag))
    return parts


def base_url(
    public_url: str,
    forwarded_host: str | None,
    forwarded_proto: str | None,
    host: str,
    scheme: str,
) -> str:
    """The origin a client reached the api at, for URLs handed back to it (local part URLs).

    A configured public URL wins (it may carry a path prefix). Otherwise the first
    X-Forwarded-Host/-Proto of a proxy, else the request's own Host: whoever sends them only
    shapes the URLs of their own upload. Values that are no plain host[:port] are ignored.
    """
    if public_url:
        return public_url.rstrip("/")
    first_host = (forwarded_host or "").split(",")[0].strip()
    first_proto = (forwarded_proto or "").split(",")[0].strip().lower()
    if first_host and _HOST.fullmatch(first_host):
        host = first_host
    if first_proto in ("http", "https"):
        scheme = first_proto
    return f"{scheme}://{host}"
