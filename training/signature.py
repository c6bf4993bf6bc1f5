"""The rules a drawn signature must meet, and the image made from it.

The phone sends the strokes, not a picture: the server checks them and renders the PNG itself,
so the stored image always matches the stored strokes and a pasted picture cannot stand in for a
drawing. A tap, a dot or a single short line is not a signature; the thresholds below refuse them
while letting the shortest real signatures through (two characters of a Chinese name draw well
over the minimum).
"""

from __future__ import annotations

import hashlib
import io
import unicodedata

from PIL import Image, ImageDraw

from infra.audit import canonical_json
from infra.errors import InvalidInput
from infra.i18n import N_
from training.schemas import StrokesIn

FIELD = "signature.strokes"
MIN_STROKES = 2
MIN_POINTS = 20
# The drawing must span a fair part of the pad; a scribble in a corner is not a signature.
MIN_EXTENT_SHARE = 0.15
# Points may stray slightly past the pad's edge when a finger slides off it.
EDGE_TOLERANCE_PX = 8
IMAGE_WIDTH_PX = 600
LINE_WIDTH_PX = 4

CONSENT_SENTENCE = N_(
    "I have read and understood this content, answered for myself, and will follow it at work."
)
BRIEFING_CONSENT_SENTENCE = N_(
    "I have been briefed on the hazards, control measures and emergency measures of this job "
    "and will follow them."
)


def check_strokes(drawing: StrokesIn) -> None:
    """Refuse an empty, trivial or out-of-pad drawing, naming the rule it breaks."""
    points = [point for stroke in drawing.strokes for point in stroke]
    if len(drawing.strokes) < MIN_STROKES:
        raise InvalidInput(
            FIELD,
            "min_strokes",
            N_("A signature needs at least %(count)s strokes; please sign your name."),
            count=MIN_STROKES,
        )
    if len(points) < MIN_POINTS:
        raise InvalidInput(
            FIELD,
            "min_points",
            N_("The signature is too short to be a signature; please sign your name."),
        )
    for x, y, elapsed_ms in points:
        if not (
            -EDGE_TOLERANCE_PX <= x <= drawing.width + EDGE_TOLERANCE_PX
            and -EDGE_TOLERANCE_PX <= y <= drawing.height + EDGE_TOLERANCE_PX
            and elapsed_ms >= 0
        ):
            raise InvalidInput(
                FIELD, "inside_pad", N_("The signature has points outside the signing pad.")
            )
    xs = [x for x, _, _ in points]
    ys = [y for _, y, _ in points]
    if (max(xs) - min(xs)) < drawing.width * MIN_EXTENT_SHARE and (max(ys) - min(ys)) < (
        drawing.height * MIN_EXTENT_SHARE
    ):
        raise InvalidInput(
            FIELD, "min_extent", N_("The signature is too small; please use more of the pad.")
        )


def strokes_document(drawing: StrokesIn) -> dict[str, object]:
    """The drawing as stored: rounded to a tenth of a pixel, so its digest is stable."""
    return {
        "width": drawing.width,
        "height": drawing.height,
        "strokes": [
            [[round(x, 1), round(y, 1), int(t)] for x, y, t in stroke] for stroke in drawing.strokes
        ],
    }


def strokes_digest(document: dict[str, object]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def render_png(document: dict[str, object]) -> bytes:
    """Black ink on white at a fixed width; the same strokes give the same bytes."""
    width = int(document["width"])  # type: ignore[call-overload]
    height = int(document["height"])  # type: ignore[call-overload]
    scale = IMAGE_WIDTH_PX / width
    image = Image.new("L", (IMAGE_WIDTH_PX, max(1, round(height * scale))), 255)
    pen = ImageDraw.Draw(image)
    for stroke in document["strokes"]:  # type: ignore[attr-defined]
        path = [(x * scale, y * scale) for x, y, _ in stroke]
        if len(path) == 1:
            x, y = path[0]
            radius = LINE_WIDTH_PX / 2
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
        else:
            pen.line(path, fill=0, width=LINE_WIDTH_PX, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def same_name(typed: str, registered: str) -> bool:
    """Whether the typed full name is the registered one, whatever the width of the characters
    and the spaces typed between them (张 三, 张三, ｚｈａｎｇ)."""

    def folded(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).split()).casefold()

    return folded(typed) == folded(registered)
