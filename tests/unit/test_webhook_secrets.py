"""Webhook secrets at rest (api/webhooks/secrets.py): sealed forms, key rotation, refusals."""

import pytest
from cryptography.fernet import Fernet

from api.webhooks.secrets import (
    PLAIN_BOX,
    SecretKeysInvalid,
    SecretUnreadable,
    secret_box,
)


def test_without_keys_secrets_stay_plain_and_say_so() -> None:
    box = secret_box(" , ")
    assert not box.encrypts
    assert box.seal("s3cret") == "plain:s3cret"
    assert box.open("plain:s3cret") == "s3cret"
    assert box.open(box.seal("")) == ""


def test_with_a_key_secrets_are_sealed_and_opened() -> None:
    box = secret_box(Fernet.generate_key().decode())
    sealed = box.seal("s3cret")
    assert sealed.startswith("fernet:") and "s3cret" not in sealed
    assert box.open(sealed) == "s3cret"
    assert box.open("plain:legacy") == "legacy"  # rows written before a key was set


def test_rotation_seals_with_the_first_key_and_opens_with_any() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_old = secret_box(old).seal("a")
    rotated = secret_box(f"{new},{old}")
    assert rotated.open(sealed_old) == "a"
    assert secret_box(new).open(rotated.seal("b")) == "b"
    with pytest.raises(SecretUnreadable, match="no key"):
        secret_box(new).open(sealed_old)


def test_unreadable_forms_are_refused_not_guessed() -> None:
    sealed = secret_box(Fernet.generate_key().decode()).seal("a")
    with pytest.raises(SecretUnreadable, match="not set"):
        PLAIN_BOX.open(sealed)
    with pytest.raises(SecretUnreadable, match="unknown form"):
        PLAIN_BOX.open("raw-secret")


# Fixed ids: a random key in an id would differ between pytest-xdist's workers.
@pytest.mark.parametrize(
    "keys",
    ["not-a-key", "x" * 44, Fernet.generate_key().decode() + ",é"],
    ids=["not-a-key", "44-chars", "a-key-then-not-base64"],
)
def test_keys_that_are_not_fernet_keys_are_a_clear_error(keys: str) -> None:
    with pytest.raises(SecretKeysInvalid, match="SLUICE_WEBHOOKS_SECRET_KEYS must be"):
        secret_box(keys)
