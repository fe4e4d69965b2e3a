"""`python -m lew.stack_output STACK OUTPUT [--region R]`: print one output of a deployed stack (for `make push`).

The region is found as `lew --stack` finds it (--region, else samconfig.toml's region for the stack, else the
AWS configuration's), so that the image goes to the repository of the stack `make deploy` made. Failures are one
line on stderr and exit 1, in lew's words: no credentials, AWS unreachable, no such stack, no such output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lew.cli import describe_failure
from lew.target import describe_stack, stack_output


def main(argv: Sequence[str] | None = None) -> int:
    """Print the output's value; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m lew.stack_output", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="the stack's name, e.g. lew")
    parser.add_argument("output", help="the output's key, e.g. RepositoryUri")
    parser.add_argument("--region", help="the stack's region (default: samconfig.toml's for the stack)")
    args = parser.parse_args(argv)
    try:
        print(stack_output(describe_stack(args.stack, args.region or None), args.output))
    except Exception as error:
        message = describe_failure(error)
        if message is None:
            raise
        sys.stderr.write(f"lew: error: {message}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
