"""Code exercises: the learner writes the piece, a check runs it against the real model and names the mistake.

Each module holds one exercise — its reference solution, the cases built from the embedded
models, and the common mistakes written as the functions a learner would write (``checking``
runs them, ``comparing`` says what differs). The lessons' quizzes (``teaching.exercises``) list
them beside the predictions: ``quiz.check(n, my_function)``.

Example:
    >>> sorted(BY_NAME)[:3]
    ['attention_head', 'block_parameters', 'bpe_merge']
"""

from __future__ import annotations

from llminspect.teaching.code_exercises import (
    attention_head,
    block_parameters,
    bpe_merge,
    head_off,
    induction_score,
    integrated_gradients,
    lens_row,
    nearest_rows,
    q8_0,
    rms_norm,
    sampling_filter,
)
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake, Verdict

MODULES = (bpe_merge, nearest_rows, attention_head, head_off, integrated_gradients, sampling_filter, rms_norm,
           lens_row, block_parameters, q8_0, induction_score)  # fmt: skip
BY_NAME = {module.__name__.rsplit(".", 1)[-1]: module.EXERCISE for module in MODULES}

__all__ = ["BY_NAME", "Case", "CodeExercise", "Mistake", "Verdict"]
