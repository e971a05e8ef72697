"""Issue 15, acceptance 2: the existing tracking smoke tests, unchanged, through HAProxy in
front of the `make up-ha` topology (create, log, read-your-writes, search; artifacts and a
registered model on S3; MLflow 2.x trace start/end). The 100,000-point round trip is left to the single-instance suite: it
adds minutes on a shared 2-core machine and proves nothing the fluent test does not here. Imported test functions run here with this folder's fixtures:
``sluice_url`` and ``tracking_url`` are HAProxy's URL."""

from __future__ import annotations

import pytest

from tests.ha.conftest import ROLES, HaStack
from tests.integration.test_artifacts import (  # noqa: F401  (collected here)
    test_log_list_download_round_trip,
    test_log_register_alias_load,
)
from tests.integration.test_mlflow_client import client  # noqa: F401
from tests.integration.test_traces_v2 import (  # noqa: F401  (MLflow 2.x trace start/end:
    test_ends_right_after_starts_are_stored_once,  # routed by method; an end may reach another
    test_start_then_end_is_read_back_everywhere,  # ingest process than its start)
)
from tests.integration.test_tracking_api import test_fluent_api_end_to_end  # noqa: F401

# The first test here starts the whole topology (ha_stack): minutes on a shared 2-core machine
# (slow: `make test` and CI run it, `make test-quick` not).
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning"),
    pytest.mark.timeout(900),
    pytest.mark.slow,
]


def test_two_processes_of_each_role_named_on_their_command_line(ha_stack: HaStack) -> None:
    assert {role: len(ha_stack.pids(role)) for role in ROLES} == {r: 2 for r in ROLES}


def test_postgresql_has_a_synchronous_standby(ha_stack: HaStack) -> None:
    assert ha_stack.script("pgha.sh", "status").startswith("in sync")
