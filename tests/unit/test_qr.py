"""Verification links carry a signed token; their QR codes are compact, well-formed SVG."""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid
from xml.etree import ElementTree

import pytest
import qrcode

from infra.qr import (
    ERROR_CORRECTION,
    QUIET_ZONE,
    VERIFY_PURPOSE,
    VerificationRef,
    qr_svg,
    read_verification_token,
    svg_data_uri,
    verification_url,
)
from infra.security import InvalidSignedToken, TokenSigner
from infra.settings import Settings, get_settings

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def settings() -> Settings:
    return dataclasses.replace(get_settings(), base_url="https://portal.example.com")


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _ref(version: int = 1) -> VerificationRef:
    return VerificationRef(uuid.uuid4(), "permit", uuid.uuid4(), version)


def test_verification_url_round_trips(settings: Settings) -> None:
    ref = _ref(version=3)
    url = verification_url(settings, ref)
    assert url.startswith("https://portal.example.com/v/")
    assert read_verification_token(settings, _token(url)) == ref


def test_the_same_record_always_prints_the_same_link(settings: Settings) -> None:
    ref = _ref(version=2)
    assert verification_url(settings, ref) == verification_url(settings, ref)
    assert verification_url(settings, ref) != verification_url(settings, _ref(version=2))


def test_token_from_another_key_is_refused(settings: Settings) -> None:
    other = dataclasses.replace(settings, secret_key="another-installation")
    url = verification_url(other, _ref())
    with pytest.raises(InvalidSignedToken):
        read_verification_token(settings, _token(url))


def test_altered_token_is_refused(settings: Settings) -> None:
    genuine = _token(verification_url(settings, _ref()))
    other = _token(verification_url(settings, _ref()))
    # Another record's payload under this token's signature.
    # rsplit: a compressed payload starts with "." itself; the signature is last.
    spliced = other.rsplit(".", 1)[0] + "." + genuine.rsplit(".", 1)[1]
    assert spliced != genuine
    with pytest.raises(InvalidSignedToken):
        read_verification_token(settings, spliced)
    flipped = genuine[:-5] + ("A" if genuine[-5] != "A" else "B") + genuine[-4:]
    with pytest.raises(InvalidSignedToken):
        read_verification_token(settings, flipped)


def test_token_signed_for_another_purpose_is_refused(settings: Settings) -> None:
    payload = [uuid.uuid4().hex, "permit", uuid.uuid4().hex, 1]
    token = TokenSigner(settings.secret_key).sign(payload, purpose="storage-download")
    with pytest.raises(InvalidSignedToken):
        read_verification_token(settings, token)


@pytest.mark.parametrize(
    "payload",
    [
        {"permit": "x"},
        [uuid.uuid4().hex, "permit", "not-a-uuid", 1],
        ["not-a-uuid", "permit", uuid.uuid4().hex, 1],
        [uuid.uuid4().hex, "permit", uuid.uuid4().hex, True],
        [uuid.uuid4().hex, "", uuid.uuid4().hex, 1],
        [uuid.uuid4().hex, "permit", uuid.uuid4().hex],
        ["permit", uuid.uuid4().hex, 1],
    ],
)
def test_signed_payload_of_another_shape_is_refused(settings: Settings, payload: object) -> None:
    token = TokenSigner(settings.secret_key).sign_lasting(payload, purpose=VERIFY_PURPOSE)
    with pytest.raises(InvalidSignedToken) as refused:
        read_verification_token(settings, token)
    assert refused.value.reason == "malformed"


def _matrix_from_svg(svg: str) -> list[list[bool]]:
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
    assert root.tag == f"{SVG_NS}svg"
    size = int(root.attrib["viewBox"].split()[2])
    matrix = [[False] * size for _ in range(size)]
    (path,) = root.iter(f"{SVG_NS}path")
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", path.attrib["d"]):
        for column in range(int(x), int(x) + int(width)):
            matrix[int(y)][column] = True
    return matrix


def test_qr_svg_holds_qrcodes_matrix_for_the_url(settings: Settings) -> None:
    url = verification_url(settings, _ref(version=2))
    reference = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=QUIET_ZONE)
    reference.add_data(url)
    reference.make(fit=True)
    expected = [[bool(module) for module in row] for row in reference.get_matrix()]

    assert _matrix_from_svg(qr_svg(url)) == expected


def test_svg_data_uri_embeds_the_svg() -> None:
    svg = qr_svg("https://portal.example.com/v/x")
    uri = svg_data_uri(svg)
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    assert base64.b64decode(uri.removeprefix(prefix)).decode() == svg
