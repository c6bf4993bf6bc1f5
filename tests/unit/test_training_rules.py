"""Training's rules without a database: what a drawn signature must be, the image made from it,
typed names, the seeded quiz draw and its scoring, the content checks and the version hash."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.errors import DomainError, InvalidInput
from tests.training_factories import induction_content as make_content
from tests.training_factories import question, strokes
from training import content as induction_content
from training import quiz
from training.schemas import InductionContent, Section, StrokesIn
from training.signature import check_strokes, render_png, same_name, strokes_document


def _rules(error: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, str]]:
    return [(problem.field, problem.rule) for problem in error.value.problems]


# --- signatures ------------------------------------------------------------------------------


def _line(x0: float, y0: float, x1: float, y1: float, points: int, t0: int = 0) -> list:
    return [
        (x0 + (x1 - x0) * i / (points - 1), y0 + (y1 - y0) * i / (points - 1), t0 + 10 * i)
        for i in range(points)
    ]


def test_a_real_signature_passes() -> None:
    check_strokes(strokes(0))


@pytest.mark.parametrize(
    ("drawing", "rule"),
    [
        # One long stroke: a line, not a name.
        (StrokesIn(width=400, height=200, strokes=[_line(20, 20, 380, 180, 40)]), "min_strokes"),
        # Two strokes across the pad but only a few points: taps, not writing.
        (
            StrokesIn(
                width=400,
                height=200,
                strokes=[_line(20, 20, 380, 180, 5), _line(20, 180, 380, 20, 5)],
            ),
            "min_points",
        ),
        # A point far past the pad's edge (more than the tolerance for a sliding finger).
        (
            StrokesIn(
                width=400,
                height=200,
                strokes=[_line(20, 20, 380, 180, 15), _line(20, 180, 430, 20, 15)],
            ),
            "inside_pad",
        ),
        # Time running backwards is not a drawing either.
        (
            StrokesIn(
                width=400,
                height=200,
                strokes=[_line(20, 20, 380, 180, 15), _line(20, 180, 380, 20, 15, t0=-500)],
            ),
            "inside_pad",
        ),
        # A scribble in one corner: under 15 % of the pad either way.
        (
            StrokesIn(
                width=400,
                height=200,
                strokes=[_line(10, 10, 50, 30, 15), _line(10, 30, 50, 10, 15)],
            ),
            "min_extent",
        ),
    ],
)
def test_trivial_or_stray_drawings_are_refused(drawing: StrokesIn, rule: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check_strokes(drawing)
    assert _rules(error) == [("signature.strokes", rule)]


def test_a_finger_sliding_just_off_the_pad_is_tolerated() -> None:
    check_strokes(
        StrokesIn(
            width=400,
            height=200,
            strokes=[_line(-5, 20, 380, 180, 15), _line(20, 205, 404, 20, 15)],
        )
    )


def test_the_image_is_rendered_deterministically_from_the_strokes() -> None:
    drawing = strokes_document(strokes(0))
    png = render_png(drawing)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert render_png(strokes_document(strokes(0))) == png
    assert render_png(strokes_document(strokes(30))) != png


def test_the_stored_drawing_is_rounded_so_its_digest_is_stable() -> None:
    exact = strokes(0)
    jitter = StrokesIn(
        width=exact.width,
        height=exact.height,
        strokes=[[(x + 0.001, y - 0.001, t) for x, y, t in stroke] for stroke in exact.strokes],
    )
    assert strokes_document(jitter) == strokes_document(exact)


@pytest.mark.parametrize(
    ("typed", "registered"),
    [
        ("张三", "张三"),
        ("张 三", "张三"),
        ("张\u3000三", "张三"),  # an ideographic (full-width) space
        (" 张三 ", "张三"),
        ("ｚｈａｎｇ ｓａｎ", "Zhang San"),  # full-width Latin letters, any case
    ],
)
def test_typed_names_match_whatever_their_width_and_spacing(typed: str, registered: str) -> None:
    assert same_name(typed, registered)


@pytest.mark.parametrize(("typed", "registered"), [("张四", "张三"), ("张", "张三"), ("", "张三")])
def test_other_names_do_not_match(typed: str, registered: str) -> None:
    assert not same_name(typed, registered)


# --- the quiz --------------------------------------------------------------------------------

BANK = [question(f"q{index}", correct=(index % 4,)) for index in range(1, 21)]


def test_the_draw_is_seeded_by_the_attempt() -> None:
    attempt_id = uuid.uuid4()
    drawn = quiz.draw(BANK, 5, attempt_id)
    assert quiz.draw(BANK, 5, attempt_id) == drawn
    assert len(drawn) == len(set(drawn)) == 5
    assert set(drawn) <= {q.id for q in BANK}
    # Twenty attempts drawing 5 of 20 do not all see the same paper.
    papers = {tuple(quiz.draw(BANK, 5, uuid.uuid4())) for _ in range(20)}
    assert len(papers) > 10


def test_the_whole_bank_can_be_drawn() -> None:
    assert sorted(quiz.draw(BANK, 20, uuid.uuid4())) == sorted(q.id for q in BANK)


def _correct(question_id: str) -> list[int]:
    return list(next(q for q in BANK if q.id == question_id).correct)


def test_all_right_passes() -> None:
    drawn = ["q1", "q2", "q3", "q4"]
    result = quiz.score(BANK, drawn, {q: _correct(q) for q in drawn}, 75)
    assert (result.percent, result.passed, result.wrong) == (100, True, [])


def test_partly_right_with_an_unanswered_question_counted_wrong() -> None:
    drawn = ["q1", "q2", "q3", "q4"]
    answers = {"q1": _correct("q1"), "q2": _correct("q2"), "q3": [(_correct("q3")[0] + 1) % 4]}
    result = quiz.score(BANK, drawn, answers, 75)
    assert (result.percent, result.passed, result.wrong) == (50, False, ["q3", "q4"])
    assert quiz.score(BANK, drawn, answers, 50).passed


def test_a_multiple_choice_question_needs_exactly_the_correct_set() -> None:
    bank = [question("m", kind="multiple", correct=(0, 2))]
    assert quiz.score(bank, ["m"], {"m": [2, 0]}, 100).passed
    assert quiz.score(bank, ["m"], {"m": [0, 2, 2]}, 100).passed  # a repeated tap is one choice
    for partial_or_extra in ([0], [0, 1, 2], [1, 3], []):
        assert quiz.score(bank, ["m"], {"m": partial_or_extra}, 100).wrong == ["m"]


def test_a_score_just_under_the_pass_mark_fails() -> None:
    """Two of three is 66.7 %: it must not be rounded up past a 67 % mark."""
    drawn = ["q1", "q2", "q3"]
    answers = {"q1": _correct("q1"), "q2": _correct("q2")}
    result = quiz.score(BANK, drawn, answers, 67)
    assert not result.passed
    assert result.percent < 67


def test_answers_to_questions_not_drawn_are_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        quiz.score(BANK, ["q1", "q2"], {"q1": [1], "q9": [0]}, 50)
    assert _rules(error) == [("answers", "drawn_only")]


def test_an_option_that_does_not_exist_is_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        quiz.score(BANK, ["q1", "q2"], {"q1": [4]}, 50)
    assert _rules(error) == [("answers.q1", "option_exists")]


@given(
    drawn_count=st.integers(1, 20),
    right=st.data(),
    pass_mark=st.integers(1, 100),
)
def test_score_is_a_percentage_and_passing_means_reaching_the_mark(
    drawn_count: int, right: st.DataObject, pass_mark: int
) -> None:
    drawn = [q.id for q in BANK[:drawn_count]]
    correct = right.draw(st.integers(0, drawn_count))
    answers = {q: _correct(q) for q in drawn[:correct]}
    result = quiz.score(BANK, drawn, answers, pass_mark)
    assert 0 <= result.percent <= 100
    assert result.passed == (result.percent >= pass_mark)
    # Passing is exact: never by rounding a share below the mark up to it.
    assert result.passed == (100 * correct >= pass_mark * drawn_count)
    assert len(result.wrong) == drawn_count - correct


# --- content ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        (
            {"questions": [question("a"), question("b"), question("a")], "draw_count": 2},
            "content.questions[2].id",
            "unique",
        ),
        (
            {"questions": [question("a"), question("b", correct=(4,))], "draw_count": 2},
            "content.questions[1].correct",
            "option_exists",
        ),
        (
            {"questions": [question("a", correct=(0, 1))], "draw_count": 1},
            "content.questions[0].correct",
            "single_answer",
        ),
        (
            {"questions": [question("a", kind="multiple", correct=(1, 1))], "draw_count": 1},
            "content.questions[0].correct",
            "unique",
        ),
        (
            {"questions": [question("a"), question("b")], "draw_count": 3},
            "content.draw_count",
            "max_bank",
        ),
    ],
)
def test_content_that_could_not_work_is_refused(
    changes: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        induction_content.check_content(make_content(**changes))
    assert _rules(error) == [(field, rule)]


def test_good_content_passes_the_checks() -> None:
    induction_content.check_content(make_content(questions=3, draw_count=3))
    induction_content.check_content(
        make_content(questions=[question("m", kind="multiple", correct=(0, 3))], draw_count=1)
    )


INDUCTION_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
PLANT_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
IMAGE_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")


def _document(base: InductionContent, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "induction_id": INDUCTION_ID,
        "plant_id": PLANT_ID,
        "work_type": None,
        "version": 1,
        "content": induction_content.as_document(base),
        "image_digests": {str(IMAGE_ID): "a" * 64},
    }
    values.update(changes)
    return induction_content.frozen_document(**values)  # type: ignore[arg-type]


def _with_image() -> InductionContent:
    return make_content(sections=[Section(title="须知", body="正文", image_ids=[IMAGE_ID])])


def test_the_hash_is_canonical() -> None:
    content = _with_image()
    digest = induction_content.content_hash(_document(content))
    assert digest == induction_content.content_hash(_document(_with_image()))
    # Key order does not matter, nor does a trip through JSON storage.
    reordered = dict(reversed(list(_document(content).items())))
    assert induction_content.content_hash(reordered) == digest
    stored = msgspec.json.decode(msgspec.json.encode(_document(content)))
    assert induction_content.content_hash(stored) == digest
    # The content read back is the content written.
    assert induction_content.as_content(stored["content"]) == content


@pytest.mark.parametrize(
    "change",
    [
        {"content": {"pass_mark": 80}},
        {"content": {"title": "入厂安全教育 2026"}},
        {"content": {"validity_days": 180}},
        {"image_digests": {str(IMAGE_ID): "b" * 64}},
        {"version": 2},
        {"induction_id": uuid.uuid4()},
        {"plant_id": uuid.uuid4()},
        {"work_type": "hot_work"},
    ],
)
def test_any_change_changes_the_hash(change: dict[str, object]) -> None:
    content = _with_image()
    if "content" in change:
        edited = msgspec.structs.replace(content, **change["content"])  # type: ignore[arg-type]
        change = {"content": induction_content.as_document(edited)}
    assert induction_content.content_hash(
        _document(content, **change)
    ) != induction_content.content_hash(_document(content))


def test_markdown_is_rendered_without_raw_html() -> None:
    html = induction_content.render_markdown("**戴好安全帽** <script>alert(1)</script>")
    assert "<strong>戴好安全帽</strong>" in html
    assert "<script>" not in html
