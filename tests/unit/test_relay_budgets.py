"""The relay's defences in memory: message budget, log escaping and rate, names, file limit, config."""

import ipaddress
import logging
import resource

import pytest
from mpstream.streaming.relay import access, fdlimit, names
from mpstream.streaming.relay.budget import MessageBudget
from mpstream.streaming.relay.config import ConfigError, from_mapping
from mpstream.streaming.relay.logs import RateLimit, Tally, shown
from mpstream.streaming.relay.outbox import ENTRY_OVERHEAD, KEYFRAME, ORDINARY, Outbox


def test_message_budget_refills_at_its_rate_up_to_the_burst():
    budget = MessageBudget(rate=100, burst=50, now=0.0)
    assert budget.allowance(0.0) == 50
    budget.spend(80)  # an aggregate can overspend: the debt is paid by waiting
    assert budget.allowance(0.1) == 0
    assert budget.wait_for(10) == pytest.approx(0.3)
    assert budget.allowance(0.5) == 20
    assert budget.allowance(100.0) == 50


def test_message_budget_zero_rate_is_unlimited():
    budget = MessageBudget(rate=0, burst=0, now=0.0)
    budget.spend(10**9)
    assert budget.allowance(0.0) is None


def test_shown_escapes_line_breaks_and_cuts_long_values():
    assert shown("cam\n2026-12-01 INFO forged") == "cam\\x0a2026-12-01 INFO forged"
    assert shown("a\\b\x1b[31m") == "a\\\\b\\x1b[31m"
    assert shown("x" * 1000, 10) == "x" * 10 + "...(+990 chars)"
    assert shown("caméra") == "caméra"


def test_log_rate_limit_counts_what_it_holds_back():
    now = [0.0]
    limit = RateLimit(per_second=10, burst=5, clock=lambda: now[0])
    records = [logging.LogRecord("x", logging.INFO, "", 0, "line %d", (i,), None) for i in range(20)]
    passed = [r for r in records if limit.filter(r)]
    assert len(passed) == 5 and limit.suppressed == 15
    now[0] = 1.0
    late = logging.LogRecord("x", logging.INFO, "", 0, "after %s", ("pause",), None)
    assert limit.filter(late)
    assert late.getMessage().startswith("after pause [15 log lines")
    assert limit.suppressed == 0


@pytest.mark.parametrize("app,problem", [("live", None), ("live/x", None), ("", "empty"), ("live//x", "segment"),
                                         ("../live", "segment"), ("li\nve", "control"), (" live", "control"),
                                         ("a" * 300, "longer")])
def test_app_names(app, problem):
    found = names.app_problem(app, 256)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("name,problem", [("cam", None), ("x/s", None), ("cam\n", "control"),
                                          ("\u202ecam", "control"), ("c" * 257, "longer"), ("", "empty")])
def test_stream_names(name, problem):
    found = names.stream_problem(name, 256)
    assert (found is None) if problem is None else (problem in found)


def test_an_app_with_segments_falls_under_its_first_segment_not_under_the_open_default():
    config = from_mapping({"apps": {"live": {"publish_key": "k"}, "*": {}}})
    assert config.policy("live/x").publish_key == "k"
    assert access.check_publish(config, "live/x", "s", "", "[::1]:5") == "wrong or missing publish key"
    assert access.check_publish(config, "other/x", "s", "", "[::1]:5") is None
    assert access.publish_key_required(config, "live/x", "s") and not access.publish_key_required(config, "tv", "s")


def test_v4_mapped_deny_entries_match_v4_mapped_peers():
    config = from_mapping({"apps": {"*": {"publish_deny": ["::ffff:198.51.100.0/120", "::ffff:192.0.2.7"]}}})
    assert config.policy("live").publish_deny == (ipaddress.ip_network("198.51.100.0/24"),
                                                  ipaddress.ip_network("192.0.2.7/32"))
    for peer in ("[::ffff:198.51.100.9]:4000", "198.51.100.9:4000", "[::ffff:192.0.2.7]:1"):
        assert access.check_publish(config, "live", "cam", "", peer) is not None
    assert access.check_publish(config, "live", "cam", "", "[::ffff:192.0.2.8]:1") is None


def test_budget_settings_are_checked():
    config = from_mapping({"max_output_bytes": 2 << 20, "max_gop_bytes": 1 << 20, "limits": {"max_name_length": 64}})
    assert config.max_output_bytes == 2 << 20 and config.limits.max_name_length == 64
    with pytest.raises(ConfigError, match="max_gop_bytes"):
        from_mapping({"max_output_bytes": 1 << 20})
    with pytest.raises(ConfigError):
        from_mapping({"max_connection_bytes": 2 << 20, "max_total_bytes": 1 << 20})
    with pytest.raises(ConfigError):
        from_mapping({"max_messages_per_s": -1})
    with pytest.raises(ConfigError):
        from_mapping({"limits": {"max_buffered_bytes": 10}})


def test_open_files_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        raised = fdlimit.raise_open_files_limit()
        assert raised == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert raised == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert fdlimit.connection_capacity(1024) == 1024 - fdlimit.RESERVE
    assert fdlimit.connection_capacity(10) == 1


def test_outbox_size_counts_control_and_media_with_overhead():
    outbox = Outbox(10.0, lambda: 0.0)
    outbox.push_control(b"p" * 10)
    outbox.push_media((b"k" * 100, True), KEYFRAME, 0.0)
    outbox.push_media((b"o" * 100, True), ORDINARY, 0.0)
    assert outbox.size == 210 + 3 * ENTRY_OVERHEAD and outbox.control_size == 10 + ENTRY_OVERHEAD
    outbox.push_media((b"o" * 100, True), ORDINARY, 20.0)  # far behind: media dropped, control kept
    assert outbox.size == outbox.control_size == 10 + ENTRY_OVERHEAD
    outbox.take()
    assert outbox.size == outbox.control_size == 0


def test_tally_writes_a_storm_as_one_line_per_interval(caplog):
    now = [0.0]
    tally = Tally(logging.getLogger("tally-test"), 10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "tally-test"):
        for i in range(1000):
            now[0] = i / 100
            tally.add("connections refused", "max_connections 5 reached")
        tally.add("failed accepts")
        now[0] = 25.0
        tally.flush()
        tally.flush()
        tally.add("failed accepts")
        tally.flush(force=True)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["1 connections refused (max_connections 5 reached)",
                     "999 connections refused (max_connections 5 reached), 1 failed accepts in the last 25 s",
                     "1 failed accepts in the last 0 s"]
