"""S3 artifact backend (aioboto3): objects below ``s3://bucket/prefix``.

Uploads stream: bodies are cut into ``part_bytes`` parts sent with S3 multipart upload (one
part in memory per request), small files go in one PUT. Downloads stream S3's body through.
Keys are ``prefix/`` + validated segments, so nothing outside the prefix is ever addressed.

Client multipart (``mpu/*``) is S3's own: create and complete go through the api, the parts go
straight from the client to S3 on presigned ``upload_part`` URLs. Those are signed for the
configured endpoint, which the *client* must therefore reach too (valid ``expiry_s``).
Complete and abort address the key of *their* path, which access control checked (AWS S3 also
refuses an upload id created for another key; moto does not check that).
"""

from __future__ import annotations

import builtins
import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aioboto3
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from api.artifacts.multipart import (
    CreatedUpload,
    Credential,
    MultipartStore,
    Part,
    PartUrl,
    unknown_upload,
)
from api.artifacts.paths import Segments
from api.artifacts.store import Entry, attachment_headers, directory_download, no_such_artifact
from schemas.mlflow_errors import invalid_parameter

_READ_BYTES = 1024 * 1024
# S3's answers to a bad complete/abort: the client's input, so a 400 (never a 500).
_BAD_PART_LIST = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"})


def parse_s3_root(root: str) -> tuple[str, tuple[str, ...]]:
    """``s3://bucket/a/b`` -> ("bucket", ("a", "b"))."""
    split = urllib.parse.urlsplit(root)
    if split.scheme != "s3" or not split.netloc:
        raise ValueError(f"not an s3://bucket[/prefix] root: {root!r}")
    return split.netloc, tuple(p for p in split.path.split("/") if p)


@contextlib.asynccontextmanager
async def open_s3_store(
    root: str, endpoint_url: str, part_bytes: int, timeout_s: float, expiry_s: int
) -> AsyncIterator[S3Store]:
    bucket, prefix = parse_s3_root(root)
    # s3v4 also for presigned URLs (botocore would presign some regions with SigV2, which
    # newer AWS regions refuse); MLflow's own S3 repository signs the same way.
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 3},
        signature_version="s3v4",
    )
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=endpoint_url or None, config=config) as client:
        yield S3Store(client, bucket, prefix, part_bytes, expiry_s)


class S3Store:
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: tuple[str, ...],
        part_bytes: int,
        expiry_s: int,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes
        self.expiry_s = expiry_s  # lifetime of presigned part URLs

    @property
    def s3_root(self) -> tuple[str, tuple[str, ...]] | None:
        return self.bucket, self.prefix

    def _key(self, parts: Segments) -> str:
        return "/".join((*self.prefix, *parts))

    def _dir_prefix(self, parts: Segments) -> str:
        key = self._key(parts)
        return key + "/" if key else ""

    async def put(self, parts: Segments, chunks: AsyncIterator[bytes]) -> None:
        key = self._key(parts)
        buffer = bytearray()
        upload_id: str | None = None
        etags: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                while len(buffer) >= self.part_bytes:
                    if upload_id is None:
                        created = await self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=key
                        )
                        upload_id = created["UploadId"]
                    await self._part(key, upload_id, etags, bytes(buffer[: self.part_bytes]))
                    del buffer[: self.part_bytes]
            if upload_id is None:
                await self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))
                return
            if buffer:
                await self._part(key, upload_id, etags, bytes(buffer))
            await self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": etags}
            )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            raise

    async def _part(
        self, key: str, upload_id: str, etags: list[dict[str, Any]], data: bytes
    ) -> None:
        number = len(etags) + 1
        result = await self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        etags.append({"ETag": result["ETag"], "PartNumber": number})

    async def download(
        self, parts: Segments, request: web.Request, headers: Mapping[str, str] | None = None
    ) -> web.StreamResponse:
        try:
            obj = await self.client.get_object(Bucket=self.bucket, Key=self._key(parts))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            if await self._is_dir(parts):
                raise directory_download(parts) from None
            raise no_such_artifact(parts) from None
        response = web.StreamResponse(headers={**attachment_headers(parts), **(headers or {})})
        response.content_length = obj["ContentLength"]
        await response.prepare(request)
        body = obj["Body"]
        try:
            while chunk := await body.read(_READ_BYTES):
                await response.write(chunk)
        finally:
            body.close()
        await response.write_eof()
        return response

    async def _is_dir(self, parts: Segments) -> bool:
        listed = await self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=self._dir_prefix(parts), MaxKeys=1
        )
        return bool(listed.get("KeyCount"))

    async def list(self, parts: Segments) -> builtins.list[Entry]:
        prefix = self._dir_prefix(parts)
        entries: list[Entry] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                entries.append(Entry(common["Prefix"][len(prefix) :].rstrip("/"), True, None))
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if name:
                    entries.append(Entry(name, False, int(obj["Size"])))
        return sorted(entries, key=lambda e: e.name)

    async def delete(self, parts: Segments) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self._key(parts))
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._dir_prefix(parts)):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    # --- client multipart (mpu/*) -------------------------------------------------------------
    @property
    def multipart(self) -> MultipartStore:
        return self

    async def create_upload(
        self, target: Segments, num_parts: int, part_url: PartUrl
    ) -> CreatedUpload:
        key = self._key(target)
        created = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id: str = created["UploadId"]
        credentials = [
            Credential(n, await self._presigned_part(key, upload_id, n))
            for n in range(1, num_parts + 1)
        ]
        return CreatedUpload(upload_id, tuple(credentials))

    async def _presigned_part(self, key: str, upload_id: str, number: int) -> str:
        url: str = await self.client.generate_presigned_url(
            "upload_part",
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=self.expiry_s,
        )
        return url

    async def complete_upload(
        self, target: Segments, upload_id: str, parts: Sequence[Part]
    ) -> None:
        key = self._key(target)
        listed = [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
        try:
            # One cheap probe first: an unknown id is NoSuchUpload here on S3 and moto alike,
            # where moto's complete answers a 500 (KeyError) instead of NoSuchUpload.
            await self.client.list_parts(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MaxParts=1
            )
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
            )
        except ClientError as exc:
            _raise_upload_error(exc, upload_id)
            raise

    async def abort_upload(self, target: Segments, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._key(target), UploadId=upload_id
            )
        except ClientError as exc:
            _raise_upload_error(exc, upload_id)
            raise


def _raise_upload_error(exc: ClientError, upload_id: str) -> None:
    """Raise S3's refusal of the client's upload id or part list as MLflow's 400; return for
    anything else (S3 unreachable, access denied), which the caller re-raises."""
    error = exc.response.get("Error", {})
    code = error.get("Code")
    if code == "NoSuchUpload":
        raise unknown_upload(upload_id) from None
    if code in _BAD_PART_LIST:
        message = error.get("Message", "")
        raise invalid_parameter(f"S3 refused the part list ({code}): {message}") from None
