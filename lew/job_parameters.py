"""Job parameters on the uploader's side: `--param NAME=VALUE` read and checked before anything is uploaded.

The rules (names, printable ASCII values, S3's 2 KB of metadata) are the worker's own, from worker/parameters.py;
which names and values a processor accepts is for the worker to say, in the job's manifest.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from lew.errors import LewError
from worker.parameters import check_encodable, parameter_metadata


def add_param_option(parser: argparse.ArgumentParser, *, example: str, scope: str) -> None:
    """The repeatable `--param NAME=VALUE` of the commands that upload (`lew submit`, `lew schedule upload`)."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a job parameter for {scope}, e.g. {example} (repeatable; sent as S3 metadata lew-param-NAME)",
    )


def parse_parameters(assignments: Sequence[str], *, option: str = "--param") -> dict[str, str]:
    """`["width=320", "height=240"]` as `{"width": "320", "height": "240"}`; LewError naming a bad one.

    `option` is the command line option they came from, as the error names it.
    """
    parsed: dict[str, str] = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise LewError(f"{option} {assignment!r}: expected NAME=VALUE, e.g. width=320")
        if name in parsed:
            raise LewError(f"{option} {name} is given twice ({parsed[name]!r} and {value!r}): give it once")
        parsed[name] = value
    return parameter_texts(parsed)


ParameterValue = str | int | float | bool


def parameter_texts(parameters: Mapping[str, ParameterValue] | None) -> dict[str, str]:
    """Parameters as the text S3 metadata carries (`{"width": 320}` -> `{"width": "320"}`, booleans true/false).

    LewError, in one line, for what S3 metadata cannot carry: a bad name, a non-ASCII value, more than 2 KB in all.
    """
    texts: dict[str, str] = {}
    for name, value in (parameters or {}).items():
        if isinstance(value, bool):
            texts[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            texts[name] = str(value)
        else:
            raise LewError(f"parameter {name}: a value is text or a number, got {type(value).__name__}")
    try:
        check_encodable(texts)
    except ValueError as error:
        raise LewError(str(error)) from None
    return texts


def upload_arguments(parameters: Mapping[str, str]) -> dict[str, Any]:
    """The ExtraArgs of an upload carrying these parameters, as `parameter_texts` gives them (`{}` for none)."""
    if not parameters:
        return {}
    return {"Metadata": parameter_metadata(parameters)}
