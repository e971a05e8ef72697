from sluice import config
from sluice.commands.healthcheck import ready_url, role_of


def test_the_role_comes_from_the_main_process_command_line() -> None:
    assert role_of(b"/opt/sluice/venv/bin/python\0/opt/sluice/venv/bin/sluice\0api\0") == "api"
    assert role_of(b"sluice\0writer\0") == "writer"
    assert role_of(b"python\0-m\0sluice.cli\0ingest\0") == "ingest"
    assert role_of(b"sluice\0migrate\0--wait-s\0120\0") == "migrate"
    assert role_of(b"/bin/sh\0-c\0true\0") == ""


def test_each_role_is_probed_on_the_port_its_settings_name() -> None:
    settings = config.load({"SLUICE_API_PORT": "7002", "SLUICE_WRITER_METRICS_PORT": "7003"})
    assert ready_url("api", settings) == "http://127.0.0.1:7002/health/ready"
    assert ready_url("writer", settings) == "http://127.0.0.1:7003/health/ready"
    assert ready_url("ingest", settings) == "http://127.0.0.1:5001/health/ready"
    assert ready_url("migrate", settings) is None  # one-shot: nothing to probe
