"""Parameters per job: what an uploader asks of the processor, carried in the upload's S3 user metadata.

Each parameter is one metadata entry `x-amz-meta-lew-param-<name>: <value>` (boto3: `Metadata={"lew-param-width":
"640"}`). Metadata rather than tags: the worker's one GET of the archive returns it, so parameters cost no extra
request and no extra IAM permission (tags need GetObjectTagging), and they are fixed with the object's bytes and
ETag (tags can change after the upload, so a re-run could differ from what was processed).

Processors declare the parameters they accept (`Parameter`: a name, a kind, bounds); the worker refuses unknown
names, malformed and out-of-bounds values with `InvalidParameter` (a permanent failure naming the parameter, its
value and the rule) before the archive's body is read. Values reach processors typed and never through a shell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from worker.errors import JobError

METADATA_PREFIX = "lew-param-"  # x-amz-meta-lew-param-<name>
# S3 allows 2 KB of user-defined metadata per object: the UTF-8 bytes of every key (without x-amz-meta-) and value.
METADATA_LIMIT_BYTES = 2048
# Lower case: S3 stores metadata keys as HTTP headers, which come back lower-cased. The `_` keeps names usable as
# environment variable suffixes (LEW_PARAM_<NAME>) and as Python identifiers.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Printable ASCII only: S3 answers non-ASCII metadata RFC 2047-encoded, which no processor should have to undo.
VALUE_PATTERN = re.compile(r"[\x20-\x7e]*")
# How S3 returns a metadata value that was not ASCII when stored (RFC 2047 encoded-words, e.g. =?UTF-8?B?Y2Fmw6k=?=).
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
INTEGER_PATTERN = re.compile(r"-?[0-9]{1,18}")
NUMBER_PATTERN = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,18})?")
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
DEFAULT_TEXT_LENGTH = 256
QUOTED_VALUE_CHARS = 60  # how much of a refused value an error message quotes

Kind = Literal["int", "float", "bool", "choice", "text"]
Value = int | float | bool | str
KINDS: tuple[Kind, ...] = ("int", "float", "bool", "choice", "text")


class InvalidParameter(JobError):  # noqa: N818 - the manifest's error.type, short and plain like UnsafeArchive
    """A job parameter is unknown, malformed, out of bounds, or the parameters are too large: permanent."""


@dataclass(frozen=True)
class Parameter:
    """One parameter a processor accepts: its name, kind and bounds.

    `int` and `float` take `minimum`/`maximum` (inclusive, either may be None); `choice` takes `choices`;
    `text` takes at most `max_length` printable ASCII characters; `bool` takes true/false, yes/no, on/off, 1/0.
    """

    name: str
    kind: Kind
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = DEFAULT_TEXT_LENGTH
    help: str = ""

    def rule(self) -> str:
        """The rule a value must follow, in words: 'an integer from 1 to 8192'."""
        if self.kind == "bool":
            return "true or false (yes/no, on/off, 1/0)"
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "text":
            return f"printable ASCII text of at most {self.max_length} characters"
        noun = "an integer" if self.kind == "int" else "a number"
        low, high = _bound(self.minimum, self.kind), _bound(self.maximum, self.kind)
        bounds = {
            (True, True): f" from {low} to {high}",
            (True, False): f" of at least {low}",
            (False, True): f" of at most {high}",
            (False, False): "",
        }
        return noun + bounds[low is not None, high is not None]

    def parse(self, raw: str) -> Value:
        """The typed value of a raw metadata string; InvalidParameter, naming value and rule, when it breaks it."""
        if ENCODED_WORD.search(raw):
            raise self._refused(raw, "was not ASCII when uploaded (S3 returns such values RFC 2047-encoded)")
        text = raw.strip()
        if self.kind == "bool":
            if text.lower() in TRUE_WORDS:
                return True
            if text.lower() in FALSE_WORDS:
                return False
            raise self._refused(raw, "is not a boolean")
        if self.kind == "choice":
            if text in self.choices:
                return text
            raise self._refused(raw, "is not allowed")
        if self.kind == "text":
            if len(raw) > self.max_length:
                raise self._refused(raw, "is too long")
            if not VALUE_PATTERN.fullmatch(raw):
                raise self._refused(raw, "has characters that are not printable ASCII")
            return raw
        pattern = INTEGER_PATTERN if self.kind == "int" else NUMBER_PATTERN
        if not pattern.fullmatch(text):
            raise self._refused(raw, "is not an integer" if self.kind == "int" else "is not a number")
        number: int | float = int(text) if self.kind == "int" else float(text)
        if not math.isfinite(number) or (self.minimum is not None and number < self.minimum):
            raise self._refused(raw, "is out of bounds")
        if self.maximum is not None and number > self.maximum:
            raise self._refused(raw, "is out of bounds")
        return number

    def _refused(self, raw: str, why: str) -> InvalidParameter:
        return InvalidParameter(f"parameter {self.name}={quote_value(raw)} {why}: {self.name} must be {self.rule()}")


def _bound(value: float | None, kind: Kind) -> str | None:
    if value is None:
        return None
    return str(int(value)) if kind == "int" or value == int(value) else str(value)


def quote_value(raw: str) -> str:
    """A value for an error message: quoted, escaped, and cut short so that the message stays one line."""
    if len(raw) > QUOTED_VALUE_CHARS:
        return repr(raw[:QUOTED_VALUE_CHARS]) + f"... ({len(raw)} characters)"
    return repr(raw)


def parameters_from_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The raw parameters in an object's user metadata (keys without x-amz-meta-), by name; other entries ignored."""
    return {
        key.lower()[len(METADATA_PREFIX) :]: value
        for key, value in sorted(metadata.items())
        if key.lower().startswith(METADATA_PREFIX)
    }


def metadata_bytes(entries: Mapping[str, str]) -> int:
    """The size S3 counts for user metadata: the UTF-8 bytes of every key and value."""
    return sum(len(key.encode()) + len(value.encode()) for key, value in entries.items())


def parameter_metadata(parameters: Mapping[str, str]) -> dict[str, str]:
    """The metadata entries that carry these parameters (what an uploader puts on the object)."""
    return {f"{METADATA_PREFIX}{name}": value for name, value in parameters.items()}


def check_encodable(parameters: Mapping[str, str], *, other_metadata: Mapping[str, str] | None = None) -> None:
    """Refuse parameters S3 metadata cannot carry: a bad name, a non-ASCII value, more than 2 KB in all.

    ValueError with one line naming the problem (the uploader's side: `lew submit`, `lew.client`).
    """
    for name, value in parameters.items():
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"parameter name {name!r} is not allowed: use a lower-case letter, then up to 39 lower-case letters, "
                "digits or _ (S3 metadata keys are case-insensitive)"
            )
        if not VALUE_PATTERN.fullmatch(value):
            raise ValueError(
                f"parameter {name}={quote_value(value)} has characters that are not printable ASCII, "
                "which S3 metadata cannot carry as they are"
            )
    entries = {**(other_metadata or {}), **parameter_metadata(parameters)}
    size = metadata_bytes(entries)
    if size > METADATA_LIMIT_BYTES:
        raise ValueError(
            f"the parameters take {size} bytes of S3 metadata (names with {METADATA_PREFIX!r} and values), "
            f"more than S3's limit of {METADATA_LIMIT_BYTES} bytes per object; pass fewer or shorter values"
        )


def validate(processor: str, declared: Sequence[Parameter], raw: Mapping[str, str]) -> dict[str, Value]:
    """The typed values of a job's raw parameters; InvalidParameter for the first one that breaks its rule.

    Checked in order: the total size (S3's 2 KB, in case a store let more through), unknown names (naming what
    `processor` accepts), then each value against its declaration.
    """
    size = metadata_bytes(parameter_metadata(raw))
    if size > METADATA_LIMIT_BYTES:
        raise InvalidParameter(
            f"the parameters take {size} bytes of metadata, more than S3's limit of {METADATA_LIMIT_BYTES} bytes"
        )
    by_name = {parameter.name: parameter for parameter in declared}
    for name, value in raw.items():
        if name not in by_name:
            accepted = f"it accepts {', '.join(by_name)}" if by_name else "it accepts no parameters"
            raise InvalidParameter(f"parameter {name}={quote_value(value)} is unknown to {processor}: {accepted}")
    return {name: by_name[name].parse(value) for name, value in raw.items()}


def parse_declarations(text: str) -> tuple[Parameter, ...]:
    """Declarations written as PROCESS_PARAMETERS: `name:kind[:bounds]` entries separated by commas or spaces.

    `threshold:int:0..100, ratio:float:0..1, mode:choice:fast|slow, label:text:64, verbose:bool`; a bound may be
    left out (`count:int:1..`). ValueError naming the entry when one is malformed.
    """
    declared: list[Parameter] = []
    for entry in (part for part in re.split(r"[,\s]+", text.strip()) if part):
        name, _, rest = entry.partition(":")
        kind, _, bounds = rest.partition(":")
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"{entry!r}: the name must be a lower-case letter then lower-case letters, digits or _")
        if kind not in KINDS:
            raise ValueError(f"{entry!r}: the kind must be one of {', '.join(KINDS)}")
        if name in {parameter.name for parameter in declared}:
            raise ValueError(f"{entry!r}: {name} is declared twice")
        declared.append(_declaration(entry, name, kind, bounds))
    return tuple(declared)


def _declaration(entry: str, name: str, kind: Kind, bounds: str) -> Parameter:
    if kind == "bool":
        if bounds:
            raise ValueError(f"{entry!r}: a bool takes no bounds")
        return Parameter(name, kind)
    if kind == "choice":
        choices = tuple(choice for choice in bounds.split("|") if choice)
        if not choices or not all(VALUE_PATTERN.fullmatch(choice) for choice in choices):
            raise ValueError(f"{entry!r}: a choice lists its values separated by |, like mode:choice:fast|slow")
        return Parameter(name, kind, choices=choices)
    if kind == "text":
        if not bounds:
            return Parameter(name, kind)
        if not bounds.isdigit() or int(bounds) < 1:
            raise ValueError(f"{entry!r}: a text takes its maximum length, like label:text:64")
        return Parameter(name, kind, max_length=int(bounds))
    low, separator, high = bounds.partition("..")
    pattern = INTEGER_PATTERN if kind == "int" else NUMBER_PATTERN
    if bounds and (not separator or any(part and not pattern.fullmatch(part) for part in (low, high))):
        raise ValueError(f"{entry!r}: bounds are written MIN..MAX, like {name}:{kind}:0..100 (either may be left out)")
    minimum = float(low) if low else None
    maximum = float(high) if high else None
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ValueError(f"{entry!r}: the minimum is above the maximum")
    return Parameter(name, kind, minimum=minimum, maximum=maximum)


def declared_parameters(processor: object) -> tuple[Parameter, ...]:
    """The parameters a processor declares (its optional `parameters` attribute); none when it has none."""
    declared: Iterable[Parameter] = getattr(processor, "parameters", None) or ()
    return tuple(declared)


def environment_of(values: Mapping[str, Value]) -> dict[str, str]:
    """Values as LEW_PARAM_<NAME> environment variables (booleans as true/false), for the command processor."""
    return {f"LEW_PARAM_{name.upper()}": _text(value) for name, value in values.items()}


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
