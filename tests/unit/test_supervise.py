"""The supervisor: idempotent start/stop/status, restart with backoff, clean stop.

Real processes (no root needed): short `python -c` commands stand in for the relay."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mpstream import supervise

from tests.support.testbed import wait_for

pytestmark = pytest.mark.timeout(60)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FAST = supervise.Policy(backoff_initial=0.05, backoff_max=0.2, stable_after=5.0, stop_timeout=2.0)


def cli(*args: str) -> tuple[int, dict]:
    """Run the module's command line as Ansible does; returns (exit code, JSON output)."""
    done = subprocess.run([sys.executable, "-m", "mpstream.supervise", *args],
                          check=False, capture_output=True, text=True, timeout=30)
    return done.returncode, json.loads(done.stdout)


def alive(pid: int | None) -> bool:
    return supervise.is_same_process(pid, supervise.process_start_time(pid) if pid else None)


@pytest.fixture
def paths(tmp_path):
    paths = supervise.Paths(tmp_path / "state", "demo")
    yield paths
    supervise.stop(paths, timeout=2.0)  # never leave a process behind, even on failure


def test_start_status_stop_round_trip(paths):
    started = supervise.start(paths, SLEEPER, FAST)
    assert started["changed"] is True
    assert started["running"] is True and started["same_netns"] is True
    assert started["command"] == SLEEPER
    child = started["child_pid"]
    assert alive(started["pid"]) and alive(child)
    assert json.loads(paths.pid_file.read_text())["child_pid"] == child

    stopped = supervise.stop(paths, timeout=2.0)
    assert stopped["changed"] is True and stopped["running"] is False
    assert not paths.pid_file.exists()
    assert wait_for(lambda: not alive(child))
    assert supervise.stop(paths)["changed"] is False


def test_start_is_idempotent_and_replaces_a_different_command(paths):
    first = supervise.start(paths, SLEEPER, FAST)
    again = supervise.start(paths, SLEEPER, FAST)
    assert again["changed"] is False and again["pid"] == first["pid"]

    other = [sys.executable, "-c", "import time; time.sleep(121)"]
    replaced = supervise.start(paths, other, FAST)
    assert replaced["changed"] is True and replaced["command"] == other
    assert replaced["pid"] != first["pid"]
    assert wait_for(lambda: not alive(first["child_pid"]))


def test_check_mode_reports_without_acting(paths):
    would = supervise.start(paths, SLEEPER, FAST, check=True)
    assert would["changed"] is True and would["running"] is False
    assert not paths.pid_file.exists()

    supervise.start(paths, SLEEPER, FAST)
    assert supervise.start(paths, SLEEPER, FAST, check=True)["changed"] is False
    assert supervise.stop(paths, check=True)["changed"] is True
    assert supervise.status(paths)["running"] is True  # the check stopped nothing


def test_a_crashing_command_is_restarted_with_growing_backoff(paths, tmp_path):
    marks = tmp_path / "marks"
    # Up for longer than the start grace, then a crash: the supervisor must bring it back.
    script = (f"import time; open({str(marks)!r}, 'a').write(f'{{time.monotonic()}}\\n'); "
              "time.sleep(0.6); raise SystemExit(3)")
    crasher = [sys.executable, "-c", script]
    supervise.start(paths, crasher, FAST)
    assert wait_for(lambda: marks.exists() and len(marks.read_text().split()) >= 4, timeout=10)
    stamps = [float(line) for line in marks.read_text().split()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert all(gap >= 0.6 for gap in gaps)
    assert gaps[-1] > gaps[0]  # the backoff grew (0.05 s, 0.1 s, 0.2 s on top of the run)
    state = supervise.status(paths)
    assert state["running"] is True and state["restarts"] >= 3
    assert "exited with code 3" in paths.log.read_text()


def test_a_crash_after_a_stable_run_is_restarted_at_once(paths, tmp_path):
    marks = tmp_path / "marks"
    script = (f"import time; open({str(marks)!r}, 'a').write(f'{{time.monotonic()}}\\n'); "
              "time.sleep(0.8); raise SystemExit(1)")
    # Runs count as stable after 0.6 s; the backoff (3 s) is for crash loops only.
    policy = supervise.Policy(backoff_initial=3.0, backoff_max=3.0, stable_after=0.6, stop_timeout=2.0)
    supervise.start(paths, [sys.executable, "-c", script], policy)
    assert wait_for(lambda: marks.exists() and len(marks.read_text().split()) >= 2, timeout=10)
    first, second = (float(line) for line in marks.read_text().split()[:2])
    assert 0.8 <= second - first < 0.8 + 1.0  # restarted without waiting out the 3 s backoff


def test_a_command_that_fails_at_once_fails_start_and_leaves_nothing(paths):
    failing = [sys.executable, "-c", "import sys; print('no config'); sys.exit(2)"]
    with pytest.raises(supervise.CommandFailed, match="no config"):
        supervise.start(paths, failing, FAST)
    assert supervise.status(paths)["running"] is False
    assert not paths.pid_file.exists()

    code, out = cli("start", "--name", paths.name, "--state-dir", str(paths.state_dir),
                    "--backoff-initial", "0.05", "--", *failing)
    assert code == 1 and out["failed"] is True and "no config" in out["msg"]


def test_a_command_that_cannot_be_executed_fails_start(paths):
    with pytest.raises(supervise.CommandFailed, match="cannot start"):
        supervise.start(paths, ["/nonexistent/mpstream", "relay"], FAST)


def test_stop_terminates_the_whole_process_group(paths, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    shell = ["sh", "-c", f"sleep 120 & echo $! > {pid_file}; wait"]
    supervise.start(paths, shell, FAST)
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
    grandchild = int(pid_file.read_text())
    assert alive(grandchild)
    supervise.stop(paths, timeout=2.0)
    assert wait_for(lambda: not alive(grandchild))


def test_sigterm_to_the_supervisor_stops_the_command_and_cleans_up(paths):
    started = supervise.start(paths, SLEEPER, FAST)
    os.kill(started["pid"], signal.SIGTERM)
    assert wait_for(lambda: not alive(started["pid"]) and not alive(started["child_pid"]))
    assert not paths.pid_file.exists()
    assert supervise.status(paths)["running"] is False


def test_a_command_ignoring_sigterm_is_killed_after_the_timeout(paths):
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"]
    policy = supervise.Policy(stop_timeout=0.3)
    started = supervise.start(paths, stubborn, policy)
    began = time.monotonic()
    supervise.stop(paths, timeout=0.3)
    assert not alive(started["child_pid"])
    assert time.monotonic() - began < 3


def test_an_orphaned_command_is_stopped_when_its_supervisor_was_killed(paths):
    started = supervise.start(paths, SLEEPER, FAST)
    os.kill(started["pid"], signal.SIGKILL)
    assert wait_for(lambda: not alive(started["pid"]))
    orphan = supervise.status(paths)
    assert orphan["running"] is False and orphan["child_pid"] == started["child_pid"]
    assert supervise.stop(paths, timeout=2.0)["changed"] is True
    assert wait_for(lambda: not alive(started["child_pid"]))


def test_a_stale_pid_file_does_not_count_as_running(paths):
    paths.state_dir.mkdir(parents=True)
    # A pid that exists (ours) but with another start time: a recycled pid, not the supervisor.
    supervise.write_state(paths, {"pid": os.getpid(), "start_time": 1, "command": SLEEPER})
    assert supervise.status(paths)["running"] is False
    assert supervise.start(paths, SLEEPER, FAST)["running"] is True


def test_a_clean_exit_is_not_restarted_under_on_failure(paths, tmp_path):
    marks = tmp_path / "marks"
    once = [sys.executable, "-c", f"open({str(marks)!r}, 'a').write('x')"]
    result = supervise.start(paths, once, FAST)
    assert result["running"] is False
    time.sleep(0.3)
    assert marks.read_text() == "x"


def test_command_line_status_exit_codes(paths):
    args = ("--name", paths.name, "--state-dir", str(paths.state_dir))
    code, out = cli("status", *args)
    assert code == supervise.EXIT_NOT_RUNNING and out["running"] is False
    code, out = cli("start", *args, "--", *SLEEPER)
    assert code == 0 and out["changed"] is True
    code, out = cli("start", *args, "--", *SLEEPER)
    assert code == 0 and out["changed"] is False
    code, out = cli("status", *args)
    assert code == 0 and out["command"] == SLEEPER
    code, out = cli("restart", *args, "--", *SLEEPER)
    assert code == 0 and out["changed"] is True
    code, out = cli("stop", *args)
    assert code == 0 and out["changed"] is True and out["running"] is False
    assert Path(out["log_file"]).read_text().count("starting:") == 2


def test_a_large_log_is_rotated_at_start(tmp_path):
    log = tmp_path / "relay.log"
    assert supervise.rotate_log(log, limit=10) is False  # nothing to rotate
    log.write_text("x" * 11)
    assert supervise.rotate_log(log, limit=10) is True
    assert not log.exists() and (tmp_path / "relay.log.1").read_text() == "x" * 11
    log.write_text("short")
    assert supervise.rotate_log(log, limit=10) is False and log.read_text() == "short"


def test_stop_can_first_let_the_command_end_by_itself(paths, tmp_path):
    done = tmp_path / "done"
    finishing = [sys.executable, "-c", f"import time; time.sleep(0.6); open({str(done)!r}, 'w').write('ok')"]
    supervise.start(paths, finishing, supervise.Policy("never", stop_timeout=2.0))
    started = time.monotonic()
    stopped = supervise.stop(paths, timeout=2.0, wait=10.0)
    assert done.read_text() == "ok"  # it ended by itself, not by SIGTERM
    assert stopped["running"] is False and time.monotonic() - started < 5


def test_stop_waits_no_longer_than_asked(paths):
    supervise.start(paths, SLEEPER, FAST)
    started = time.monotonic()
    code, out = cli("stop", "--name", paths.name, "--state-dir", str(paths.state_dir), "--wait", "0.5")
    assert code == 0 and out["changed"] is True and out["running"] is False
    assert 0.5 <= time.monotonic() - started < 8
