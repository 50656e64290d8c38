"""The counting table behind the outage's drop: its rules and how its listing is read."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from mpstream.paths.outage import delivered, table


def listing(counters: dict[str, tuple[int, int]]) -> str:
    """What `nft -j list table inet mpstream_delivered` prints (nft 1.0.6)."""
    items = [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
             {"table": {"family": "inet", "name": delivered.TABLE, "handle": 7}},
             {"chain": {"family": "inet", "table": delivered.TABLE, "name": "input", "handle": 1, "type": "filter",
                        "hook": "input", "prio": 0, "policy": "accept"}}]
    for handle, (nic, (packets, octets)) in enumerate(counters.items(), start=2):
        items.append({"rule": {"family": "inet", "table": delivered.TABLE, "chain": "input", "handle": handle,
                               "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": nic}},
                                        {"counter": {"packets": packets, "bytes": octets}}]}})
    return json.dumps({"nftables": items})


def test_the_counters_are_read_per_nic():
    assert delivered.parse(listing({"nic1": (10, 15000), "nic2": (0, 0)})) == {"nic1": 15000, "nic2": 0}


def test_rules_without_a_nic_or_a_counter_are_left_out():
    text = json.loads(listing({"nic1": (1, 84)}))
    text["nftables"].append({"rule": {"expr": [{"counter": {"packets": 5, "bytes": 500}}]}})
    text["nftables"].append({"rule": {"expr": [{"match": {"left": {"meta": {"key": "iifname"}}, "right": "nic9"}}]}})
    assert delivered.parse(json.dumps(text)) == {"nic1": 84}


def test_the_table_counts_after_the_outage_drop_and_replaces_itself():
    script = delivered.ruleset(["nic1", "nic2"])
    assert script.startswith(f"table inet {delivered.TABLE}\ndelete table inet {delivered.TABLE}\n")
    assert 'iifname "nic1" counter' in script and 'iifname "nic2" counter' in script
    assert "policy accept" in script and "drop" not in script
    # behind the outage's input chain: what it drops never reaches the counters
    outage_priority = int(table.ruleset(["nic1"], False, "c").split("hook input priority ")[1].split(";")[0])
    assert delivered.PRIORITY > outage_priority


class SilentReading(delivered.Reading):
    """A reading whose process never answers (a real one, in place of a starved nft)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_a_reading_late_for_its_instant_is_left_out_and_its_process_ended():
    reading = SilentReading()
    started = time.monotonic()
    assert reading.take(timeout=0.2) is None
    assert time.monotonic() - started < 2.0  # the switch after it does not wait for the process
    assert reading.process.returncode is not None
    reading.discard()  # the scheduler's cleanup after a reading taken or left out: harmless
