"""Job parameters through `lew local up` and `lew submit --param`: a scene rendered at the asked size, a command
given its command and parameters as template parameters, and bad parameters refused by the worker in the manifest."""

from __future__ import annotations

import json
import shlex
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from lew.state import read_state, state_path
from lew.target import from_local_state
from tests.e2e.conftest import lew, local_up, make_zip, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SCENE_POV = """\
#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 1, -3> look_at <0, 0.5, 0> }
light_source { <2, 4, -3> color rgb 1 }
sphere { <0, 0.5, 0>, 0.5 pigment { color rgb <1, 0.5, 0> } }
"""


def fetched_manifests(cwd: Path, count: int) -> dict[str, tuple[Path, dict[str, Any]]]:
    """`lew results --download` until `count` manifests are there: {source key: (folder, manifest)}."""

    def download() -> dict[str, tuple[Path, dict[str, Any]]] | None:
        shutil.rmtree(cwd / "fetched", ignore_errors=True)
        if lew(cwd, "results", "--download", "fetched").returncode != 0:
            return None
        found = {}
        for path in (cwd / "fetched").rglob("manifest.json"):
            document = json.loads(path.read_text())
            found[document["source"]["key"]] = (path.parent, document)
        return found if len(found) >= count else None

    return wait_for(download, timeout=120, what=f"{count} manifests", interval=1.0)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.skipif(shutil.which("povray") is None, reason="povray is not installed")
def test_submit_param_renders_a_scene_at_the_given_size_and_refuses_bad_ones(tmp_path: Path) -> None:
    # GIVEN a local stack rendering with POV-Ray, and one scene
    scene = make_zip(tmp_path / "small.zip", {"small.pov": SCENE_POV})
    wrong = make_zip(tmp_path / "wrong.zip", {"wrong.pov": SCENE_POV})
    with local_up(tmp_path, "--processor", "povray"):
        # WHEN it is submitted with a size, and another with a width POV-Ray must not be asked for
        sized = lew(tmp_path, "submit", str(scene), "--param", "width=48", "--param", "height=36")
        assert sized.returncode == 0, sized.stderr
        refused = lew(tmp_path, "submit", str(wrong), "--param", "width=99999")
        # THEN lew refuses the bad one before uploading it, in one line naming it (it knows the stack's processor)
        assert refused.returncode == 1
        assert refused.stderr == (
            "lew: error: --param: parameter width='99999' is out of bounds: width must be an integer from 1 to 8192\n"
        )
        # AND uploaded another way (aws s3 cp --metadata lew-param-width=99999), the worker refuses it as well
        state = read_state(state_path(tmp_path))
        assert state is not None
        target = from_local_state(state)
        metadata = {"Metadata": {"lew-param-width": "99999"}}
        target.s3.upload_file(str(wrong), target.bucket, "incoming/wrong.zip", ExtraArgs=metadata)
        manifests = fetched_manifests(tmp_path, 2)

    # THEN the PNG has the asked size and the manifest records the parameters
    folder, manifest = manifests["incoming/small.zip"]
    assert manifest["status"] == "succeeded", manifest["error"]
    assert manifest["parameters"] == {"height": "36", "width": "48"}
    [png] = folder.rglob("*.png")
    assert png_size(png) == (48, 36)
    # AND the out-of-bounds width failed its job with one line naming it
    _, failed = manifests["incoming/wrong.zip"]
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == (
        "parameter width='99999' is out of bounds: width must be an integer from 1 to 8192"
    )


def test_submit_param_refuses_what_s3_metadata_cannot_carry_before_uploading(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a.txt": "a"})

    result = lew(tmp_path, "submit", str(archive), "--param", f"label={'x' * 2100}", "--endpoint", "http://127.0.0.1:9")

    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert "more than S3's limit of 2048 bytes per object" in result.stderr


def test_local_up_takes_the_command_and_its_parameters_as_template_parameters(tmp_path: Path) -> None:
    # GIVEN a command, and the parameters it declares, passed to lew local up like any template parameter
    code = (
        "import os; open(os.path.join(os.environ['LEW_OUTPUT_DIR'], 'level.txt'), 'w')"
        ".write(os.environ.get('LEW_PARAM_LEVEL', 'unset'))"
    )
    command = shlex.join([sys.executable, "-c", code])
    archive = make_zip(tmp_path / "job.zip", {"in.txt": "x"})
    template_parameters = ["--param", f"ProcessCommand={command}", "--param", "ProcessParameters=level:int:1..3"]
    with local_up(tmp_path, "--processor", "command", *template_parameters):
        # WHEN an archive is submitted with a parameter
        submitted = lew(tmp_path, "submit", str(archive), "--param", "level=2")
        assert submitted.returncode == 0, submitted.stderr
        manifests = fetched_manifests(tmp_path, 1)

    # THEN the command ran and read it
    folder, manifest = manifests["incoming/job.zip"]
    assert manifest["status"] == "succeeded", manifest["error"]
    assert (folder / "level.txt").read_text() == "2"
