"""The trace search and span ingest figures are each system's median round
(``benchmarks/traces.median_round``)."""

from __future__ import annotations

from benchmarks.traces import median_round


def _round(rate: float, p50: float) -> dict[str, object]:
    return {"rate_per_s": rate, "latency": {"p50_ms": p50}, "ok": int(rate * 10)}


def test_the_median_round_is_reported_with_every_round_in_order() -> None:
    rounds = [_round(700.0, 2.5), _round(550.0, 3.3), _round(746.0, 2.4)]
    median = median_round(rounds)
    assert median["rate_per_s"] == 700.0
    assert median["latency"] == {"p50_ms": 2.5}
    assert median["ok"] == 7000
    assert median["rounds"] == [
        {"rate_per_s": 700.0, "p50_ms": 2.5},
        {"rate_per_s": 550.0, "p50_ms": 3.3},
        {"rate_per_s": 746.0, "p50_ms": 2.4},
    ]
    assert "rounds" not in rounds[0]  # the rounds themselves are left as they were


def test_an_even_count_reports_the_lower_middle_and_one_round_itself() -> None:
    assert (
        median_round([_round(3.0, 1), _round(1.0, 1), _round(4.0, 1), _round(2.0, 1)])["rate_per_s"]
        == 2.0
    )
    assert median_round([_round(5.0, 1)])["rate_per_s"] == 5.0


def test_span_rounds_are_ranked_by_verified_spans() -> None:
    rounds = [
        {"verified_spans_per_s": 30_000.0, "rate_per_s": 1.0, "latency": {"p50_ms": 20.0}},
        {"verified_spans_per_s": 24_000.0, "rate_per_s": 3.0, "latency": {"p50_ms": 26.0}},
        {"verified_spans_per_s": 27_000.0, "rate_per_s": 2.0, "latency": {"p50_ms": 23.0}},
    ]
    median = median_round(rounds, "verified_spans_per_s")
    assert median["verified_spans_per_s"] == 27_000.0
    assert median["rounds"] == [
        {"verified_spans_per_s": 30_000.0, "p50_ms": 20.0},
        {"verified_spans_per_s": 24_000.0, "p50_ms": 26.0},
        {"verified_spans_per_s": 27_000.0, "p50_ms": 23.0},
    ]
