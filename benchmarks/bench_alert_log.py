"""What the alert log costs: a transition's commit (the live push waits for it) and the
"firing now" query each joining live client makes, with and without its index.

Usage: ``python benchmarks/bench_alert_log.py [--database-url URL] [--rows 100000]``. Without
a URL it uses a fresh SQLite file (the service's pragmas); a PostgreSQL URL must name an empty
database (the schema is migrated into it, and the tables it makes are filled). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from affectstream.api.alert_log import alert_message, firing, log_transition
from affectstream.api.db import AlertDelivery, AlertRule, make_engine, session_factory, upgrade

# The rows the alert-log test starts from (run from anywhere: the repository root on the path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.api.metadata_rows import running_sessions

RULES = 5
SESSIONS = 1000


def _ms(run: Callable[[], Any], n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (n - 1))], 3),
        "n": n,
    }


def main() -> None:
    """Fill the log, time the commit and the query, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-alert-log-")
    url = args.database_url or f"sqlite:///{Path(folder) / 'meta.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as db:
        ids = [f"bench-{i}" for i in range(SESSIONS)]
        study_id = running_sessions(db, ids)
        rules = [
            AlertRule(study_id=study_id, name=f"r{i}", kind="signal_lost") for i in range(RULES)
        ]
        db.add_all(rules)
        db.commit()
        # Rows spread over the sessions and rules, alternating fired / cleared per pair; the
        # last row of each pair is "fired", so every rule fires on every session.
        last = (args.rows - 1) // (RULES * SESSIONS)
        rows = [
            {
                "rule_id": rules[i % RULES].id,
                "session_id": ids[(i // RULES) % SESSIONS],
                "t": 1.8e9 + i,
                "state": "fired" if (i // (RULES * SESSIONS) - last) % 2 == 0 else "cleared",
                "value": 1.0,
                "status": "live_only",
                "attempts": 0,
                "last_error": "",
            }
            for i in range(args.rows)
        ]
        db.execute(insert(AlertDelivery), rows)
        db.commit()
        one = ids[SESSIONS // 2]
        expected = len(firing(db, one))
        indexed = _ms(lambda: firing(db, one), 200)
        payload = alert_message(rules[0], one, "fired", 2.0, time.time())
        commit = _ms(lambda: log_transition(db, dict(payload), webhook=False), 200)
        db.execute(text("DROP INDEX ix_alert_deliveries_session"))
        db.commit()
        unindexed = _ms(lambda: firing(db, one), 20)
    engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)
    report = {
        "database": engine.url.get_backend_name(),
        "log_rows": args.rows,
        "sessions": SESSIONS,
        "rules": RULES,
        "firing_on_one_session": expected,
        "log_transition_commit": commit,
        "firing_query_indexed": indexed,
        "firing_query_without_index": unindexed,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
