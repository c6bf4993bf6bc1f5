"""Upload checks that must hold whatever else the process has loaded."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile

import infra.documents  # noqa: F401 - WeasyPrint relaxes Pillow's truncation check on import
from infra.errors import InvalidInput
from infra.uploads import check_file, document_kind


def _truncated(format_name: str) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buffer, format=format_name)
    data = buffer.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize("format_name", ["JPEG", "PNG"])
def test_truncated_images_are_refused_after_weasyprint_is_loaded(format_name: str) -> None:
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    with pytest.raises(InvalidInput) as refused:
        check_file(io.BytesIO(_truncated(format_name)), document_kind("photo"))
    assert refused.value.problems[0].field == "file"
    assert refused.value.problems[0].rule == "image_corrupt"
