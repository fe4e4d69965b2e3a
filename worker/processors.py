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
import signal
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from worker import povray_log
from worker.commands import LOG_TAIL_BYTES, CommandResult, processor_environment, read_tail, run_command
from worker.errors import ProcessorRejected, ProcessorRetry
from worker.messages import Job
from worker.parameters import Parameter, Value, environment_of, parse_declarations
from worker.progress import PROGRESS_ENV, PROGRESS_FILE_NAME, Progress, povray_progress
from worker.runs import run_environment
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
# What an uploader may ask of POV-Ray. 8192 pixels a side bounds a job's memory (POV-Ray holds the image) and time.
POVRAY_PARAMETERS = (
    Parameter("width", "int", minimum=1, maximum=8192, help="image width in pixels (+W)"),
    Parameter("height", "int", minimum=1, maximum=8192, help="image height in pixels (+H)"),
    Parameter("quality", "int", minimum=0, maximum=11, help="render quality (+Q), 9 for everything"),
    Parameter("antialias", "float", minimum=0.0, maximum=3.0, help="anti-aliasing on, with this threshold (+A)"),
)
# How much of POV-Ray's log is read for its error and its cleaned tail: the banner alone is about 3 KiB.
POVRAY_LOG_READ_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProcessorContext:
    """What a processor gets: the job, its folders, and the limits its commands must respect."""

    job: Job
    archive_name: str  # the archive's base name without suffix: `scene` for `incoming/a/scene.zip`
    input_dir: Path  # the unpacked archive, where commands run
    output_dir: Path  # <input_dir>/<OUTPUT_DIR>; outputs written here are uploaded relative to it
    job_dir: Path  # the job's private folder: HOME and TMPDIR of every command
    timeout: float
    cancel: threading.Event = field(default_factory=threading.Event)
    environment: Mapping[str, str] = field(default_factory=dict)  # more variables for its commands (Dagster Pipes)
    parameters: Mapping[str, Value] = field(default_factory=dict)  # the job's validated parameters (worker/parameters)

    @property
    def progress_file(self) -> Path:
        """Where the command appends its progress reports (LEW_PROGRESS; worker/progress.py)."""
        return self.job_dir / PROGRESS_FILE_NAME

    @property
    def log_path(self) -> Path:
        """Where the commands of `run` and `execute` write their combined stdout and stderr."""
        return self.job_dir / "processor.log"

    def run(self, argv: Sequence[str], *, cwd: Path | None = None) -> tuple[int, str]:
        """Run a command under the job's time limit, in its own process group; return (exit code, output tail)."""
        result = self.execute(argv, cwd=cwd)
        return result.returncode, result.log_tail

    def execute(self, argv: Sequence[str], *, cwd: Path | None = None) -> CommandResult:
        """Like `run`, with the whole CommandResult: exit code, output tail, and stderr's tail for error messages."""
        return run_command(
            argv,
            cwd=cwd or self.input_dir,
            env=processor_environment(
                self.job_dir,
                {
                    "LEW_INPUT_DIR": str(self.input_dir),
                    "LEW_OUTPUT_DIR": str(self.output_dir),
                    PROGRESS_ENV: str(self.progress_file),
                    **run_environment(self.job.run),
                    **self.environment,
                    # Never interpolated into a command line: a value is one environment variable, whatever it holds.
                    **environment_of(self.parameters),
                },
            ),
            log_path=self.log_path,
            timeout=self.timeout,
            cancel=self.cancel,
        )


@dataclass(frozen=True)
class ProcessResult:
    """The files to upload, the tail of the processor's output, and warnings (both for the manifest)."""

    outputs: tuple[Path, ...]
    log: str = ""
    warnings: tuple[str, ...] = ()


class Processor(Protocol):
    """Anything that turns an unpacked archive into output files."""

    @property
    def name(self) -> str:
        """The processor's name, as recorded in manifests."""
        ...

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        """Process `context.input_dir`; return the files to upload (written under `context.output_dir`)."""
        ...


# A processor (or a user's function) may declare `empty_output_ok = True`: then finishing with no output is a
# success with a manifest warning, instead of a failure. Read with getattr: the attribute is optional.
EMPTY_OUTPUT_OK = "empty_output_ok"


def run_processor(processor: Processor, context: ProcessorContext) -> ProcessResult:
    """Run a processor, and never let it succeed silently with nothing to upload.

    No outputs is ProcessorRejected, naming the processor, unless it declares `empty_output_ok`: then the
    result carries a warning for the manifest.
    """
    result = processor(context)
    if result.outputs:
        return result
    if getattr(processor, EMPTY_OUTPUT_OK, False):
        warning = f"{processor.name} produced no output (it declares that this is fine)"
        return ProcessResult(result.outputs, result.log, (*result.warnings, warning))
    raise ProcessorRejected(
        f"{processor.name} finished but produced no output, so nothing is uploaded", processor_log=result.log
    )


def prepare_output_dir(input_dir: Path, output_dir: str) -> Path:
    """Create the output folder OUTPUT_DIR inside the unpacked folder (it may already be there, from the archive).

    Relative to the folder commands run in, so that `mkdir -p out && ... > out/r.txt` with OUTPUT_DIR=out
    is uploaded. ProcessorRejected when the archive holds a file where the folder must be.
    """
    folder = input_dir / output_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        candidates = (folder, *folder.parents)
        blocking = next((path for path in candidates if path.is_relative_to(input_dir) and path.is_file()), folder)
        raise ProcessorRejected(
            f"the archive holds a file {blocking.relative_to(input_dir).as_posix()!r} where OUTPUT_DIR={output_dir!r} "
            "needs a folder; rename it in the archive or set OUTPUT_DIR to another folder"
        ) from None
    return folder


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
    command as LEW_INPUT_DIR and LEW_OUTPUT_DIR); a relative OUTPUT_DIR is inside the unpacked folder, where
    the command runs. Exit 0 is success, 3 a rejection, anything else a retry; the error message quotes the
    last lines of stderr. The outputs are the files the command created or changed under OUTPUT_DIR: none
    is a failure, unless `empty_output_ok`. The job's parameters, declared by PROCESS_PARAMETERS, reach the
    command as environment variables LEW_PARAM_<NAME>, never in its arguments: a value can then never be
    taken for an option, and an absent parameter is simply an unset variable.
    """

    argv: tuple[str, ...]
    name: str = "command"
    empty_output_ok: bool = False
    parameters: tuple[Parameter, ...] = ()

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        argv = [
            arg.replace("{input_dir}", str(context.input_dir)).replace("{output_dir}", str(context.output_dir))
            for arg in self.argv
        ]
        program = Path(argv[0]).name
        before = _snapshot(context.output_dir)
        try:
            result = context.execute(argv)
        except FileNotFoundError as error:
            raise ProcessorRetry(f"cannot run {argv[0]!r}: {error.strerror}") from error
        if result.returncode != 0:
            raise _command_failure(program, result)
        outputs = tuple(
            path for path, stamp in sorted(_snapshot(context.output_dir).items()) if before.get(path) != stamp
        )
        links = sorted(
            p.relative_to(context.output_dir).as_posix() for p in context.output_dir.rglob("*") if p.is_symlink()
        )
        warnings = (f"links under OUTPUT_DIR are not uploaded: {', '.join(links[:5])}",) if links else ()
        if not outputs and not self.empty_output_ok:
            inside = context.output_dir.is_relative_to(context.input_dir)
            where = context.output_dir.relative_to(context.input_dir).as_posix() if inside else str(context.output_dir)
            skipped = f" (only links, which are not uploaded: {', '.join(links[:5])})" if links else ""
            raise ProcessorRejected(
                f"{program} exited 0 but wrote no file under OUTPUT_DIR ({where!r} in the folder it runs in){skipped}; "
                "write outputs there, or to $LEW_OUTPUT_DIR or {output_dir}",
                processor_log=result.log_tail,
            )
        return ProcessResult(outputs, result.log_tail, warnings)


def _command_failure(program: str, result: CommandResult) -> Exception:
    """The error for a command that did not exit 0, quoting the last lines of its stderr."""
    cause = result.cause()
    said = f": {cause}" if cause else ", with nothing on stderr"
    if result.returncode == REJECT_EXIT_CODE:
        return ProcessorRejected(f"{program} rejected the input (exit code 3){said}", processor_log=result.log_tail)
    if result.returncode < 0:
        how = f"was killed by signal {-result.returncode} ({_signal_name(-result.returncode)})"
    else:
        how = f"exited with code {result.returncode}"
    # No "will be retried" here: on the last allowed attempt this error is the DLQ's reason (worker/dispatch.py).
    return ProcessorRetry(f"{program} {how}{said}", processor_log=result.log_tail)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


@dataclass(frozen=True)
class PovrayProcessor:
    """The original pattern: NAME.zip holds NAME.ini (and NAME.pov), rendered with `povray NAME.ini` to NAME.png.

    Without NAME.ini, the archive's only .ini is rendered, or else its only .pov. POV-Ray writes its image
    next to the scene (its default file I/O security allows writing only there), so the outputs are the
    files the render created or changed in the unpacked folder.
    """

    executable: str = "povray"
    name: str = "povray"
    parameters: tuple[Parameter, ...] = POVRAY_PARAMETERS

    @staticmethod
    def progress_from_log(log_tail: str) -> Progress | None:
        """POV-Ray's own progress: the pixels rendered of the image's total, from its status output."""
        return povray_progress(log_tail)

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        scene = self.choose_scene(context.input_dir, context.archive_name)
        # After the scene's own settings: POV-Ray reads its options in order, so the job's parameters win.
        options = self.options(context.parameters)
        if scene.suffix.lower() == ".ini":
            argv = [self.executable, scene.name, "-D", *options]
        else:
            argv = [
                self.executable,
                *POVRAY_DEFAULT_OPTIONS,
                *options,
                f"+I{scene.name}",
                f"+O{context.archive_name}.png",
            ]
        before = _snapshot(context.input_dir)
        try:
            returncode = context.execute(argv, cwd=scene.parent).returncode
        except FileNotFoundError as error:
            raise ProcessorRetry(f"cannot run {self.executable!r}: {error.strerror}") from error
        # The banner and licence (about 3 KiB) would fill the manifest's tail of a failed parse: left out.
        text = read_tail(context.log_path, POVRAY_LOG_READ_BYTES)
        log = povray_log.clean(text, LOG_TAIL_BYTES)
        if returncode < 0:
            raise ProcessorRetry(
                f"povray was killed by signal {-returncode} ({_signal_name(-returncode)})", processor_log=log
            )
        if returncode != 0:
            cause = povray_log.error_cause(text)
            said = f": {cause}" if cause else ""
            raise ProcessorRejected(
                f"povray failed to render {scene.name} (exit code {returncode}){said}", processor_log=log
            )
        created = tuple(path for path, stamp in _snapshot(context.input_dir).items() if before.get(path) != stamp)
        if not created:
            raise ProcessorRejected(f"povray rendered {scene.name} but wrote no file", processor_log=log)
        moved = []
        for path in sorted(created):
            if path.is_relative_to(context.output_dir):  # the .ini wrote it into the output folder itself
                moved.append(path)
                continue
            target = context.output_dir / path.relative_to(context.input_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            moved.append(path.rename(target))
        return ProcessResult(tuple(moved), log)

    @staticmethod
    def options(values: Mapping[str, Value]) -> list[str]:
        """POV-Ray switches for validated parameters: `{"width": 320, "quality": 9}` -> `["+W320", "+Q9"]`.

        Each switch is one argv item built from a number (never text), so nothing reaches a shell or a parser.
        """
        switches = {"width": "+W", "height": "+H", "quality": "+Q", "antialias": "+A"}
        options = []
        for name, switch in switches.items():
            value = values.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            # Fixed-point: `:g` would write 1e-05, which POV-Ray does not read as a number.
            text = f"{value:.6f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
            options.append(f"{switch}{text}")
        return options

    @staticmethod
    def choose_scene(folder: Path, archive_name: str) -> Path:
        """NAME.ini, else the only .ini, else the only .pov; a clear rejection otherwise."""
        files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (len(p.parts), str(p)))
        # Compared composed (NFC), as unpack writes names: a key uploaded from macOS may be decomposed.
        wanted = unicodedata.normalize("NFC", f"{archive_name}.ini").lower()
        named = [p for p in files if unicodedata.normalize("NFC", p.name).lower() == wanted]
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
    start heavy work as commands (subprocesses) that can be killed. A function that declares `parameters`
    (a sequence of worker.parameters.Parameter, set on it) is called with the job's validated values as
    `parameters=` (a dict by name); one that declares none is refused any.
    """

    function: UserFunction
    name: str
    allow_empty_output: bool = False  # ALLOW_EMPTY_OUTPUT

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """What the function declares in its `parameters` attribute."""
        declared: Iterable[Parameter] = getattr(self.function, "parameters", None) or ()
        return tuple(declared)

    @property
    def empty_output_ok(self) -> bool:
        """True with ALLOW_EMPTY_OUTPUT, or when the function declares `empty_output_ok = True` (set on it)."""
        return self.allow_empty_output or bool(getattr(self.function, EMPTY_OUTPUT_OK, False))

    def __call__(self, context: ProcessorContext) -> ProcessResult:
        if self.parameters:
            call: Callable[..., Iterable[Path]] = self.function
            returned = call(context.input_dir, context.job, parameters=dict(context.parameters))
        else:
            returned = self.function(context.input_dir, context.job)
        outputs = tuple(Path(path) for path in returned)
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
        try:
            declared = parse_declarations(settings.process_parameters)
        except ValueError as error:
            raise ConfigurationError(f"PROCESS_PARAMETERS: {error}") from None
        return CommandProcessor(argv, empty_output_ok=settings.allow_empty_output, parameters=declared)
    if ":" in name:
        return FunctionProcessor(_import_function(name), name, allow_empty_output=settings.allow_empty_output)
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


def _snapshot(folder: Path) -> dict[Path, tuple[int, int, int, int]]:
    """Each regular file below `folder` (links are skipped) with what changes when it is written or replaced."""
    stamps = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            stamps[path] = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
    return stamps
