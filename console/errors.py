"""The console's errors.

ConsoleError
├── InvalidInput       a value given by the operator is not acceptable (names the field)
├── NotFound           no such dead letter, notification or topic
└── NotAllowed         the action does not apply in the item's state (e.g. retry of a sent email)
"""

from __future__ import annotations


class ConsoleError(Exception):
    """Anything the console refuses, with a message an operator can act on."""


class InvalidInput(ConsoleError):
    """A value given by the operator is not acceptable."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(ConsoleError):
    """No such dead letter, notification or topic."""


class NotAllowed(ConsoleError):
    """The action does not apply to the item as it is now."""


class Unavailable(ConsoleError):
    """The console cannot answer yet (it has not read the token revocations)."""
