"""mpstream outage: nftables outages that switch on time, expire by themselves and cancel."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from mpstream.paths.outage import PENDING_DIR

from tests.support.clock import again_if_the_clock_was_disturbed

NS = "t6out"
PEER = "t6out-peer"


def mpstream(*args: str, netns: str | None = NS) -> dict:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    out = subprocess.run([*prefix, sys.executable, "-m", "mpstream", "outage", *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def ping(target: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", NS, "ping", "-c", "1", "-W", "1", target],
                          capture_output=True).returncode == 0


@pytest.fixture
def node():
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "netns", "add", PEER], check=True)
    try:
        subprocess.run(["ip", "-n", NS, "link", "add", "nic1", "type", "veth", "peer", "name", "peer1",
                        "netns", PEER], check=True)
        for ns, ifname, address in ((NS, "nic1", "198.18.250.1/24"), (PEER, "peer1", "198.18.250.2/24")):
            subprocess.run(["ip", "-n", ns, "addr", "add", address, "dev", ifname], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", ifname, "up"], check=True)
        yield
    finally:
        subprocess.run(["ip", "netns", "del", NS])
        subprocess.run(["ip", "netns", "del", PEER])


def test_a_nic_outage_drops_its_traffic_and_expires_by_itself(node):
    assert ping("198.18.250.2")
    applied = mpstream("apply", "--nic", "nic1", "--for", "1.5")
    assert applied["changed"] and applied["nics"] == ["nic1"]
    # The kernel ends it: no process stays behind in the namespace for that.
    assert subprocess.run(["ip", "netns", "pids", NS], capture_output=True, text=True, check=True).stdout == ""
    assert mpstream("status")["outage"]["nics"] == ["nic1"]
    assert not ping("198.18.250.2")
    time.sleep(2.0)
    assert mpstream("status")["outage"] is None
    assert ping("198.18.250.2")


def test_a_switch_waits_for_its_time_and_an_immediate_clear_cancels_it(node):
    start = time.time()
    mpstream("apply", "--nic", "nic1", "--for", "30", "--at", str(start + 1.0))
    assert time.time() - start >= 1.0
    assert mpstream("status")["outage"]["nics"] == ["nic1"]
    assert mpstream("clear") == {"changed": True, "cancelled": 0, "cleared": {"nics": ["nic1"], "forwarding": False}}
    assert mpstream("clear")["changed"] is False
    pending = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-m", "mpstream", "outage", "apply",
                                "--forwarding", "--for", "30", "--at", str(time.time() + 3)],
                               stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        assert mpstream("clear")["cancelled"] == 1
        assert pending.wait(timeout=5) != 0
        time.sleep(2.5)
        assert mpstream("status")["outage"] is None
    finally:
        pending.kill()


def test_a_router_outage_acts_in_the_named_namespaces(node):
    result = mpstream("apply", "--forwarding", "--for", "30", "--netns", NS, netns=None)
    assert result["netns"][NS]["forwarding"] is True
    tables = subprocess.run(["ip", "netns", "exec", NS, "nft", "list", "tables"], capture_output=True, text=True)
    assert "mpstream_outage" in tables.stdout
    assert mpstream("clear", "--netns", NS, netns=None)["changed"]


def test_a_missing_nic_is_a_clear_error_that_changes_nothing(node):
    result = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-m", "mpstream", "outage", "apply",
                             "--nic", "eth9", "--for", "5"], capture_output=True, text=True)
    assert result.returncode != 0 and "no interface eth9" in result.stderr
    assert mpstream("status")["outage"] is None


# --- mpstream outage schedule: the whole scenario handed over once, kept by the node's clock ---

PEER_ADDRESS = "198.18.250.2"
LAG_BOUND_S = 0.25  # a loaded 2-core machine; the lags themselves are printed


def write_plan(path, switches: list[dict], expiry_s: float = 5.0, lag_s: float | None = None,
               count: list[str] | None = None, clock_offset_s: float | None = None) -> str:
    plan = {"format": "mpstream-schedule/1", "run_id": "test", "expiry_s": expiry_s, "switches": switches}
    if lag_s is not None:
        plan["lag_s"] = lag_s
    if clock_offset_s is not None:
        plan["clock_offset_s"] = clock_offset_s
    if count is not None:
        plan["count"] = count
    path.write_text(json.dumps(plan))
    return str(path)


def here(nics: list[str] | None = None) -> list[dict]:
    return [{"netns": None, "nics": nics or [], "forwarding": False}]


def down_and_back(tmp_path, t0: float, **options) -> str:
    """A plan that takes nic1 down at t0 and brings it back 0.4 s later."""
    return write_plan(tmp_path / "plan.json", [
        {"phase": 0, "name": "down", "at": t0, "apply": here(["nic1"])},
        {"phase": 1, "name": "end", "at": t0 + 0.4, "apply": here()}], **options)


def start_schedule(plan: str, record: str, netns: str | None = NS) -> subprocess.Popen:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.Popen([*prefix, sys.executable, "-m", "mpstream", "outage", "schedule", "--plan", plan,
                             "--record", record], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_record(path: str) -> list[dict]:
    try:
        with open(path) as record:
            return [json.loads(line) for line in record]
    except FileNotFoundError:
        return []


def wait_for_line(path: str, predicate, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in read_record(path):
            if predicate(line):
                return line
        time.sleep(0.02)
    raise AssertionError(f"no such line in {read_record(path)}")


def print_lags(record: list[dict]) -> list[float]:
    lags = [line["lag_s"] for line in record if line["event"] == "switch"]
    print("switch lags (ms):", ", ".join(f"{lag * 1000:.1f}" for lag in lags))
    return lags


def mark_files(pid: int) -> list[str]:
    return [name for name in os.listdir(PENDING_DIR) if name.endswith(f".{pid}")] if os.path.isdir(PENDING_DIR) else []


def pinged_at(output: str) -> list[float]:
    """The receive times of the replies of `ping -D`."""
    return [float(m[1]) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", output, re.M)]


def measured(scenario, tmp_path) -> None:
    """A schedule's lags are measured by the wall clock: once more if it stepped or the
    machine stood still (after a clear of what the first run left)."""
    def fresh(folder):
        mpstream("clear")
        scenario(folder)
    again_if_the_clock_was_disturbed(fresh, tmp_path)


def test_a_schedule_switches_at_its_instants_and_records_when(node, tmp_path):
    measured(switches_at_their_instants, tmp_path)


def switches_at_their_instants(folder):
    t0 = time.time() + 3.0  # the scheduler's Python starts slowly on a busy machine
    step = 0.8
    downs = [[], ["nic1"], [], ["nic1"], []]
    plan = write_plan(folder / "plan.json", [
        {"phase": i, "name": f"phase {i}", "at": t0 + i * step, "apply": here(nics)} for i, nics in enumerate(downs)])
    record = str(folder / "switches.jsonl")
    scheduler = start_schedule(plan, record)
    # ping at real-time priority: it stamps a reply when it reads it, which must be prompt on a busy machine
    pinger = subprocess.Popen(["ip", "netns", "exec", NS, "chrt", "-f", "1", "ping", "-D", "-n", "-i", "0.01", "-w",
                               str(int(t0 + len(downs) * step - time.time()) + 1), PEER_ADDRESS],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
        replies = pinged_at(pinger.communicate(timeout=30)[0])
    finally:
        scheduler.kill()
        pinger.kill()
    lines = read_record(record)
    assert [line["event"] for line in lines] == ["start"] + ["switch"] * len(downs) + ["done"]
    assert lines[0]["run_id"] == "test" and lines[0]["pid"] == scheduler.pid  # `ip netns exec` execs it
    switches = lines[1:-1]
    assert [s["nics"] for s in switches] == downs and all(s["ok"] and s["error"] is None for s in switches)
    assert all(s["planned"] == pytest.approx(t0 + i * step) for i, s in enumerate(switches))
    lags = print_lags(lines)
    assert all(0 <= lag < LAG_BOUND_S for lag in lags)
    assert all(s["actual"] == pytest.approx(s["planned"] + s["lag_s"], abs=1e-5) for s in switches)
    # The first switch found every provider up: nothing handed to nft, in force at its instant.
    assert [s.get("unchanged", False) for s in switches] == [True, False, False, False, False]
    assert switches[0]["actual"] == pytest.approx(switches[0]["planned"], abs=1e-5)
    # The others are timed by the kernel's notice of their commit, which nft's exit follows.
    assert "timed_by" not in switches[0] and all(s["timed_by"] == "commit" for s in switches[1:])
    assert all(s["planned"] <= s["actual"] <= s["nft_returned"] for s in switches[1:])
    # The traffic agrees: no reply while nic1 was down, replies in every phase it was up.
    margin = 0.1  # ping reads a reply a little after the kernel got it
    for this, following in zip(switches, switches[1:], strict=False):
        inside = [t for t in replies if this["actual"] + margin < t < following["planned"]]
        if this["nics"]:
            assert not inside, f"replies while nic1 was down in {this['name']}"
        else:
            assert inside, f"no reply while all was up in {this['name']}"
    assert mpstream("status")["outage"] is None
    assert mark_files(scheduler.pid) == []


def test_an_outage_applied_after_the_switch_was_prepared_is_removed_and_its_time_recorded(node, tmp_path):
    """The first switch (all up) finds no outage while it prepares; one applied before its
    instant (by another process) is found after it, removed then, and recorded late, as it was."""
    measured(an_outage_applied_meanwhile_is_removed, tmp_path)


def an_outage_applied_meanwhile_is_removed(folder):
    t0 = time.time() + 4.0
    plan = write_plan(folder / "plan.json", [
        {"phase": 0, "name": "all up", "at": t0, "apply": here()},
        {"phase": 1, "name": "down", "at": t0 + 1.5, "apply": here(["nic1"])}])
    record = str(folder / "switches.jsonl")
    scheduler = start_schedule(plan, record)
    try:
        time.sleep(max(t0 - 1.0 - time.time(), 0))  # prepared at t0 - 2 s
        mpstream("apply", "--nic", "nic1", "--for", "30")
        first = wait_for_line(record, lambda line: line.get("phase") == 0, 10)
        assert mpstream("status")["outage"] is None, "the outage applied meanwhile is still there"
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
    finally:
        scheduler.kill()
    assert first["ok"] and "unchanged" not in first
    assert first["actual"] > t0 and first["lag_s"] == pytest.approx(first["actual"] - t0, abs=1e-5)
    print_lags(read_record(record))


def test_a_schedule_for_another_namespace_is_timed_by_that_namespaces_commits(node, tmp_path):
    """A switcher outside the namespace it switches (the testbed's routers) hears the commits
    there, not its own namespace's."""
    measured(timed_in_another_namespace, tmp_path)


def timed_in_another_namespace(folder):
    t0 = time.time() + 3.0
    plan = write_plan(folder / "plan.json", [
        {"phase": 0, "name": "down", "at": t0, "apply": [{"netns": NS, "nics": ["nic1"], "forwarding": False}]},
        {"phase": 1, "name": "end", "at": t0 + 0.6, "apply": [{"netns": NS, "nics": [], "forwarding": False}]}])
    record = str(folder / "switches.jsonl")
    scheduler = start_schedule(plan, record, netns=None)
    try:
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
    finally:
        scheduler.kill()
    switches = read_record(record)[1:-1]
    assert [(s["netns"], s["timed_by"]) for s in switches] == [(NS, "commit"), (NS, "commit")]
    assert all(s["planned"] <= s["actual"] <= s["nft_returned"] for s in switches)
    assert all(0 <= lag < LAG_BOUND_S for lag in print_lags(read_record(record)))


def test_a_switcher_that_cannot_match_the_commit_notices_times_by_nfts_exit(node, tmp_path):
    """In its own PID namespace (a container) the switcher knows its nft by another pid than
    the kernel's notice names: the switch is then timed by nft's exit, and says so."""
    measured(timed_by_exit_in_a_pid_namespace, tmp_path)


def timed_by_exit_in_a_pid_namespace(folder):
    t0 = time.time() + 3.0
    plan = down_and_back(folder, t0)
    record = str(folder / "switches.jsonl")
    scheduler = subprocess.Popen(["ip", "netns", "exec", NS, "unshare", "--pid", "--fork", "--mount-proc",
                                  sys.executable, "-m", "mpstream", "outage", "schedule", "--plan", plan,
                                  "--record", record], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
    finally:
        scheduler.kill()
    switches = read_record(record)[1:-1]
    assert [s["timed_by"] for s in switches] == ["exit", "exit"]
    assert all(s["actual"] == s["nft_returned"] for s in switches)


def test_only_nft_saying_there_is_no_outage_table_counts_as_none_in_force(node):
    """What lets a switch skip its transaction: a namespace that is gone is no 'all up'."""
    from mpstream.paths.outage import table

    assert table.current(NS, strict=True) is None
    mpstream("apply", "--nic", "nic1", "--for", "30")
    assert table.current(NS, strict=True)["nics"] == ["nic1"]
    assert mpstream("clear")["changed"]
    with pytest.raises(OSError, match="Cannot open network namespace"):
        table.current("t6out-absent", strict=True)
    assert table.current("t6out-absent") is None  # the lenient reading of status and clear


def test_an_injected_lag_shows_in_the_record(node, tmp_path):
    measured(an_injected_lag_shows, tmp_path)


def an_injected_lag_shows(folder):
    t0 = time.time() + 3.0
    plan = down_and_back(folder, t0, lag_s=0.3)
    record = str(folder / "switches.jsonl")
    scheduler = start_schedule(plan, record)
    try:
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
    finally:
        scheduler.kill()
    lines = read_record(record)
    assert lines[0]["injected_lag_s"] == 0.3
    lags = print_lags(lines)
    assert len(lags) == 2 and all(0.3 <= lag < 0.3 + LAG_BOUND_S for lag in lags)


def test_a_node_whose_clock_is_ahead_switches_by_it_and_records_the_controllers_instants(node, tmp_path):
    """A node whose clock runs 0.6 s ahead of the controller's (here: the switcher is told so)
    waits until its clock shows the instant plus 0.6 s, and records the controller's instants."""
    measured(switches_by_its_clock_ahead, tmp_path)


def switches_by_its_clock_ahead(folder):
    t0 = time.time() + 3.0
    plan = down_and_back(folder, t0, clock_offset_s=0.6)
    record = str(folder / "switches.jsonl")
    scheduler = start_schedule(plan, record)
    try:
        while time.time() < t0 + 0.45:
            assert mpstream("status")["outage"] is None, "switched by the controller's clock, not its own"
            time.sleep(0.05)
        down = wait_for_line(record, lambda line: line.get("name") == "down", 5)
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
    finally:
        scheduler.kill()
    lines = read_record(record)
    assert lines[0]["clock_offset_s"] == 0.6
    assert down["planned"] == pytest.approx(t0) and all(0 <= lag < LAG_BOUND_S for lag in print_lags(lines))


def test_a_clear_cancels_the_schedule_before_its_next_switch(node, tmp_path):
    t0 = time.time() + 3.0
    plan = write_plan(tmp_path / "plan.json", [
        {"phase": 0, "name": "down", "at": t0, "apply": here(["nic1"])},
        {"phase": 1, "name": "up", "at": t0 + 2.0, "apply": here()},
        {"phase": 2, "name": "down again", "at": t0 + 2.5, "apply": here(["nic1"])}], expiry_s=30)
    record = str(tmp_path / "switches.jsonl")
    scheduler = start_schedule(plan, record)
    try:
        wait_for_line(record, lambda line: line["event"] == "switch", timeout=20)
        assert mark_files(scheduler.pid)
        assert mpstream("status")["outage"]["nics"] == ["nic1"]
        cleared = mpstream("clear")
        assert cleared["cancelled"] == 1 and cleared["cleared"]["nics"] == ["nic1"]
        assert scheduler.poll() is not None  # the clear returns once the scheduler is gone
        assert scheduler.returncode == 128 + signal.SIGTERM
        time.sleep(max(t0 + 3.0 - time.time(), 0))
        assert mpstream("status")["outage"] is None  # nothing switched after the clear
        assert ping(PEER_ADDRESS)
    finally:
        scheduler.kill()
    events = [line["event"] for line in read_record(record)]
    assert events == ["start", "switch", "cancelled"]
    assert mark_files(scheduler.pid) == []


def test_an_outage_expires_by_itself_when_the_scheduler_is_killed(node, tmp_path):
    t0 = time.time() + 3.0
    plan = write_plan(tmp_path / "plan.json", [
        {"phase": 0, "name": "down", "at": t0, "apply": here(["nic1"])},
        {"phase": 1, "name": "end", "at": t0 + 30, "apply": here()}], expiry_s=1.5)
    record = str(tmp_path / "switches.jsonl")
    scheduler = start_schedule(plan, record)
    try:
        switched = wait_for_line(record, lambda line: line["event"] == "switch", timeout=20)
        scheduler.kill()  # SIGKILL: nothing of the scheduler's own cleanup runs
        scheduler.wait(timeout=5)
        outage = mpstream("status")["outage"]
        assert outage["nics"] == ["nic1"] and outage["until"] == pytest.approx(switched["planned"] + 1.5, abs=0.01)
        assert not ping(PEER_ADDRESS)
        time.sleep(max(switched["planned"] + 1.5 - time.time(), 0) + 1.0)
        assert mpstream("status")["outage"] is None
        assert ping(PEER_ADDRESS)
    finally:
        scheduler.kill()
        cleared = mpstream("clear")  # a killed scheduler leaves its mark; a clear removes it, terminating nothing
    assert cleared["cancelled"] == 0 and mark_files(scheduler.pid) == []


def test_a_plan_naming_a_missing_nic_is_refused_before_any_switch(node, tmp_path):
    t0 = time.time() + 0.5
    plan = write_plan(tmp_path / "plan.json", [
        {"phase": 0, "name": "down", "at": t0, "apply": here(["nic1"])},
        {"phase": 1, "name": "other down", "at": t0 + 0.5, "apply": here(["nic9"])}])
    record = tmp_path / "switches.jsonl"
    result = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-m", "mpstream", "outage", "schedule",
                             "--plan", plan, "--record", str(record)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "no interface nic9" in result.stderr
    time.sleep(max(t0 - time.time(), 0))
    assert mpstream("status")["outage"] is None and not record.exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "mpstream-schedule/1", "run_id": "x", "expiry_s": "soon", "switches": []}))
    result = subprocess.run([sys.executable, "-m", "mpstream", "outage", "schedule", "--plan", str(bad),
                             "--record", str(record)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "expiry_s" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def nic_rx_bytes() -> int:
    link = json.loads(subprocess.run(["ip", "-n", NS, "-j", "-s", "link", "show", "nic1"], capture_output=True,
                                     text=True, check=True).stdout)
    return link[0]["stats64"]["rx"]["bytes"]


def in_node(code: str) -> object:
    """What `code` (Python, its result printed as JSON) gives, run in the node's namespace."""
    out = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-c",
                          f"import json; from mpstream.paths.outage import delivered; print(json.dumps({code}))"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def nft_counted() -> dict[str, int]:
    """Bytes per NIC as nft itself lists the counting table."""
    listing = subprocess.run(["ip", "netns", "exec", NS, "nft", "list", "table", "inet", "mpstream_delivered"],
                             capture_output=True, text=True, check=True).stdout
    rules = re.findall(r'iifname "([^"]+)" counter packets \d+ bytes (\d+)', listing)
    return {nic: int(octets) for nic, octets in rules}


def test_the_counters_read_over_netlink_are_those_nft_lists(node):
    """The switcher's in-process reading against nft's listing, on a real kernel: one NIC
    with traffic, and 400 more rules, enough that the kernel's dump comes in several parts."""
    assert in_node("delivered.read(5.0)") is None  # no counting table yet
    others = [f"n{i}" for i in range(400)]
    assert in_node(f"delivered.install({['nic1', *others]!r})") is None
    subprocess.run(["ip", "netns", "exec", PEER, "ping", "-n", "-q", "-c", "20", "-i", "0.01", "-s", "972",
                    "198.18.250.1"], capture_output=True, check=True)
    listed_before = nft_counted()
    read = in_node("delivered.read(5.0)")
    listed_after = nft_counted()
    print("nic1 delivered: nft", listed_before["nic1"], "then", listed_after["nic1"], "netlink", read["nic1"])
    assert sorted(read) == sorted(listed_before) == sorted(["nic1", *others])
    assert 20 * 1000 <= listed_before["nic1"] <= read["nic1"] <= listed_after["nic1"]  # 20 pings of 1000 bytes
    assert all(read[nic] == 0 for nic in others)
    assert in_node("delivered.remove()") is True
    assert in_node("delivered.read(5.0)") is None


def test_the_record_counts_what_a_nic_delivered_and_nothing_while_it_was_down(node, tmp_path):
    t0 = time.time() + 3.0
    step = 1.0
    downs = [[], ["nic1"], [], []]
    plan = write_plan(tmp_path / "plan.json", [
        {"phase": i, "name": f"phase {i}", "at": t0 + i * step, "apply": here(nics)}
        for i, nics in enumerate(downs)], count=["nic1"])
    record = str(tmp_path / "switches.jsonl")
    scheduler = start_schedule(plan, record)
    # the peer keeps sending to the node, also while the node drops everything on nic1
    pinger = subprocess.Popen(["ip", "netns", "exec", PEER, "ping", "-n", "-q", "-i", "0.01", "-w",
                               str(int(t0 + len(downs) * step - time.time()) + 1), "198.18.250.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_line(record, lambda line: line.get("phase") == 1, timeout=15)
        arrived_from = nic_rx_bytes()
        wait_for_line(record, lambda line: line.get("phase") == 2, timeout=15)
        arrived = nic_rx_bytes() - arrived_from
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
    finally:
        scheduler.kill()
        pinger.kill()
    switches = [line for line in read_record(record) if line["event"] == "switch"]
    counted = [line["delivered"]["nic1"] for line in switches]
    before = [line["delivered_before"]["nic1"] for line in switches]
    print("delivered after each switch:", counted, "before it:", before, "arrived at nic1 while down:", arrived)
    assert counted[1] > 2_000 and counted[3] - counted[2] > 2_000  # up to 100 pings of 84 bytes a second
    assert all(b <= a for b, a in zip(before, counted, strict=True)) and before[3] - counted[2] > 1_000
    # While down, nic1 kept counting what came in and delivered nothing from the reading after
    # the switch that took it down to the one shortly before the switch that restored it; the
    # reading after that one also has the pings between the restoring switch and itself.
    assert arrived > 2_000
    assert before[2] - counted[1] == 0
    assert counted[2] - counted[1] < 500
    tables = subprocess.run(["ip", "netns", "exec", NS, "nft", "list", "tables"], capture_output=True, text=True)
    assert "mpstream_delivered" not in tables.stdout and "mpstream_outage" not in tables.stdout


# Two provider routers between a host and a peer: the plan of the emulated testbed's router
# method, one scheduler (outside both) acting in both namespaces.
ROUTERS = ("t6out-r1", "t6out-r2")
HOST, FAR = "t6out-host", "t6out-far"


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True)


@pytest.fixture
def routers():
    made = []
    try:
        for ns in (HOST, FAR, *ROUTERS):
            sh("ip", "netns", "add", ns)
            made.append(ns)
        for index, router in enumerate(ROUTERS):
            net, base = "198.18.251", 8 * index  # two /30s per router: host-router, router-far
            sh("ip", "-n", HOST, "link", "add", f"up{index}", "type", "veth", "peer", "name", "down0", "netns", router)
            sh("ip", "-n", FAR, "link", "add", f"down{index}", "type", "veth", "peer", "name", "up0", "netns", router)
            for ns, ifname, address in ((HOST, f"up{index}", f"{net}.{base + 1}/30"),
                                        (router, "down0", f"{net}.{base + 2}/30"),
                                        (router, "up0", f"{net}.{base + 5}/30"),
                                        (FAR, f"down{index}", f"{net}.{base + 6}/30")):
                sh("ip", "-n", ns, "addr", "add", address, "dev", ifname)
                sh("ip", "-n", ns, "link", "set", ifname, "up")
            sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            # the far side's address of this path is reached through this router, and back
            sh("ip", "-n", HOST, "route", "add", f"{net}.{base + 6}/32", "via", f"{net}.{base + 2}")
            sh("ip", "-n", FAR, "route", "add", f"{net}.{base + 1}/32", "via", f"{net}.{base + 5}")
        yield {router: f"198.18.251.{8 * index + 6}" for index, router in enumerate(ROUTERS)}
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns])


def reaches(target: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", HOST, "ping", "-c", "3", "-i", "0.05", "-W", "0.3", target],
                          capture_output=True).returncode == 0


def test_one_schedule_switches_two_routers_together(routers, tmp_path):
    r1, r2 = ROUTERS

    def forwarding(down: set[str]) -> list[dict]:
        return [{"netns": router, "nics": [], "forwarding": router in down} for router in ROUTERS]

    t0 = time.time() + 3.0
    step = 2.0  # room for the reachability checks of a phase on a busy machine
    phases = [set(), {r1}, {r2}, {r1, r2}, set()]
    plan = write_plan(tmp_path / "plan.json", [
        {"phase": i, "name": f"phase {i}", "at": t0 + i * step, "apply": forwarding(down)}
        for i, down in enumerate(phases)])
    record = str(tmp_path / "switches.jsonl")
    scheduler = start_schedule(plan, record, netns=None)
    try:
        for i, down in enumerate(phases[:-1]):
            time.sleep(max(t0 + i * step + 0.4 - time.time(), 0))
            assert {router: reaches(target) for router, target in routers.items()} == {
                router: router not in down for router in ROUTERS}, f"phase {i}"
        assert scheduler.wait(timeout=30) == 0, scheduler.stderr.read()
    finally:
        scheduler.kill()
    lines = read_record(record)
    switches = [line for line in lines if line["event"] == "switch"]
    assert sorted((s["phase"], s["netns"], s["forwarding"]) for s in switches) == [
        (i, router, router in down) for i, down in enumerate(phases) for router in ROUTERS]
    lags = print_lags(lines)
    assert all(s["ok"] for s in switches) and all(0 <= lag < LAG_BOUND_S for lag in lags)
    for i in range(len(phases)):  # the targets of one switch take effect together
        together = [s["actual"] for s in switches if s["phase"] == i]
        assert max(together) - min(together) < LAG_BOUND_S / 2
    for router in ROUTERS:
        assert mpstream("status", "--netns", router, netns=None)["netns"][router]["outage"] is None
    # A clear in one router's namespace cancels the schedule for all of them: restoring wins.
    t0 = time.time() + 3.0
    plan = write_plan(tmp_path / "later.json", [
        {"phase": 0, "name": "r1 down", "at": t0, "apply": forwarding({r1})},
        {"phase": 1, "name": "r2 down", "at": t0 + 2.0, "apply": forwarding({r2})}], expiry_s=30)
    record = str(tmp_path / "later.jsonl")
    scheduler = start_schedule(plan, record, netns=None)
    try:
        wait_for_line(record, lambda line: line["event"] == "switch", timeout=20)
        assert mpstream("clear", "--netns", r1, netns=None)["netns"][r1]["cancelled"] == 1
        assert scheduler.poll() == 128 + signal.SIGTERM
        time.sleep(max(t0 + 2.5 - time.time(), 0))
        assert mpstream("status", "--netns", r2, netns=None)["netns"][r2]["outage"] is None
        assert reaches(routers[r1]) and reaches(routers[r2])
    finally:
        scheduler.kill()
    assert [line["event"] for line in read_record(record)] == ["start", "switch", "switch", "cancelled"]
    assert mark_files(scheduler.pid) == []


def test_a_refused_switch_is_recorded_and_the_others_still_happen(tmp_path):
    stays, goes = "t6out-stays", "t6out-goes"
    for ns in (stays, goes):
        sh("ip", "netns", "add", ns)
    scheduler = None
    try:
        def both(forwarding: bool) -> list[dict]:
            return [{"netns": ns, "nics": [], "forwarding": forwarding} for ns in (stays, goes)]

        t0 = time.time() + 3.0
        plan = write_plan(tmp_path / "plan.json", [
            {"phase": 0, "name": "down", "at": t0, "apply": both(True)},
            {"phase": 1, "name": "up", "at": t0 + 3.5, "apply": both(False)},  # prepared after the deletion
            {"phase": 2, "name": "down again", "at": t0 + 4.0, "apply": both(True)[:1]}], expiry_s=30)
        record = str(tmp_path / "switches.jsonl")
        scheduler = start_schedule(plan, record, netns=None)
        wait_for_line(record, lambda line: line["event"] == "switch", timeout=20)
        sh("ip", "netns", "del", goes)
        assert scheduler.wait(timeout=30) == 1  # every switch tried, one refused
        lines = read_record(record)
        outcome = [(line["phase"], line["netns"], line["ok"]) for line in lines if line["event"] == "switch"]
        assert sorted(outcome) == [(0, goes, True), (0, stays, True), (1, goes, False), (1, stays, True),
                                   (2, stays, True)]
        refused = next(line for line in lines if line["event"] == "switch" and not line["ok"])
        assert goes in refused["error"] and lines[-1] == {"event": "done"}
        assert mpstream("status", "--netns", stays, netns=None)["netns"][stays]["outage"]["forwarding"] is True
    finally:
        if scheduler:
            scheduler.kill()
        for ns in (stays, goes):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
