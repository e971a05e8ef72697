import math
from pathlib import Path

import orjson
import pytest

from schemas import wire

EXAMPLES = Path(wire.__file__).parent / "records" / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("metrics.v1/*.json")), ids=lambda p: p.name)
def test_committed_examples_decode(path: Path) -> None:
    record = wire.decode(path.read_bytes())
    assert record.metrics, "examples must carry points"


def test_round_trip_preserves_points() -> None:
    points = [("loss", 0.5, 10, -2, False), ("acc", 0.0, 11, 0, True)]
    assert wire.decode(wire.encode("r1", "e1", 1, points)) == wire.MetricRecord(
        "r1", "e1", 1, [wire.MetricPoint(*p) for p in points]
    )


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (math.nan, (0.0, True)),
        (math.inf, (wire.DOUBLE_MAX, False)),
        (-math.inf, (-wire.DOUBLE_MAX, False)),
        (-0.0, (-0.0, False)),
        (1.5, (1.5, False)),
    ],
)
def test_values_are_normalised_as_mlflow_stores_them(
    value: float, stored: tuple[float, bool]
) -> None:
    assert wire.normalise_value(value) == stored


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"\x00\xff garbage", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"v": 3, "type": "metrics"}', "unsupported record version 3"),
        (b'{"v": 1, "type": "params"}', "unsupported record type"),
        (
            b'{"v": 1, "type": "metrics", "run_id": "", "event_id": "e", "received_at_ms": 1, "metrics": []}',
            "run_id",
        ),
        (
            b'{"v": 1, "type": "metrics", "run_id": "r", "event_id": "e", "received_at_ms": true, "metrics": []}',
            "received_at_ms",
        ),
        (
            b'{"v": 1, "type": "metrics", "run_id": "r", "event_id": "e", "received_at_ms": 1, "metrics": [["k", "x", 1, 1, false]]}',
            "value",
        ),
        (
            b'{"v": 1, "type": "metrics", "run_id": "r", "event_id": "e", "received_at_ms": 1, "metrics": [["k", 1.0, -1, 1, false]]}',
            "timestamp",
        ),
        (
            b'{"v": 1, "type": "metrics", "run_id": "r", "event_id": "e", "received_at_ms": 1, "metrics": [["k", 1.0, 1, 9223372036854775808, false]]}',
            "int64",
        ),
        (
            b'{"v": 1, "type": "metrics", "run_id": "r", "event_id": "e", "received_at_ms": 1, "metrics": [["k", 1.0, 1, 1]]}',
            "5-item",
        ),
    ],
)
def test_invalid_records_carry_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(wire.InvalidRecord, match=reason):
        wire.decode(raw)


def test_partitioning_is_stable_and_in_range() -> None:
    ids = [f"{i:032x}" for i in range(1000)]
    parts = [wire.partition_for(i, 8) for i in ids]
    assert parts == [wire.partition_for(i, 8) for i in ids]
    assert set(parts) == set(range(8))


def test_encoded_record_never_holds_non_finite_numbers() -> None:
    point = ("k", *wire.normalise_value(math.inf))
    raw = wire.encode("r", "e", 1, [(point[0], point[1], 1, 0, point[2])])
    assert b"Infinity" not in raw
    assert orjson.loads(raw)["metrics"][0][1] == wire.DOUBLE_MAX


def test_fast_decoder_agrees_with_the_explicit_checks() -> None:
    """The msgspec path must accept exactly what the explicit checks accept, with the same
    result (ints become floats, NaN/Inf were normalised by the producer)."""
    raws = [path.read_bytes() for path in sorted(EXAMPLES.glob("metrics.v1/*.json"))]
    raws.append(
        b'{"v": 1, "type": "metrics", "run_id": "r", "event_id": "e", "received_at_ms": 1,'
        b' "extra": {"ignored": true}, "metrics": [["k", 3, 0, -9223372036854775808, false],'
        b' ["k", -1.7976931348623157e308, 9223372036854775807, 0, true]]}'
    )
    for raw in raws:
        assert wire.decode(raw) == wire._explain(raw)
    too_big = b'{"v": 1, "type": "metrics", "run_id": "r", "event_id": "e", "received_at_ms": 1,'
    too_big += b' "metrics": [["k", 1e400, 1, 1, false]]}'
    with pytest.raises(wire.InvalidRecord, match="infinity"):  # orjson's reason, not msgspec's
        wire.decode(too_big)
