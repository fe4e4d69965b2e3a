"""An argparse parser whose errors are one line: the problem, and where the help is (never the whole usage)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

EXIT_USAGE = 2  # argparse's (and POSIX tools') exit code for a malformed command line


class OneLineParser(argparse.ArgumentParser):
    """`lew X: error: --option: what is wrong (see `lew X --help`)` on stderr, exit 2.

    argparse prints the whole usage before its message, which buries the one line that matters; a subcommand
    with many options (`lew cost`) printed 40 lines for one bad number. Subparsers inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --memory-gb: ..."; the option's own name is the clearer start.
        if message.startswith("argument "):
            message = message[len("argument ") :]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def one_line(text: str) -> str:
    """Collapse a message onto one line (argparse and YAML messages may hold newlines)."""
    return " ".join(text.split())


def fail_usage(prog: str, message: str) -> int:
    """Print a usage error found after parsing (e.g. two options that do not fit together) the same way; return 2."""
    sys.stderr.write(f"{prog}: error: {one_line(message)} (see `{prog} --help`)\n")
    return EXIT_USAGE


def positive_float(text: str) -> float:
    """argparse type: a finite number greater than zero (seconds, sizes), refused in words."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number greater than zero, refused in words."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than zero")
    return value
