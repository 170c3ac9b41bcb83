"""The errors that reach a user as one line: what they gave us is wrong, or too large to take on."""

from __future__ import annotations


class InputError(ValueError):
    """A problem with something the user gave us (a file, a folder, an option): its message is one line."""


class BudgetError(InputError):
    """A piece of work larger than the budget allows (pixels, memory): its message says what it would need."""
