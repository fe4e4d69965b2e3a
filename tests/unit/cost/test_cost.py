"""The cost model's arithmetic, against figures worked out by hand from the list prices."""

from __future__ import annotations

import argparse
import re

import pytest

from lew import cli, cost, fargate
from lew.cost import Design, Prices, Workload
from lew.template import DEFAULT_TEMPLATE, REPO_ROOT, load_template, parameter_defaults, rate_seconds, resources_of_type

# 24 archives a day is exactly 730 a month (730 hours a month / 24).
MONTHLY_730 = 24.0


def line_usd(estimate: cost.Estimate, starts_with: str) -> float:
    matches = [line.usd for line in estimate.lines if line.item.startswith(starts_with)]
    assert len(matches) == 1, f"expected one line starting {starts_with!r} in {estimate.lines}"
    return matches[0]


def test_workload_archives_per_month_uses_730_hours() -> None:
    assert Workload(archives_per_day=24, seconds_per_archive=1).archives_per_month == pytest.approx(730)


def test_billed_seconds_add_startup_work_and_idle_polls() -> None:
    # GIVEN 30 s start-up, 110 s of work, 2 idle polls of 20 s
    workload = Workload(MONTHLY_730, 110)
    # THEN the task is billed 30 + 110 + 40 = 180 s
    assert cost.fargate_billed_seconds_per_task(workload, Design()) == 180


def test_billed_seconds_have_a_one_minute_minimum() -> None:
    workload = Workload(MONTHLY_730, 5)
    design = Design(task_startup_seconds=0, idle_polls=0)
    assert cost.fargate_billed_seconds_per_task(workload, design) == 60


def test_billed_seconds_round_up_to_the_second() -> None:
    workload = Workload(MONTHLY_730, 100.2)
    assert cost.fargate_billed_seconds_per_task(workload, Design()) == 171  # 30 + 100.2 + 40 = 170.2


def test_archives_per_task_divides_the_launches_and_multiplies_the_work() -> None:
    workload = Workload(MONTHLY_730, 100)
    design = Design(archives_per_task=5)
    assert cost.tasks_per_month(workload, design) == pytest.approx(146)
    assert cost.fargate_billed_seconds_per_task(workload, design) == 30 + 500 + 40


def test_heartbeats_come_every_third_of_the_visibility_timeout() -> None:
    assert cost.heartbeats_per_archive(Workload(1, 250), Design(visibility_timeout=300)) == 2
    assert cost.heartbeats_per_archive(Workload(1, 99), Design(visibility_timeout=300)) == 0


def test_design_cost_matches_the_hand_computed_bill() -> None:
    # GIVEN 730 archives a month, 110 s each, template defaults (1 vCPU, 2 GB, 21 GB, x86 on demand)
    estimate = cost.design_cost(Workload(MONTHLY_730, 110), Design(), Prices())

    # THEN 730 tasks x 180 s = 36.5 task-hours
    assert line_usd(estimate, "Fargate tasks: vCPU") == pytest.approx(36.5 * 0.04048)
    assert line_usd(estimate, "Fargate tasks: memory") == pytest.approx(73 * 0.004445)
    assert line_usd(estimate, "Fargate tasks: storage") == pytest.approx(36.5 * 0.000111)
    # 730 uploads + 43,800 reconcile ticks, 0.2 s at 0.25 GB each, on ARM as the template has it
    assert line_usd(estimate, "Lambda launcher: requests") == pytest.approx(44_530 * 0.2e-6)
    assert line_usd(estimate, "Lambda launcher: duration") == pytest.approx(44_530 * 0.05 * 0.0000133334)
    # per archive: send + depth check + receive + delete + 1 heartbeat (110 s > 100 s) = 5 requests
    assert line_usd(estimate, "SQS: per message") == pytest.approx(730 * 5 * 0.4e-6)
    assert line_usd(estimate, "SQS: empty long polls") == pytest.approx(730 * 2 * 0.4e-6)
    assert line_usd(estimate, "SQS: reconcile") == pytest.approx(43_800 * 0.4e-6)
    assert line_usd(estimate, "S3 GET") == pytest.approx(1_460 * 0.0004e-3)
    # per archive: the claim, 1 output, the manifest, 1 claim refresh at the heartbeat = 4 PUTs
    assert line_usd(estimate, "S3 PUT") == pytest.approx(2_920 * 0.005e-3)
    assert line_usd(estimate, "CloudWatch alarms") == pytest.approx(4 * 0.10)
    expected_total = (
        36.5 * 0.04048
        + 73 * 0.004445
        + 36.5 * 0.000111
        + 44_530 * 0.2e-6
        + 44_530 * 0.05 * 0.0000133334
        + (3_650 + 1_460 + 43_800) * 0.4e-6
        + 1_460 * 0.0004e-3
        + 2_920 * 0.005e-3
        + 4 * 0.10
    )
    assert estimate.total == pytest.approx(expected_total)


def test_design_cost_without_extra_storage_has_no_storage_line() -> None:
    estimate = cost.design_cost(Workload(MONTHLY_730, 110), Design(task_storage_gb=20), Prices())
    assert not [line for line in estimate.lines if "storage" in line.item]


def test_design_cost_uses_arm_spot_prices_when_asked() -> None:
    prices = Prices(fargate_spot_vcpu_hour_arm=1.0, fargate_spot_gb_hour_arm=0.5)
    design = Design(architecture="arm", capacity="spot", task_storage_gb=20)
    estimate = cost.design_cost(Workload(MONTHLY_730, 110), design, prices)
    assert line_usd(estimate, "Fargate tasks: vCPU (arm, spot)") == pytest.approx(36.5)
    assert line_usd(estimate, "Fargate tasks: memory (arm, spot)") == pytest.approx(73 * 0.5)
    assert "spot" in estimate.name


def test_launcher_architecture_picks_its_lambda_price() -> None:
    estimate = cost.design_cost(Workload(MONTHLY_730, 110), Design(launcher_architecture="x86"), Prices())
    assert line_usd(estimate, "Lambda launcher: duration") == pytest.approx(44_530 * 0.05 * 0.0000166667)


def test_batched_receives_share_the_receive_but_each_message_is_deleted() -> None:
    workload = Workload(MONTHLY_730, 10)
    assert cost.worker_sqs_requests_per_archive(workload, Design(receive_batch_size=10)) == pytest.approx(1.1)


def test_always_on_bills_one_task_for_the_whole_month() -> None:
    estimate = cost.always_on_cost(Workload(MONTHLY_730, 110), Design(), Prices())
    assert line_usd(estimate, "1 always-on task: vCPU") == pytest.approx(730 * 0.04048)
    assert line_usd(estimate, "1 always-on task: memory") == pytest.approx(730 * 2 * 0.004445)
    # idle the rest of the month, one empty long poll every 20 s
    idle_seconds = 730 * 3600 - 730 * 110
    assert line_usd(estimate, "SQS: empty long polls") == pytest.approx(idle_seconds / 20 * 0.4e-6)


def test_always_on_adds_tasks_when_one_cannot_keep_up() -> None:
    # 1,000 a day x 100 s = 3,041,667 busy seconds a month, more than one task's 2,628,000
    estimate = cost.always_on_cost(Workload(1_000, 100), Design(), Prices())
    assert line_usd(estimate, "2 always-on tasks: vCPU") == pytest.approx(2 * 730 * 0.04048)


def test_glue_bills_a_minute_at_least_per_run() -> None:
    short = cost.glue_cost(Workload(MONTHLY_730, 30), Prices(), dpus=4)
    assert line_usd(short, "Glue") == pytest.approx(730 * 4 * 60 / 3600 * 0.44)
    long = cost.glue_cost(Workload(MONTHLY_730, 120), Prices(), dpus=4)
    assert line_usd(long, "Glue") == pytest.approx(730 * 4 * 120 / 3600 * 0.44)


def test_lambda_only_prices_duration_at_the_memory_that_buys_the_task_cpu() -> None:
    estimate = cost.lambda_only_cost(Workload(MONTHLY_730, 100), Design(), Prices())
    # 1 vCPU, 2 GB: 2,048 MB covers both; 730 x 100 s x 2 GB = 146,000 GB-s
    assert line_usd(estimate, "Lambda: duration at 2048 MB") == pytest.approx(146_000 * 0.0000166667)
    assert line_usd(estimate, "Lambda: requests") == pytest.approx(730 * 0.2e-6)


def test_lambda_memory_is_the_task_memory_which_always_buys_the_task_cpu() -> None:
    # Fargate gives at least 2 GB per vCPU, more than Lambda's 1,769 MB per vCPU: memory decides
    assert cost.lambda_memory_mb(Design(task_vcpu=4, task_memory_gb=8)) == 8 * 1024
    assert cost.lambda_memory_mb(Design(task_vcpu=0.25, task_memory_gb=0.5)) == 512


def test_lambda_only_is_not_possible_over_fifteen_minutes() -> None:
    estimate = cost.lambda_only_cost(Workload(MONTHLY_730, 901), Design(), Prices())
    assert estimate.not_possible is not None
    assert "15-minute" in estimate.not_possible
    assert estimate.lines == ()


def test_lambda_only_is_not_possible_beyond_its_memory() -> None:
    estimate = cost.lambda_only_cost(Workload(MONTHLY_730, 10), Design(task_vcpu=8, task_memory_gb=16), Prices())
    assert estimate.not_possible is not None
    assert "10,240" in estimate.not_possible


def test_compare_lists_the_design_then_three_alternatives() -> None:
    names = [e.name for e in cost.compare(Workload(MONTHLY_730, 110), Design(), Prices())]
    assert names[0].startswith("lew")
    assert names[1:] == ["Always-on ECS service", "AWS Glue job per archive", "All in Lambda"]


def test_design_rejects_a_task_size_fargate_does_not_offer() -> None:
    with pytest.raises(ValueError, match=r"task size: 3 vCPU is not a Fargate size"):
        Design(task_vcpu=3)
    with pytest.raises(ValueError, match=r"task size: 9 GB is not a Fargate size for 1 vCPU"):
        Design(task_vcpu=1, task_memory_gb=9)


def test_cli_prints_the_bill_and_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--archives-per-day", "24", "--seconds-per-archive", "110"]) == 0
    out = capsys.readouterr().out
    assert "730 a month" in out
    assert "Always-on ECS service" in out
    assert "as of 2025-01" in out


def test_cli_price_options_override_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--archives-per-day", "24", "--seconds-per-archive", "1000", "--price-glue-dpu-hour", "1"]
    assert cost.main(argv) == 0
    # 730 runs x 4 DPU x 1000 s = 811.11 DPU-h at $1, plus $0.0079 of S3 requests (1,460 GET, 1,460 PUT)
    assert re.search(r"AWS Glue job per archive +\$ +811\.12\n", capsys.readouterr().out)


def test_cli_says_lambda_is_not_possible_for_long_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--archives-per-day", "1", "--seconds-per-archive", "3600"]) == 0
    assert "not possible: a job takes 3,600 s" in capsys.readouterr().out


WORKLOAD = ["--archives-per-day", "1", "--seconds-per-archive", "1"]


def exit_code(argv: list[str]) -> object:
    """lew's exit code, whether argparse refused the value (SystemExit) or the model did (returned)."""
    try:
        return cli.main(argv)
    except SystemExit as exited:
        return exited.code


@pytest.mark.parametrize(
    ("option", "line"),
    [
        (["--archives-per-day", "many"], "--archives-per-day: expected a number, got 'many'"),
        (["--seconds-per-archive", "inf"], "--seconds-per-archive: expected a finite number, got 'inf'"),
        (["--outputs-per-archive", "-1"], "--outputs-per-archive: -1 is below the minimum 0"),
        (["--outputs-per-archive", "1.5"], "--outputs-per-archive: expected a whole number, got '1.5'"),
        (["--vcpu", "3"], "--vcpu: 3 vCPU is not a Fargate size (choose 0.25, 0.5, 1, 2, 4, 8, 16)"),
        (["--memory-gb", "0.1"], "--memory-gb: 0.1 GB is not a Fargate size for 1 vCPU (2-8 GB in 1 GB steps)"),
        (["--vcpu", "0.25", "--memory-gb", "4"],
         "--memory-gb: 4 GB is not a Fargate size for 0.25 vCPU (0.5, 1 or 2 GB)"),
        (["--vcpu", "8", "--memory-gb", "18"],
         "--memory-gb: 18 GB is not a Fargate size for 8 vCPU (16-60 GB in 4 GB steps)"),
        (["--storage-gb", "10"],
         "--storage-gb: 10 is below the MinValue 21 of WorkerEphemeralStorage in template.yaml"),
        (["--archives-per-task", "0.5"], "--archives-per-task: 0.5 is below the minimum 1"),
        (["--task-startup-seconds", "-3"], "--task-startup-seconds: -3 is below the minimum 0"),
        (["--idle-polls", "0"], "--idle-polls: 0 is below the MinValue 1 of IdlePolls in template.yaml"),
        (["--wait-time-seconds", "99"],
         "--wait-time-seconds: 99 is above the MaxValue 20 of WaitTimeSeconds in template.yaml"),
        (["--visibility-timeout", "10"],
         "--visibility-timeout: 10 is below the MinValue 30 of VisibilityTimeout in template.yaml"),
        (["--receive-batch-size", "11"],
         "--receive-batch-size: 11 is above the MaxValue 10 of ReceiveBatchSize in template.yaml"),
        (["--launcher-seconds", "0"], "--launcher-seconds: 0 is not more than 0 and at most 900 (Lambda's limit)"),
        (["--launcher-memory-mb", "64"], "--launcher-memory-mb: 64 is not from 128 to 10240 (Lambda's limit)"),
        (["--launcher-arch", "sparc"], "--launcher-arch: invalid choice: 'sparc' (choose from 'arm', 'x86')"),
        (["--reconcile-ticks-per-month", "-1"], "--reconcile-ticks-per-month: -1 is below the minimum 0"),
        (["--glue-dpus", "0"], "--glue-dpus: 0 is below the minimum 0.0625 (Glue's smallest job)"),
        (["--price-sqs-request", "-1"], "--price-sqs-request: -1 is below the minimum 0"),
    ],
)  # fmt: skip
def test_cli_refuses_every_bad_input_in_one_line(
    capsys: pytest.CaptureFixture[str], option: list[str], line: str
) -> None:
    # WHEN one option has a value the deployed design cannot have
    code = exit_code(["cost", *WORKLOAD, *option])

    # THEN one line names the option, the value and the rule, exit 2, and no usage block
    assert code == 2
    assert capsys.readouterr().err == f"lew cost: error: {line} (see `lew cost --help`)\n"


def test_python_m_lew_cost_refuses_in_the_same_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main([*WORKLOAD, "--memory-gb", "9"]) == 2
    expected = "--memory-gb: 9 GB is not a Fargate size for 1 vCPU (2-8 GB in 1 GB steps)"
    assert capsys.readouterr().err == f"lew cost: error: {expected} (see `lew cost --help`)\n"


def test_every_fargate_task_size_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    for vcpu in fargate.VCPU_CHOICES:
        for memory in fargate.memory_choices_gb(vcpu):
            assert cost.main([*WORKLOAD, "--vcpu", f"{vcpu:g}", "--memory-gb", f"{memory:g}"]) == 0
    capsys.readouterr()
    assert len(fargate.memory_choices_gb(4)) == 23  # 8-30 GB in 1 GB steps
    assert fargate.memory_choices_gb(16) == tuple(range(32, 121, 8))


def test_the_design_defaults_are_the_templates() -> None:
    # GIVEN template.yaml, the one source of the deployed values
    template = load_template(DEFAULT_TEMPLATE)
    defaults = parameter_defaults(template)
    design = Design()

    # THEN the cost model prices what the template deploys
    assert design.task_vcpu * 1024 == float(defaults["WorkerCpu"])
    assert design.task_memory_gb * 1024 == float(defaults["WorkerMemory"])
    assert design.task_storage_gb == float(defaults["WorkerEphemeralStorage"])
    assert design.idle_polls == int(defaults["IdlePolls"])
    assert design.wait_time_seconds == float(defaults["WaitTimeSeconds"])
    assert design.visibility_timeout == float(defaults["VisibilityTimeout"])
    assert design.job_timeout == float(defaults["JobTimeout"])
    assert design.receive_batch_size == int(defaults["ReceiveBatchSize"])
    assert design.reconcile_ticks_per_month == cost.SECONDS_PER_MONTH / rate_seconds(defaults["ReconcileSchedule"])
    assert design.launcher_memory_mb == template["Globals"]["Function"]["MemorySize"]
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]
    assert design.alarms == len(resources_of_type(template, "AWS::CloudWatch::Alarm"))


def test_the_readmes_figure_at_rest_is_the_models() -> None:
    # GIVEN what README.md tells a reader the stack costs while no upload arrives
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"At rest it\s+costs\s+about\s+\$(\d+\.\d\d)\s+a\s+month", readme)
    assert stated is not None, "README.md no longer states the cost at rest"

    # THEN it is the model's figure, to the cent
    assert float(stated[1]) == round(cost.at_rest().total, 2)
    assert float(stated[1]) == pytest.approx(0.46)


def test_register_adds_the_cost_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="lew")
    cost.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cost", "--archives-per-day", "24", "--seconds-per-archive", "110", "--spot"])
    assert args.handler(args) == 0
    assert "Fargate spot" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "warning"),
    [
        (["--seconds-per-archive", "4000"], "--seconds-per-archive 4000 is above JobTimeout 3600 (--job-timeout)"),
        (["--seconds-per-archive", "90", "--job-timeout", "60"], "--seconds-per-archive 90 is above JobTimeout 60"),
        (["--seconds-per-archive", "3600"], None),
        (["--seconds-per-archive", "4000", "--job-timeout", "7200"], None),
    ],
)
def test_cli_warns_in_one_line_on_stderr_when_jobs_would_outlast_the_job_timeout(
    capsys: pytest.CaptureFixture[str], options: list[str], warning: str | None
) -> None:
    # WHEN a job is said to take longer than JobTimeout lets it run (or not)
    code = exit_code(["cost", "--archives-per-day", "24", *options])

    # THEN the estimate is still printed, with one warning line on stderr naming both values (none otherwise)
    captured = capsys.readouterr()
    assert code == 0
    assert "Compared, per month:" in captured.out
    if warning is None:
        assert captured.err == ""
    else:
        assert captured.err.startswith(f"lew cost: warning: {warning}")
        assert captured.err.endswith("such jobs would time out and fail, not finish; the figures price them as if "
                                     "they finished\n")  # fmt: skip
        assert captured.err.count("\n") == 1
