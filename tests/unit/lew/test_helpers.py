"""Small pure parts: the inbox event parser, the stdout router, samples, upload checks, manifest summaries, and how
the local stack recognises a configuration error."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import pytest

from lew import ops
from lew.errors import LewError
from lew.local.ecs_agent import said_last
from lew.local.lambda_runtime import is_configuration_error, parse_event, scheduled_event
from lew.local.output import ThreadRoutedStdout
from lew.samples import HOSTILE_MEMBER, archive_stem, bundled_inputs
from lew.ui import plural


def test_parse_event_accepts_objects_and_explains_the_rest() -> None:
    assert parse_event('{"Records": []}') == {"Records": []}
    assert isinstance(parse_event("not json"), ValueError)
    assert "JSON object" in str(parse_event("[1, 2]"))


def test_scheduled_event_is_a_fresh_eventbridge_schedule_event() -> None:
    first = scheduled_event("eu-west-1", "111122223333", "lew-local-launcher-reconcile")
    second = scheduled_event("eu-west-1", "111122223333", "lew-local-launcher-reconcile")

    assert first["source"] == "aws.events"
    assert first["detail-type"] == "Scheduled Event"
    assert first["resources"] == ["arn:aws:events:eu-west-1:111122223333:rule/lew-local-launcher-reconcile"]
    assert first["id"] != second["id"]


def test_thread_routed_stdout_routes_only_registered_threads_by_whole_lines() -> None:
    fallback = io.StringIO()
    router = ThreadRoutedStdout(fallback)
    routed: list[str] = []

    def launcher_thread() -> None:
        router.route_current_thread(routed.append)
        router.write('{"level": "INFO"')
        router.write(', "message": "hi"}\nsecond\n')

    thread = threading.Thread(target=launcher_thread)
    thread.start()
    thread.join()
    router.write("main thread\n")

    assert routed == ['{"level": "INFO", "message": "hi"}', "second"]
    assert fallback.getvalue() == "main thread\n"


def test_bundled_inputs_pack_each_scene_and_a_hostile_archive(tmp_path: Path) -> None:
    inputs = bundled_inputs(tmp_path)

    scenes = [item for item in inputs if item.expect_success]
    hostile = [item for item in inputs if not item.expect_success]
    assert len(scenes) >= 2
    assert len(hostile) == 1
    for scene in scenes:
        names = zipfile.ZipFile(scene.path).namelist()
        assert f"{scene.stem}.pov" in names
        assert f"{scene.stem}.ini" in names
    assert HOSTILE_MEMBER in zipfile.ZipFile(hostile[0].path).namelist()


@pytest.mark.parametrize(
    ("name", "stem"), [("a.zip", "a"), ("a.tar.gz", "a"), ("A.TGZ", "A"), ("a.tar", "a"), ("a.txt", "a.txt")]
)
def test_archive_stem_drops_the_archive_suffix(name: str, stem: str) -> None:
    assert archive_stem(name) == stem


def test_check_uploadable_refuses_files_the_stack_would_skip(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.zip").write_bytes(b"y")

    ops.check_uploadable([tmp_path / "a.zip"], (".zip",))
    with pytest.raises(LewError, match=r"only processes \.zip"):
        ops.check_uploadable([tmp_path / "notes.txt"], (".zip",))
    with pytest.raises(LewError, match="is a folder, not a file"):
        ops.check_uploadable([tmp_path / "sub"], ())
    with pytest.raises(LewError, match="same key"):
        ops.check_uploadable([tmp_path / "a.zip", tmp_path / "sub" / "a.zip"], ())


def test_summarize_reads_a_failure_manifest_and_tolerates_missing_fields() -> None:
    failed = ops.summarize(
        {
            "status": "failed",
            "source": {"key": "incoming/x.zip"},
            "outputs": [],
            "timings": {"total": 0.25},
            "error": {"type": "UnsafeArchive", "message": "member '../escape.txt'", "permanent": True},
        },
        "results/x.zip/manifest.json",
        "results/",
        None,
    )
    sparse = ops.summarize({}, "results/a%2Fb.zip/manifest.json", "results/", None)

    assert (failed.folder, failed.status, failed.seconds) == ("x.zip", "failed", 0.25)
    assert failed.error == "UnsafeArchive: member '../escape.txt'"
    assert (sparse.folder, sparse.status, sparse.outputs, sparse.seconds, sparse.error) == (
        "a%2Fb.zip",
        "unknown",
        (),
        None,
        None,
    )


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("lew-worker: configuration error: IDLE_POLLS='1.5' is not an integer\n",
         "lew-worker: configuration error: IDLE_POLLS='1.5' is not an integer"),
        ('{"level": "ERROR", "message": "no AWS credentials", "hint": "set AWS_PROFILE"}',
         "no AWS credentials; set AWS_PROFILE"),
        ('{"level": "ERROR"}', '{"level": "ERROR"}'),
        ("[1, 2]", "[1, 2]"),
    ],
)  # fmt: skip
def test_said_last_reads_plain_and_structured_lines(line: str, said: str) -> None:
    assert said_last(line) == said


def test_a_launcher_configuration_error_is_known_by_its_class_name() -> None:
    class ConfigurationError(ValueError):
        pass

    class MissingQueueError(ConfigurationError):
        pass

    assert is_configuration_error(MissingQueueError("QUEUE_URL is required"))
    assert not is_configuration_error(ValueError("other"))


@pytest.mark.parametrize(
    ("recorded", "parameters"),
    [
        ({"width": "320", "height": "240"}, {"width": "320", "height": "240"}),
        ({"count": 3, "verbose": True}, {"count": "3", "verbose": "true"}),  # typed values of another version: texts
        (None, {}),  # a manifest without parameters
        (["width=320"], {}),  # a shape lew does not know
    ],
)
def test_summarize_reads_the_job_parameters_defensively(recorded: object, parameters: dict[str, str]) -> None:
    # GIVEN a manifest recording (or not) the job's parameters
    document = {"status": "succeeded", "parameters": recorded}

    # WHEN it is summarised
    summary = ops.summarize(document, "results/x.zip/manifest.json", "results/", None)

    # THEN they are a typed dict of texts, {} when there are none
    assert summary.parameters == parameters
    assert ops.parameters_text(summary.parameters) == " ".join(f"{k}={v}" for k, v in sorted(parameters.items()))


@pytest.mark.parametrize(
    ("count", "noun", "plural_noun", "spec", "text"),
    [
        (1, "archive", None, "", "1 archive"),
        (0, "archive", None, "", "0 archives"),
        (3, "archive", None, "", "3 archives"),
        (1.0, "task launch", "task launches", ",.0f", "1 task launch"),
        (2500.0, "task launch", "task launches", ",.0f", "2,500 task launches"),
        (0.5, "archive", None, "g", "0.5 archives"),
    ],
)
def test_plural_is_singular_for_exactly_one(
    count: float, noun: str, plural_noun: str | None, spec: str, text: str
) -> None:
    assert plural(count, noun, plural_noun, spec=spec) == text
