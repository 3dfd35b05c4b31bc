"""How the clients reach a secured Kafka (SASL and/or TLS) and Redis (password, TLS), from the
EFFORTPULSE_KAFKA_SECURITY_PROTOCOL, _KAFKA_SASL_*, _KAFKA_SSL_*, _REDIS_PASSWORD and
_REDIS_SSL_CAFILE settings. One place, three client families: kafka-python (topic admin, the
CLI), aiokafka (health, outbox recovery) and faust (the worker's consumer and producer)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import faust

from streams.settings import Settings

__all__ = ["faust_credentials", "kafka_options", "redis_options", "ssl_context"]


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def _password(settings: Settings) -> str | None:
    p = settings.kafka_sasl_password
    return p.get_secret_value() if p is not None else None


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context for Kafka: the CA file (else the system's CAs), and a client
    certificate and key for mutual TLS when given. None without TLS."""
    if not _uses_tls(settings):
        return None
    ctx = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        ctx.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return ctx


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient and
    for aiokafka's clients: both libraries spell these options the same way."""
    opts: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if _uses_tls(settings):
        opts["ssl_context"] = ssl_context(settings)
    if _uses_sasl(settings):
        opts.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=_password(settings),
        )
    return opts


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """faust.App(broker_credentials=...): SASL (with TLS for SASL_SSL), TLS alone, or None."""
    if _uses_sasl(settings):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_password(settings),
            ssl_context=ssl_context(settings),
            mechanism=settings.kafka_sasl_mechanism,
        )
    if _uses_tls(settings):
        return faust.SSLCredentials(ssl_context(settings))
    return None


def redis_options(settings: Settings) -> dict[str, Any]:
    """Extra keyword arguments for redis' from_url: EFFORTPULSE_REDIS_PASSWORD (a password in the
    URL wins) and, for rediss:// URLs, the CA file that signed the server's certificate."""
    opts: dict[str, Any] = {}
    if settings.redis_password is not None:
        opts["password"] = settings.redis_password.get_secret_value()
    if settings.redis_ssl_cafile and urlsplit(settings.redis_url).scheme == "rediss":
        opts["ssl_ca_certs"] = settings.redis_ssl_cafile
    return opts
