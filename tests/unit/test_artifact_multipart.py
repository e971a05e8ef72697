"""Multipart uploads: request validation and part URLs (pure), and the local backend's staging
(files in tmp_path, a fake clock)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.artifacts import multipart
from api.artifacts.multipart import MAX_PARTS, Part
from api.artifacts.staging import SWEEP_GRACE_S, LocalMultipart
from api.artifacts.store import LocalStore
from schemas.mlflow_errors import MlflowError

EXPIRY_S = 3600.0


# --- requests (pure) ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/tmp/x/model.bin", "model.bin"),
        ("model.bin", "model.bin"),
        ("C:\\Users\\me\\model.bin", "model.bin"),
        ("rel/dir/a b%20c.txt", "a b%20c.txt"),
    ],
)
def test_the_target_is_the_directory_plus_the_basename(path: str, name: str) -> None:
    assert multipart.target_of(("1", "run", "artifacts"), {"path": path}) == (
        "1",
        "run",
        "artifacts",
        name,
    )
    assert multipart.target_of((), {"path": path}) == (name,)


@pytest.mark.parametrize(
    "path", ["", "/tmp/", "..", "/x/..", "%2e%2e", "%252e%252e", "a\x00b", "#a", "x\nb"]
)
def test_hostile_or_empty_names_are_refused(path: str) -> None:
    with pytest.raises(MlflowError) as err:
        multipart.target_of(("1",), {"path": path})
    assert err.value.code == "INVALID_PARAMETER_VALUE"


def test_the_whole_target_is_length_checked() -> None:
    with pytest.raises(MlflowError):
        multipart.target_of(("d" * 200,) * 5, {"path": "f" * 200})


@pytest.mark.parametrize("value", [None, 0, -1, MAX_PARTS + 1, "x", 1.5, True])
def test_num_parts_must_be_1_to_10000(value: Any) -> None:
    doc = {} if value is None else {"num_parts": value}
    with pytest.raises(MlflowError):
        multipart.num_parts_of(doc)


def test_num_parts_accepts_what_protobuf_accepts() -> None:
    assert multipart.num_parts_of({"num_parts": "3"}) == 3
    assert multipart.num_parts_of({"num_parts": MAX_PARTS}) == MAX_PARTS


def test_parts_are_ascending_unique_and_carry_etags() -> None:
    doc = {"parts": [{"part_number": 1, "etag": "a", "url": "u"}, {"part_number": 3, "etag": "b"}]}
    assert multipart.parts_of(doc) == [Part(1, "a"), Part(3, "b")]


@pytest.mark.parametrize(
    "parts",
    [
        None,
        [],
        [{"part_number": 2, "etag": "a"}, {"part_number": 1, "etag": "b"}],
        [{"part_number": 1, "etag": "a"}, {"part_number": 1, "etag": "b"}],
        [{"part_number": 0, "etag": "a"}],
        [{"part_number": MAX_PARTS + 1, "etag": "a"}],
        [{"part_number": 1}],
        [{"etag": "a"}],
        ["x"],
        "x",
    ],
)
def test_bad_part_lists_are_refused(parts: Any) -> None:
    with pytest.raises(MlflowError) as err:
        multipart.parts_of({} if parts is None else {"parts": parts})
    assert err.value.status == 400


def test_upload_ids_are_bounded() -> None:
    assert multipart.upload_id_of({"upload_id": "abc"}) == "abc"
    for doc in ({}, {"upload_id": ""}, {"upload_id": "u" * 1025}, {"upload_id": 5}):
        with pytest.raises(MlflowError):
            multipart.upload_id_of(doc)


@pytest.mark.parametrize(
    ("public", "fwd_host", "fwd_proto", "expected"),
    [
        ("https://ml.example.com/prefix/", "x.test", "http", "https://ml.example.com/prefix"),
        ("", "ml.example.com:8443, proxy.local", "https, http", "https://ml.example.com:8443"),
        ("", "[::1]:5000", None, "http://[::1]:5000"),
        ("", None, None, "http://127.0.0.1:5002"),
        ("", "evil.test/path@x", "javascript", "http://127.0.0.1:5002"),
    ],
)
def test_part_urls_name_the_origin_the_client_used(
    public: str, fwd_host: str | None, fwd_proto: str | None, expected: str
) -> None:
    assert multipart.base_url(public, fwd_host, fwd_proto, "127.0.0.1:5002", "http") == expected


# --- local staging -----------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _chunks(*blocks: bytes) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


def _url(upload_id: str, number: int) -> str:
    return f"http://api{multipart.PART_PATH}/{upload_id}/{number}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(str(tmp_path / "root"), "", EXPIRY_S)


@pytest.fixture
def staged(store: LocalStore, tmp_path: Path, clock: Clock) -> LocalMultipart:
    return LocalMultipart(tmp_path / "root.mpu", store.put, EXPIRY_S, clock)


async def _upload(staged: LocalMultipart, target: tuple[str, ...], *blocks: bytes) -> list[Part]:
    created = await staged.create_upload(target, len(blocks), _url)
    assert [c.url for c in created.credentials] == [
        _url(created.upload_id, n) for n in range(1, len(blocks) + 1)
    ]
    parts = []
    for n, block in enumerate(blocks, start=1):
        etag = await staged.upload_part(created.upload_id, n, _chunks(block[:3], block[3:]))
        assert etag == hashlib.md5(block).hexdigest()
        parts.append(Part(n, f'"{etag}"'))
    await staged.complete_upload(target, created.upload_id, parts)
    return parts


async def test_parts_are_assembled_in_order(staged: LocalMultipart, store: LocalStore) -> None:
    await _upload(staged, ("1", "d", "f.bin"), b"first-", b"second-", b"third")
    assert (store.root / "1" / "d" / "f.bin").read_bytes() == b"first-second-third"
    assert list(staged.staging.iterdir()) == []


async def test_staging_lives_beside_the_root(tmp_path: Path) -> None:
    assert LocalStore(str(tmp_path / "r"), "", EXPIRY_S).multipart.staging == tmp_path / "r.mpu"
    for bad in (tmp_path / "r" / "in", tmp_path):
        with pytest.raises(ValueError):
            LocalStore(str(tmp_path / "r"), str(bad), EXPIRY_S)


async def test_a_retried_part_replaces_the_first(staged: LocalMultipart, store: LocalStore) -> None:
    created = await staged.create_upload(("f",), 1, _url)
    await staged.upload_part(created.upload_id, 1, _chunks(b"old"))
    etag = await staged.upload_part(created.upload_id, 1, _chunks(b"new"))
    await staged.complete_upload(("f",), created.upload_id, [Part(1, etag)])
    assert (store.root / "f").read_bytes() == b"new"


async def test_complete_checks_the_target_parts_and_etags(staged: LocalMultipart) -> None:
    created = await staged.create_upload(("a", "f"), 2, _url)
    uid = created.upload_id
    etags = [await staged.upload_part(uid, n, _chunks(b"x" * n)) for n in (1, 2)]
    good = [Part(1, etags[0]), Part(2, etags[1])]
    for target, parts in (
        (("a", "g"), good),
        (("a", "f"), good[:1]),
        (("a", "f"), [good[0], Part(2, etags[0])]),
        (("a", "f"), [good[0], Part(2, "not-an-etag")]),
    ):
        with pytest.raises(MlflowError) as err:
            await staged.complete_upload(target, uid, parts)
        assert err.value.status == 400
    await staged.complete_upload(("a", "f"), uid, good)


@pytest.mark.parametrize("upload_id", ["", "..", "../" * 14 + "x", "a" * 42 + "/", "A" * 44])
async def test_malformed_upload_ids_never_reach_the_disk(
    staged: LocalMultipart, upload_id: str
) -> None:
    with pytest.raises(MlflowError):
        await staged.upload_part(upload_id, 1, _chunks(b"x"))
    with pytest.raises(MlflowError):
        await staged.abort_upload(("f",), upload_id)


async def test_part_numbers_stay_within_the_upload(staged: LocalMultipart) -> None:
    created = await staged.create_upload(("f",), 2, _url)
    for number in (0, 3, -1):
        with pytest.raises(MlflowError):
            await staged.upload_part(created.upload_id, number, _chunks(b"x"))


async def test_abort_removes_the_upload(staged: LocalMultipart) -> None:
    created = await staged.create_upload(("f",), 1, _url)
    await staged.abort_upload(("f",), created.upload_id)
    assert list(staged.staging.iterdir()) == []
    with pytest.raises(MlflowError):
        await staged.upload_part(created.upload_id, 1, _chunks(b"x"))
    with pytest.raises(MlflowError):
        await staged.abort_upload(("f",), created.upload_id)


async def test_expired_uploads_are_refused_then_swept(staged: LocalMultipart, clock: Clock) -> None:
    created = await staged.create_upload(("f",), 1, _url)
    etag = await staged.upload_part(created.upload_id, 1, _chunks(b"x"))
    (staged.staging / "not-an-upload").mkdir()
    clock.now += EXPIRY_S + 1
    with pytest.raises(MlflowError):
        await staged.upload_part(created.upload_id, 1, _chunks(b"x"))
    with pytest.raises(MlflowError):
        await staged.complete_upload(("f",), created.upload_id, [Part(1, etag)])
    assert await staged.sweep() == 0  # within the grace a complete started in time may run
    clock.now += SWEEP_GRACE_S
    assert await staged.sweep() == 1
    assert [p.name for p in staged.staging.iterdir()] == ["not-an-upload"]
