"""The worker image's application, assembled as worker/Dockerfile builds it, runs a job (no Docker engine here).

The Dockerfile's COPY lines are replayed from its build context (worker/) into an empty folder standing for the
image's root, its `pip install` lines into a fresh virtual environment of the image's Python (3.12) from the
copied requirements alone, and its CMD runs from its WORKDIR with that environment's interpreter. A module the
COPY lines leave out, or a dependency worker/requirements.txt lacks, fails here as it would in the image.
Everything is read from the Dockerfile, so that the test follows its changes; an instruction it cannot replay
fails the test rather than being skipped.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from tests.security.dockerfile import Instruction, final_stage, read
from worker.paths import manifest_key

from .conftest import BUCKET, Stack
from .test_pipes import PIPES_PROCESSOR, messages, pipes_upload

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTEXT = REPO_ROOT / "worker"  # `docker build ... worker`: the build context
DOCKERFILE = CONTEXT / "Dockerfile"
pytestmark = pytest.mark.slow


@dataclass
class Image:
    """What the replayed final stage leaves: the root folder, WORKDIR, ENV, CMD and the pip install lines."""

    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    pip_installs: list[list[str]] = field(default_factory=list)
    python_runs: list[list[str]] = field(default_factory=list)

    def path(self, image_path: str) -> Path:
        """Where an absolute (or WORKDIR-relative) image path lies under the root."""
        absolute = PurePosixPath(self.workdir) / image_path
        return self.root.joinpath(*absolute.parts[1:])


def assemble(dockerfile: str, context: Path, root: Path) -> Image:
    """Replay the final stage's WORKDIR, ENV, COPY, CMD; collect its `pip install` and `python` RUN commands."""
    image = Image(root)
    for instruction in final_stage(dockerfile):
        if instruction.keyword == "WORKDIR":
            image.workdir = str(PurePosixPath(image.workdir) / instruction.arguments)
        elif instruction.keyword == "ENV":
            image.env.update(_env_pairs(instruction))
        elif instruction.keyword == "COPY":
            _copy(instruction, context, image)
        elif instruction.keyword == "CMD":
            image.cmd = json.loads(instruction.arguments)
        elif instruction.keyword == "RUN":
            for command in instruction.arguments.split("&&"):
                words = shlex.split(command)
                if words[:2] == ["pip", "install"]:
                    image.pip_installs.append(words[2:])
                elif words[:1] == ["python"]:
                    image.python_runs.append(words[1:])
    return image


def _env_pairs(instruction: Instruction) -> dict[str, str]:
    words = shlex.split(instruction.arguments)
    if words and all("=" in word for word in words):
        return dict(word.split("=", 1) for word in words)
    name, _, value = instruction.arguments.partition(" ")  # the legacy `ENV NAME value` form
    return {name: value.strip()}


def _copy(instruction: Instruction, context: Path, image: Image) -> None:
    words = shlex.split(instruction.arguments)
    flags = [word for word in words if word.startswith("--")]
    assert not flags, f"Dockerfile line {instruction.line}: COPY {' '.join(flags)} is not replayed by this test"
    *sources, destination = words
    matches = sorted(path for source in sources for path in context.glob(source))
    assert matches, f"Dockerfile line {instruction.line}: COPY {' '.join(sources)} matches nothing in {context}"
    target = image.path(destination)
    into_folder = destination.endswith("/") or len(matches) > 1
    for match in matches:
        source = match
        place = target / source.name if into_folder else target
        place.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, place, dirs_exist_ok=True)
        else:
            shutil.copy2(source, place)


def _image_paths(words: list[str], image: Image) -> list[str]:
    """The words of a RUN command with every absolute image path moved under the root."""
    return [str(image.path(word)) if word.startswith("/") else word for word in words]


def image_python() -> str:
    """The image's Python version (3.12, from the FROM line), found as `sam build` finds it."""
    found = subprocess.run([REPO_ROOT / "scripts" / "find-python312"], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        pytest.fail(f"the worker image runs Python 3.12, and none is installed: {found.stderr.strip()}")
    return found.stdout.strip()


def build(image: Image, venv: Path) -> Path:
    """A fresh virtual environment holding what the Dockerfile's pip install lines install; its python."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is needed to build the image's environment (make install puts it in .venv)"
    subprocess.run([uv, "venv", "--quiet", "--python", image_python(), str(venv)], check=True)
    python = venv / "bin" / "python"
    assert image.pip_installs, "worker/Dockerfile installs nothing with pip"
    for arguments in image.pip_installs:
        # --no-cache-dir keeps pip's cache out of the image layer; uv's cache here changes nothing installed.
        options = [word for word in _image_paths(arguments, image) if word != "--no-cache-dir"]
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), *options], check=True)
    for arguments in image.python_runs:
        subprocess.run([str(python), *_image_paths(arguments, image)], check=True, cwd=image.path("."))
    return python


def test_assemble_replays_copy_env_workdir_and_pip_lines(tmp_path: Path) -> None:
    # GIVEN a Dockerfile copying one file, a glob into a folder, with ENV in both forms
    context = tmp_path / "context"
    context.mkdir()
    for name in ("requirements.txt", "a.py", "b.py", "notes.md"):
        (context / name).write_text(name, encoding="utf-8")
    dockerfile = (
        "FROM python:3.12-slim\nENV A=1 \\\n    B=two\nENV C three\nWORKDIR /app\n"
        "COPY requirements.txt /app/requirements.txt\n"
        "RUN pip install --only-binary=:all: -r /app/requirements.txt\n"
        'COPY *.py /app/pkg/\nRUN python -m compileall -q /app/pkg\nCMD ["python", "-m", "pkg"]\n'
    )
    # WHEN it is assembled
    image = assemble(dockerfile, context, tmp_path / "root")
    # THEN exactly the copied files are there, and the rest is collected
    copied = sorted(str(path.relative_to(tmp_path / "root")) for path in (tmp_path / "root").rglob("*.*"))
    assert copied == ["app/pkg/a.py", "app/pkg/b.py", "app/requirements.txt"]
    assert image.env == {"A": "1", "B": "two", "C": "three"}
    assert (image.workdir, image.cmd) == ("/app", ["python", "-m", "pkg"])
    assert image.pip_installs == [["--only-binary=:all:", "-r", "/app/requirements.txt"]]
    assert _image_paths(image.python_runs[0], image)[-1] == str(tmp_path / "root" / "app" / "pkg")


def test_assemble_refuses_a_copy_it_cannot_replay(tmp_path: Path) -> None:
    # GIVEN a COPY from another build stage
    dockerfile = "FROM python:3.12-slim\nCOPY --from=build /x /app/x\n"
    # WHEN / THEN the test says so rather than leaving the file out
    with pytest.raises(AssertionError, match="COPY --from=build"):
        assemble(dockerfile, tmp_path, tmp_path / "root")


def test_worker_image_application_runs_a_job(server_stack: Stack, worker_env: dict[str, str], tmp_path: Path) -> None:
    # GIVEN the image's application folder and environment, assembled from worker/Dockerfile alone
    image = assemble(read(DOCKERFILE), CONTEXT, tmp_path / "image")
    python = build(image, tmp_path / "venv")
    # ...and one upload in the queue, started from Dagster, for a processor written with dagster-pipes
    key = "incoming/scene.zip"
    pipes_upload(server_stack, key)
    worker_env |= {"PROCESSOR": "command", "PROCESS_COMMAND": shlex.join(["python", "-c", PIPES_PROCESSOR])}

    # WHEN the image's CMD runs from its WORKDIR with nothing of the repository or the dev environment around
    assert image.cmd[:1] == ["python"], image.cmd
    env = {**image.env, **worker_env, "PATH": f"{python.parent}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [str(python), *image.cmd[1:]],
        cwd=image.path("."),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN the job succeeds (a missing module or dependency would have ended the worker or the processor first)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["processed"] == 1, done.stdout
    body = server_stack.s3.get_object(Bucket=BUCKET, Key=manifest_key(key, "incoming/", "results/"))["Body"].read()
    assert json.loads(body)["status"] == "succeeded"
    assert [message["method"] for message in messages(server_stack)][-1] == "closed"
    # ...and nothing was imported from outside the image's folder and environment
    imported = subprocess.run(
        [str(python), "-c", "import worker.__main__, sys; print(sys.modules['worker'].__file__)"],
        cwd=image.path("."),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(imported.stdout.strip()).is_relative_to(image.root), imported.stdout
