"""The timing tests' guard: a run measured across a disturbed clock is measured again, once."""

import sys
import time

import pytest

from tests.support.clock import ClockWatch, again_if_the_clock_was_disturbed


def starve_other_threads(seconds: float) -> None:
    """Hold the interpreter for `seconds`: the watch's thread cannot wake, as when the machine stands still."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(seconds + 1.0)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(interval)


def test_a_steady_clock_is_not_called_disturbed():
    with ClockWatch() as watch:
        time.sleep(0.2)
    assert watch.disturbance() is None and abs(watch.stepped_s) < 0.05


def test_a_standstill_is_seen():
    with ClockWatch() as watch:
        time.sleep(0.05)  # the watch's thread is waiting
        starve_other_threads(0.8)
    assert watch.longest_gap_s >= 0.5 and "stood still" in watch.disturbance()


def test_a_failure_on_a_steady_clock_stands(tmp_path):
    runs = []

    def scenario(folder):
        runs.append(folder.name)
        raise AssertionError("late")

    with pytest.raises(AssertionError, match="late"):
        again_if_the_clock_was_disturbed(scenario, tmp_path)
    assert runs == ["first"]


def test_a_failure_across_a_standstill_is_measured_again_and_the_second_verdict_stands(tmp_path):
    runs = []

    def scenario(folder):
        runs.append(folder.name)
        if len(runs) == 1:
            time.sleep(0.05)
            starve_other_threads(0.8)
            raise AssertionError("late")

    again_if_the_clock_was_disturbed(scenario, tmp_path)
    assert runs == ["first", "second"]

    def always_late(folder):
        time.sleep(0.05)
        starve_other_threads(0.8)
        raise AssertionError("late again")

    with pytest.raises(AssertionError, match="late again"):
        again_if_the_clock_was_disturbed(always_late, tmp_path / "other")


def test_a_passing_run_is_not_repeated(tmp_path):
    runs = []
    again_if_the_clock_was_disturbed(lambda folder: runs.append(folder.name), tmp_path)
    assert runs == ["first"]
