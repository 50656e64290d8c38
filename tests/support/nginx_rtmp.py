"""nginx with Debian's RTMP module as a reference RTMP server for interop tests and benchmarks.

    from tests.support.nginx_rtmp import NginxRtmp
    with NginxRtmp(port=19350) as server:      # listens on 127.0.0.1 and [::1]
        url = server.url("live", "demo")       # rtmp://127.0.0.1:19350/live/demo
        server.pid                             # the worker's pid (for CPU accounting)

Each instance gets a temporary prefix (config, logs, pid file) and runs in the
foreground as our child (`daemon off`, one worker), so stopping it is a plain
terminate/kill of a process we own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

MODULE_PATHS = ("/usr/lib/nginx/modules/ngx_rtmp_module.so",)
NGINX = "/usr/sbin/nginx"

CONFIG = """\
load_module {module};
daemon off;
master_process {master};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port} ipv6only=on;
        chunk_size 4096;
        application {app} {{
            live on;
            record off;
            wait_key on;
            wait_video on;
        }}
    }}
}}
"""


def module_path() -> str | None:
    return next((p for p in MODULE_PATHS if os.path.exists(p)), None)


def available() -> bool:
    return os.path.exists(NGINX) and module_path() is not None


class NginxRtmp:
    """A private nginx-rtmp on loopback `port`; use as a context manager or start()/stop()."""

    def __init__(self, port: int, app: str = "live", master_process: bool = False):
        self.port = port
        self.app = app
        self.master_process = master_process
        self.prefix: Path | None = None
        self.proc: subprocess.Popen | None = None

    def url(self, app: str | None = None, stream: str = "test", host: str = "127.0.0.1") -> str:
        host = f"[{host}]" if ":" in host else host
        return f"rtmp://{host}:{self.port}/{app or self.app}/{stream}"

    @property
    def pid(self) -> int:
        """The process that serves RTMP (the only process without a master)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 10) -> NginxRtmp:
        module = module_path()
        if module is None:
            raise RuntimeError("libnginx-mod-rtmp is not installed")
        self.prefix = Path(tempfile.mkdtemp(prefix="mpstream-nginx-"))
        for sub in ("logs", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / sub).mkdir()
        conf = self.prefix / "nginx.conf"
        conf.write_text(CONFIG.format(module=module, master="on" if self.master_process else "off",
                                      prefix=self.prefix, port=self.port, app=self.app))
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.prefix / "error.log").read_text(errors="replace") if (
                    self.prefix / "error.log").exists() else ""
                self.stop()
                raise RuntimeError(f"nginx exited at start: {log[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx-rtmp did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish and close sockets
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
