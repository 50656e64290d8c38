"""Build and remove an emulated testbed from tests, with its own namespace prefix.

Every test module that needs the whole testbed uses its own prefix, so suites can run
side by side and never touch the default `mps` testbed of `make demo`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    return env


def run_playbook(playbook: str, *args: str, extra_vars: dict | None = None,
                 check: bool = True, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook from the repository root (`env` on top of ansible_env); output captured as text."""
    command = [str(VENV_BIN / "ansible-playbook"), playbook, *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    result = subprocess.run(command, cwd=REPO, env={**ansible_env(), **(env or {})}, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-6000:]}"
                             f"\n{result.stderr[-3000:]}")
    return result


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host: {'localhost': {'ok': 4, 'changed': 0, ...}}."""
    counters = {}
    lines = output.split("PLAY RECAP", 1)[-1].splitlines()
    for line in lines:
        if ":" not in line or "=" not in line:
            continue
        host, _, rest = line.partition(":")
        counters[host.strip()] = {k: int(v) for k, v in (item.split("=") for item in rest.split())}
    return counters


def netns_exec(ns: str, *command: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(["ip", "netns", "exec", ns, *command], **kwargs)


def wait_for(predicate, timeout: float = 5.0, step: float = 0.05):
    """Poll `predicate` until it returns something true (returned) or `timeout` s pass (its
    last value then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(step)
    return predicate()


def listening(ns: str, *ports: int, timeout: float = 10.0) -> bool:
    """Wait until TCP (or MPTCP) listeners on every port are up in the namespace. For clients
    that connect once: a server that starts slowly on a busy machine would refuse them."""
    def up() -> bool:
        out = netns_exec(ns, "ss", "-Hltn").stdout
        return all(re.search(rf":{port}\s", out) for port in ports)

    return wait_for(up, timeout)


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


# Where the default inventory keeps an emulated node's state (mpstream_state_dir).
STATE_ROOT = Path("/var/lib/mpstream-testbed")


@contextlib.contextmanager
def emulated_testbed(prefix: str, extra_vars: dict | None = None, playbook: str = "playbooks/testbed.yml"):
    """The default inventory's testbed under `prefix` (built by `playbook`, e.g. deploy.yml);
    removed afterwards with the nodes' state, also on failure."""
    variables = {"testbed_prefix": prefix, **(extra_vars or {})}
    try:
        yield run_playbook(playbook, extra_vars=variables)
    finally:
        run_playbook("playbooks/testbed.yml", extra_vars={**variables, "testbed_state": "absent"}, check=False)
        shutil.rmtree(STATE_ROOT / prefix, ignore_errors=True)


# Words in the command line of what a failover run starts on a node (clients, recorders,
# switchers): none may outlive the run.
RUN_PROCESS_WORDS = (" play ", " publish ", " record ", "failover-")


def run_leftovers(prefix: str) -> list[str]:
    """Outage tables and per-run processes still in the namespaces of testbed `prefix`."""
    found = []
    for ns in sorted(n for n in namespaces() if n.startswith(prefix + "-")):
        if "mpstream_outage" in netns_exec(ns, "nft", "list", "tables").stdout:
            found.append(f"{ns}: outage table")
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if any(word in cmdline for word in RUN_PROCESS_WORDS):
                found.append(f"{ns}: {cmdline}")
    return found
