"""How a learner's return value is compared with the expected one: type, shape, finiteness, then values.

``difference(got, expected, tolerance)`` is None when they agree and otherwise a ``Difference``
that says what differs in words a learner can act on (the expected and the given shapes, the
position and size of the largest gap) without showing the expected numbers themselves.

Example:
    >>> import torch
    >>> difference(torch.ones(2, 3), torch.ones(2, 3), 1e-6) is None
    True
    >>> difference(torch.ones(3, 2), torch.ones(2, 3), 1e-6).text
    'the shape is (3, 2) where (2, 3) is expected'
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Difference:
    """What differs: ``kind`` is "type", "shape", "not finite", "length" or "value"; ``size`` the largest gap."""

    kind: str
    text: str
    size: float = float("inf")


def type_name(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def expected_kind(expected) -> str:
    """How the expected value is described to a learner: 'a tensor of shape (5, 64)', 'a list of 5', 'a number'."""
    if isinstance(expected, torch.Tensor):
        return f"a tensor of shape {tuple(expected.shape)}"
    if isinstance(expected, tuple):
        return f"a tuple of {len(expected)} ({', '.join(expected_kind(e) for e in expected)})"
    if isinstance(expected, list):
        return f"a list of {len(expected)}"
    return "a number"


def _as_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return torch.from_numpy(value)
    return None


def _tensor_difference(got, expected: torch.Tensor, tolerance: float, absolute: float) -> Difference | None:
    given = _as_tensor(got)
    if given is None:
        return Difference("type", f"it is {type_name(got)} where {expected_kind(expected)} is expected")
    if tuple(given.shape) != tuple(expected.shape):
        return Difference("shape", f"the shape is {tuple(given.shape)} where {tuple(expected.shape)} is expected")
    given, expected = given.double(), expected.detach().double()
    finite = torch.isfinite(expected)
    broken = finite & ~torch.isfinite(given)
    if broken.any():
        where = tuple(int(i) for i in broken.nonzero()[0])
        return Difference("not finite", f"it holds inf or nan (first at {list(where)}) where a finite number is "
                                        "expected")  # fmt: skip
    special_given, special_expected = given[~finite], expected[~finite]  # -inf, inf or nan: the same ones
    if not torch.equal(torch.isfinite(given), finite) or not torch.equal(special_given.isnan(),
                                                                         special_expected.isnan()) \
            or not torch.equal(special_given.nan_to_num(0.0), special_expected.nan_to_num(0.0)):  # fmt: skip
        return Difference("value", "it has finite numbers where -inf is expected (a position that must be masked)")
    gap = (given - expected).abs().where(finite, torch.zeros_like(given))
    scale = float(expected[finite].abs().max()) if finite.any() else 0.0  # relative to the tensor's largest value:
    if float(gap.max()) <= absolute + tolerance * scale:  # two float32 computations differ most on small entries
        return None
    where = tuple(int(i) for i in torch.unravel_index(gap.flatten().argmax(), gap.shape))
    largest = float(gap.max())
    return Difference("value", f"it differs by up to {largest:.3g} (at {list(where)})", largest)


def _number_difference(got, expected, tolerance: float, absolute: float) -> Difference | None:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, np.generic):
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        return Difference("type", f"it is {type_name(got)} where a number is expected")
    if not np.isfinite(float(got)):
        return Difference("not finite", "it is inf or nan where a finite number is expected")
    gap = abs(float(got) - float(expected))
    if gap <= absolute + tolerance * abs(float(expected)):
        return None
    return Difference("value", f"it differs by {gap:.3g}", gap)


def _list_difference(got, expected: list, tolerance: float, absolute: float) -> Difference | None:
    if isinstance(got, (torch.Tensor, np.ndarray)) and got.ndim == 1:
        got = got.tolist()
    if not isinstance(got, (list, tuple)):
        return Difference("type", f"it is {type_name(got)} where {expected_kind(expected)} is expected")
    if len(got) != len(expected):
        return Difference("length", f"it has {len(got)} items where {len(expected)} are expected")
    for position, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        if isinstance(theirs, str) or isinstance(mine, str):
            same = mine == theirs
        else:
            same = _number_difference(mine, theirs, tolerance, absolute) is None
        if not same:
            return Difference("value", f"item {position} differs (yours {mine!r})")
    return None


def difference(got, expected, tolerance: float, parts: tuple[str, ...] = (),
               absolute: float | None = None) -> Difference | None:  # fmt: skip
    """None when ``got`` equals ``expected`` within ``tolerance`` (relative to the largest expected value,
    and absolute unless ``absolute`` is given); else what differs. A tuple is compared part by part;
    ``parts`` names them in the message.
    """
    absolute = tolerance if absolute is None else absolute
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return Difference("type", f"it is {type_name(got)} where {expected_kind(expected)} is expected")
        for index, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
            found = difference(mine, theirs, tolerance, absolute=absolute)
            if found is not None:
                name = parts[index] if index < len(parts) else f"part {index}"
                return Difference(found.kind, f"{name}: {found.text}", found.size)
        return None
    if isinstance(expected, torch.Tensor):
        return _tensor_difference(got, expected, tolerance, absolute)
    if isinstance(expected, list):
        return _list_difference(got, expected, tolerance, absolute)
    return _number_difference(got, expected, tolerance, absolute)


def largest_gap(got, expected) -> float:
    """The largest absolute gap between two values that ``difference`` found equal (0.0 for exact)."""
    if isinstance(expected, tuple):
        return max(largest_gap(g, e) for g, e in zip(got, expected, strict=True))
    given = _as_tensor(got)
    if isinstance(expected, torch.Tensor) and given is not None:
        finite = torch.isfinite(expected)
        return float((given.double() - expected.double()).abs()[finite].max()) if finite.any() else 0.0
    if isinstance(expected, list):
        return 0.0 if all(isinstance(e, str) for e in expected) else max(
            (abs(float(g) - float(e)) for g, e in zip(got, expected, strict=True)), default=0.0)
    number = got.item() if isinstance(got, (torch.Tensor, np.generic)) else got
    return abs(float(number) - float(expected))
