"""`mpstream play --until` and `--start-at`: a scenario's end and its players' start as wall-clock times."""

import subprocess
import sys
import time


def play(*args):
    return subprocess.run([sys.executable, "-m", "mpstream", "play", *args], capture_output=True, text=True,
                          timeout=30)


def test_until_in_the_past_is_refused_with_the_reason():
    result = play("rtmp://127.0.0.1:9/live/x", "--until", str(time.time() - 5))
    assert result.returncode == 2
    assert "has passed already" in result.stderr


def test_until_and_duration_exclude_each_other():
    result = play("rtmp://127.0.0.1:9/live/x", "--until", str(time.time() + 5), "--duration", "3")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def test_until_bounds_a_play_that_finds_no_server():
    started = time.monotonic()
    result = play("rtmp://127.0.0.1:9/live/x", "--until", str(time.time() + 1.5), "--reconnect", "--json", "/dev/null")
    assert result.returncode == 1, result.stderr
    assert 1.4 < time.monotonic() - started < 10  # it kept trying until the given time, then stopped



def test_start_at_waits_before_playing_for_the_duration():
    started = time.monotonic()
    result = play("rtmp://127.0.0.1:9/live/x", "--start-at", str(time.time() + 1.0),
                  "--duration", "0.6", "--reconnect", "--json", "/dev/null")
    assert result.returncode == 1, result.stderr
    assert 1.5 < time.monotonic() - started < 10  # the wait, then the whole duration trying


def test_start_at_after_until_leaves_nothing_to_play():
    result = play("rtmp://127.0.0.1:9/live/x", "--start-at", str(time.time() + 0.5), "--until", str(time.time() + 0.2))
    assert result.returncode == 2 and "has passed already" in result.stderr
