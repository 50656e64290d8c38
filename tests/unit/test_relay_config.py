"""Relay configuration (TOML, flags over the file) and access control."""

import ipaddress

import pytest
from mpstream.streaming.relay import access
from mpstream.streaming.relay.config import ConfigError, RelayConfig, load

TOML = """
listen = ["[::1]:1940", "127.0.0.1:1940"]
http = ""
mptcp = "off"
on_busy = "replace"
[limits]
max_message_size = 1000000
[apps.live]
publish_key = "secret"
stream_keys = { cam2 = "other" }
publish_allow = ["::1/128", "127.0.0.0/8"]
play_deny = ["192.0.2.0/24"]
[apps."*"]
"""


def test_file_then_flags(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text(TOML)
    config = load(path, {"mptcp": "on", "listen": None, "chunk_size": 8192})
    assert config.listen == ("[::1]:1940", "127.0.0.1:1940")
    assert config.mptcp == "on" and config.chunk_size == 8192 and config.on_busy == "replace"
    assert config.limits.max_message_size == 1000000 and config.limits.max_chunk_streams == 64
    policy = config.policy("live")
    assert policy.publish_key == "secret" and policy.stream_keys == {"cam2": "other"}
    assert ipaddress.ip_network("::1/128") in policy.publish_allow
    assert config.policy("other") is not None  # served by "*"


@pytest.mark.parametrize("text", ['mptcp = "sometimes"', "bogus = 1", '[apps.x]\npublish_allow = ["300.1.1.1/8"]',
                                  "[limits]\nmax_chunk_size = 0", "listen = [", "[apps.x]\nkey = 1"])
def test_bad_files_are_errors(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load(path)


def test_defaults_listen_dual_stack_and_serve_every_app():
    config = load(None)
    assert config.listen == ("[::]:1935",) and config.mptcp == "auto" and config.gop_cache
    assert access.check_connect(config, "anything") is None


def test_publish_keys_and_address_lists(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text(TOML.replace('[apps."*"]', ""))
    config = load(path)
    assert access.check_connect(config, "nope")
    assert access.check_publish(config, "live", "cam", "key=secret", "[::1]:5000") is None
    assert access.check_publish(config, "live", "cam", "key=secret", "127.0.0.1:5000") is None
    assert access.check_publish(config, "live", "cam", "key=secret", "[::ffff:127.0.0.1]:5000") is None
    assert "key" in access.check_publish(config, "live", "cam", "key=wrong", "[::1]:5000")
    assert "key" in access.check_publish(config, "live", "cam", "", "[::1]:5000")
    assert access.check_publish(config, "live", "cam2", "key=other", "[::1]:5000") is None
    assert "allowed" in access.check_publish(config, "live", "cam", "key=secret", "[2001:db8::1]:5000")
    assert access.check_play(config, "live", "cam", "[2001:db8::1]:5000") is None
    assert "allowed" in access.check_play(config, "live", "cam", "192.0.2.7:5000")


def test_config_validation():
    with pytest.raises(ConfigError):
        RelayConfig(listen=())
    with pytest.raises(ConfigError):
        RelayConfig(chunk_size=1)


def test_command_refuses_a_bad_config_with_exit_code_2(tmp_path, caplog):
    from mpstream import cli

    path = tmp_path / "bad.toml"
    path.write_text('on_busy = "fight"\n')
    assert cli.main(["relay", "--config", str(path)]) == 2
    assert "on_busy" in caplog.text


def test_command_reports_a_port_in_use(tmp_path, caplog):
    import socket

    from mpstream import cli

    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["relay", "--listen", f"[::1]:{port}", "--http", "", "--mptcp", "off"]) == 1
    assert "cannot start" in caplog.text
