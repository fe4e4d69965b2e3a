"""The demo's bundled inputs: POV-Ray scenes from `samples/`, packed into zips at run time, and a hostile zip."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from lew.template import REPO_ROOT

SAMPLES_DIR = REPO_ROOT / "samples"
HOSTILE_NAME = "hostile-zip-slip"
HOSTILE_MEMBER = "../escape.txt"  # a member that would land outside the job's folder if unpacked naively


@dataclass(frozen=True)
class DemoInput:
    """An archive to upload, and whether the pipeline should accept it."""

    path: Path
    expect_success: bool = True

    @property
    def stem(self) -> str:
        return archive_stem(self.path.name)


def archive_stem(name: str) -> str:
    """The name without its archive suffix (a bundled scene's name)."""
    for suffix in (".tar.gz", ".tgz", ".zip", ".tar"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def scene_dirs(samples_dir: Path = SAMPLES_DIR) -> list[Path]:
    """Every `samples/<name>/` that holds a `<name>.pov`."""
    if not samples_dir.is_dir():
        return []
    return sorted(folder for folder in samples_dir.iterdir() if (folder / f"{folder.name}.pov").is_file())


def pack_scene(folder: Path, dest_dir: Path) -> Path:
    """Zip a scene folder as `<name>.zip`, its files at the archive's top level."""
    archive = dest_dir / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for member in sorted(folder.iterdir()):
            if member.is_file():
                bundle.write(member, arcname=member.name)
    return archive


def pack_hostile(dest_dir: Path) -> Path:
    """A zip holding `../escape.txt` next to an ordinary scene file: the worker must reject it whole."""
    archive = dest_dir / f"{HOSTILE_NAME}.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"{HOSTILE_NAME}.ini", "Input_File_Name=missing.pov\n")
        bundle.writestr(HOSTILE_MEMBER, "this file must never be written outside the job folder\n")
    return archive


def bundled_inputs(dest_dir: Path, samples_dir: Path = SAMPLES_DIR) -> list[DemoInput]:
    """Pack every bundled scene (expected to succeed) and the hostile archive (expected to be rejected)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    inputs = [DemoInput(pack_scene(folder, dest_dir)) for folder in scene_dirs(samples_dir)]
    inputs.append(DemoInput(pack_hostile(dest_dir), expect_success=False))
    return inputs
