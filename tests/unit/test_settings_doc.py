"""`sluice config` shows every setting with default, current value (secrets masked), meaning."""

import orjson

from sluice import config
from sluice.commands.show_config import show
from sluice.settings_doc import config_hash, describe, effective, mask


def test_every_setting_is_described_with_its_meaning() -> None:
    rows = describe(config.load({}), {})
    assert [r.name for r in rows] == config.env_names()
    assert not [r.name for r in rows if not r.meaning], "a setting without a comment"


def test_current_values_defaults_and_what_was_set() -> None:
    env = {"SLUICE_KAFKA_PARTITIONS": "16"}
    rows = {r.name: r for r in describe(config.load(env), env)}
    partitions = rows["SLUICE_KAFKA_PARTITIONS"]
    assert (partitions.default, partitions.current, partitions.is_set) == (8, 16, True)
    assert rows["SLUICE_PORT"].is_set is False
    assert rows["SLUICE_AUTH_DEFAULT_PERMISSION"].choices == (
        "READ",
        "EDIT",
        "MANAGE",
        "NO_PERMISSIONS",
    )


def test_passwords_are_masked_everywhere_they_are_shown() -> None:
    env = {"SLUICE_PG_DSN": "postgresql://bob:hunter2@db:5432/sluice"}
    settings = config.load(env)
    assert mask(settings.pg.dsn) == "postgresql://bob:***@db:5432/sluice"
    assert mask("postgresql://postgres@127.0.0.1:5433/sluice") == (
        "postgresql://postgres@127.0.0.1:5433/sluice"
    )
    for as_json in (False, True):
        text = show(settings, env, as_json=as_json)
        assert "hunter2" not in text and "bob:***@db" in text
    assert "hunter2" not in orjson.dumps(effective(settings)).decode()


def test_the_config_hash_sees_shared_settings_not_listen_addresses() -> None:
    base = config_hash(config.load({}))
    assert config_hash(config.load({"SLUICE_API_PORT": "7000", "SLUICE_PORT": "1"})) == base
    assert config_hash(config.load({"SLUICE_KAFKA_PARTITIONS": "16"})) != base
    assert config_hash(config.load({"SLUICE_API_ARTIFACT_ROOT": "/elsewhere"})) != base


def test_text_output_names_default_and_allowed_values() -> None:
    env = {"SLUICE_KAFKA_PARTITIONS": "16"}
    text = show(config.load(env), env, as_json=False)
    assert "SLUICE_KAFKA_PARTITIONS = 16  (default 8)\n    topic partitions" in text
    assert "One of: READ, EDIT, MANAGE, NO_PERMISSIONS." in text
    doc = orjson.loads(show(config.load(env), env, as_json=True))
    assert {"name", "default", "current", "set", "choices", "meaning"} <= set(doc["settings"][0])


def test_a_secret_that_is_not_a_url_is_hidden_whole() -> None:
    assert mask("hunter2", secret=True) == "***"
    assert mask("", secret=True) == ""
    assert mask("hunter2") == "hunter2"
