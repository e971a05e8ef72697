"""Webhook secrets at rest. A secret is the HMAC key a delivery is signed with, so it must be
recoverable: it is encrypted (Fernet: AES-128-CBC + HMAC-SHA256), not hashed, under the keys of
``SLUICE_WEBHOOKS_SECRET_KEYS`` (MLflow's counterpart: ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY``).

Stored values carry their form as a prefix: ``fernet:<token>`` or ``plain:<secret>`` (no key
configured; the api warns at start-up). Several comma-separated keys rotate: the first seals,
every one opens, so a new key goes first and an old one is dropped once every secret sealed
under it was set again (update-webhook). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PLAIN = "plain:"
SEALED = "fernet:"


class SecretKeysInvalid(ValueError):
    """SLUICE_WEBHOOKS_SECRET_KEYS holds something that is not a Fernet key."""


class SecretUnreadable(Exception):
    """A stored secret none of the configured keys opens (or of an unknown form)."""


@dataclass(frozen=True, slots=True)
class SecretBox:
    fernet: MultiFernet | None  # None: no key configured, secrets stay plain

    @property
    def encrypts(self) -> bool:
        return self.fernet is not None

    def seal(self, secret: str) -> str:
        if self.fernet is None:
            return PLAIN + secret
        return SEALED + self.fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        if stored.startswith(PLAIN):
            return stored[len(PLAIN) :]
        if not stored.startswith(SEALED):
            raise SecretUnreadable("a stored webhook secret has an unknown form")
        if self.fernet is None:
            raise SecretUnreadable(
                "a webhook secret is encrypted but SLUICE_WEBHOOKS_SECRET_KEYS is not set"
            )
        try:
            return self.fernet.decrypt(stored[len(SEALED) :].encode("ascii")).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "no key of SLUICE_WEBHOOKS_SECRET_KEYS opens a stored webhook secret"
            ) from None


def secret_box(keys: str) -> SecretBox:
    """The box of a comma-separated key list (empty: plain). Raises SecretKeysInvalid."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        return SecretBox(None)
    try:
        return SecretBox(MultiFernet([Fernet(k.encode("ascii")) for k in parts]))
    except (ValueError, UnicodeEncodeError):
        raise SecretKeysInvalid(
            "SLUICE_WEBHOOKS_SECRET_KEYS must be comma-separated Fernet keys (32 url-safe"
            " base64-encoded bytes each; make one with `python -c 'from cryptography.fernet"
            " import Fernet; print(Fernet.generate_key().decode())'`)"
        ) from None


PLAIN_BOX = SecretBox(None)
