"""A real CodexContinue server for the Streamlit tests: the debug binary (CODEXCONTINUE_BIN,
built by `cargo xtask test`) on an ephemeral loopback port, with the repository's plugins
(CODEXCONTINUE_PLUGINS_DIR; only echo, the offline demo, is loaded) and a sled store in a temporary folder that outlives restarts."""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("CODEXCONTINUE_BIN", ROOT / "target/debug/codexcontinue"))
PLUGINS = Path(os.environ.get("CODEXCONTINUE_PLUGINS_DIR", ROOT / "plugins"))
# How long a server may take to listen (a debug build compiling plugins on a busy machine;
# the compile cache in the data folder makes restarts quick).
LISTEN_DEADLINE = 120
KEY = "sk-streamlit-test-0123456789"


class Server:
    def __init__(self, home: Path, env: dict[str, str] | None = None):
        self.data = home / "data"
        self.plugins = home / "plugins"
        self.data.mkdir(exist_ok=True)
        self.plugins.mkdir(exist_ok=True)
        for name in ("echo.toml", "echo.wasm"):
            shutil.copy(PLUGINS / "echo" / name, self.plugins / name)
        self.env = env or {}
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> Server:
        env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn,codexcontinue=info", **self.env}
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--bind", "127.0.0.1:0", "--store", "sled", "--watch", "false",
             "--data-dir", str(self.data), "--plugins-dir", str(self.plugins)],
            env=env,
            cwd=self.data,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        found: queue.Queue[str] = queue.Queue()

        def drain(stream):
            # Reads the log to its end so the server never blocks on a full pipe.
            for line in stream:
                if "listening on " in line:
                    found.put(line.split("listening on ", 1)[1].strip())
            found.put("")

        threading.Thread(target=drain, args=(self.process.stderr,), daemon=True).start()
        try:
            self.url = found.get(timeout=LISTEN_DEADLINE)
        except queue.Empty:
            self.url = ""
        if not self.url:
            self.stop()
            raise RuntimeError(f"{BIN} did not listen within {LISTEN_DEADLINE} s")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s.start()
    s.stop()


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path, {"CODEXCONTINUE_API_KEYS": f"ada:{KEY}"})
    yield s.start()
    s.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: the port was just free, and is closed again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
