from pathlib import Path

import pytest

from sluice import config, kafka
from sluice.settings_doc import describe


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


def test_a_setting_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")  # mounted secrets usually end in a newline
    settings = config.load(
        {
            "SLUICE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SLUICE_KAFKA_SASL_USERNAME": "svc",
            "SLUICE_KAFKA_SASL_PASSWORD_FILE": str(secret),
        }
    )
    assert settings.kafka.sasl_password == "s3cret"
    assert "s3cret" not in repr(settings)


def test_a_value_and_its_file_together_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "dsn").write_text("postgresql://x@y/z")
    with pytest.raises(config.ConfigError, match="SLUICE_PG_DSN and SLUICE_PG_DSN_FILE"):
        config.load({"SLUICE_PG_DSN": "a", "SLUICE_PG_DSN_FILE": str(tmp_path / "dsn")})


def test_an_unreadable_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"SLUICE_PG_DSN_FILE=.*cannot be read"):
        config.load({"SLUICE_PG_DSN_FILE": str(tmp_path / "missing")})


def test_file_suffix_of_an_unknown_setting_is_still_unknown() -> None:
    with pytest.raises(config.ConfigError, match="SLUICE_KAFKA_PASSWORD_FILE"):
        config.load({"SLUICE_KAFKA_PASSWORD_FILE": "/x"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SLUICE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "not one of: PLAINTEXT, SSL"),
        (
            {
                "SLUICE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "SLUICE_KAFKA_SASL_MECHANISM": "GSSAPI",
                "SLUICE_KAFKA_SASL_USERNAME": "u",
                "SLUICE_KAFKA_SASL_PASSWORD": "p",
            },
            "SLUICE_KAFKA_SASL_MECHANISM='GSSAPI' is not one of",
        ),
        (
            {"SLUICE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "SLUICE_KAFKA_SASL_USERNAME": "u"},
            "needs SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD",
        ),
    ],
)
def test_kafka_security_settings_are_checked_at_load(environ: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ)


def test_kafka_client_options_carry_tls_and_sasl() -> None:
    plain = kafka.connection_options(config.load({}).kafka)
    assert plain == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    secured = kafka.connection_options(
        config.load(
            {
                "SLUICE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "SLUICE_KAFKA_SASL_USERNAME": "svc",
                "SLUICE_KAFKA_SASL_PASSWORD": "pw",
            }
        ).kafka
    )
    assert secured["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (secured["sasl_plain_username"], secured["sasl_plain_password"]) == ("svc", "pw")
    assert secured["ssl_context"].check_hostname  # system CAs, hostname verified


def test_secrets_are_masked_in_the_settings_listing(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    environ = {
        "SLUICE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SLUICE_KAFKA_SASL_USERNAME": "svc",
        "SLUICE_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw"),
    }
    rows = {row.name: row for row in describe(config.load(environ), environ)}
    password = rows["SLUICE_KAFKA_SASL_PASSWORD"]
    assert (password.current, password.is_set) == ("***", True)
    assert password.meaning  # documented like every setting
    assert "s3cret" not in repr(list(rows.values()))
