"""Edge settings: origins from flags and per app in the TOML file, and what is refused."""

import pytest
from mpstream import cli
from mpstream.streaming.relay.config import ConfigError, load

TOML = """
origins = ["rtmp://[2001:db8::1]:1936/live", "rtmp://origin2"]
pull_linger_s = 3
origin_silence_s = 0.8
[apps.live]
[apps.sport]
origins = ["rtmp://sport-origin/sport"]
"""


def test_origins_per_app_else_the_top_level_ones(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text(TOML)
    config = load(path)
    assert config.origins_for("sport") == ("rtmp://sport-origin/sport",)
    assert config.origins_for("live") == ("rtmp://[2001:db8::1]:1936/live", "rtmp://origin2")
    assert config.origins_for("other") == config.origins  # not served, but no origins of its own either
    assert config.pull_linger_s == 3 and config.origin_silence_s == 0.8 and config.origin_connect_timeout_s == 3
    flags = load(path, {"origins": ["rtmp://a/live", "rtmp://b/live"], "pull_linger_s": None})
    assert flags.origins == ("rtmp://a/live", "rtmp://b/live") and flags.pull_linger_s == 3


def test_no_origins_no_edge():
    assert load(None).origins_for("live") == ()


@pytest.mark.parametrize("text", ['origins = ["http://a/live"]', 'origins = ["rtmp://a/live/cam"]',
                                  "origins = 3", "origin_silence_s = 0", "[apps.x]\norigins = ['rtmp:///x']",
                                  "pull_linger_s = -1"])
def test_bad_edge_settings_are_errors(tmp_path, text):
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load(path)


def test_relay_command_takes_origins():
    args = cli.build_parser().parse_args(["relay", "--origin", "rtmp://a/live", "--origin", "rtmp://b/live",
                                          "--pull-linger-s", "2", "--origin-silence-s", "1"])
    assert args.origin == ["rtmp://a/live", "rtmp://b/live"] and args.pull_linger_s == 2


def test_publish_command_takes_several_urls():
    args = cli.build_parser().parse_args(["publish", "--file", "x.flv", "rtmp://a/live/cam", "rtmp://b/live/cam"])
    assert args.url == ["rtmp://a/live/cam", "rtmp://b/live/cam"]
    assert cli.main(["publish", "rtmp://a/live/cam", "rtmp://a/live/cam"]) == 2  # the same URL twice
