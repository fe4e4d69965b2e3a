"""Reading POV-Ray's console output, on logs captured from POV-Ray 3.7 (povray_logs/, made with HOME a job folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.povray_log import MAX_CAUSE_CHARS, clean, error_cause, lines

LOGS = Path(__file__).parent / "povray_logs"


def log(name: str) -> str:
    return (LOGS / name).read_bytes().decode()  # not read_text(): it would turn the progress's \r into \n


def test_clean_drops_the_banner_and_the_missing_user_configuration_complaint() -> None:
    # GIVEN the output of a scene with a parse error: ~3 KiB of banner and licence before ~1 KiB that matters
    text = log("parse-error.log")
    assert "Persistence of Vision" in text

    # WHEN cleaned for the manifest
    cleaned = clean(text, 4096)

    # THEN the banner is gone, the options and the parser's messages are all there, with wrapped lines joined
    assert cleaned.startswith("Parser Options\n")
    assert "Persistence of Vision" not in cleaned
    assert "Chris Cason" not in cleaned
    assert "LibPNG" not in cleaned
    assert "user configuration file" not in cleaned
    assert (
        "File 'broken.pov' line 4: Parse Error: No matching } in 'pigment', undeclared identifier 'colr' found instead"
        in cleaned.splitlines()
    )
    assert cleaned.endswith("Fatal error in parser: Cannot parse input.\nRender failed")


def test_clean_keeps_the_end_in_whole_lines_and_reduces_progress_to_its_last_state() -> None:
    text = log("success.log")
    assert text.count("\r") > 10  # "Rendered 1024 of 76800 pixels (1%)\rRendered 2048 ..."

    cleaned = clean(text, 1000)

    assert len(cleaned) <= 1000
    assert cleaned.endswith("POV-Ray finished")
    assert "\r" not in cleaned
    assert not cleaned.startswith(" ")  # cut at a line boundary
    progress = [line for line in lines(text) if line.startswith("Rendered ")]
    assert progress == ["Rendered 76800 of 76800 pixels (100%)"]


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        (
            "parse-error.log",
            "File 'broken.pov' line 4: Parse Error: No matching } in 'pigment', undeclared identifier 'colr' found "
            "instead",
        ),
        (
            "bad-option.log",
            "Problem with option setting; Failed to parse command-line option (an option in the .ini file or on the "
            "command line is unknown or has a bad value)",
        ),
        ("success.log", None),
    ],
)
def test_error_cause_reads_povrays_own_words(name: str, cause: str | None) -> None:
    assert error_cause(log(name)) == cause


def test_error_cause_keeps_only_the_place_of_the_last_parse_error() -> None:
    # GIVEN an earlier possible error elsewhere (a warning that did not stop the parse), then the fatal one
    text = (
        "File 'a.pov' line 2: Possible Parse Error: Suspicious identifier found in function!\n"
        "File 'b.inc' line 9: Possible Parse Error: Cannot find file 'x.inc', even after trying to append file\n"
        " type extension.\n"
        "File 'b.inc' line 9: Parse Error: Cannot open include file x.inc.\n"
        "Fatal error in parser: Cannot parse input.\n"
        "Render failed\n"
    )

    assert error_cause(text) == (
        "File 'b.inc' line 9: Possible Parse Error: Cannot find file 'x.inc', even after trying to append file type "
        "extension; Parse Error: Cannot open include file x.inc"
    )


def test_error_cause_is_one_bounded_line() -> None:
    text = "File 'a.pov' line 1: Parse Error: " + "very long message " * 100 + "\n"

    cause = error_cause(text)

    assert cause is not None
    assert len(cause) == MAX_CAUSE_CHARS
    assert "\n" not in cause
    assert cause.endswith("…")
