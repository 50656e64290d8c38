"""After the role and one more reboot: the 6.12 kernel runs, MPTCP is on, and the
sysctls the role persisted hold their values."""


def test_runs_the_new_kernel_from_the_package(host):
    assert host.check_output("uname -r").startswith("6.12.")
    assert host.package("linux-image-6.12-amd64").is_installed


def test_new_kernel_is_the_boot_default(host):
    grub = host.file("/boot/grub/grub.cfg").content_string
    first_linux = next(line for line in grub.splitlines() if line.strip().startswith("linux"))
    assert "vmlinuz-6.12." in first_linux, first_linux


def test_mptcp_enabled(host):
    assert host.check_output("sysctl -n net.mptcp.enabled") == "1"


SYSCTL_FILE = "/etc/sysctl.d/90-mpstream-mptcp.conf"


def test_persisted_sysctls_hold_after_reboot(host):
    persisted = {}
    for line in host.file(SYSCTL_FILE).content_string.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith(("#", ";")):
            persisted[key.strip()] = value.strip()
    # The scenario's values differ from the kernel's defaults (4 and 120).
    assert persisted.get("net.mptcp.stale_loss_cnt") == "2", persisted
    assert persisted.get("net.mptcp.add_addr_timeout") == "10", persisted
    live = {key: host.check_output(f"sysctl -n {key}") for key in persisted}
    assert live == persisted
