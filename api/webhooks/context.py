"""The webhook resources of an api app and their lifetime: the event publisher (a Kafka
producer) and its outbox relay, the HTTP sender, and the deliverer task with its group
consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api.deps import deps_key
from api.webhooks import outbox
from api.webhooks.deliverer import Deliverer, max_poll_interval_ms
from api.webhooks.events import Publisher, publisher_key
from api.webhooks.secrets import SecretBox, SecretKeysInvalid, secret_box
from api.webhooks.sender import Sender
from sluice import kafka
from sluice.config import Settings, WebhooksConfig
from sluice.errors import StartupError

log = logging.getLogger(__name__)

settings_key = web.AppKey("webhook_settings", WebhooksConfig)
sender_key = web.AppKey("webhook_sender", Sender)
box_key = web.AppKey("webhook_secret_box", SecretBox)


def box_of(cfg: WebhooksConfig) -> SecretBox:
    try:
        box = secret_box(cfg.secret_keys)
    except SecretKeysInvalid as exc:
        raise StartupError(str(exc)) from None
    if not box.encrypts:
        log.warning(
            "webhook secrets are stored unencrypted: set SLUICE_WEBHOOKS_SECRET_KEYS to encrypt"
            " them at rest"
        )
    return box


async def webhooks_context(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    """Runs after the api's pool exists (registered after it in api/app.py)."""
    app[settings_key] = settings.webhooks
    app[box_key] = box_of(settings.webhooks)
    producer = kafka.create_producer(settings.kafka)
    await kafka.start(producer, settings.kafka)
    publisher = Publisher(
        producer, settings.kafka.webhooks_topic, settings.kafka.produce_deadline_s
    )
    app[publisher_key] = publisher
    relay = asyncio.create_task(
        outbox.relay(
            app[deps_key].pool,
            publisher.send,
            every_s=settings.webhooks.outbox_relay_every_s,
            grace_s=settings.webhooks.outbox_grace_s,
        ),
        name="webhook-outbox-relay",
    )
    sender = Sender(settings.webhooks)
    await sender.start()
    app[sender_key] = sender
    task = await _start_deliverer(app, settings, sender) if settings.webhooks.deliver else None
    try:
        yield
    finally:
        for running in (task, relay):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        await sender.close()
        await producer.stop()


async def _start_deliverer(
    app: web.Application, settings: Settings, sender: Sender
) -> asyncio.Task[None]:
    consumer = kafka.create_consumer(
        settings.kafka,
        group_id=settings.webhooks.group_id,
        max_poll_interval_ms=max_poll_interval_ms(settings.webhooks),
    )
    consumer.subscribe([settings.kafka.webhooks_topic])
    await kafka.start(consumer, settings.kafka)
    deliverer = Deliverer(settings.webhooks, app[deps_key].pool, sender, box=app[box_key])

    async def run() -> None:
        try:
            while True:
                try:
                    await deliverer.run(consumer)
                except Exception:  # never die silently: log, wait, consume again
                    log.exception("webhook deliverer failed; restarting in 5 s")
                    await asyncio.sleep(5)
        finally:
            await consumer.stop()

    return asyncio.create_task(run(), name="webhook-deliverer")
