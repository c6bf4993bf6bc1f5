"""QR codes for printed documents and pages: a signed verification link drawn as one SVG path.

Whoever scans a permit or a training record opens ``{base_url}/v/{token}``; the token names the
record and the printed version, signed so that nobody can point a printed QR code at another
record. The page it opens (a portal route) shows the record's live status.

The token also names the tenant, because the page is public: it must know whose records to read
before anyone has signed in.

The SVG is one ``<path>`` with one rectangle per horizontal run of dark modules. qrcode's own SVG
factories draw a square (or a ``<rect>``) per module, and WeasyPrint parses SVG paths in Python:
on a permit page that cost ~100 ms of the 0.3 s budget, the runs cost ~20 ms.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

import qrcode
from qrcode.constants import ERROR_CORRECT_M

from infra.security import InvalidSignedToken, TokenSigner
from infra.settings import Settings

VERIFY_PURPOSE = "verify"
VERIFICATION_PATH = "/v/"
# Medium error correction survives a creased or smudged printout without growing the code much.
ERROR_CORRECTION = ERROR_CORRECT_M
# The four-module quiet zone the QR standard requires, so the code scans on any background.
QUIET_ZONE = 4


@dataclass(frozen=True)
class VerificationRef:
    """What a verification link names: a record of one tenant, at the version printed."""

    tenant_id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    version: int


def verification_url(settings: Settings, ref: VerificationRef) -> str:
    if not ref.subject_type:
        raise ValueError("subject_type must not be empty")
    # A printed record is scanned for as long as it is archived (GB 30871 keeps permits for at
    # least a year, training records longer), so the link never expires; and the same record
    # always prints the same link, so a rendered document can be cached by its inputs.
    token = TokenSigner(settings.secret_key).sign_lasting(
        [ref.tenant_id.hex, ref.subject_type, ref.subject_id.hex, ref.version],
        purpose=VERIFY_PURPOSE,
    )
    return f"{settings.base_url}{VERIFICATION_PATH}{token}"


def read_verification_token(settings: Settings, token: str) -> VerificationRef:
    payload = TokenSigner(settings.secret_key).unsign_lasting(token, purpose=VERIFY_PURPOSE)
    # A valid signature over an unexpected shape means the signing key signed something else.
    match payload:
        case [str(tenant_hex), str(subject_type), str(subject_hex), int(version)] if (
            subject_type and not isinstance(version, bool)
        ):
            try:
                return VerificationRef(
                    uuid.UUID(hex=tenant_hex), subject_type, uuid.UUID(hex=subject_hex), version
                )
            except ValueError as exc:
                raise InvalidSignedToken("malformed") from exc
    raise InvalidSignedToken("malformed")


def qr_matrix(data: str) -> list[list[bool]]:
    """The modules of the smallest QR code holding ``data``, quiet zone included."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=QUIET_ZONE)
    code.add_data(data)
    code.make(fit=True)
    return [[bool(module) for module in row] for row in code.get_matrix()]


def qr_svg(data: str) -> str:
    """A standalone SVG document, one unit per module; size it with CSS."""
    matrix = qr_matrix(data)
    size = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < size and row[x]:
                x += 1
            runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
