"""Encryption of personal data kept in table columns (such as ID numbers), with versioned keys.

A value is stored as ``<version>:<base64url(nonce ‖ AES-256-GCM ciphertext and tag)>``. The
version names the key it was written with, so keys rotate without a flag day: new values use the
first key of the ring, older values stay readable while their key is still listed, and
:meth:`FieldCipher.is_current` tells which rows a re-encryption pass must rewrite. The associated
data binds each ciphertext to its tenant and column: a value copied into another column or
another tenant's row does not decrypt.

Equality lookups (is this ID number already registered?) use a keyed digest, HMAC-SHA256 under a
key derived separately from the same secret: without the key the digest cannot be recomputed from
a guessed ID number, which an unkeyed hash of an 18-digit number with a checksum would allow.

``PORTAL_FIELD_ENCRYPTION_KEY`` holds the ring as ``version:secret`` entries separated by commas,
the current key first. Unset, the ring is one key, version ``0``, derived from the secret key, so
the embedded default works with nothing to configure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from infra.settings import Settings

DEFAULT_VERSION = "0"
MIN_SECRET_LENGTH = 32
NONCE_BYTES = 12
_VERSION = re.compile(r"^[A-Za-z0-9]{1,8}$")
_ENCRYPTION_INFO = b"portal:field-encryption:aes-256-gcm"
_LOOKUP_INFO = b"portal:field-lookup:hmac-sha256"


class FieldDecryptionError(ValueError):
    """A stored value that no key of the ring opens: unknown version, altered, or moved."""


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


@dataclass(frozen=True)
class _Key:
    version: str
    aead: AESGCM
    lookup_key: bytes


def _key(version: str, secret: str) -> _Key:
    return _Key(
        version=version,
        aead=AESGCM(_derive(secret, _ENCRYPTION_INFO)),
        lookup_key=_derive(secret, _LOOKUP_INFO),
    )


def parse_keyring(text: str) -> list[tuple[str, str]]:
    """``"2:secret,1:older"`` → ``[("2", "secret"), ("1", "older")]``, checked."""
    entries: list[tuple[str, str]] = []
    for raw in text.split(","):
        version, separator, secret = raw.strip().partition(":")
        if not separator or not _VERSION.match(version):
            raise ValueError(
                "PORTAL_FIELD_ENCRYPTION_KEY entries look like <version>:<secret>, "
                "the version 1 to 8 letters or digits"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"PORTAL_FIELD_ENCRYPTION_KEY: the secret of version {version} needs at least "
                f"{MIN_SECRET_LENGTH} characters"
            )
        if any(version == seen for seen, _ in entries):
            raise ValueError(f"PORTAL_FIELD_ENCRYPTION_KEY lists version {version} twice")
        entries.append((version, secret))
    return entries


class FieldCipher:
    def __init__(self, keyring: list[tuple[str, str]]) -> None:
        if not keyring:
            raise ValueError("a field cipher needs at least one key")
        self._keys = [_key(version, secret) for version, secret in keyring]
        self._by_version = {key.version: key for key in self._keys}

    @classmethod
    def from_settings(cls, settings: Settings) -> FieldCipher:
        if settings.field_encryption_key:
            return cls(parse_keyring(settings.field_encryption_key))
        return cls([(DEFAULT_VERSION, settings.secret_key)])

    @property
    def current_version(self) -> str:
        return self._keys[0].version

    def encrypt(self, plaintext: str, *, context: str) -> str:
        key = self._keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{key.version}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> str:
        version, _, body = token.partition(":")
        key = self._by_version.get(version)
        if key is None:
            raise FieldDecryptionError(f"no key of version {version!r} in the ring")
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            return key.aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise FieldDecryptionError("the value does not decrypt with its key") from exc

    def is_current(self, token: str) -> bool:
        return token.partition(":")[0] == self.current_version

    def digest(self, value: str, *, context: str) -> str:
        """The lookup digest under the current key, as stored: ``<version>:<hex>``."""
        return self._digest(self._keys[0], value, context)

    def digests(self, value: str, *, context: str) -> list[str]:
        """The digest under every key of the ring: a lookup matches rows not yet rewritten."""
        return [self._digest(key, value, context) for key in self._keys]

    @staticmethod
    def _digest(key: _Key, value: str, context: str) -> str:
        message = context.encode() + b"\x1f" + value.encode()
        return f"{key.version}:{hmac.new(key.lookup_key, message, hashlib.sha256).hexdigest()}"


@cache
def field_cipher(settings: Settings) -> FieldCipher:
    """One cipher per settings: deriving the keys is cheap, but not free per row."""
    return FieldCipher.from_settings(settings)
