"""After deploy.yml and a reboot: the relay on server1 is a systemd service with an MPTCP
listener that came back by itself, every node has the recorder's state directory, and a
live stream from ffmpeg on push1 reaches ffmpeg on client1 through it, across the sites."""

import json

import pytest
from nodes import addresses, vm

RELAY_URL = f"rtmp://[{addresses('server1')[1][1]}]:1935/live/molecule"  # server1 over isp1


@pytest.fixture(scope="module")
def relay():
    return vm("server1")


def test_relay_is_an_enabled_running_systemd_service(relay):
    service = relay.service("mpstream-relay")
    assert service.is_enabled
    assert service.is_running
    assert relay.check_output("systemctl show -p User --value mpstream-relay") == "mpstream"


def test_relay_came_back_after_the_reboot(relay):
    started = relay.check_output("systemctl show -p ActiveEnterTimestampMonotonic --value mpstream-relay")
    booted_for = float(relay.check_output("cut -d' ' -f1 /proc/uptime"))
    # Started during this boot (monotonic clock starts at boot), i.e. by systemd, not by Ansible.
    assert 0 < int(started) / 1e6 < booted_for


def test_relay_listens_on_all_addresses_with_mptcp(relay):
    listeners = relay.check_output("ss -HMltn")
    assert "[::]:1935" in listeners or "*:1935" in listeners, listeners


def test_recorder_state_directory_on_every_node(host):
    assert host.file("/var/lib/mpstream/runs").is_directory


@pytest.mark.timeout(300)
def test_ffmpeg_publishes_on_push1_and_client1_plays(relay):
    push, client = vm("push1"), vm("client1")
    client.run("rm -f /root/played.flv")
    publisher = push.run(
        "systemd-run --unit=molecule-publish --collect "
        f"ffmpeg -nostdin -loglevel error -re -stream_loop 3 -i /root/sample.flv -c copy -f flv {RELAY_URL}")
    assert publisher.rc == 0, publisher.stderr
    try:
        played = client.run(
            f"timeout 120 ffmpeg -nostdin -loglevel error -rw_timeout 30000000 -i {RELAY_URL} "
            "-t 4 -c copy -f flv -y /root/played.flv")
        assert played.rc == 0, played.stderr
        probe = json.loads(client.check_output(
            "ffprobe -v error -count_packets -show_streams -of json /root/played.flv"))
        kinds = {s["codec_type"]: int(s.get("nb_read_packets", 0)) for s in probe["streams"]}
        assert kinds.get("video", 0) >= 50, kinds  # 4 s at 25 fps, minus the first GOP's wait
        assert kinds.get("audio", 0) > 0, kinds
    finally:
        push.run("systemctl stop molecule-publish")
