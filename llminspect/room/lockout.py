"""Sign-in lockout: after a few failures from one address, or for one name, refuse for a while.

JupyterHub has no limit of its own on sign-in attempts. Failures are counted in a sliding window
(``window_s``): an address with ``per_address`` failures in the window is refused until the oldest
of them ages out, and so is a name with ``per_name`` failures (wrong passwords for it, from any
address). A refused attempt is not counted again, so waiting always ends a lockout; a success
clears the name's failures but never the address's (a learner who knows their own password
cannot use it to reset their guessing). With ``per_name`` above ``per_address``, one computer
alone can never lock someone else out of their name.

At 10 failures per address per 10 minutes, a guesser of a ``word-word-NNN`` class code (921,600
of them) has 1 chance in 5,000 over a 3-hour class.

Example:
    >>> rules = Lockout(per_address=2, per_name=3, window_s=60)
    >>> rules.fail("10.0.0.9", "ada", now=0); rules.fail("10.0.0.9", "", now=1)
    >>> rules.refusal("10.0.0.9", "bob", now=2)
    'Too many failed sign-ins from this computer: wait 58 s, then try again.'
    >>> rules.refusal("10.0.0.9", "bob", now=61) is None
    True
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field


def _wait_words(seconds: float) -> str:
    """``seconds`` as a learner reads it: '45 s', '3 min'."""
    seconds = max(1, math.ceil(seconds))
    return f"{seconds} s" if seconds < 90 else f"{math.ceil(seconds / 60)} min"


@dataclass
class Lockout:
    """Failed sign-ins per address and per name in a sliding window (in memory: a restart forgets)."""

    per_address: int = 10
    per_name: int = 20
    window_s: float = 600
    _failures: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))

    def _recent(self, key: str, now: float) -> deque:
        times = self._failures[key]
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]  # a burst of fresh names must not grow memory without end
            return deque()
        return times

    def _wait(self, key: str, limit: int, now: float) -> float:
        """Seconds until ``key`` falls below ``limit`` failures in the window (0: not locked)."""
        times = self._recent(key, now)
        if len(times) < limit:
            return 0.0
        return times[len(times) - limit] + self.window_s - now

    def refusal(self, address: str, name: str, now: float | None = None) -> str | None:
        """What to tell a sign-in from ``address`` for ``name`` that is locked out; ``None`` if it may try."""
        now = time.monotonic() if now is None else now
        if (wait := self._wait(f"address:{address}", self.per_address, now)) > 0:
            return f"Too many failed sign-ins from this computer: wait {_wait_words(wait)}, then try again."
        if name and (wait := self._wait(f"name:{name}", self.per_name, now)) > 0:
            return (f"Too many failed sign-ins for '{name}': wait {_wait_words(wait)}, then try again "
                    "(or ask the instructor).")  # fmt: skip
        return None

    def fail(self, address: str, name: str = "", now: float | None = None) -> None:
        """Count a failure from ``address`` (and for ``name`` when a password was wrong for it)."""
        now = time.monotonic() if now is None else now
        if len(self._failures) > 10_000:  # forged addresses: forget everything already out of the window
            for key in list(self._failures):
                self._recent(key, now)
        self._failures[f"address:{address}"].append(now)
        if name:
            self._failures[f"name:{name}"].append(now)

    def succeed(self, name: str) -> None:
        """A right password for ``name`` clears that name's failures (not the address's)."""
        self._failures.pop(f"name:{name}", None)

    def tracked(self) -> int:
        """How many addresses and names have failures remembered (for tests: old ones are forgotten)."""
        now = time.monotonic()
        return sum(1 for key in list(self._failures) if self._recent(key, now))
