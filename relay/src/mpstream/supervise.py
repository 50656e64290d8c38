"""Keep one command running in the background: pid file, log file, restart on crash.

Where no init system manages services (the emulated testbed's network namespaces, or a
measurement that lives only for one run), the roles start the relay, the recorder and the
path watcher through this module:

    python -m mpstream.supervise start  --name relay --state-dir DIR -- mpstream relay ...
    python -m mpstream.supervise status --name relay --state-dir DIR
    python -m mpstream.supervise stop   --name relay --state-dir DIR

`start` detaches a supervisor process (new session, so neither the caller's terminal nor
its exit touches it) in the caller's network namespace. The supervisor runs the command
in its own process group with output appended to `DIR/NAME.log`, restarts it when it
dies (at once after a stable run, with exponential backoff while it keeps dying), and on SIGTERM stops the whole
group and removes `DIR/NAME.pid`. The pid file is JSON and remembers the command line,
so `start` is idempotent: the same command already running is left alone, a different
one is replaced. Every action prints one JSON object (`changed`, `running`, ...) and
`--check` reports what would change without doing it, which is all Ansible needs for
truthful check mode.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESTART_POLICIES = ("on-failure", "always", "never")
EXIT_NOT_RUNNING = 3  # the LSB init-script status code for "program is not running"
LOG_LIMIT_BYTES = 16 << 20  # a long-running relay's log is rotated once it is this big, at (re)start
QUICK_RESTART_S = 0.1  # after a stable run; only a crash loop waits for the backoff
# How often a waiting supervisor looks whether it was asked to stop: a child's exit wakes it
# at once, so this only bounds when a child that ignores SIGTERM starts its stop timeout.
STOP_CHECK_S = 0.5


@dataclass(frozen=True)
class Paths:
    """Where one supervised command keeps its pid file, log and lock."""

    state_dir: Path
    name: str
    log_file: Path | None = None

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.log_file or self.state_dir / f"{self.name}.log"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / f".{self.name}.lock"


@dataclass(frozen=True)
class Policy:
    """How the supervisor treats a command that exits."""

    restart: str = "on-failure"
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    stable_after: float = 10.0  # a crash after a run this long restarts at once
    stop_timeout: float = 10.0  # SIGTERM, then SIGKILL after this long


# --- process identity -------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if it is gone.

    Stored next to every pid so that a recycled pid is never mistaken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])  # field 22 overall


def is_same_process(pid: int | None, start_time: int | None) -> bool:
    if not pid or start_time is None:
        return False
    current = process_start_time(pid)
    if current is None or current != start_time:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False  # a zombie has finished already
    return True


def netns_id(pid: int | str = "self") -> int | None:
    """Inode of the network namespace `pid` lives in."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


# --- state (the pid file) ---------------------------------------------------------


def read_state(paths: Paths) -> dict | None:
    try:
        return json.loads(paths.pid_file.read_text())
    except (OSError, ValueError):
        return None


def write_state(paths: Paths, state: dict) -> None:
    tmp = paths.pid_file.with_name(paths.pid_file.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, paths.pid_file)


def status(paths: Paths) -> dict:
    """What is known about `paths.name`: running or not, and with which command."""
    state = read_state(paths)
    result = {
        "name": paths.name,
        "running": False,
        "pid": None,
        "child_pid": None,
        "command": None,
        "restarts": 0,
        "same_netns": None,
        "pid_file": str(paths.pid_file),
        "log_file": str(paths.log),
    }
    if state is None:
        return result
    running = is_same_process(state.get("pid"), state.get("start_time"))
    child = state.get("child_pid") if is_same_process(state.get("child_pid"), state.get("child_start_time")) else None
    result.update(
        running=running,
        pid=state.get("pid") if running else None,
        child_pid=child,
        command=state.get("command"),
        restarts=state.get("restarts", 0),
        log_file=state.get("log_file", str(paths.log)),
    )
    if running:
        result["same_netns"] = netns_id(state["pid"]) == netns_id()
    return result


@contextlib.contextmanager
def locked(paths: Paths):
    """One start/stop at a time per name (two playbooks may race on a shared host)."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- actions ----------------------------------------------------------------------


def start(paths: Paths, command: list[str], policy: Policy, cwd: str | None = None,
          grace: float = 0.5, check: bool = False) -> dict:
    """Run `command` under a supervisor unless it already runs, here, with this command."""
    if not command:
        raise ValueError("no command given to start")
    with locked(paths):
        current = status(paths)
        if current["running"] and current["command"] == command and current["same_netns"]:
            return {**current, "changed": False}
        if check:
            return {**current, "changed": True}
        if current["running"] or current["child_pid"]:
            _stop_locked(paths, policy.stop_timeout)
        return {**_spawn(paths, command, policy, cwd, grace), "changed": True}


def wait_for_exit(paths: Paths, seconds: float, poll_s: float = 0.2) -> bool:
    """Let the command end by itself for up to `seconds`; True when it is no longer running."""
    deadline = time.monotonic() + seconds
    while status(paths)["running"]:
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def stop(paths: Paths, timeout: float = 10.0, check: bool = False, wait: float = 0.0) -> dict:
    """Stop the supervisor and its command (after letting it end by itself for up to `wait`
    seconds); nothing to do is not an error."""
    if wait > 0 and not check:
        wait_for_exit(paths, wait)
    with locked(paths):
        current = status(paths)
        if check:
            return {**current, "changed": current["running"] or current["child_pid"] is not None}
        changed = _stop_locked(paths, timeout)
        return {**status(paths), "changed": changed}


def restart(paths: Paths, command: list[str], policy: Policy, cwd: str | None = None,
            grace: float = 0.5, check: bool = False) -> dict:
    """Start `command` afresh (for example because its configuration file changed)."""
    with locked(paths):
        if check:
            return {**status(paths), "changed": True}
        _stop_locked(paths, policy.stop_timeout)
        return {**_spawn(paths, command, policy, cwd, grace), "changed": True}


def _stop_locked(paths: Paths, timeout: float) -> bool:
    state = read_state(paths) or {}
    changed = False
    supervisor = state.get("pid")
    if is_same_process(supervisor, state.get("start_time")):
        os.kill(supervisor, signal.SIGTERM)  # the supervisor stops its child itself
        changed = True
        if not _wait_gone(supervisor, state["start_time"], timeout + 2.0):
            os.kill(supervisor, signal.SIGKILL)
            _wait_gone(supervisor, state["start_time"], 2.0)
    child = state.get("child_pid")
    if is_same_process(child, state.get("child_start_time")):
        # The supervisor died without cleaning up (SIGKILL, OOM): stop the orphaned group.
        changed = True
        _terminate_group(child, state["child_start_time"], timeout)
    with contextlib.suppress(FileNotFoundError):
        paths.pid_file.unlink()
    return changed


def _wait_gone(pid: int, start_time: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(pid, start_time):
            return True
        time.sleep(0.02)
    return not is_same_process(pid, start_time)


def _terminate_group(pid: int, start_time: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if not _wait_gone(pid, start_time, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_gone(pid, start_time, 2.0)


def _spawn(paths: Paths, command: list[str], policy: Policy, cwd: str | None, grace: float) -> dict:
    with contextlib.suppress(FileNotFoundError):
        paths.pid_file.unlink()
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    rotate_log(paths.log)
    argv = [
        sys.executable, "-m", "mpstream.supervise", "run",
        "--name", paths.name, "--state-dir", str(paths.state_dir), "--log-file", str(paths.log),
        "--restart", policy.restart, "--backoff-initial", str(policy.backoff_initial),
        "--backoff-max", str(policy.backoff_max), "--stable-after", str(policy.stable_after),
        "--stop-timeout", str(policy.stop_timeout),
    ]
    if cwd:
        argv += ["--cwd", cwd]
    argv += ["--", *command]
    with open(paths.log, "ab") as log:
        supervisor = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, close_fds=True,
        )
    # Wait until the supervisor has written its state and the command is up; then watch
    # it for `grace` seconds so that a command that fails at once fails the caller too.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        state = read_state(paths)
        if state and state.get("pid") == supervisor.pid and (state.get("child_pid") or _failed_early(state)):
            break
        if supervisor.poll() is not None:
            break
        time.sleep(0.02)
    watch_until = time.monotonic() + grace
    while time.monotonic() < watch_until and supervisor.poll() is None:
        state = read_state(paths) or {}
        if _failed_early(state):
            break
        time.sleep(0.02)
    state = read_state(paths) or {}
    if _failed_early(state) or (supervisor.poll() is not None and "exited" not in state):
        _stop_locked(paths, policy.stop_timeout)
        supervisor.wait()
        raise CommandFailed(f"{command[0]} exited at once; last lines of {paths.log}:\n{_tail(paths.log)}")
    return status(paths)


def rotate_log(log: Path, limit: int = LOG_LIMIT_BYTES) -> bool:
    """Keep one previous log (`NAME.log.1`) when the log has grown past `limit`; at start only."""
    try:
        if log.stat().st_size <= limit:
            return False
    except FileNotFoundError:
        return False
    os.replace(log, log.with_name(log.name + ".1"))
    return True


def _failed_early(state: dict) -> bool:
    """Restarted already, or gave up with an error (a clean exit 0 is not a failure)."""
    return state.get("restarts", 0) > 0 or state.get("exited") not in (None, 0)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class CommandFailed(RuntimeError):
    """The supervised command did not stay up."""


# --- the supervisor itself --------------------------------------------------------


def supervise(paths: Paths, command: list[str], policy: Policy, cwd: str | None = None) -> int:
    """The supervisor's loop: run, wait, restart with backoff, until SIGTERM."""
    stopping = False
    child: subprocess.Popen | None = None

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)

    me = os.getpid()
    state = {
        "name": paths.name,
        "pid": me,
        "start_time": process_start_time(me),
        "command": command,
        "cwd": cwd,
        "log_file": str(paths.log),
        "started_at": time.time(),
        "restarts": 0,
        "child_pid": None,
        "child_start_time": None,
    }
    backoff = policy.backoff_initial
    code = 0
    while not stopping:
        began = time.monotonic()
        _log(f"starting: {' '.join(command)}")
        try:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sys.stdout,
                                     stderr=sys.stderr, cwd=cwd, process_group=0)
        except OSError as exc:
            _log(f"cannot start {command[0]}: {exc}")
            code = 127
        else:
            state.update(child_pid=child.pid, child_start_time=process_start_time(child.pid))
            write_state(paths, state)
            if stopping:  # the signal came before the child existed
                os.killpg(child.pid, signal.SIGTERM)
            code = _wait_child(child, policy.stop_timeout, lambda: stopping)
            state.update(child_pid=None, child_start_time=None)
        if stopping:
            break
        _log(f"exited with code {code}")
        if policy.restart == "never" or (policy.restart == "on-failure" and code == 0):
            state["exited"] = code
            break
        if time.monotonic() - began >= policy.stable_after:
            # It ran well and then died: come back at once (viewers are waiting), and
            # start the backoff afresh in case it keeps dying now.
            delay, backoff = QUICK_RESTART_S, policy.backoff_initial
        else:
            delay, backoff = backoff, min(backoff * 2, policy.backoff_max)
        state["restarts"] += 1
        write_state(paths, state)
        _log(f"restarting in {delay:g} s")
        wake = time.monotonic() + delay
        while not stopping and time.monotonic() < wake:
            time.sleep(min(0.05, delay))
    _log("stopped" if stopping else "not restarting")
    if read_state(paths) and read_state(paths).get("pid") == me:
        if stopping:
            with contextlib.suppress(FileNotFoundError):
                paths.pid_file.unlink()
        else:
            write_state(paths, state)  # keep the exit code for `status`
    return 0 if stopping else code


def _wait_child(child: subprocess.Popen, stop_timeout: float, stopping) -> int:
    """Wait for the child; once stopping, give its group `stop_timeout` before SIGKILL.

    The wait sleeps in poll(2) on a pidfd, which the child's exit makes readable: Popen's
    own wait with a timeout polls waitpid about 50 times a second (strace), which cost each
    supervisor 5-7 % of an emulated CPU, with three to five of them on every node.
    """
    try:
        pidfd = os.pidfd_open(child.pid)
    except ProcessLookupError:  # already reaped (by the signal handler's poll)
        return child.wait()
    try:
        exited = select.poll()
        exited.register(pidfd, select.POLLIN)
        kill_at = None
        while True:
            timeout = STOP_CHECK_S if kill_at is None else max(0.0, kill_at - time.monotonic())
            if exited.poll(timeout * 1000):
                break
            if kill_at is None:
                if stopping():
                    kill_at = time.monotonic() + stop_timeout
            elif time.monotonic() >= kill_at:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                break
        return child.wait()
    finally:
        os.close(pidfd)


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} supervise: {message}", file=sys.stderr, flush=True)


# --- command line -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mpstream.supervise",
                                     description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="action", required=True)
    for action in ("start", "restart", "stop", "status", "run"):
        sub = actions.add_parser(action)
        sub.add_argument("--name", required=True, help="what is supervised (names the pid and log files)")
        sub.add_argument("--state-dir", required=True, type=Path, help="where the pid and log files live")
        sub.add_argument("--log-file", type=Path, help="log file (default: STATE_DIR/NAME.log)")
        if action in ("start", "restart", "stop"):
            sub.add_argument("--check", action="store_true", help="report what would change, change nothing")
        if action == "stop":
            sub.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                             help="first let the command end by itself for up to this long (default: 0)")
        sub.add_argument("--stop-timeout", type=float, default=10.0,
                         help="seconds between SIGTERM and SIGKILL (default: 10)")
        if action in ("start", "restart", "run"):
            sub.add_argument("--restart", choices=RESTART_POLICIES, default="on-failure",
                             help="when to restart the command (default: on-failure)")
            sub.add_argument("--backoff-initial", type=float, default=1.0,
                             help="first restart delay in seconds (default: 1)")
            sub.add_argument("--backoff-max", type=float, default=30.0,
                             help="longest restart delay in seconds (default: 30)")
            sub.add_argument("--stable-after", type=float, default=10.0,
                             help="a crash after a run this long restarts at once, resetting the backoff (default: 10)")
            sub.add_argument("--cwd", help="working directory of the command")
            sub.add_argument("--grace", type=float, default=0.5,
                             help="fail if the command dies within this many seconds (default: 0.5)")
            sub.add_argument("command", nargs="+", help="the command, after --")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths(args.state_dir.resolve(), args.name, args.log_file)
    if args.action == "status":
        result = status(paths)
        print(json.dumps(result))
        return 0 if result["running"] else EXIT_NOT_RUNNING
    if args.action == "stop":
        print(json.dumps(stop(paths, args.stop_timeout, args.check, args.wait)))
        return 0
    policy = Policy(args.restart, args.backoff_initial, args.backoff_max, args.stable_after, args.stop_timeout)
    if args.action == "run":
        return supervise(paths, args.command, policy, args.cwd)
    action = start if args.action == "start" else restart
    try:
        result = action(paths, args.command, policy, args.cwd, args.grace, args.check)
    except CommandFailed as exc:
        print(json.dumps({**status(paths), "changed": True, "failed": True, "msg": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
