import pytest

from sluice import config


def test_defaults_without_environment() -> None:
    settings = config.load({})
    assert settings.port == 5000
    assert settings.kafka.topic == "sluice.metrics.v1"


def test_nested_values_are_cast_by_annotation() -> None:
    settings = config.load(
        {
            "SLUICE_PORT": "6000",
            "SLUICE_KAFKA_PARTITIONS": "12",
            "SLUICE_API_READ_FENCE_DEADLINE_S": "2.5",
        }
    )
    assert (settings.port, settings.kafka.partitions) == (6000, 12)
    assert settings.api.read_fence_deadline_s == 2.5


def test_unknown_prefixed_variable_is_an_error() -> None:
    with pytest.raises(config.ConfigError, match="SLUICE_KAFKA_BOOTSTRAPS"):
        config.load({"SLUICE_KAFKA_BOOTSTRAPS": "x:1"})


def test_script_variables_and_foreign_variables_are_ignored() -> None:
    settings = config.load({"SLUICE_STATE_DIR": "/tmp/x", "HOME": "/root"})
    assert settings.pg.dsn.startswith("postgresql://")


def test_malformed_value_names_the_variable() -> None:
    with pytest.raises(config.ConfigError, match="SLUICE_INGEST_PORT='abc'"):
        config.load({"SLUICE_INGEST_PORT": "abc"})


def test_settings_are_frozen() -> None:
    settings = config.load({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_env_names_lists_every_leaf() -> None:
    names = config.env_names()
    assert "SLUICE_PORT" in names and "SLUICE_WRITER_BATCH_MAX_ROWS" in names
    assert all(name.startswith("SLUICE_") for name in names)


def test_a_value_outside_the_allowed_ones_is_refused_naming_them() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load({"SLUICE_AUTH_DEFAULT_PERMISSION": "read"})
    assert "SLUICE_AUTH_DEFAULT_PERMISSION='read'" in str(caught.value)
    assert "READ, EDIT, MANAGE, NO_PERMISSIONS" in str(caught.value)
    assert config.load({"SLUICE_AUTH_DEFAULT_PERMISSION": "EDIT"}).auth.default_permission == "EDIT"
