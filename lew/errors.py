"""The one exception type that the `lew` command turns into a single line on stderr."""

from __future__ import annotations


class LewError(Exception):
    """A problem the user can fix (bad input, missing stack, unreachable endpoint); its message says what."""
