"""The pure parts of `sluice doctor`: configuration differences, offsets outside the log,
the report."""

from sluice.commands.doctor import Check, config_differences, offset_problems, render


def test_only_deployment_wide_settings_are_compared() -> None:
    mine = {"SLUICE_KAFKA_PARTITIONS": 8, "SLUICE_API_PORT": 5002, "SLUICE_PG_DSN": "x"}
    theirs = {"SLUICE_KAFKA_PARTITIONS": 16, "SLUICE_API_PORT": 7000, "SLUICE_PG_DSN": "x"}
    assert config_differences(mine, theirs) == ["SLUICE_KAFKA_PARTITIONS is 16 there, 8 here"]


def test_offsets_below_the_start_or_past_the_end_are_problems() -> None:
    problems = offset_problems({0: 5, 1: 50, 2: 20}, {0: 10, 1: 0, 2: 0}, {0: 90, 1: 40, 2: 30})
    assert problems[0].startswith("partition 0: stored offset 5 is below the log start 10")
    assert problems[1].startswith("partition 1: stored offset 50 is past the log end 40")
    assert len(problems) == 2
    traces = offset_problems({0: 5}, {0: 10}, {0: 90}, "sluice acknowledge-gap --traces")
    assert "`sluice acknowledge-gap --traces` after recovering them" in traces[0]


def test_report_says_what_failed() -> None:
    bad = Check("topics")
    bad.fail("topic t has 4 partitions, SLUICE_KAFKA_PARTITIONS=5")
    text = render([Check("schema", detail=["11 of 11 migrations applied"]), bad], as_json=False)
    assert text.splitlines() == [
        "ok    schema",
        "        11 of 11 migrations applied",
        "FAIL  topics",
        "      ! topic t has 4 partitions, SLUICE_KAFKA_PARTITIONS=5",
        "1 failed: topics",
    ]
