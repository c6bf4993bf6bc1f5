"""Password hashing and signed expiring tokens."""

from __future__ import annotations

import time

import pytest

from infra.security import (
    InvalidSignedToken,
    TokenSigner,
    hash_password,
    password_needs_rehash,
    secret_digest,
    verify_password,
)


def test_argon2_hash_verifies_only_the_right_password() -> None:
    stored = hash_password("正确的密码-2026")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "正确的密码-2026")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")
    assert not password_needs_rehash(stored)


def test_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


def test_secret_digest_is_stable_and_one_way() -> None:
    assert secret_digest("abc") == secret_digest("abc")
    assert "abc" not in secret_digest("abc")


def test_signed_token_round_trip_and_purpose() -> None:
    signer = TokenSigner("key-one")
    token = signer.sign({"permit": "DH-20261128-0007"}, purpose="verify")
    assert signer.unsign(token, purpose="verify", max_age_seconds=60) == {
        "permit": "DH-20261128-0007"
    }
    with pytest.raises(InvalidSignedToken) as wrong_purpose:
        signer.unsign(token, purpose="invite", max_age_seconds=60)
    assert wrong_purpose.value.reason == "bad_signature"
    with pytest.raises(InvalidSignedToken):
        TokenSigner("key-two").unsign(token, purpose="verify", max_age_seconds=60)
    with pytest.raises(InvalidSignedToken):
        signer.unsign(
            token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1],
            purpose="verify",
            max_age_seconds=60,
        )


def test_signed_token_expires() -> None:
    signer = TokenSigner("key")
    token = signer.sign("x", purpose="p")
    time.sleep(1.1)
    with pytest.raises(InvalidSignedToken) as expired:
        signer.unsign(token, purpose="p", max_age_seconds=0)
    assert expired.value.reason == "expired"
