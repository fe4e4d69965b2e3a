"""Reading POV-Ray's console output: the cause of a failed render in one line, and a log tail worth reading.

POV-Ray 3.7 writes everything to stderr: a banner of about 3 KiB (version, authors, licence, libraries),
its options, then the parser's messages, wrapped at 80 columns with a one-space indent on the continuation
lines, and render progress overwritten in place with carriage returns. Its parse errors look like

    File 'broken.pov' line 4: Parse Error: No matching } in 'pigment', undeclared
     identifier 'colr' found instead
    Fatal error in parser: Cannot parse input.
    Render failed

and a bad option in an .ini like `Problem with option setting` / `Failed to parse command-line option`.
"""

from __future__ import annotations

import re

MAX_CAUSE_CHARS = 400

_BANNER_START = "Persistence of Vision(tm) Ray Tracer"
# The first line after the banner: an options section, the parser's output, or an option problem.
_AFTER_BANNER = re.compile(
    r"^(Parser Options|Image Output Options|Information Output Options|Render Options|====|"
    r"Problem with option setting|Possible Parse Error|Parse Error|File '|Fatal error)"
)
# POV-Ray complains when $HOME has no .povray/3.7/povray.conf; a job's HOME is its folder, so it never has one.
_NOISE = re.compile(r"^povray: cannot open the user configuration file ")
_LOCATED = re.compile(r"^File '(?P<file>.*)' line (?P<line>\d+): (?P<message>.*)$")
_ERROR = re.compile(
    r"(Parse Error:|^Fatal error|^Problem with option setting|^Failed to |^Cannot |error)", re.IGNORECASE
)
# Lines that say only that the failure happened, not why, and warnings that successful scenes print as well.
_NOT_A_CAUSE = re.compile(
    r"^(Render failed|Fatal error in parser: Cannot parse input\.|Possible Parse Error: assumed_gamma not specified)"
    r"|Parse Warning:"
)


def lines(text: str) -> list[str]:
    """POV-Ray's output as logical lines: wrapped lines joined, progress reduced to its last state, banner dropped."""
    logical: list[str] = []
    for raw in text.split("\n"):  # not splitlines(), which splits at each carriage return of the progress
        line = raw.rstrip("\r").rsplit("\r", 1)[-1]  # "Rendered 1 of 9 pixels\rRendered 2 of 9 ..."
        if line.startswith(" ") and not line.startswith("  ") and logical:
            logical[-1] += line  # a continuation: POV-Ray wraps at 80 columns and indents by one space
        else:
            logical.append(line.rstrip())
    kept = [line for line in logical if not _NOISE.match(line)]
    start = next((index for index, line in enumerate(kept) if line.startswith(_BANNER_START)), None)
    if start is None:
        return kept
    end = next((index for index in range(start + 1, len(kept)) if _AFTER_BANNER.match(kept[index])), len(kept))
    return kept[:start] + kept[end:]


def clean(text: str, limit: int) -> str:
    """The log for the manifest: without the banner, and its last `limit` characters (whole lines)."""
    text = "\n".join(lines(text)).strip("\n")
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    return tail.split("\n", 1)[-1] if "\n" in tail else tail


def error_cause(text: str) -> str | None:
    """POV-Ray's own words for why it failed, on one line (file, line and message when it gives them), or None.

    With a located parse error, the cause is the last one and the messages at the same place before it
    (a missing include says "Cannot find file 'x.inc'" and then "Cannot open include file x.inc").
    Otherwise it is every error line, in order (a missing texture, an input file that is not there).
    """
    errors = [line.strip() for line in lines(text) if _ERROR.search(line) and not _NOT_A_CAUSE.search(line)]
    if not errors:
        return None
    located = {index: match for index, line in enumerate(errors) if (match := _LOCATED.match(line))}
    hard = [index for index, match in located.items() if match["message"].startswith("Parse Error:")]
    if hard:
        last = located[hard[-1]]
        place = (last["file"], last["line"])
        errors = [
            errors[index]
            for index, match in located.items()
            if index <= hard[-1] and (match["file"], match["line"]) == place
        ]
    cause = _join(errors)
    if errors[0].startswith("Problem with option setting"):
        cause += " (an option in the .ini file or on the command line is unknown or has a bad value)"
    return _bounded(cause)


def _join(errors: list[str]) -> str:
    """The error lines in order, each once, joined with '; '; a location repeated from the line before is left out."""
    parts: list[str] = []
    previous_place = None
    for line in errors:
        text = line.rstrip(".")
        match = _LOCATED.match(text)
        place = (match["file"], match["line"]) if match else None
        if match and place == previous_place:
            text = match["message"]
        previous_place = place
        if text not in parts:
            parts.append(text)
    return "; ".join(parts)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"
