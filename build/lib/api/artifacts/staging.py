"""Multipart uploads for the local-folder backend: parts staged outside the root, assembled on
complete.

Layout, one folder per upload in the staging directory (beside the artifact root, never inside
it: everything below the root is served, listed and deletable through the artifact API)::

    <staging>/<upload_id>/upload.json      {"target": [segments], "num_parts": n, "created_at": t}
    <staging>/<upload_id>/00003.<md5 hex>  part 3 as uploaded; its ETag is the MD5 (as S3's)

- The upload id (``secrets.token_urlsafe(32)``, 256 random bits) is the only credential of
  the part URL: the MLflow client PUTs parts with no Authorization, as to an S3 presigned URL.
  It is checked against its exact format before it names a folder, part numbers are integers
  in 1..num_parts, so neither can address anything but the upload's own folder.
- A part streams to a temporary file (1 MB chunks, at most ``MAX_PART_BYTES``) and is renamed
  into place, so a retried part replaces the old one whole; the name carries its ETag, so
  complete uses exactly the part versions the client names.
- Complete requires parts 1..num_parts in order and the same target as create, then streams
  them through ``LocalStore.put`` (temporary file beside the target, then rename): readers see
  the old file or the new one, never a prefix.
- An upload is usable for ``expiry_s`` after creation (parts and complete are refused after);
  ``sweep`` deletes folders older than ``expiry_s + SWEEP_GRACE_S`` (a complete that started in
  time finishes first), also those of crashed processes. Abort deletes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from api.artifacts.multipart import (
    MAX_PART_BYTES,
    CreatedUpload,
    Credential,
    Part,
    PartUrl,
    unknown_upload,
)
from api.artifacts.paths import Segments, display
from schemas.mlflow_errors import MlflowError, invalid_parameter
from schemas.protojson import invalid_value

log = logging.getLogger(__name__)

SWEEP_GRACE_S: Final = 300.0
SWEEP_INTERVAL_S: Final = 300.0
_META: Final = "upload.json"
_META_MAX_BYTES: Final = 64 * 1024  # a target is at most 1 KB of path: far below
_READ_BYTES: Final = 1024 * 1024
_UPLOAD_ID: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_ETAG: Final = re.compile(r'"?([0-9a-f]{32})"?')

Put = Callable[[Segments, AsyncIterator[bytes]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StagedUpload:
    target: Segments
    num_parts: int
    created_at: float  # wall clock (time.time()): it must survive restarts


def expired(upload: StagedUpload, now: float, expiry_s: float) -> bool:
    return now > upload.created_at + expiry_s


def sweepable(created_at: float, now: float, expiry_s: float) -> bool:
    return now > created_at + expiry_s + SWEEP_GRACE_S


def part_too_large() -> MlflowError:
    return invalid_parameter(f"A part may hold at most {MAX_PART_BYTES} bytes.")


class LocalMultipart:
    def __init__(
        self,
        staging: Path,
        put: Put,
        expiry_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.staging = staging
        self.staging.mkdir(parents=True, exist_ok=True)
        self._put = put
        self._expiry_s = expiry_s
        self._clock = clock

    # --- the MultipartStore interface -------------------------------------------------------
    async def create_upload(
        self, target: Segments, num_parts: int, part_url: PartUrl
    ) -> CreatedUpload:
        upload_id = secrets.token_urlsafe(32)
        folder = self.staging / upload_id
        meta = {"target": list(target), "num_parts": num_parts, "created_at": self._clock()}
        await asyncio.to_thread(_write_meta, folder, orjson.dumps(meta))
        credentials = tuple(Credential(n, part_url(upload_id, n)) for n in range(1, num_parts + 1))
        return CreatedUpload(upload_id, credentials)

    async def complete_upload(
        self, target: Segments, upload_id: str, parts: Sequence[Part]
    ) -> None:
        upload = await self._live(upload_id, target)
        files = self._part_files(upload_id, upload, parts)
        try:
            await self._put(target, _concatenated(files))
        except FileNotFoundError:  # aborted (or swept) while being assembled
            raise unknown_upload(upload_id) from None
        await asyncio.to_thread(shutil.rmtree, self.staging / upload_id, ignore_errors=True)

    async def abort_upload(self, target: Segments, upload_id: str) -> None:
        await self._load(upload_id, target)  # no expiry check: aborting late is fine
        await asyncio.to_thread(shutil.rmtree, self.staging / upload_id, ignore_errors=True)

    # --- parts (the Sluice route the part URLs name) ----------------------------------------
    async def upload_part(self, upload_id: str, number: int, chunks: AsyncIterator[bytes]) -> str:
        """Store part ``number`` from a stream; returns its ETag (MD5 hex, unquoted)."""
        upload = await self._live(upload_id, None)
        if not 1 <= number <= upload.num_parts:
            raise invalid_value("part_number", number, f"Must be between 1 and {upload.num_parts}.")
        folder = self.staging / upload_id
        temp = folder / f".{number:05d}.{secrets.token_hex(8)}.tmp"
        try:
            etag = await _stream_to(temp, chunks)
            await asyncio.to_thread(os.replace, temp, folder / f"{number:05d}.{etag}")
        except FileNotFoundError:  # aborted (or swept) while uploading
            raise unknown_upload(upload_id) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return etag

    # --- stale uploads ------------------------------------------------------------------------
    async def sweep(self) -> int:
        """Delete the folders of uploads past ``expiry_s + SWEEP_GRACE_S``; returns how many."""
        return await asyncio.to_thread(self._sweep, self._clock())

    def _sweep(self, now: float) -> int:
        removed = 0
        for folder in self.staging.iterdir():
            if _UPLOAD_ID.fullmatch(folder.name) and sweepable(
                _created_at(folder), now, self._expiry_s
            ):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    # --- helpers ------------------------------------------------------------------------------
    async def _live(self, upload_id: str, target: Segments | None) -> StagedUpload:
        upload = await self._load(upload_id, target)
        if expired(upload, self._clock(), self._expiry_s):
            raise unknown_upload(upload_id)
        return upload

    async def _load(self, upload_id: str, target: Segments | None) -> StagedUpload:
        """The upload's metadata; 400 unless the id is well-formed, exists and (when given)
        was created for ``target`` (a grant on one path must not complete another's upload)."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise unknown_upload(upload_id)
        try:
            upload = await asyncio.to_thread(_read_meta, self.staging / upload_id)
        except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError):
            raise unknown_upload(upload_id) from None
        if target is not None and upload.target != target:
            raise invalid_parameter(
                f"Multipart upload '{upload_id}' was not created for '{display(target)}'."
            )
        return upload

    def _part_files(
        self, upload_id: str, upload: StagedUpload, parts: Sequence[Part]
    ) -> list[Path]:
        if [p.number for p in parts] != list(range(1, upload.num_parts + 1)):
            raise invalid_parameter(
                f"Multipart upload '{upload_id}' has {upload.num_parts} parts: complete must "
                f"list parts 1 to {upload.num_parts}."
            )
        files = []
        for part in parts:
            match = _ETAG.fullmatch(part.etag)
            path = self.staging / upload_id / f"{part.number:05d}.{match[1] if match else ''}"
            if match is None or not path.is_file():
                raise invalid_parameter(
                    f"Part {part.number} of multipart upload '{upload_id}' was not uploaded "
                    f"with ETag {part.etag!r}."
                )
            files.append(path)
        return files


def _write_meta(folder: Path, data: bytes) -> None:
    folder.mkdir()
    temp = folder / f".{_META}.tmp"
    temp.write_bytes(data)
    os.replace(temp, folder / _META)  # a half-written file is never read as metadata


def _read_meta(folder: Path) -> StagedUpload:
    with open(folder / _META, "rb") as handle:
        doc = orjson.loads(handle.read(_META_MAX_BYTES))
    target = tuple(str(s) for s in doc["target"])
    return StagedUpload(target, int(doc["num_parts"]), float(doc["created_at"]))


def _created_at(folder: Path) -> float:
    try:
        return _read_meta(folder).created_at
    except (OSError, ValueError, KeyError, TypeError):
        # A crash between mkdir and the metadata rename, or a stray entry: judge by mtime.
        with contextlib.suppress(OSError):
            return folder.stat().st_mtime
        return 0.0


async def _stream_to(temp: Path, chunks: AsyncIterator[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(temp, "wb") as handle:  # noqa: ASYNC230 - writes go through to_thread
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_PART_BYTES:
                raise part_too_large()
            await asyncio.to_thread(_write_hashed, handle, digest, chunk)
    return digest.hexdigest()


def _write_hashed(handle: IO[bytes], digest: Any, chunk: bytes) -> None:
    digest.update(chunk)
    handle.write(chunk)


async def _concatenated(files: Sequence[Path]) -> AsyncIterator[bytes]:
    for path in files:
        with open(path, "rb") as handle:  # noqa: ASYNC230 - reads go through to_thread
            while chunk := await asyncio.to_thread(handle.read, _READ_BYTES):
                yield chunk
