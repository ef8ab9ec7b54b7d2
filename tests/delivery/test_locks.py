"""RecordLocks: one holder per record key, in a process and across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from engine.delivery.locks import LOCK_FILE_STRIPES, LockTimeoutError, RecordLocks
from engine.planning.plan import RecordKey

CONTACT_A = RecordKey("Contacts", "I_PB", "a@msisdn")
CONTACT_B = RecordKey("Contacts", "I_PB", "b@msisdn")
SIM = RecordKey("SIM_Cards", "I_SIM_Card", 3793)


def far_deadline() -> float:
    return time.monotonic() + 60


@pytest.mark.parametrize(
    ("held", "wanted", "expected_busy"),
    [
        pytest.param([CONTACT_A], [CONTACT_A], True, id="same key is busy"),
        pytest.param([CONTACT_A], [CONTACT_B], False, id="other key is free"),
        pytest.param([CONTACT_A, SIM], [CONTACT_B, SIM], True, id="shared SIM key is busy"),
        pytest.param(
            [SIM],
            [RecordKey("SIM_Cards", "I_SIM_Card", "3793")],
            True,
            id="numeric key as text is the same key",
        ),
    ],
)
@pytest.mark.parametrize("across_processes", [False, True], ids=["threads", "lock files"])
def test_key_contention(
    tmp_path: Path,
    held: list[RecordKey],
    wanted: list[RecordKey],
    expected_busy: bool,
    across_processes: bool,
) -> None:
    lock_dir = tmp_path / "locks" if across_processes else None
    holder = RecordLocks(lock_dir, clock=time.monotonic)
    # A second RecordLocks on the same directory has its own table, like another process.
    contender = RecordLocks(lock_dir, clock=time.monotonic) if across_processes else holder
    acquired = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with holder.hold(held, deadline=far_deadline()):
            acquired.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    acquired.wait(30)
    busy = False
    try:
        with contender.hold(wanted, deadline=time.monotonic() + 0.2):
            pass
    except LockTimeoutError:
        busy = True
    release.set()
    thread.join()

    assert busy is expected_busy


def test_table_empties_after_use() -> None:
    locks = RecordLocks(clock=time.monotonic)
    counter = {"inside": 0, "max_inside": 0}
    guard = threading.Lock()

    def work(number: int) -> None:
        keys = [CONTACT_A, RecordKey("SIM_Cards", "I_SIM_Card", number)]
        with locks.hold(keys, deadline=far_deadline()):
            with guard:
                counter["inside"] += 1
                counter["max_inside"] = max(counter["max_inside"], counter["inside"])
            time.sleep(0.002)
            with guard:
                counter["inside"] -= 1

    threads = [threading.Thread(target=work, args=(number,)) for number in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counter["max_inside"] == 1
    assert locks.held_keys == 0


def test_lock_files_bounded(tmp_path: Path) -> None:
    locks = RecordLocks(tmp_path, clock=time.monotonic)

    for number in range(2000):
        with locks.hold([RecordKey("SIM_Cards", "I_SIM_Card", number)], deadline=far_deadline()):
            pass

    assert len(list(tmp_path.glob("*.lock"))) <= LOCK_FILE_STRIPES


def test_overlapping_keys_no_deadlock() -> None:
    locks = RecordLocks(clock=time.monotonic)
    failures: list[BaseException] = []

    def work(keys: list[RecordKey]) -> None:
        try:
            for _ in range(200):
                with locks.hold(keys, deadline=far_deadline()):
                    pass
        except BaseException as error:  # noqa: BLE001 - reported through the list
            failures.append(error)

    threads = [
        threading.Thread(target=work, args=([CONTACT_A, SIM],)),
        threading.Thread(target=work, args=([SIM, CONTACT_A],)),
        threading.Thread(target=work, args=([CONTACT_B, SIM, CONTACT_A],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [thread.is_alive() for thread in threads] == [False, False, False]
    assert failures == []


HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from engine.delivery.locks import RecordLocks
    from engine.planning.plan import RecordKey
    locks = RecordLocks(Path(sys.argv[1]), clock=time.monotonic)
    with locks.hold([RecordKey("Contacts", "I_PB", "a@msisdn")], deadline=time.monotonic() + 60):
        print("held", flush=True)
        time.sleep(600)
    """
)


@pytest.mark.slow
def test_killed_holder_releases(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    locks = RecordLocks(tmp_path, clock=time.monotonic)

    with pytest.raises(LockTimeoutError):
        with locks.hold([CONTACT_A], deadline=time.monotonic() + 0.2):
            pass
    holder.kill()
    holder.wait(30)
    with locks.hold([CONTACT_A], deadline=time.monotonic() + 10):
        acquired_after_kill = True

    assert acquired_after_kill is True
