"""S3 artifact backend (aioboto3): objects below ``s3://bucket/prefix``.

Uploads stream: bodies are cut into ``part_bytes`` parts sent with S3 multipart upload (one
part in memory per request), small files go in one PUT. Downloads stream S3's body through.
Keys are ``prefix/`` + validated segments, so nothing outside the prefix is ever addressed.
"""

from __future__ import annotations

import builtins
import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from api.artifacts.paths import Segments
from api.artifacts.store import Entry, attachment_headers, directory_download, no_such_artifact

_READ_BYTES = 1024 * 1024


def parse_s3_root(root: str) -> tuple[str, tuple[str, ...]]:
    """``s3://bucket/a/b`` -> ("bucket", ("a", "b"))."""
    split = urllib.parse.urlsplit(root)
    if split.scheme != "s3" or not split.netloc:
        raise ValueError(f"not an s3://bucket[/prefix] root: {root!r}")
    return split.netloc, tuple(p for p in split.path.split("/") if p)


@contextlib.asynccontextmanager
async def open_s3_store(
    root: str, endpoint_url: str, part_bytes: int, timeout_s: float
) -> AsyncIterator[S3Store]:
    bucket, prefix = parse_s3_root(root)
    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 3})
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=endpoint_url or None, config=config) as client:
        yield S3Store(client, bucket, prefix, part_bytes)


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: tuple[str, ...], part_bytes: int) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes

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

    async def download(self, parts: Segments, request: web.Request) -> web.StreamResponse:
        try:
            obj = await self.client.get_object(Bucket=self.bucket, Key=self._key(parts))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            if await self._is_dir(parts):
                raise directory_download(parts) from None
            raise no_such_artifact(parts) from None
        response = web.StreamResponse(headers=attachment_headers(parts))
        response.content_type = "application/octet-stream"
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
