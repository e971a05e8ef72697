"""Errors the CLI turns into one clear line instead of a traceback."""

from __future__ import annotations


class StartupError(Exception):
    """A process cannot start; the message tells the operator what and where."""


class Unreachable(StartupError):
    """PostgreSQL or Kafka did not answer at start-up; the message names which and where."""


class SchemaMismatch(StartupError):
    """The database schema is not the one this version of Sluice was built for."""


class PortInUse(StartupError):
    """The address a service should listen on is taken."""


class CommandFailed(StartupError):
    """An operator command stopped part-way (what it did before is kept and said)."""
