"""Checks for what a caller passes: counts, lists of texts, (layer, head) pairs, indices and choices.

Every public verb, lab and view hands its arguments through one of these before any work starts,
so a float count, a bare string where a list belongs or a head written as ``3`` gets an
``InputError`` naming the argument, what it was and what to pass instead — never a TypeError
from deep inside torch. Range checks against a model (how many layers, how many heads) belong
to the caller, which knows the model; these check types and documented choices only.

Example:
    >>> whole_number(3, "steps")
    3
    >>> whole_number(2.5, "steps")
    Traceback (most recent call last):
    ...
    llminspect.errors.InputError: steps=2.5: pass a whole number (an int such as 3), not a float.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

from llminspect.errors import EmptyInputError, InputError


def _is_whole(value: object) -> bool:
    """An int, a numpy or torch integer scalar — never a bool (True is not a count)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False
    if isinstance(value, numbers.Integral):
        return True
    dtype = str(getattr(value, "dtype", ""))  # a torch 0-d integer tensor (numpy's are Integral above)
    return getattr(value, "shape", None) == () and dtype.startswith(("torch.int", "torch.uint"))


def whole_number(value: object, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as a plain int, checked to be a whole number in ``minimum``..``maximum`` (None: no bound).

    Bools are refused (``True`` is not a count); numpy and torch integer scalars are fine.

    Example:
        >>> import numpy as np
        >>> whole_number(np.int64(4), "k"), whole_number(-1, "layer", minimum=None)
        (4, -1)
        >>> whole_number(0, "k")
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: k=0: pass a whole number of at least 1.
    """
    if not _is_whole(value):
        kind = type(value).__name__
        raise InputError(f"{name}={value!r}: pass a whole number (an int such as 3), not {_a(kind)}.")
    number = int(value)
    if minimum is not None and number < minimum:
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise InputError(f"{name}={number}: pass a whole number of at least {minimum}{upper}.")
    if maximum is not None and number > maximum:
        lower = f"at least {minimum} and " if minimum is not None else ""
        raise InputError(f"{name}={number}: pass a whole number of {lower}at most {maximum}.")
    return number


def _a(kind: str) -> str:
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def index(value: object, name: str, words: Sequence[str] = ()) -> int | str:
    """A layer or head index (negative counts from the end), or one of the documented ``words``.

    Only the type is checked here: whether the model has that layer is the caller's check.

    Example:
        >>> index(2, "head", ("mean",)), index("mean", "head", ("mean",))
        (2, 'mean')
        >>> index("max", "head", ("mean",))
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: head='max': pass a whole number (e.g. 0) or 'mean'.
    """
    if isinstance(value, str) and value in words:
        return value
    if _is_whole(value):
        return int(value)
    also = " or " + " or ".join(repr(word) for word in words) if words else ""
    raise InputError(f"{name}={value!r}: pass a whole number (e.g. 0){also}.")


def choice(value: object, name: str, allowed: Iterable[str]) -> str:
    """``value`` if it is one of the ``allowed`` words; otherwise an error that lists them.

    Example:
        >>> choice("mean", "pooling", ("mean", "cls", "last"))
        'mean'
        >>> choice("max", "pooling", ("mean", "cls", "last"))
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: pooling='max': choose one of 'mean', 'cls', 'last'.
    """
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{name}={value!r}: choose one of {', '.join(repr(word) for word in allowed)}.")
    return value


def list_of_texts(value: object, name: str) -> list[str]:
    """``value`` as a non-empty list of strings; a bare string (which would run letter by letter) is refused.

    Example:
        >>> list_of_texts(("The cat sat.", "A dog ran."), "texts")
        ['The cat sat.', 'A dog ran.']
        >>> list_of_texts("The cat sat.", "texts")
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: texts='The cat sat.': pass a list of texts, e.g. texts=['The cat sat.'] for one.
    """
    if isinstance(value, (str, bytes)):
        raise InputError(f"{name}={value!r}: pass a list of texts, e.g. {name}=[{value!r}] for one.")
    if not isinstance(value, Iterable) or hasattr(value, "shape"):  # arrays and tensors are not lists of texts
        raise InputError(f"{name}={value!r}: pass a list of texts, e.g. {name}=['The cat sat.', 'A dog ran.'].")
    texts = list(value)
    if not texts:
        what = name[:-1] if name.endswith("s") else name
        example = f"{name}=['The cat sat.']"
        raise EmptyInputError(f"{name}=[]: the {what} list is empty; pass at least one text, e.g. {example}.")
    wrong = [text for text in texts if not isinstance(text, str)]
    if wrong:
        raise InputError(f"{name}: every item must be a text (str); {wrong[0]!r} is {_a(type(wrong[0]).__name__)}.")
    return texts


def head_pairs(heads: object) -> list[tuple[int, int]]:
    """``heads`` as a list of (layer, head) pairs of whole numbers, e.g. ``[(0, 3), (2, 1)]``.

    Strict on purpose: one pair must still be in a list (``[(0, 3)]``), since ``(0, 3)`` alone reads
    as two heads ``0`` and ``3``. Whether the model has those layers and heads is the caller's check.

    Example:
        >>> head_pairs([(0, 3), [2, 1]])
        [(0, 3), (2, 1)]
        >>> head_pairs([3])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: heads=[3]: 3 is not a (layer, head) pair; pass heads=[(layer, head), ...], ...
    """
    hint = "pass heads=[(layer, head), ...], e.g. heads=[(0, 3)]"
    if hasattr(heads, "shape") and hasattr(heads, "tolist"):  # an array or tensor of pairs
        heads = heads.tolist()
    if isinstance(heads, (str, bytes)) or not isinstance(heads, Iterable):
        raise InputError(f"heads={heads!r}: {hint}.")
    heads = list(heads)
    if len(heads) == 2 and all(_is_whole(number) for number in heads):
        flat = tuple(heads)
        raise InputError(f"heads={flat!r} is one pair written flat; pass a list of pairs: heads=[{flat!r}].")
    pairs = []
    for pair in heads:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InputError(f"heads={heads!r}: {pair!r} is not a (layer, head) pair; {hint}.")
        if not all(_is_whole(number) for number in pair):
            raise InputError(f"heads={heads!r}: {pair!r} must hold two whole numbers (layer, head); {hint}.")
        pairs.append((int(pair[0]), int(pair[1])))
    return pairs
