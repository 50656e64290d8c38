"""The molecule VM machinery's pure parts: the mirror read from apt sources, the
partition table of the image, the QEMU command line of a scenario VM."""

import importlib.machinery
import importlib.util
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))

import vmctl  # noqa: E402


def _load_vm_image():
    loader = importlib.machinery.SourceFileLoader("vm_image", str(ROOT / "scripts" / "vm-image"))
    spec = importlib.util.spec_from_loader("vm_image", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


vm_image = _load_vm_image()


def test_mirror_from_deb822_sources_skips_security_and_disabled(tmp_path):
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb deb-src\n# a comment line\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert vm_image.debian_mirror([sources]) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources_list(tmp_path):
    listing = tmp_path / "sources.list"
    listing.write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n"
    )
    assert vm_image.debian_mirror([listing]) == "http://mirror.example/debian"


def test_no_mirror_is_an_error(tmp_path):
    listing = tmp_path / "sources.list"
    listing.write_text("deb http://mirror.example/debian trixie main\n")
    with pytest.raises(SystemExit):
        vm_image.debian_mirror([listing])


def test_partition_table_has_one_bootable_linux_partition():
    table = vm_image.mbr(2048, 1000)
    assert len(table) == 512 and table[510:] == b"\x55\xaa"
    boot, kind, start, sectors = table[446], table[450], *struct.unpack("<II", table[454:462])
    assert (boot, kind, start, sectors) == (0x80, 0x83, 2048, 1000)
    assert table[462:510] == bytes(48)


def test_vm_spec_from_platform_keys():
    assert vmctl.parse_vm("server1,1,768") == ("server1", 1, 768)
    assert vmctl.parse_vm("client1") == ("client1", vmctl.VM_CPUS, vmctl.VM_MEMORY_MB)
    assert vmctl.parse_vm("client1,,512") == ("client1", vmctl.VM_CPUS, 512)


def test_qemu_command_nics_and_pid_file(tmp_path):
    cmd = vmctl.qemu_command(name="vm1", disk=tmp_path / "d.qcow2", vm_dir=tmp_path, ssh_port=2222, vm_index=3,
                             provider_groups={1: "239.255.9.1:5000", 2: "239.255.9.2:5001"}, accel="tcg")
    line = " ".join(cmd)
    assert "-accel tcg,thread=multi" in line and "-daemonize" in line
    assert f"-pidfile {tmp_path}/qemu.pid" in line
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in line  # SSH only on loopback
    assert "socket,id=isp1,mcast=239.255.9.1:5000,localaddr=127.0.0.1" in line
    assert "socket,id=isp2,mcast=239.255.9.2:5001,localaddr=127.0.0.1" in line
    # The slots the image's .link files name mgmt, nic1 and nic2; distinct MACs per VM.
    for slot in (vmctl.MGMT_SLOT, *vmctl.PROVIDER_SLOTS.values()):
        assert f"addr={slot:#x},mac={vmctl.guest_mac(3, slot)}" in line
    assert len({vmctl.guest_mac(i, s) for i in (1, 2) for s in (3, 4, 5)}) == 6


def test_image_names_nics_by_the_slots_vmctl_uses():
    files = vm_image.GUEST_FILES
    assert f"pci-0000:00:{vmctl.MGMT_SLOT:02x}.0" in files["etc/systemd/network/10-mgmt.link"]
    for provider, slot in vmctl.PROVIDER_SLOTS.items():
        link = files[f"etc/systemd/network/10-nic{provider}.link"]
        assert f"pci-0000:00:{slot:02x}.0" in link and f"Name=nic{provider}" in link


def test_stop_process_leaves_foreign_pids_alone(tmp_path):
    pid_file = tmp_path / "qemu.pid"
    pid_file.write_text("1\n")  # init: its command line does not name our folder
    assert not vmctl.process_alive(pid_file, tmp_path)
    assert vmctl.stop_process(pid_file, tmp_path) is False
    assert not pid_file.exists()


def test_pvm_alone_is_not_worth_a_kvm_probe(tmp_path):
    # PVM (pagetable-based KVM, no vmx/svm) emulates an unmodified Debian kernel instruction by instruction.
    assert not vmctl.kvm_is_pvm(tmp_path)
    (tmp_path / "kvm").mkdir()
    (tmp_path / "kvm_pvm").mkdir()
    assert vmctl.kvm_is_pvm(tmp_path)
    (tmp_path / "kvm_amd").mkdir()  # hardware KVM beside it: the boot probe decides
    assert not vmctl.kvm_is_pvm(tmp_path)


def test_a_built_image_is_stored_and_a_fresh_checkout_takes_it(tmp_path, monkeypatch):
    built, fresh, store = tmp_path / "built", tmp_path / "fresh", tmp_path / "store"
    monkeypatch.setattr(vm_image, "STORE", store)
    for name in vm_image.STORED:
        if name == "repo":
            (built / "repo").mkdir(parents=True)
            (built / "repo" / "Packages").write_text("Package: x\n")
        else:
            built.mkdir(exist_ok=True)
            (built / name).write_text(name)

    def use_cache(folder):
        monkeypatch.setattr(vm_image.vmctl, "CACHE_DIR", folder)
        monkeypatch.setattr(vm_image.vmctl, "APT_REPO", folder / "repo")

    use_cache(fresh)
    assert vm_image.restore("key1") is False and not fresh.exists()  # nothing stored yet
    use_cache(built)
    vm_image.store("key1")
    assert (store / "key1" / "base.qcow2").stat().st_nlink == 2  # linked, not copied
    use_cache(fresh)
    assert vm_image.restore("key1") is True
    assert (fresh / "base.qcow2").read_text() == "base.qcow2" and (fresh / "repo" / "Packages").exists()
    assert vm_image.restore("other-recipe") is False


def test_the_recipe_key_follows_the_mirror():
    assert vm_image.recipe_key("http://a.example/debian") != vm_image.recipe_key("http://b.example/debian")
