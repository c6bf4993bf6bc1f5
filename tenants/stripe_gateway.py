"""Stripe's SDK behind the calls billing makes: a client for a request or for a worker's task,
and the webhook signature check.

:mod:`tenants.billing` imports this module the first time it talks to Stripe, not at startup:
the SDK takes seconds to import, and every server process, worker and command would pay that
with billing switched off too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import stripe

# What a call through these clients raises when Stripe answers with an error or not at all.
StripeError = stripe.StripeError

TIMEOUT_SECONDS = 20
NETWORK_RETRIES = 2


class SignatureRefused(Exception):
    """The webhook's signature does not match the secret, or its timestamp is too old."""


def verify_signature(payload: str, signature: str, secret: str) -> None:
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise SignatureRefused(exc.user_message or str(exc)) from exc


class _HTTPXClient(stripe.HTTPXClient):
    """Stripe's httpx adapter passes its already encoded form body as ``data``, which httpx
    deprecates for raw text; ``content`` sends the same bytes without the warning."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Any, post_data: Any
    ) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        kwargs["content"] = kwargs.pop("data") or None
        return [args, kwargs]


def _client(secret_key: str, api_base: str, http_client: stripe.HTTPClient) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else {},
        http_client=http_client,
        max_network_retries=NETWORK_RETRIES,
    )


@asynccontextmanager
async def client(secret_key: str, api_base: str) -> AsyncIterator[stripe.StripeClient]:
    """A client for the block; Stripe's errors raise :class:`StripeError`."""
    http_client = _HTTPXClient(timeout=TIMEOUT_SECONDS)
    try:
        yield _client(secret_key, api_base, http_client)
    finally:
        await http_client.close_async()


@contextmanager
def sync_client(secret_key: str, api_base: str) -> Iterator[stripe.StripeClient]:
    """The same client for a worker's synchronous task."""
    http_client = _HTTPXClient(timeout=TIMEOUT_SECONDS, allow_sync_methods=True)
    try:
        yield _client(secret_key, api_base, http_client)
    finally:
        http_client.close()
