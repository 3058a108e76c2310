"""Errors that say what went wrong and what to do instead.

Every error llminspect raises on purpose is an ``LLMInspectError``, so a notebook can catch one
type; the subclasses let tests and callers tell the cases apart.

Example:
    >>> try:
    ...     raise EmptyInputError("The text is empty: pass at least one character.")
    ... except LLMInspectError as error:
    ...     print(error)
    The text is empty: pass at least one character.
"""

from __future__ import annotations


class LLMInspectError(Exception):
    """Base class of every error llminspect raises with an actionable message."""


class UnknownModelError(LLMInspectError):
    """The model spec is neither an embedded name, a local folder nor a reachable hub id."""


class ModelFileError(LLMInspectError):
    """A model file exists but cannot be read or converted."""


class DeviceError(LLMInspectError):
    """The requested device (e.g. ``cuda``) is not available here."""


class InputError(LLMInspectError):
    """The input given to a model is unusable."""


class EmptyInputError(InputError):
    """Empty text or audio."""


class InputTooLongError(InputError):
    """The input does not fit the model's context."""


class WrongModalityError(InputError):
    """Audio given to a text model, or text given to a speech model."""


class FamilyError(LLMInspectError):
    """The capability does not apply to this model family."""


class OutOfMemoryError(LLMInspectError):
    """The model would not fit in the memory free on its device."""


class RemoteCodeError(LLMInspectError):
    """The model needs its own Python code, which runs only when the user trusts it."""


class WrongDataError(InputError):
    """A view (or analysis) was given the wrong kind of object, e.g. a Trace where a LogitLens belongs."""
