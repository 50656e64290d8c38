"""`mpstream relay` as a child process on loopback, for the interop tests and the benchmark."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MPSTREAM = str(Path(sys.executable).with_name("mpstream"))


def free_port() -> int:
    """A port free on both ::1 and 127.0.0.1 right now."""
    while True:
        with socket.socket(socket.AF_INET6) as s6:
            s6.bind(("::1", 0))
            port = s6.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET) as s4:
                    s4.bind(("127.0.0.1", port))
                    return port
            except OSError:
                continue


class RelayProcess:
    def __init__(self, log: Path, config: str = "", extra: tuple[str, ...] = (), env: dict | None = None):
        self.port = free_port()
        self.http_port = free_port()
        self.log = log
        self.config_text = config
        self.extra = extra
        self.env = env  # None: ours
        self.proc: subprocess.Popen | None = None

    def url(self, stream: str = "cam", host: str = "::1", app: str = "live") -> str:
        host = f"[{host}]" if ":" in host else host
        return f"rtmp://{host}:{self.port}/{app}/{stream}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> RelayProcess:
        args = [MPSTREAM, "relay", "--listen", f"[::1]:{self.port}", "--listen", f"127.0.0.1:{self.port}",
                "--http", f"127.0.0.1:{self.http_port}", *self.extra]
        if self.config_text:
            path = self.log.with_suffix(".toml")
            path.write_text(self.config_text)
            args += ["--config", str(path)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"), env=self.env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("relay did not start within 10 s")

    def stats(self, path: str = "/") -> dict | list:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as response:
            return json.load(response)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        code = self.proc.returncode
        self.proc = None
        return code

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
