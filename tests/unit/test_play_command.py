"""`mpstream play --until`: a scenario's end as a wall-clock time."""

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
