"""The job parameters a local stack's processor declares: for the hint of a `--param` that is not a template
parameter, and for `lew demo --job-param`, checked before anything starts.

`--param` on `lew local up` and `lew demo` sets template parameters (the stack's configuration); job parameters
go with each upload (`lew submit --param`, `lew demo --job-param`). The names a processor declares are the
worker's own: POV-Ray's in worker/processors.py, the command processor's in PROCESS_PARAMETERS. A function
processor declares them on the function, which lew does not import to find out: the worker says, in the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lew.errors import LewError
from worker.parameters import InvalidParameter, Parameter, parse_declarations, validate
from worker.processors import POVRAY_PARAMETERS

SUBMIT_HINT = "lew submit --param"
PROCESSORS_WITHOUT_PARAMETERS = ("inventory",)


def declared_job_parameters(processor: str, process_parameters: str) -> tuple[Parameter, ...] | None:
    """What `processor` accepts; None for a function processor (only the worker can tell).

    `process_parameters` is PROCESS_PARAMETERS, read by the command processor; malformed declarations accept
    nothing here (the configuration check names them).
    """
    if processor == "povray":
        return POVRAY_PARAMETERS
    if processor == "command":
        try:
            return parse_declarations(process_parameters)
        except ValueError:
            return ()
    if processor in PROCESSORS_WITHOUT_PARAMETERS:
        return ()
    return None


def not_a_template_parameter(
    name: str, value: str, source: str, *, processor: str, process_parameters: str, job_option: str
) -> str:
    """The one line for `--param NAME=VALUE` that `source` does not declare: where a job parameter goes instead.

    `job_option` is how this command takes job parameters (`--job-param` for `lew demo`, else `lew submit
    --param`).
    """
    line = f"--param {name}: {source} has no parameter of that name"
    declared = declared_job_parameters(processor, process_parameters) or ()
    if name in {parameter.name for parameter in declared}:
        return (
            f"{line}; {name} is a job parameter of the {processor} processor: pass it with the upload, "
            f"{job_option} {name}={value}"
        )
    return f"{line}; job parameters for the processor go with the upload: {job_option} NAME=VALUE"


def check_job_parameters(
    processor: str, process_parameters: str, parameters: Mapping[str, str], *, option: str = "--job-param"
) -> None:
    """Refuse, in one line, job parameters the processor would refuse (the worker's own check), before any upload.

    A function processor's are left to the worker, which refuses them in the job's manifest.
    """
    declared: Sequence[Parameter] | None = declared_job_parameters(processor, process_parameters)
    if not parameters or declared is None:
        return
    try:
        validate(processor, declared, parameters)
    except InvalidParameter as error:
        raise LewError(f"{option}: {error}") from None
