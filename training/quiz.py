"""Drawing an attempt's questions from the bank and scoring the answers.

Each attempt draws its own questions, so two workers side by side do not see the same quiz and
a retry is not the same paper. The draw is seeded by the attempt's id: a given attempt always
draws the same questions, which keeps tests and disputes reproducible.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from infra.errors import InvalidInput
from infra.i18n import N_
from training.schemas import Question


def draw(bank: Sequence[Question], count: int, attempt_id: uuid.UUID) -> list[str]:
    # Not a secret: the questions are shown to the worker anyway; reproducibility is the point.
    chosen = random.Random(attempt_id.int).sample(range(len(bank)), count)  # noqa: S311
    return [bank[index].id for index in sorted(chosen)]


@dataclass(frozen=True)
class Score:
    percent: int
    passed: bool
    wrong: list[str]


def score(
    bank: Sequence[Question],
    drawn: Sequence[str],
    answers: Mapping[str, Sequence[int]],
    pass_mark: int,
) -> Score:
    """A drawn question counts as right when exactly its correct options were chosen; one left
    unanswered counts as wrong. Answers to questions not drawn are refused, not ignored: they
    mean the phone showed a different paper than the one recorded."""
    extra = sorted(set(answers) - set(drawn))
    if extra:
        raise InvalidInput(
            "answers",
            "drawn_only",
            N_("Answers were given to questions not drawn for this attempt: %(ids)s."),
            ids=", ".join(extra),
        )
    by_id = {question.id: question for question in bank}
    wrong = []
    for question_id in drawn:
        question = by_id[question_id]
        chosen = answers.get(question_id, [])
        if any(index >= len(question.options) for index in chosen):
            raise InvalidInput(
                f"answers.{question_id}",
                "option_exists",
                N_("An answer must be one of the question's options."),
            )
        if sorted(set(chosen)) != sorted(question.correct):
            wrong.append(question_id)
    # Rounded down: rounding 2 of 3 (66.7 %) up to 67 would pass a 67 % mark that was not met.
    percent = 100 * (len(drawn) - len(wrong)) // len(drawn)
    return Score(percent, percent >= pass_mark, wrong)
