"""The OpenAPI contract, fuzzed by schemathesis against a real ``affectstream serve``.

Checks: no 5xx for any generated request, and every documented response matches its schema.
The server gets its own home and ``max_running_sessions = 0`` so generated ``POST /sessions``
calls are refused (409) instead of starting emulated sessions of up to a day each; starting
sessions is covered by tests/api/test_live.py and test_ingest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from affectstream.api.serve_process import ServeProcess
from tests.api.conftest import Server

EXAMPLES = int(os.environ.get("AFFECTSTREAM_SCHEMATHESIS_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"AFFECTSTREAM_API_MAX_RUNNING_SESSIONS": "0"}
    with ServeProcess(home=tmp_path_factory.mktemp("fuzz-home"), env=env) as srv:
        yield srv


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(fuzz_server: Server, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{fuzz_server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {fuzz_server.admin_key}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--report-dir",
        str(tmp_path),
        "--no-color",
    ]
    result = subprocess.run(  # in tmp_path: schemathesis keeps a cache in its working folder
        command, capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path
    )
    summary = result.stdout[-4000:]
    assert result.returncode == 0, f"{summary}\n--- server log ---\n{fuzz_server.log_tail()}"
    assert "Tested: " in result.stdout
