"""Security primitives: password hashing, opaque secrets and signed expiring tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verifying against this when no user matches keeps the answer time the same as for a real
    user, so timing does not reveal which e-mail addresses exist. Made on first use, or by
    :func:`warm_up` in a server process: a hash costs a tenth of a second, which every command
    and worker would otherwise pay at import."""
    return _hasher.hash(secrets.token_urlsafe(16))


def warm_up() -> None:
    """Make the dummy hash before the first sign-in, so that sign-in's first answer for an
    unknown address takes no longer than the others."""
    _dummy_hash()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def secret_digest(secret: str) -> str:
    """Digest for secrets that are looked up by value (API tokens): high-entropy, so unsalted
    SHA-256 is enough and stays indexable."""
    return hashlib.sha256(secret.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class InvalidSignedToken(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenSigner:
    """Signs small payloads into URL-safe tokens that expire; each purpose has its own salt, so
    a token made for one purpose is refused for another."""

    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret_key, salt=f"portal:{purpose}")

    def sign(self, payload: Any, *, purpose: str) -> str:
        return self._serializer(purpose).dumps(payload)

    def sign_lasting(self, payload: Any, *, purpose: str) -> str:
        """A token that never expires and is the same for the same payload: for links printed
        on records, which are checked for as long as the paper is kept."""
        return URLSafeSerializer(self._secret_key, salt=f"portal:{purpose}").dumps(payload)

    def unsign_lasting(self, token: str, *, purpose: str) -> Any:
        try:
            return URLSafeSerializer(self._secret_key, salt=f"portal:{purpose}").loads(token)
        except BadSignature as exc:
            raise InvalidSignedToken("bad_signature") from exc

    def unsign(self, token: str, *, purpose: str, max_age_seconds: int) -> Any:
        try:
            return self._serializer(purpose).loads(token, max_age=max_age_seconds)
        except SignatureExpired as exc:
            raise InvalidSignedToken("expired") from exc
        except BadSignature as exc:
            raise InvalidSignedToken("bad_signature") from exc
