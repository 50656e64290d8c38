"""The relay and recorder roles on the emulated testbed: install, run, idempotence, check mode.

Builds the default inventory's testbed under its own prefix, deploys the mpstream package
everywhere and the relay on the server with playbooks/recorder.yml and playbooks/relay.yml,
then looks at the result from inside the namespaces: an MPTCP listener on [::]:1935 in the
server's namespace, run by the supervisor, restarted when it dies; a second run and
`--check` that change nothing; `--check` that tells the truth about pending changes; a relay restarted when its node's
congestion control changes; the recorder started and stopped for a run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.testbed import REPO, emulated_testbed, netns_exec, recap, run_playbook, wait_for

PREFIX = "t6dp"
NODES = ("push1", "server1", "client1")
STATE_ROOT = Path("/var/lib/mpstream-testbed") / PREFIX
VENV = STATE_ROOT / "venv"  # one installation for all the testbed's nodes (mpstream_venv)
DEPLOY = ("playbooks/recorder.yml", "playbooks/relay.yml")
RESTART_S = 15.0  # a relay (re)starts in seconds here
RELAY = "playbooks/relay.yml"
OTHER_HTTP = {"relay_http": "127.0.0.1:8936"}

pytestmark = pytest.mark.timeout(240)


def state_dir(node: str) -> Path:
    return STATE_ROOT / node


def supervise(action: str, node: str, name: str) -> dict:
    """The supervisor's view of `name` on `node` (the repository's own copy of the module)."""
    done = subprocess.run(
        [sys.executable, "-m", "mpstream.supervise", action, "--name", name, "--state-dir", str(state_dir(node))],
        capture_output=True, text=True, timeout=30, check=False,
    )
    return json.loads(done.stdout)


def changed(output: str) -> dict[str, int]:
    """`changed` per host from the last PLAY RECAP (which counts every playbook of the command)."""
    last = "PLAY RECAP" + output.rsplit("PLAY RECAP", 1)[-1]
    return {host: counters["changed"] for host, counters in recap(last).items()}


def listeners(node: str) -> str:
    """Listening MPTCP sockets in the node's namespace (`ss -M`)."""
    return netns_exec(f"{PREFIX}-{node}", "ss", "-Hlnp", "-M", check=True).stdout


def stats_listeners() -> str:
    """Listening TCP sockets in the server's namespace (the relay's HTTP statistics)."""
    return netns_exec(f"{PREFIX}-server1", "ss", "-Hltn", check=True).stdout


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A frozen copy of the `relay/` project: other work on the tree must not change the build mid-test."""
    target = tmp_path_factory.mktemp("source") / "relay"
    shutil.copytree(REPO / "relay", target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
    if not (target / "src/mpstream/streaming/relay/command.py").exists():
        pytest.skip("the relay (mpstream.streaming.relay.command) is not part of this tree yet")
    return target


@pytest.fixture(scope="module")
def variables(snapshot) -> dict:
    return {"testbed_prefix": PREFIX, "mpstream_package_source": str(snapshot)}


@pytest.fixture(scope="module")
def deployed(variables):
    """Testbed built and both playbooks run once; everything removed afterwards, also on failure."""
    remove_state()  # what an interrupted earlier run of this module left behind
    try:
        with emulated_testbed(PREFIX):
            fresh_check = run_playbook(*DEPLOY, "--check", extra_vars=variables, timeout=180)
            fresh = {"check": fresh_check, "venv": VENV.exists()}
            yield {"fresh": fresh, "deploy": run_playbook(*DEPLOY, extra_vars=variables, timeout=180)}
            remove_state()  # before the namespaces go
    finally:
        remove_state()  # also when the testbed never came up


def remove_state() -> None:
    """Stop what the roles started under this module's prefix, and remove the nodes' state."""
    for node in NODES:
        for name in ("relay", "recorder"):
            if state_dir(node).exists():
                supervise("stop", node, name)
    shutil.rmtree(STATE_ROOT, ignore_errors=True)


def test_check_mode_before_the_first_deploy_reports_changes_and_makes_none(deployed):
    fresh = deployed["fresh"]
    counts = changed(fresh["check"].stdout)
    assert set(counts) == set(NODES) and all(counts.values()), fresh["check"].stdout[-4000:]
    assert not fresh["venv"]  # nothing was installed by the check


def test_relay_listens_with_mptcp_in_the_server_namespace(deployed):
    assert wait_for(lambda: "1935" in listeners("server1"), RESTART_S)
    line = next(line for line in listeners("server1").splitlines() if ":1935" in line)
    assert line.split()[3] in ("*:1935", "[::]:1935")  # the IPv6 wildcard, as configured
    relay = supervise("status", "server1", "relay")
    assert relay["running"]
    assert relay["command"][-3:] == ["relay", "--config", str(state_dir("server1") / "etc/relay.toml")]
    assert relay["command"][0] == str(VENV / "bin/mpstream")
    ns = subprocess.run(["ip", "netns", "identify", str(relay["child_pid"])],
                        capture_output=True, text=True, check=True).stdout.split()
    assert ns == [f"{PREFIX}-server1"]
    assert "127.0.0.1:8935" in stats_listeners()  # statistics on loopback only
    for node in ("push1", "client1"):
        assert "1935" not in listeners(node)  # the relay runs on the server group only


def test_mptcp_client_reaches_the_relay_over_both_providers(deployed):
    """An MPTCP connection from the server's own namespace reaches the listener on each address."""
    probe = textwrap.dedent("""
        import socket, sys
        for host in sys.argv[1:]:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
            s.settimeout(5)
            s.connect((host, 1935))
            s.close()
        print("ok")
    """)
    hosts = ["::1", "2001:2:0:102::a", "2001:2:0:202::a"]
    result = netns_exec(f"{PREFIX}-server1", sys.executable, "-c", probe, *hosts)
    assert result.stdout.strip() == "ok", result.stderr


def installed_version() -> str:
    """The version of the one mpstream in the venv, by its metadata's name (as failover describe reads it)."""
    (dist_info,) = VENV.glob("lib/python3*/site-packages/mpstream-*.dist-info")
    return dist_info.name.removeprefix("mpstream-").removesuffix(".dist-info")


def test_the_nodes_share_one_installation_of_the_package(deployed):
    mpstream = VENV / "bin/mpstream"
    version = subprocess.run([str(mpstream), "--version"], capture_output=True, text=True, check=True)
    # The build's version names its sources: the fingerprint as a local version, also in the metadata.
    assert re.fullmatch(r"mpstream \d+\.\d+\.\d+\+src\.[0-9a-f]{1,12}\n", version.stdout), version.stdout
    assert version.stdout == f"mpstream {installed_version()}\n"
    assert not list(VENV.glob("mpstream-build-*"))  # pip's version check needs no marker
    assert not [node for node in NODES if (state_dir(node) / "venv").exists()]
    # It runs in every node's namespace: the recorder of each node, the relay of the server.
    for node in NODES:
        ns = subprocess.run(["ip", "netns", "exec", f"{PREFIX}-{node}", str(mpstream), "--version"],
                            capture_output=True, text=True, check=True)
        assert ns.stdout == version.stdout
    # The install ran once, not once per node.
    install = "TASK [mpstream_package : Install mpstream into the virtual environment]"
    assert deployed["deploy"].stdout.count(install) == 1


def test_second_run_changes_nothing(deployed, variables):
    again = run_playbook(*DEPLOY, extra_vars=variables)
    assert changed(again.stdout) == dict.fromkeys(NODES, 0)


def test_check_mode_on_a_converged_testbed_changes_nothing(deployed, variables):
    before = supervise("status", "server1", "relay")
    check = run_playbook(*DEPLOY, "--check", extra_vars=variables)
    assert set(changed(check.stdout).values()) == {0}
    assert supervise("status", "server1", "relay")["pid"] == before["pid"]


def test_check_mode_reports_a_pending_configuration_change_and_a_run_makes_it(deployed, variables):
    config = state_dir("server1") / "etc/relay.toml"
    before_config = config.read_text()
    before = supervise("status", "server1", "relay")
    check = run_playbook(RELAY, "--check", "--diff", extra_vars={**variables, **OTHER_HTTP})
    assert changed(check.stdout)["server1"] == 2  # the configuration and the restart it needs
    assert '+http = "127.0.0.1:8936"' in check.stdout
    assert config.read_text() == before_config
    assert supervise("status", "server1", "relay")["pid"] == before["pid"]

    run = run_playbook(RELAY, extra_vars={**variables, **OTHER_HTTP})
    assert changed(run.stdout)["server1"] == 2  # configuration rendered, relay restarted
    after = supervise("status", "server1", "relay")
    assert after["running"] and after["pid"] != before["pid"]
    assert wait_for(lambda: "127.0.0.1:8936" in stats_listeners(), RESTART_S)


def test_check_mode_reports_a_stopped_relay_and_a_run_starts_it(deployed, variables):
    configured = {**variables, **OTHER_HTTP}  # as the previous test left it
    supervise("stop", "server1", "relay")
    check = run_playbook(RELAY, "--check", extra_vars=configured)
    assert changed(check.stdout)["server1"] == 1
    assert not supervise("status", "server1", "relay")["running"]
    run = run_playbook(RELAY, extra_vars=configured)
    assert changed(run.stdout)["server1"] == 1
    assert supervise("status", "server1", "relay")["running"]
    assert "1935" in listeners("server1")


def test_a_crashed_relay_is_restarted(deployed):
    before = supervise("status", "server1", "relay")
    subprocess.run(["kill", "-KILL", str(before["child_pid"])], check=True)
    after = wait_for(lambda: (s := supervise("status", "server1", "relay"))["child_pid"] not in
                     (None, before["child_pid"]) and s, RESTART_S)
    assert after and after["pid"] == before["pid"] and after["restarts"] == before["restarts"] + 1
    assert wait_for(lambda: "1935" in listeners("server1"), RESTART_S)


def test_a_new_build_reaches_every_node_and_restarts_the_relay(deployed, variables, snapshot):
    before = supervise("status", "server1", "relay")
    version = installed_version()
    wheels = STATE_ROOT / "wheels"
    earlier_marker = VENV / "mpstream-build-0123456789abcdef"  # what the role kept before builds had versions
    earlier_marker.touch()
    # A new module in the package: a new fingerprint, hence a new version (the same release, another build).
    (snapshot / "src/mpstream/deploy_test_stamp.py").write_text('STAMP = "new build"\n')
    run = run_playbook(*DEPLOY, extra_vars=variables)
    new_version = installed_version()
    assert new_version != version and new_version.split("+")[0] == version.split("+")[0]
    assert [wheel.name for wheel in wheels.glob("mpstream-*.whl")] == [f"mpstream-{new_version}-py3-none-any.whl"]
    assert not earlier_marker.exists()
    for node in NODES:
        stamp = netns_exec(f"{PREFIX}-{node}", str(VENV / "bin/python"), "-c",
                           "import mpstream.deploy_test_stamp as m; print(m.STAMP)", check=True).stdout.strip()
        assert stamp == "new build"
    assert changed(run.stdout)["server1"] >= 1  # the relay restarted
    assert sum(changed(run.stdout).values()) >= 3  # and, once for all nodes, the wheel copied and installed
    after = supervise("status", "server1", "relay")
    assert after["running"] and after["pid"] != before["pid"]
    assert wait_for(lambda: "1935" in listeners("server1"), RESTART_S)


def test_a_changed_congestion_control_restarts_the_relay(deployed, variables):
    """A listening socket hands its congestion control to every connection it accepts: only a
    relay started after the change sends with the new one."""
    before = supervise("status", "server1", "relay")
    reno = {**variables, "mptcp_kernel_tcp_congestion_control": "reno"}  # one every host allows
    run_playbook("playbooks/mptcp_kernel.yml", RELAY, extra_vars=reno)
    assert netns_exec(f"{PREFIX}-server1", "sysctl", "-n", "net.ipv4.tcp_congestion_control",
                      check=True).stdout.strip() == "reno"
    after = supervise("status", "server1", "relay")
    assert after["running"] and after["pid"] != before["pid"]
    assert wait_for(lambda: "1935" in listeners("server1"), RESTART_S)
    again = run_playbook("playbooks/mptcp_kernel.yml", RELAY, extra_vars=reno)
    assert changed(again.stdout)["server1"] == 0
    assert supervise("status", "server1", "relay")["pid"] == after["pid"]


def test_recorder_records_every_node_for_a_run(deployed, tmp_path):
    playbook = tmp_path / "record.yml"
    playbook.write_text(textwrap.dedent("""\
        - name: Record for one run
          hosts: all
          gather_facts: false
          tasks:
            - name: Start or stop the recorder
              ansible.builtin.include_role:
                name: recorder
                tasks_from: "{{ recorder_action }}"
              vars:
                recorder_run_id: test-run
                recorder_interval_ms: 50
            - name: Show where the data is
              ansible.builtin.debug:
                var: recorder_output
        """))
    variables = {"testbed_prefix": PREFIX}
    try:
        start = run_playbook(str(playbook), extra_vars={**variables, "recorder_action": "start"})
        assert set(changed(start.stdout).values()) == {1}  # the run's folder and the recorder, one command
        again = run_playbook(str(playbook), extra_vars={**variables, "recorder_action": "start"})
        assert set(changed(again.stdout).values()) == {0}
        for node in NODES:
            recorder = supervise("status", node, "recorder")
            assert recorder["running"]
            ns = subprocess.run(["ip", "netns", "identify", str(recorder["child_pid"])],
                                capture_output=True, text=True, check=True).stdout.split()
            assert ns == [f"{PREFIX}-{node}"]
        csv = state_dir("client1") / "runs/test-run/rates.csv"
        assert wait_for(lambda: csv.exists() and csv.read_text().count(";nic2;") >= 3, timeout=10)
    finally:
        stop = run_playbook(str(playbook), extra_vars={**variables, "recorder_action": "stop"})
    assert set(changed(stop.stdout).values()) == {1}
    for node in NODES:
        assert not supervise("status", node, "recorder")["running"]
        rows = (state_dir(node) / "runs/test-run/rates.csv").read_text().splitlines()
        assert {row.split(";")[1] for row in rows} == {"nic1", "nic2", "total"}
        assert f"{state_dir(node)}/runs/test-run/rates.csv" in stop.stdout
