"""The spool on a genuinely full disk: a small tmpfs mounted for the test.

ENOSPC here is the kernel's, not a fake: each test mounts a tmpfs of a few hundred KB
(skipped where mounting is not permitted, i.e. not root), fills it with a filler file and
frees space by shrinking that file.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from affectstream.store.spool import HEADER_SIZE, Spool, SpoolFullError, encode_record

DISK = 512 << 10


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes with a filler file."""
    filler = disk / "filler"
    with open(filler, "ab") as handle:
        handle.write(b"\0" * max(0, free_bytes(disk) - leave))
    return filler


def payload(i: int, size: int = 3000) -> bytes:
    head = f"rec {i} ".encode()
    return head + b"x" * (size - len(head) - 1) + b"\n"


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (batch := spool.read_batch(1 << 20)) is not None:
        out.extend(batch.payload.splitlines(keepends=True))
        spool.ack(batch)
    return out


def append_until_full(spool: Spool, start: int = 0) -> list[bytes]:
    accepted = []
    for i in range(start, start + 10_000):
        try:
            spool.append(payload(i))
        except SpoolFullError as exc:
            assert "NOT stored" in str(exc) and "disk" in str(exc)
            return accepted
        accepted.append(payload(i))
    raise AssertionError("the disk never filled")


def test_full_disk_leaves_no_partial_record(disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(disk / "spool", fsync="os")
    fill(disk, 40_000)
    accepted = append_until_full(spool)
    assert accepted  # some fitted
    segments = sorted((disk / "spool").glob("*.seg"))
    assert sum(p.stat().st_size for p in segments) == sum(len(encode_record(p)) for p in accepted)
    spool.close()
    with caplog.at_level(logging.WARNING):
        reopened = Spool(disk / "spool", fsync="os")
    assert not any("cut short" in r.getMessage() for r in caplog.records)
    assert not (disk / "spool" / "corrupt").exists()
    assert drain(reopened) == accepted
    reopened.close()


def test_a_failed_multi_record_write_takes_nothing(disk: Path) -> None:
    spool = Spool(disk / "spool", fsync="os")
    spool.append(payload(0))
    fill(disk, 20_000)
    before = spool.pending_bytes
    with pytest.raises(SpoolFullError):
        spool.append_many([payload(i) for i in range(1, 30)])  # ~90 KB: part would fit
    assert spool.pending_bytes == before
    for _ in range(3):  # a caller retrying: nothing piles up
        with pytest.raises(SpoolFullError):
            spool.append_many([payload(i) for i in range(1, 30)])
    assert spool.pending_bytes == before
    assert drain(spool) == [payload(0)]
    spool.close()


def test_acknowledged_space_returns_to_the_disk_at_once(disk: Path) -> None:
    """Without waiting for the 16 MB segment to be passed: blocks are freed as acknowledged."""
    spool = Spool(disk / "spool", fsync="os")
    fill(disk, 200_000)
    accepted = append_until_full(spool)
    assert len(accepted) > 30
    free_when_full = free_bytes(disk)
    batch = spool.read_batch(len(accepted) // 2 * 3000)
    assert batch is not None and batch.n_records < len(accepted)
    spool.ack(batch)
    freed = free_bytes(disk) - free_when_full
    assert freed >= len(batch.payload) - 2 * 4096 - batch.n_records * HEADER_SIZE
    # The freed space takes new records; every record comes out once, in order.
    more = append_until_full(spool, start=len(accepted))
    assert more
    assert drain(spool) == accepted[batch.n_records :] + more
    spool.close()


def test_writes_recover_when_space_returns(disk: Path) -> None:
    spool = Spool(disk / "spool", fsync="os")
    filler = fill(disk, 30_000)
    first = append_until_full(spool)
    with pytest.raises(SpoolFullError):
        spool.append(payload(99_999))
    os.truncate(filler, 0)  # space is back
    later = [payload(100_000 + i) for i in range(50)]
    for item in later:
        spool.append(item)
    assert drain(spool) == first + later
    spool.close()


def test_reopening_on_a_full_disk(disk: Path) -> None:
    spool = Spool(disk / "spool", fsync="os")
    kept = [payload(i) for i in range(5)]
    for item in kept:
        spool.append(item)
    spool.close()
    fill(disk, 0)
    # An existing spool opens (its data can still be sent) ...
    reopened = Spool(disk / "spool", fsync="os")
    assert drain(reopened) == kept
    reopened.close()
    # ... and so does a new one; its first write says what is wrong, in one line.
    fill(disk, 0)
    fresh = Spool(disk / "new", fsync="os")
    with pytest.raises(SpoolFullError) as info:
        fresh.append(payload(0))
    message = str(info.value)
    assert "\n" not in message and "disk" in message and "NOT stored" in message
    fresh.close()


def test_damaged_length_of_the_last_record_is_moved_to_corrupt(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    items = [payload(i, 200) for i in range(4)]
    for item in items:
        spool.append(item)
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    last = len(data) - len(encode_record(items[-1]))
    data[last + 4 : last + 8] = (10_000).to_bytes(4, "little")  # length field now too large
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path)
    assert reopened.corrupt_records == 1
    moved = list((tmp_path / "corrupt").iterdir())
    assert [p.read_bytes() for p in moved] == [bytes(data[last:])]
    assert drain(reopened) == items[:-1]
    reopened.close()
