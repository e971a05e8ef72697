"""The command line an operator meets: help, version, real arguments, no passwords in argv."""

import io

import pytest

from sluice import cli
from sluice.commands import runners


def test_help_is_written_for_operators(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "sluice config" in out and "docs/operations.md" in out
    for command in ("up", "ingest", "writer", "api", "migrate", "config", "user-add", "grant"):
        assert f"\n    {command}" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.startswith("sluice ")


def test_a_password_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["user-add", "alice", "s3cret"])
    assert done.value.code == 2
    assert "unrecognized arguments: s3cret" in capsys.readouterr().err


def test_grant_checks_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["grant", "alice", "experiment", "1", "read"])
    assert "invalid choice: 'read'" in capsys.readouterr().err


def test_password_from_stdin_or_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert runners.read_password(from_stdin=True) == "s3cret"
    answers = iter(["pw", "pw"])
    assert runners.read_password(from_stdin=False, ask=lambda _: next(answers)) == "pw"
    differing = iter(["pw", "other"])
    with pytest.raises(SystemExit, match="differ"):
        runners.read_password(from_stdin=False, ask=lambda _: next(differing))


def test_invalid_setting_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUICE_AUTH_DEFAULT_PERMISSION", "read")
    with pytest.raises(SystemExit) as done:
        cli.main(["config"])
    assert str(done.value.code).startswith("sluice: configuration error: ")
    assert "READ, EDIT, MANAGE, NO_PERMISSIONS" in str(done.value.code)
