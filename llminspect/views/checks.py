"""Views check what they were given: the wrong object gets a clear error, not an AttributeError deep inside.

Each public view takes one kind of data (a ``Trace``, a ``LogitLens``, ...). ``takes`` names that
kind and the call that makes it, so a mix-up says what to pass instead.

Example:
    >>> from llminspect import views
    >>> views.logit_lens("not a lens")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    llminspect.errors.WrongDataError: views.logit_lens draws a LogitLens (from ...), not a str.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from llminspect.errors import WrongDataError


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def takes(kind: type, made_by: str, container: str | None = None) -> Callable:
    """Check a view's first argument: a ``kind`` object, or a ``container`` of them.

    ``container`` is None (one object), "list" or "mapping" (name -> object).
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(data, *args, **kwargs):
            if container == "list":
                fits = isinstance(data, (list, tuple)) and len(data) > 0 and all(isinstance(d, kind) for d in data)
                wanted = f"a non-empty list of {kind.__name__}s"
            elif container == "mapping":
                fits = isinstance(data, Mapping) and len(data) > 0
                fits = fits and all(isinstance(d, kind) for d in data.values())
                wanted = f"a non-empty dict of name -> {kind.__name__}"
            else:
                fits, wanted = isinstance(data, kind), _a(kind.__name__)
            if not fits:
                got = _a(type(data).__name__)
                floor = view.__module__.split(".")[1]  # "views" or "labs"
                raise WrongDataError(f"{floor}.{view.__name__} draws {wanted} (from {made_by}), not {got}.")
            return view(data, *args, **kwargs)

        return checked

    return decorate
