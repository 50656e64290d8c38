#!/usr/bin/env python3
"""Start and stop the QEMU VMs of a molecule scenario.

Every VM boots an overlay of the cached base image (`scripts/vm-image`) with three NICs:
`mgmt` (QEMU user networking, SSH forwarded to a loopback port, the way Ansible gets in)
and `nic1`/`nic2` on the scenario's emulated provider networks (UDP multicast on the
loopback interface, so every VM of a scenario on the same provider shares one segment).
The guest names its NICs from their PCI slots (see the image's .link files).

A scenario's state lives in one folder (`.cache/vm/run/SCENARIO`): per VM its disk overlay, pid file and serial
console log, plus `scenario.json` (ports, provider groups, the repository server's pid).
`down` kills only processes whose pid file is in that folder and whose command line
still names that folder, so a reused pid is never hit.

    vmctl.py up SCENARIO --vm NAME [--vm NAME ...] [--network-vm NAME ...]
                                                     # prints the instance config as JSON
    vmctl.py down SCENARIO | --all
    vmctl.py state SCENARIO                          # ports and groups as JSON

A network VM (`--network-vm`, e.g. a router between the sites) boots like the others but is
left out of the instance config: molecule's inventory holds the experiment's nodes only, as
a real site's inventory does; the scenario reaches it through `state`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("MPSTREAM_VM_CACHE", REPO_ROOT / ".cache" / "vm"))
BASE_IMAGE = CACHE_DIR / "base.qcow2"
SSH_KEY = CACHE_DIR / "id_ed25519"
APT_REPO = CACHE_DIR / "repo"
ACCEL_CACHE = CACHE_DIR / "accel"

# PCI slots the image's .link files turn into interface names.
MGMT_SLOT = 3
PROVIDER_SLOTS = {1: 4, 2: 5}
VM_MEMORY_MB = int(os.environ.get("MPSTREAM_VM_MEMORY", "1024"))
VM_CPUS = int(os.environ.get("MPSTREAM_VM_CPUS", "2"))
SSH_WAIT_SECONDS = int(os.environ.get("MPSTREAM_VM_SSH_WAIT", "600"))
# Emulated (TCG), the plain x86-64 model runs Debian 12's kernel and userland faster than
# `max`, whose AVX code paths TCG emulates slowly: Python started in 0.7-1.0 s instead of
# 1.1-1.2 s, a reboot took 55-64 s instead of 75-86 s (two VMs side by side). A VM booted
# into Debian's 6.12 kernel on it never answered SSH again: mptcp_kernel keeps `max`.
TCG_CPU_MODEL = os.environ.get("MPSTREAM_VM_CPU_MODEL", "qemu64")


def ssh_options(port: int) -> list[str]:
    """The SSH client options every caller uses to reach a VM on its forwarded port."""
    return [
        "-i", str(SSH_KEY), "-p", str(port),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=5",
    ]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def guest_mac(vm_index: int, slot: int) -> str:
    """Stable, distinct MACs (locally administered QEMU prefix) per VM and NIC."""
    return f"52:54:00:7e:{vm_index:02x}:{slot:02x}"


PROBE_KERNEL = CACHE_DIR / "probe-vmlinuz"
SYS_MODULES = Path("/sys/module")


def kvm_is_pvm(modules: Path = SYS_MODULES) -> bool:
    """True when /dev/kvm is served by PVM alone (kvm_pvm, no kvm_intel/kvm_amd).

    PVM runs a guest at native speed only when its kernel is built for PVM; Debian's
    kernel (the image's, and the 6.12 that mptcp_kernel installs) runs in KVM's
    instruction emulator there, far slower than TCG, so no probe is needed.
    """
    return (modules / "kvm_pvm").is_dir() and not any(
        (modules / name).is_dir() for name in ("kvm_intel", "kvm_amd"))


def kvm_usable(timeout: float = 20.0) -> bool:
    """Boot the image's kernel without a root disk under KVM: it must reach its panic.

    A boot sector or a busy loop also runs where a Linux guest cannot run at speed (PVM,
    see kvm_is_pvm), so only a real kernel boot is a trustworthy probe; the timeout is
    about twice what TCG needs for it (10 s), so a KVM much slower than TCG is not chosen.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not PROBE_KERNEL.exists() or kvm_is_pvm():
        return False
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none",
           "-nodefaults", "-no-reboot", "-serial", "stdio", "-kernel", str(PROBE_KERNEL),
           "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False).stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
    return b"Kernel panic" in out


def accelerator() -> str:
    """`kvm` where guests really run under it, `tcg` otherwise; probed once and cached."""
    forced = os.environ.get("MPSTREAM_VM_ACCEL")
    if forced:
        return forced
    if ACCEL_CACHE.exists():
        return ACCEL_CACHE.read_text().strip()
    accel = "kvm" if kvm_usable() else "tcg"
    if PROBE_KERNEL.exists():
        ACCEL_CACHE.write_text(accel + "\n")
    return accel


def qemu_command(*, name: str, disk: Path, vm_dir: Path, ssh_port: int, vm_index: int,
                 provider_groups: dict[int, str], accel: str, cpus: int = VM_CPUS, memory_mb: int = VM_MEMORY_MB,
                 kernel: tuple[Path, Path, str] | None = None, disk_format: str = "qcow2") -> list[str]:
    """The QEMU command line of one VM (daemonized, pid file and console log in vm_dir)."""
    cpu = "host" if accel == "kvm" else TCG_CPU_MODEL
    accel_opt = "kvm" if accel == "kvm" else "tcg,thread=multi"
    cmd = [
        "qemu-system-x86_64", "-name", name, "-accel", accel_opt, "-cpu", cpu,
        "-smp", str(cpus), "-m", str(memory_mb), "-nodefaults", "-display", "none",
        "-serial", f"file:{vm_dir / 'console.log'}",
        "-pidfile", str(vm_dir / "qemu.pid"), "-daemonize",
        "-drive", f"file={disk},format={disk_format},if=virtio,cache=unsafe,discard=unmap",
        "-netdev", f"user,id=mgmt,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device", f"virtio-net-pci,netdev=mgmt,addr={MGMT_SLOT:#x},mac={guest_mac(vm_index, MGMT_SLOT)}",
    ]
    for provider, group in sorted(provider_groups.items()):
        slot = PROVIDER_SLOTS[provider]
        cmd += [
            "-netdev", f"socket,id=isp{provider},mcast={group},localaddr=127.0.0.1",
            "-device", f"virtio-net-pci,netdev=isp{provider},addr={slot:#x},mac={guest_mac(vm_index, slot)}",
        ]
    if kernel:
        vmlinuz, initrd, append = kernel
        cmd += ["-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", append]
    return cmd


def wait_for_ssh(port: int, vm_dir: Path, deadline: float) -> None:
    """Block until `ssh root@127.0.0.1:port true` succeeds, or raise with the console tail."""
    pid_file = vm_dir / "qemu.pid"
    while time.monotonic() < deadline:
        done = subprocess.run(["ssh", *ssh_options(port), "root@127.0.0.1", "true"],
                              capture_output=True, timeout=60, check=False)
        if done.returncode == 0:
            return
        if pid_file.exists() and not process_alive(pid_file, vm_dir):
            break
        time.sleep(2)
    console = vm_dir / "console.log"
    tail = console.read_text(errors="replace")[-3000:] if console.exists() else "(no console log)"
    raise RuntimeError(f"VM in {vm_dir} not reachable over SSH on port {port}; console:\n{tail}")


def ssh_run(port: int, command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", *ssh_options(port), "root@127.0.0.1", command],
                          capture_output=True, text=True, timeout=timeout, check=False)


# Runs in the guest: Python starts first and says so; then one echo measures the pipe's
# round trip, and the clock is set the moment the host's time (plus half that) arrives.
_SET_CLOCK = (
    "import sys, time; print('ready', flush=True); print(sys.stdin.readline().strip(), flush=True); "
    "time.clock_settime(time.CLOCK_REALTIME, float(sys.stdin.readline())); print('set', flush=True)"
)


def set_clock(port: int, timeout: float = 120) -> float:
    """Set the VM's clock to this machine's, as NTP does at a real site; returns the bound
    of its error in seconds (half the round trip of the exchange that set it).

    A guest starts with its emulated RTC's whole seconds (up to 1 s behind) and runs no
    NTP of its own; the experiment's nodes must share the controller's clock the way
    synchronised hosts do.
    """
    deadline = time.monotonic() + timeout
    while (error_bound := _set_clock_once(port, timeout)) is None:
        # The guest answered SSH at boot, but a starved emulated CPU can miss the banner's
        # 5 s (ConnectTimeout): ask again until the timeout, as the boot's wait does.
        if time.monotonic() > deadline:
            raise RuntimeError(f"no Python answering on the VM at port {port} within {timeout:g} s")
        time.sleep(2)
    return error_bound


def _set_clock_once(port: int, timeout: float) -> float | None:
    """One exchange that sets the clock; None if the VM's Python never said it was ready."""
    command = ["ssh", *ssh_options(port), "root@127.0.0.1", "python3", "-c", shlex.quote(_SET_CLOCK)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin and proc.stdout

        def exchange(line: str) -> str:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        if proc.stdout.readline().strip() != "ready":
            proc.stdin.close()
            proc.wait(timeout)
            return None
        sent = time.monotonic()
        exchange("echo")
        half_trip = (time.monotonic() - sent) / 2
        sent = time.monotonic()
        done = exchange(f"{time.time() + half_trip:.6f}")
        round_trip = time.monotonic() - sent
        proc.stdin.close()
        proc.wait(timeout)
    if done != "set" or proc.returncode != 0:
        raise RuntimeError(f"setting the clock of the VM at port {port} failed")
    return round_trip / 2


def set_clocks(state_dir: Path) -> dict[str, float]:
    """Every VM of the scenario (nodes and network VMs) on this machine's clock."""
    scenario = json.loads((state_dir / "scenario.json").read_text())
    return {inst["instance"]: round(set_clock(inst["port"]), 6)
            for inst in [*scenario["instances"], *scenario.get("network_vms", [])]}


def _pid_of(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def process_alive(pid_file: Path, owner_dir: Path) -> bool:
    """True while the pid in pid_file runs a command line that names owner_dir."""
    pid = _pid_of(pid_file)
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return str(owner_dir).encode() in cmdline


def stop_process(pid_file: Path, owner_dir: Path, grace: float = 5.0) -> bool:
    """Terminate (then kill) the process of pid_file if it is still ours. True if one was stopped."""
    if not process_alive(pid_file, owner_dir):
        pid_file.unlink(missing_ok=True)
        return False
    pid = _pid_of(pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and process_alive(pid_file, owner_dir):
        time.sleep(0.1)
    if process_alive(pid_file, owner_dir):
        os.kill(pid, signal.SIGKILL)
        while process_alive(pid_file, owner_dir):
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True


def start_repo_server(state_dir: Path) -> int:
    """Serve the local apt repository to the VMs (they reach host loopback as 10.0.2.2)."""
    port = free_port()
    log = open(state_dir / "repo-http.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(APT_REPO),
         str(port), "--protocol", "HTTP/1.1"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        cwd=state_dir,
    )
    (state_dir / "repo-http.pid").write_text(f"{proc.pid}\n")
    return port


def parse_vm(spec: str) -> tuple[str, int, int]:
    """`NAME[,CPUS[,MEMORY_MB]]` as given by the create playbook from a platform's keys."""
    name, _, rest = spec.partition(",")
    cpus, _, memory = rest.partition(",")
    return name, int(cpus or VM_CPUS), int(memory or VM_MEMORY_MB)


def up(state_dir: Path, specs: list[str], providers: list[int], network_specs: list[str] = ()) -> list[dict]:
    if not BASE_IMAGE.exists():
        raise SystemExit(f"no VM image at {BASE_IMAGE}: run scripts/vm-image first")
    state_dir.mkdir(parents=True, exist_ok=True)
    accel = accelerator()
    group_octet = random.randint(1, 254)
    provider_groups = {p: f"239.255.{group_octet}.{p}:{free_udp_port()}" for p in providers}
    repo_port = start_repo_server(state_dir) if (APT_REPO / "Packages").exists() else None
    instances = []
    for index, spec in enumerate([*specs, *network_specs], start=1):
        name, cpus, memory_mb = parse_vm(spec)
        vm_dir = state_dir / name
        vm_dir.mkdir(exist_ok=True)
        disk = vm_dir / "disk.qcow2"
        disk.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(BASE_IMAGE),
                        str(disk)], check=True)
        port = free_port()
        (vm_dir / "console.log").unlink(missing_ok=True)
        subprocess.run(qemu_command(name=name, disk=disk, vm_dir=vm_dir, ssh_port=port, vm_index=index,
                                    provider_groups=provider_groups, accel=accel, cpus=cpus,
                                    memory_mb=memory_mb), check=True)
        instances.append({"instance": name, "address": "127.0.0.1", "user": "root", "port": port,
                          "identity_file": str(SSH_KEY), "vm_dir": str(vm_dir)})
    nodes, network_vms = instances[:len(specs)], instances[len(specs):]
    scenario = {"accel": accel, "provider_groups": provider_groups, "repo_port": repo_port,
                "instances": nodes, "network_vms": network_vms}
    (state_dir / "scenario.json").write_text(json.dumps(scenario, indent=2) + "\n")
    deadline = time.monotonic() + SSH_WAIT_SECONDS
    for inst in instances:
        wait_for_ssh(inst["port"], Path(inst["vm_dir"]), deadline)
    set_clocks(state_dir)
    return nodes


def down(state_dir: Path) -> list[str]:
    """Stop every VM and the repository server of the scenario; return what was stopped."""
    stopped = []
    if not state_dir.is_dir():
        return stopped
    for pid_file in sorted(state_dir.glob("*/qemu.pid")):
        if stop_process(pid_file, pid_file.parent):
            stopped.append(pid_file.parent.name)
    repo_pid = state_dir / "repo-http.pid"
    if stop_process(repo_pid, APT_REPO):
        stopped.append("repo-http")
    # Kept for a look after a failure: the serial console shows boot and kernel trouble.
    logs = CACHE_DIR / "logs"
    for console in state_dir.glob("*/console.log"):
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(console, logs / f"{state_dir.name}-{console.parent.name}.log")
    shutil.rmtree(state_dir, ignore_errors=True)
    return stopped


RUN_DIR = CACHE_DIR / "run"


def scenario_dir(scenario: str) -> Path:
    return RUN_DIR / scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p_up = sub.add_parser("up", help="boot the VMs, wait for SSH, print the instance config")
    p_up.add_argument("scenario")
    p_up.add_argument("--vm", action="append", required=True, help="NAME[,CPUS[,MEMORY_MB]] (repeat)")
    p_up.add_argument("--network-vm", action="append", default=[],
                      help="NAME[,CPUS[,MEMORY_MB]] of a VM outside the inventory, e.g. a router (repeat)")
    p_up.add_argument("--provider", action="append", type=int, default=None,
                      help="provider index with a NIC in every VM (default: 1 and 2)")
    p_down = sub.add_parser("down", help="stop the VMs and remove the scenario's state")
    p_down.add_argument("scenario", nargs="?")
    p_down.add_argument("--all", action="store_true", help="every scenario's VMs")
    p_state = sub.add_parser("state", help="print the scenario's state (ports, groups) as JSON")
    p_state.add_argument("scenario")
    p_clock = sub.add_parser("clock", help="set every VM's clock to this machine's (after a reboot)")
    p_clock.add_argument("scenario")
    sub.add_parser("accel", help="print the accelerator VMs use here")
    args = parser.parse_args(argv)
    if args.action == "up":
        state_dir = scenario_dir(args.scenario)
        down(state_dir)  # leftovers of an interrupted run
        try:
            instances = up(state_dir, args.vm, args.provider or [1, 2], args.network_vm)
        except BaseException:
            down(state_dir)
            raise
        keys = ("instance", "address", "user", "port", "identity_file")
        print(json.dumps([{k: inst[k] for k in keys} for inst in instances]))
    elif args.action == "down":
        if args.all:
            dirs = sorted(p for p in RUN_DIR.glob("*") if p.is_dir())
        elif args.scenario:
            dirs = [scenario_dir(args.scenario)]
        else:
            parser.error("down needs a scenario or --all")
        print(json.dumps({"stopped": [f"{d.name}/{name}" for d in dirs for name in down(d)]}))
    elif args.action == "state":
        print((scenario_dir(args.scenario) / "scenario.json").read_text())
    elif args.action == "clock":
        print(json.dumps({"error_bound_s": set_clocks(scenario_dir(args.scenario))}))
    else:
        print(accelerator())
    return 0


if __name__ == "__main__":
    sys.exit(main())
