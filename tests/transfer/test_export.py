"""`sluice export`: import -> export into an empty MLflow database -> a real `mlflow server`
3.17.2 over the exported database answers every read as it did over the original."""

from __future__ import annotations

from typing import Any

import pytest

from tests.transfer.conftest import Source, Target, start_reference
from tests.transfer.reads import differences, snapshot, sqlite_history

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_round_trip_through_mlflow(
    source: Source, expected: dict[str, Any], imported: Target
) -> None:
    ref = start_reference()  # creates the empty MLflow database (schema + Default experiment)
    try:
        uri = f"sqlite:///{ref.data_dir / 'mlflow.db'}"
        result = imported.cli("export", uri)
        print(result.stdout)
        assert result.returncode == 0, result.stderr[-3000:] + result.stdout
        exported = ref.data_dir / "mlflow.db"
        big = (source.populated.big_run, sqlite_history(exported))
        assert differences(expected, snapshot(ref.url, big)) == []
        again = imported.cli("export", uri)
        assert again.returncode == 2
        assert "not empty" in again.stderr
    finally:
        ref.stop()
