"""Artifact storage: the interface handlers use, and the local-folder backend.

Segments reaching a store were validated by ``api.artifacts.paths``; the local store also
checks, after resolving symlinks, that every path it touches stays inside its root. Its
multipart uploads are staged outside the root (``api.artifacts.staging``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web

from api.artifacts.download_headers import download_headers
from api.artifacts.multipart import MultipartStore
from api.artifacts.paths import Segments, display, invalid_path
from api.artifacts.staging import LocalMultipart
from schemas.mlflow_errors import does_not_exist, invalid_parameter


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # basename
    is_dir: bool
    size: int | None


class ArtifactStore(Protocol):
    @property
    def s3_root(self) -> tuple[str, tuple[str, ...]] | None:
        """(bucket, prefix segments) when backed by S3: model-version sources may point there."""

    async def put(self, parts: Segments, chunks: AsyncIterator[bytes]) -> None:
        """Store a file from a stream, without holding it whole in memory."""

    async def download(
        self, parts: Segments, request: web.Request, headers: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        """Stream a file; 404 if missing, 400 for a directory. ``headers`` override the
        defaults (the UI's routes set MLflow's content type and disposition)."""

    async def list(self, parts: Segments) -> builtins.list[Entry]:
        """Children of a directory; [] for a file or a missing path."""

    async def delete(self, parts: Segments) -> None:
        """Delete a file or a directory recursively; missing is not an error."""

    @property
    def multipart(self) -> MultipartStore | None:
        """Multipart uploads (``mpu/*``), or None where they answer MLflow's 501."""


artifact_store_key = web.AppKey("artifact_store", ArtifactStore)


def no_such_artifact(parts: Segments) -> Exception:
    return does_not_exist(f"No such artifact: '{display(parts)}'")


def directory_download(parts: Segments) -> Exception:
    return invalid_parameter(f"Cannot download a directory: '{display(parts)}'")


def attachment_headers(parts: Segments) -> dict[str, str]:
    return download_headers(parts[-1])


class _ExactFileResponse(web.FileResponse):
    """The file at the path, never a pre-compressed sibling: aiohttp would otherwise answer a
    download of ``a.txt`` with the artifact ``a.txt.gz`` (Content-Encoding: gzip) whenever the
    client accepts gzip, as the MLflow client does."""

    def _get_file_path_stat_encoding(
        self, accept_encoding: str
    ) -> tuple[Path | None, os.stat_result, str | None]:
        return super()._get_file_path_stat_encoding("")


class LocalStore:
    """Files below one folder (the default for ``make up``)."""

    def __init__(self, root: str, staging: str, multipart_expiry_s: float) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # Beside the root, never inside it (everything below the root is served), nor above it
        # (the sweep deletes stale entries of the staging folder).
        staged = (
            Path(staging).resolve() if staging else self.root.with_name(self.root.name + ".mpu")
        )
        if staged == self.root or self.root in staged.parents or staged in self.root.parents:
            raise ValueError(f"multipart staging {staged} overlaps the artifact root {self.root}")
        self._multipart = LocalMultipart(staged, self.put, multipart_expiry_s)

    @property
    def multipart(self) -> LocalMultipart:
        return self._multipart

    @property
    def s3_root(self) -> tuple[str, tuple[str, ...]] | None:
        return None

    def _path(self, parts: Segments) -> Path:
        path = self.root.joinpath(*parts)
        # Symlinks planted inside the root must not lead out of it.
        real = path.resolve()
        if real != self.root and self.root not in real.parents:
            raise invalid_path(display(parts))
        return path

    async def put(self, parts: Segments, chunks: AsyncIterator[bytes]) -> None:
        target = self._path(parts)
        try:
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise invalid_parameter(f"A parent of '{display(parts)}' is a file.") from None
        self._path(parts)  # re-check: the parents exist now
        if target.is_dir():
            raise invalid_parameter(f"Cannot overwrite a directory: '{display(parts)}'")
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with open(temp, "wb") as handle:  # noqa: ASYNC230 - writes go through to_thread
                async for chunk in chunks:
                    await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(os.replace, temp, target)  # readers see old or new file
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    async def download(
        self, parts: Segments, request: web.Request, headers: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        path = self._path(parts)
        if path.is_dir():
            raise directory_download(parts)
        if not path.is_file():
            raise no_such_artifact(parts)
        return _ExactFileResponse(path, headers={**attachment_headers(parts), **(headers or {})})

    async def list(self, parts: Segments) -> builtins.list[Entry]:
        path = self._path(parts)
        if not path.is_dir():
            return []
        return await asyncio.to_thread(self._entries, path)

    @staticmethod
    def _entries(path: Path) -> builtins.list[Entry]:
        entries = []
        for child in sorted(path.iterdir()):
            if child.name.startswith(".") and child.name.endswith(".part"):
                continue  # an upload in progress
            if child.is_dir():
                entries.append(Entry(child.name, True, None))
            elif child.is_file():
                entries.append(Entry(child.name, False, child.stat().st_size))
        return entries

    async def delete(self, parts: Segments) -> None:
        path = self._path(parts)
        if path == self.root:
            raise invalid_path("")
        if path.is_dir() and not path.is_symlink():
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
