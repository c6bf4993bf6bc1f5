"""Induction (入厂安全教育) on a phone in a real browser: a worker reads the plant's induction,
passes the quiz, draws a signature with the finger on the pad, and lands on the signed record,
whose PDF carries the name and a QR code linking to a verification page that says "valid"."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from portal.demo_training import DEMO_INDUCTIONS
from tests.browser.conftest import DemoServer

pytestmark = pytest.mark.browser

TENANT = "donghai-chem"
PLANT = "NB01"
WORKER_NAME = "孙志强"
PHONE = {"width": 390, "height": 844}
NEXT_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def _sign_in(page: Page, server: DemoServer, email: str, password: str) -> None:
    page.goto(f"{server.base_url}/t/{TENANT}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    expect(page).to_have_url(re.compile(rf"/t/{TENANT}/?$"))


def _draw(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw on the pad with the pointer: press, move through the points, release."""
    pad = page.get_by_test_id("signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
        page.mouse.up()


def _uri_annotations(pdf: PdfReader) -> list[str]:
    uris = []
    for pdf_page in pdf.pages:
        for annotation in pdf_page.get("/Annots") or []:
            action = annotation.get_object().get("/A")
            if action is not None and action.get_object().get("/URI") is not None:
                uris.append(str(action.get_object()["/URI"]))
    return uris


def test_worker_reads_passes_signs_and_verifies(
    browser: Browser, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    login = demo_server.login("contractor_worker", "worker.pending")
    content = DEMO_INDUCTIONS[PLANT]
    correct = {question.id: question.correct for question in content.questions}
    context = browser.new_context(
        locale="zh-CN",
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=3,
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        _sign_in(page, demo_server, login["email"], login["password"])
        page.get_by_test_id("my-inductions").click()

        assignment = page.locator(
            f'[data-testid=assignment][data-plant="{PLANT}"][data-work-type=""]'
        )
        expect(assignment).to_have_attribute("data-status", "pending")
        expect(assignment).to_contain_text(content.title)
        assignment.get_by_test_id("open-induction").click()

        # The reading: every section, then the quiz.
        reading = page.get_by_test_id("reading")
        expect(reading.get_by_role("heading", level=1)).to_have_text(content.title)
        expect(reading.get_by_test_id("section")).to_have_count(len(content.sections))
        page.screenshot(path=str(artifacts_dir / "training-reading.png"))
        page.get_by_test_id("start-quiz").click()

        # The page does not know the answers; the test does, from the demo's content.
        questions = page.get_by_test_id("question")
        expect(questions).to_have_count(content.draw_count)
        for index in range(content.draw_count):
            question = questions.nth(index)
            question_id = question.get_attribute("data-question")
            assert question_id in correct
            for option in correct[question_id]:
                question.locator(f'input[name="q_{question_id}"][value="{option}"]').check()
        page.screenshot(path=str(artifacts_dir / "training-quiz.png"), full_page=True)
        page.get_by_test_id("submit-answers").click()

        result = page.get_by_test_id("result")
        expect(result).to_have_attribute("data-passed", "true")
        expect(result.get_by_test_id("score")).to_have_text("100%")
        page.get_by_test_id("go-sign").click()

        # Signing: the button waits for a drawing.
        expect(page.get_by_test_id("signer")).to_have_text(WORKER_NAME)
        submit = page.get_by_test_id("sign-submit")
        expect(submit).to_be_disabled()
        _draw(page, [[(0.1, 0.3), (0.3, 0.7), (0.45, 0.25), (0.55, 0.75)]])
        expect(submit).to_be_enabled()
        page.get_by_test_id("pad-clear").click()
        expect(submit).to_be_disabled()
        expect(page.get_by_test_id("strokes")).to_have_value("")
        _draw(
            page,
            [
                [(0.08, 0.35), (0.2, 0.3), (0.32, 0.32), (0.4, 0.3)],
                [(0.22, 0.15), (0.24, 0.5), (0.2, 0.8), (0.12, 0.9)],
                [(0.5, 0.2), (0.62, 0.7), (0.75, 0.25), (0.9, 0.8)],
            ],
        )
        expect(submit).to_be_enabled()
        strokes = page.get_by_test_id("strokes")
        expect(strokes).to_have_value(re.compile(r'"strokes":\[\[\['))
        drawn = strokes.input_value()
        # The keyboard opening for the name, or the phone turning, resizes the page: the
        # drawing stays as drawn.
        for size in (
            {"width": PHONE["width"], "height": 480},
            {"width": 844, "height": 390},
            PHONE,
        ):
            page.set_viewport_size(size)
            page.evaluate(NEXT_FRAMES)
        expect(strokes).to_have_value(drawn)
        expect(submit).to_be_enabled()
        page.get_by_test_id("full-name").fill(WORKER_NAME)
        page.get_by_test_id("consent").check()
        page.screenshot(path=str(artifacts_dir / "training-sign.png"), full_page=True)
        submit.click()

        record = page.get_by_test_id("record")
        expect(record.get_by_test_id("record-worker")).to_have_text(WORKER_NAME)
        expect(record.get_by_test_id("signature-image")).to_be_visible()
        page.screenshot(path=str(artifacts_dir / "training-record.png"), full_page=True)

        # The PDF record: the name in its text, the QR code a link to the verification page.
        verification_url = page.get_by_test_id("verification-link").get_attribute("href")
        pdf_path = page.get_by_test_id("record-pdf").get_attribute("href")
        assert verification_url and pdf_path
        response = page.request.get(f"{demo_server.base_url}{pdf_path}")
        assert response.ok
        assert response.headers["content-type"] == "application/pdf"
        pdf = PdfReader(io.BytesIO(response.body()))
        text = "".join(pdf_page.extract_text() or "" for pdf_page in pdf.pages)
        assert WORKER_NAME in text
        assert verification_url in _uri_annotations(pdf)

        # The QR code's page, opened on this server, says the record is valid.
        page.goto(f"{demo_server.base_url}{urlsplit(verification_url).path}")
        verdict = page.locator("[data-status]").first
        expect(verdict).to_have_attribute("data-status", "valid")

        page.goto(f"{demo_server.base_url}/t/{TENANT}/training")
        expect(
            page.locator(f'[data-testid=assignment][data-plant="{PLANT}"][data-work-type=""]')
        ).to_have_attribute("data-status", "done")
    finally:
        context.close()
