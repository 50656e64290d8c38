"""The VM as the scenarios expect it: Debian 12, its NICs, SSH, the local repository."""


def test_debian_12_with_the_6_1_kernel(host):
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.startswith("12")
    assert host.run("uname -r").stdout.startswith("6.1.")


def test_nics_are_named_for_their_role(host):
    for nic in ("mgmt", "nic1", "nic2"):
        assert host.interface(nic).exists, nic


def test_sshd_runs_under_systemd(host):
    assert host.service("ssh").is_running
    assert host.service("ssh").is_enabled


def test_package_from_the_local_repository_installed(host):
    assert host.package("ethtool").is_installed
