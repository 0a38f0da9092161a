"""The durable spool: order, persistence, crash recovery, corruption, bounds."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from affectstream.errors import ConfigError, StoreError
from affectstream.store.spool import HEADER_SIZE, Spool, SpoolFullError, encode_record


def drain(spool: Spool, max_bytes: int = 64) -> list[bytes]:
    """Read and acknowledge everything pending; return the payloads' lines in order."""
    lines: list[bytes] = []
    while (batch := spool.read_batch(max_bytes)) is not None:
        lines.extend(batch.payload.splitlines())
        spool.ack(batch)
    return lines


def records(n: int, start: int = 0) -> list[bytes]:
    return [f"line {i}\n".encode() for i in range(start, start + n)]


def test_records_come_back_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    payloads = records(100)
    for payload in payloads:
        spool.append(payload)
    assert len(list(tmp_path.glob("*.seg"))) > 5
    assert drain(spool) == [p.rstrip(b"\n") for p in payloads]
    assert spool.pending_bytes == 0
    # acknowledged segments are deleted: only the one being appended to is left
    assert len(list(tmp_path.glob("*.seg"))) == 1
    spool.close()


def test_waiting_for_a_past_end_ignores_what_was_appended_after_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    for payload in records(6):
        spool.append(payload)
    end = spool.end  # what a flush started now waits for
    assert not spool.wait_until_acknowledged(end, 0.0)
    for payload in records(6, start=6):  # a writer that keeps appending during the flush
        spool.append(payload)
    while not spool.wait_until_acknowledged(end, 0.0):
        batch = spool.read_batch(60)  # one or two records at a time
        assert batch is not None
        spool.ack(batch)
    assert spool.pending_bytes > 0  # the later records are still pending: not waited for
    assert spool.cursor >= end
    spool.close()


def test_concurrent_appends_keep_every_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096, fsync="os")
    threads = [
        threading.Thread(target=lambda k=k: [spool.append(p) for p in records(200, 1000 * k)])
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = drain(spool, max_bytes=1000)
    expected = [p.rstrip(b"\n") for k in range(4) for p in records(200, 1000 * k)]
    assert sorted(got) == sorted(expected)
    for k in range(4):  # each writer's records stay in its own order
        mine = [line for line in got if int(line.split()[1]) // 1000 == k]
        assert mine == [p.rstrip(b"\n") for p in records(200, 1000 * k)]
    spool.close()


def test_unacknowledged_records_survive_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    for payload in records(10):
        spool.append(payload)
    first = spool.read_batch(30)
    assert first is not None
    spool.ack(first)
    n_acked = len(first.payload.splitlines())
    unacked = spool.read_batch(30)  # read but not acknowledged: must come back
    assert unacked is not None
    spool.close()
    reopened = Spool(tmp_path, segment_bytes=100)
    assert drain(reopened) == [p.rstrip(b"\n") for p in records(10)[n_acked:]]
    reopened.close()


def test_torn_tail_from_a_crash_is_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    for payload in records(3):
        spool.append(payload)
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    torn = encode_record(b"never acknowledged to its writer\n")[:-5]
    with open(segment, "ab") as handle:
        handle.write(torn)
    with caplog.at_level(logging.WARNING):
        reopened = Spool(tmp_path)
    assert any("cut short" in r.getMessage() for r in caplog.records)
    reopened.append(b"after\n")
    assert drain(reopened) == [*(p.rstrip(b"\n") for p in records(3)), b"after"]
    reopened.close()


def test_corrupt_record_is_quarantined_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    payloads = records(5)
    for payload in payloads:
        spool.append(payload)
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    second = len(encode_record(payloads[0]))
    data[second + HEADER_SIZE + 2] ^= 0xFF  # flip a payload byte of record 2
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        reopened = Spool(tmp_path)
    assert any("fail their checksum" in r.getMessage() for r in caplog.records)
    quarantined = list((tmp_path / "corrupt").iterdir())
    assert len(quarantined) == 1
    damaged = bytes(data[second : second + len(encode_record(payloads[1]))])
    assert quarantined[0].read_bytes() == damaged
    expected = [p.rstrip(b"\n") for i, p in enumerate(payloads) if i != 1]
    assert drain(reopened) == expected
    reopened.close()


def test_full_spool_raises_and_keeps_what_it_has(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    payload = b"x" * 88 + b"\n"
    record_size = len(encode_record(payload))
    spool = Spool(tmp_path, max_bytes=10 * record_size, on_full="raise")
    with caplog.at_level(logging.WARNING):
        for _ in range(10):
            spool.append(payload)
        with pytest.raises(SpoolFullError, match="NOT stored"):
            spool.append(payload)
    warnings = [r.getMessage() for r in caplog.records if "full" in r.getMessage()]
    assert [w.split(" is ")[1].split("%")[0] for w in warnings] == ["50", "80", "100"]
    assert len(drain(spool, max_bytes=10 * record_size)) == 10
    spool.append(payload)  # space again once the sender caught up
    spool.close()


def test_full_spool_blocks_until_the_sender_frees_space(tmp_path: Path) -> None:
    payload = b"y" * 50 + b"\n"
    record_size = len(encode_record(payload))
    spool = Spool(tmp_path, max_bytes=3 * record_size, segment_bytes=record_size, full_timeout=30)
    for _ in range(3):
        spool.append(payload)
    done = threading.Event()
    writer = threading.Thread(target=lambda: (spool.append(b"z\n"), done.set()))
    writer.start()
    batch = spool.read_batch(1)
    assert batch is not None
    spool.ack(batch)  # frees one segment: the blocked append can go on
    writer.join(30)
    assert done.is_set()
    assert drain(spool)[-1] == b"z"
    spool.close()


def test_block_policy_gives_up_after_its_timeout(tmp_path: Path) -> None:
    payload = b"w\n"
    spool = Spool(tmp_path, max_bytes=len(encode_record(payload)), full_timeout=0.2)
    spool.append(payload)
    with pytest.raises(SpoolFullError, match=r"waited 0\.2 s"):
        spool.append(payload)
    with pytest.raises(SpoolFullError, match="can never fit"):
        spool.append(b"v" * 100)
    spool.close()


def test_one_process_per_spool_and_options_checked(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(StoreError, match=f"in use by pid {os.getpid()}"):
        Spool(tmp_path)
    spool.close()
    Spool(tmp_path).close()  # released on close
    with pytest.raises(ConfigError, match="fsync"):
        Spool(tmp_path, fsync="sometimes")  # type: ignore[arg-type]


_APPENDER = """
import sys
from affectstream.store.spool import Spool
spool = Spool(sys.argv[1], segment_bytes=4096)
i = 0
while True:
    spool.append(f"record {i}\\n".encode())
    print(i, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_kill_9_loses_no_appended_record(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    last_reported = -1
    for line in process.stdout:
        last_reported = int(line)
        if last_reported >= 300:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    spool = Spool(tmp_path, segment_bytes=4096)
    got = drain(spool, max_bytes=4096)
    spool.close()
    numbers = [int(line.split()[1]) for line in got]
    # Every record whose append returned is there, in order, once; at most the one
    # append in progress at the kill may follow.
    assert numbers == list(range(len(numbers)))
    assert last_reported < len(numbers) <= last_reported + 2 + 1000


def test_cursor_past_a_truncated_segment_is_clamped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    for payload in records(4):
        spool.append(payload)
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    (tmp_path / "cursor").write_text(f"{int(segment.stem)} {segment.stat().st_size + 100}\n")
    with caplog.at_level(logging.ERROR):
        reopened = Spool(tmp_path)
    assert any("points past the end" in r.getMessage() for r in caplog.records)
    assert reopened.pending_bytes == 0
    reopened.append(b"next\n")
    assert drain(reopened) == [b"next"]
    reopened.close()
