"""Processors: what turns an unpacked archive into output files.

A processor is any object with a `name` and a `__call__(context) -> ProcessResult` (the `Processor` protocol).
Built in: `inventory` (the default), `povray` and `command`; `PROCESSOR=package.module:function` loads a
plain function `(folder: Path, job: Job) -> list[Path]` of your own.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import mimetypes
import shlex
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from worker.commands import processor_environment, run_command
from worker.errors import ProcessorRejected, ProcessorRetry
from worker.messages import Job
from worker.settings import ConfigurationError, Settings

REJECT_EXIT_CODE = 3  # ecs-watchbot's contract: 0 success, 3 reject (permanent), anything else retry
HASH_CHUNK_BYTES = 1024 * 1024
# A few signatures that mimetypes (which only reads names) cannot know.
MAGIC_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"BM", "image/bmp"),
    (b"\x7fELF", "application/x-executable"),
)
POVRAY_DEFAULT_OPTIONS = ("-D", "+FN", "+W640", "+H480")  # no display window, PNG, a modest size


@dataclass(frozen=True)
class ProcessorContext:
    """What a processor gets: the job, its folders, and the limits its commands must respect."""

    job: Job
    archive_name: str  # the archive's base name without suffix: `scene` for `incoming/a/scene.zip`
    input_dir: Path  # the unpacked archive
    output_dir: Path  # empty at the start; outputs written here are uploaded relative to it
    job_dir: Path  # the job's private folder: HOME and TMPDIR of every command
    timeout: float
    cancel: threading.Event = field(default_factory=threading.Event)

    def run(self, argv: Sequence[str], *, cwd: Path | None = None) -> tuple[int, str]:
        """Run a command under the job's time limit, in its own process group; return (exit code, output tail)."""
        result = run_command(
            argv,
            cwd=cwd or self.input_dir,
            env=processor_environment(
                self.job_dir, {"LEW_INPUT_DIR": str(self.input_dir), "LEW_OUTPUT_DIR": str(self.output_dir)}
            ),
            log_path=self.job_dir / "processor.log",
            timeout=self.timeout,
            cancel=self.cancel,
        )
        return result.returncode, result.log_tail


@dataclass(frozen=True)
class ProcessResult:
    """The files to upload and the tail of the processor's output (for the manifest)."""

    outputs: tuple[Path, ...]
    log: str = ""


class Processor(Protocol):
    """Anything that turns an unpacked archive into output files."""

    @property
    def name(self) -> str:
        """The processor's name, as recorded in manifests."""
        ...

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        """Process `context.input_dir`; return the files to upload (written under `context.output_dir`)."""
        ...


UserFunction = Callable[[Path, Job], Iterable[Path]]


@dataclass(frozen=True)
class InventoryProcessor:
    """Pure Python: writes inventory.json listing every member with its size, sha256 and detected type."""

    name: str = "inventory"

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        files = files_under(context.input_dir)
        sizes = [path.stat().st_size for path in files]
        members = [
            {
                "path": path.relative_to(context.input_dir).as_posix(),
                "size": size,
                "sha256": sha256_of(path),
                "type": detect_type(path),
            }
            for path, size in zip(files, sizes, strict=True)
        ]
        inventory = {
            "source": {"bucket": context.job.bucket, "key": context.job.key},
            "members": members,
            "total_size": sum(sizes),
        }
        target = context.output_dir / "inventory.json"
        target.write_text(json.dumps(inventory, indent=2) + "\n", encoding="utf-8")
        return ProcessResult((target,), f"{len(members)} members")


@dataclass(frozen=True)
class CommandProcessor:
    """Runs PROCESS_COMMAND (split with shlex, no shell) in the unpacked folder; outputs come from OUTPUT_DIR.

    `{input_dir}` and `{output_dir}` in the command are replaced by the job's folders (also given to the
    command as LEW_INPUT_DIR and LEW_OUTPUT_DIR). Exit 0 is success, 3 a rejection, anything else a retry.
    """

    argv: tuple[str, ...]
    name: str = "command"

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        argv = [
            arg.replace("{input_dir}", str(context.input_dir)).replace("{output_dir}", str(context.output_dir))
            for arg in self.argv
        ]
        try:
            returncode, log = context.run(argv)
        except FileNotFoundError as error:
            raise ProcessorRetry(f"cannot run {argv[0]!r}: {error.strerror}") from error
        if returncode == REJECT_EXIT_CODE:
            raise ProcessorRejected(f"{argv[0]} rejected the input (exit code 3)", processor_log=log)
        if returncode != 0:
            raise ProcessorRetry(f"{argv[0]} failed with exit code {returncode}; it will be retried", processor_log=log)
        return ProcessResult(files_under(context.output_dir), log)


@dataclass(frozen=True)
class PovrayProcessor:
    """The original pattern: NAME.zip holds NAME.ini (and NAME.pov), rendered with `povray NAME.ini` to NAME.png.

    Without NAME.ini, the archive's only .ini is rendered, or else its only .pov. POV-Ray writes its image
    next to the scene (its default file I/O security allows writing only there), so the outputs are the
    files the render created or changed in the unpacked folder.
    """

    executable: str = "povray"
    name: str = "povray"

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        scene = self.choose_scene(context.input_dir, context.archive_name)
        if scene.suffix.lower() == ".ini":
            argv = [self.executable, scene.name, "-D"]
        else:
            argv = [self.executable, *POVRAY_DEFAULT_OPTIONS, f"+I{scene.name}", f"+O{context.archive_name}.png"]
        before = _snapshot(context.input_dir)
        try:
            returncode, log = context.run(argv, cwd=scene.parent)
        except FileNotFoundError as error:
            raise ProcessorRetry(f"cannot run {self.executable!r}: {error.strerror}") from error
        if returncode < 0:
            raise ProcessorRetry(f"povray was killed by signal {-returncode}", processor_log=log)
        if returncode != 0:
            raise ProcessorRejected(f"povray failed to render {scene.name} (exit code {returncode})", processor_log=log)
        created = tuple(path for path, stamp in _snapshot(context.input_dir).items() if before.get(path) != stamp)
        if not created:
            raise ProcessorRejected(f"povray rendered {scene.name} but wrote no file", processor_log=log)
        moved = []
        for path in sorted(created):
            target = context.output_dir / path.relative_to(context.input_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            moved.append(path.rename(target))
        return ProcessResult(tuple(moved), log)

    @staticmethod
    def choose_scene(folder: Path, archive_name: str) -> Path:
        """NAME.ini, else the only .ini, else the only .pov; a clear rejection otherwise."""
        files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (len(p.parts), str(p)))
        named = [p for p in files if p.name.lower() == f"{archive_name.lower()}.ini"]
        if named:
            return named[0]
        for suffix in (".ini", ".pov"):
            found = [p for p in files if p.suffix.lower() == suffix]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                names = ", ".join(p.relative_to(folder).as_posix() for p in found[:5])
                raise ProcessorRejected(
                    f"no {archive_name}.ini, and several {suffix} files ({names}): cannot tell which to render"
                )
        raise ProcessorRejected(f"no {archive_name}.ini, .ini or .pov file in the archive: nothing to render")


@dataclass(frozen=True)
class FunctionProcessor:
    """A user's function `(folder, job) -> output files`, loaded from `package.module:function`.

    It runs in the worker's process: JOB_TIMEOUT and the stop grace cannot interrupt it, so it should
    start heavy work as commands (subprocesses) that can be killed.
    """

    function: UserFunction
    name: str

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        outputs = tuple(Path(path) for path in self.function(context.input_dir, context.job))
        for path in outputs:
            if not path.resolve().is_relative_to(context.job_dir.resolve()) or not path.is_file():
                raise ProcessorRejected(f"{self.name} returned {path}, which is not a file in the job's folder")
        return ProcessResult(outputs)


def load_processor(settings: Settings) -> Processor:
    """The processor PROCESSOR names; ConfigurationError when it cannot be found."""
    name = settings.processor
    if name == "inventory":
        return InventoryProcessor()
    if name == "povray":
        return PovrayProcessor()
    if name == "command":
        try:
            argv = tuple(shlex.split(settings.process_command or ""))
        except ValueError as error:
            raise ConfigurationError(f"PROCESS_COMMAND cannot be split into arguments: {error}") from None
        if not argv:
            raise ConfigurationError("PROCESS_COMMAND is empty")
        return CommandProcessor(argv)
    if ":" in name:
        return FunctionProcessor(_import_function(name), name)
    raise ConfigurationError(
        f"PROCESSOR={name!r} is unknown: use inventory, povray, command or package.module:function"
    )


def _import_function(spec: str) -> UserFunction:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(f"PROCESSOR={spec!r}: cannot import {module_name!r}: {error}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigurationError(f"PROCESSOR={spec!r}: {module_name} has no function {attribute!r}")
    loaded: UserFunction = function
    return loaded


def files_under(folder: Path) -> tuple[Path, ...]:
    """Every regular file below a folder (symlinks are skipped: they could point outside the job)."""
    if not folder.is_dir():
        return ()
    return tuple(sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()))


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in chunks so that memory stays flat."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def detect_type(path: Path) -> str:
    """A media type from the first bytes when they are telling, else from the name."""
    with path.open("rb") as handle:
        head = handle.read(16)
    for signature, media_type in MAGIC_SIGNATURES:
        if head.startswith(signature):
            return media_type
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}
