"""A nightly ETL step for lew's scheduled jobs: the archive holds this script and its configuration.

Packed with its configuration and put where the stack's schedule finds it:

    cd examples/nightly_etl && zip ../../nightly-etl.zip etl.py config.json && cd -
    lew local up --processor command --param ProcessCommand="python3 etl.py" \\
        --param ProcessParameters="mode:choice:full|delta" \\
        --param ScheduleExpression="rate(1 day)" --param ScheduleObjectKey=schedules/nightly-etl.zip
    lew schedule upload nightly-etl.zip --param mode=delta
    lew schedule fire --wait

Each run is told its scheduled time (LEW_SCHEDULED_TIME, ISO 8601 UTC, with milliseconds when fired on demand) and
id (LEW_RUN_ID); a real step would extract the day before it from its source. This one writes the window it would
process, in `report.json`, to the run's own results folder. A bad configuration is refused with one line on stderr
and exit code 3 (a permanent failure: the run's manifest says why, and retrying would not help).
"""

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path


def window(scheduled_time: str, days: int) -> tuple[str, str]:
    """The [start, end) dates a run processes: the `days` whole days before its scheduled time."""
    end = datetime.fromisoformat(scheduled_time).date()
    return (end - timedelta(days=days)).isoformat(), end.isoformat()


def main() -> int:
    try:
        config = json.loads(Path("config.json").read_text(encoding="utf-8"))
        tables, days = list(config["tables"]), int(config["days"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"config.json is not a usable configuration: {error}", file=sys.stderr)
        return 3
    scheduled = os.environ.get("LEW_SCHEDULED_TIME") or datetime.now().astimezone().isoformat()
    start, end = window(scheduled, days)
    report = {
        "run": os.environ.get("LEW_RUN_ID"),
        "scheduled_time": scheduled,
        "mode": os.environ.get("LEW_PARAM_MODE", "full"),
        "window": {"start": start, "end": end},
        "tables": tables,
    }
    Path(os.environ["LEW_OUTPUT_DIR"], "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"processed {', '.join(tables)} from {start} to {end} ({report['mode']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
