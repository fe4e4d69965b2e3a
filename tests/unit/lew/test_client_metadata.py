"""User metadata on an upload (Client.submit's `metadata`), checked as S3 would before anything is sent."""

from __future__ import annotations

import pytest

from lew.client import S3_METADATA_LIMIT_BYTES, check_metadata
from lew.errors import LewError


def test_check_metadata_accepts_dagster_pipes_values() -> None:
    # GIVEN the two Pipes values (printable ASCII, well under the limit)
    metadata = {"dagster-pipes-context": "eJyrVkpKLEpVslJQ", "dagster-pipes-messages": "eJyrVkrKz8lJVbJSKE4tKs"}
    # WHEN / THEN they pass as they are
    assert check_metadata(metadata) == metadata


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"bad name": "x"}, "metadata name 'bad name'"),
        ({"": "x"}, "metadata name ''"),
        ({"quality": "très"}, "metadata quality: the value must be printable ASCII"),
        ({"quality": "a\nb"}, "printable ASCII"),
        ({"big": "x" * S3_METADATA_LIMIT_BYTES}, f"more than S3's {S3_METADATA_LIMIT_BYTES} bytes"),
    ],
)
def test_check_metadata_refuses_what_s3_would_in_one_line(metadata: dict[str, str], message: str) -> None:
    # GIVEN metadata S3 would refuse (or mangle)
    # WHEN it is checked
    with pytest.raises(LewError, match=message) as raised:
        check_metadata(metadata)
    # THEN one line names the problem
    assert "\n" not in str(raised.value)
