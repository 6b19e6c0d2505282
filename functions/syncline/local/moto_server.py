"""A moto server on a free loopback port, in its own process: boto3 reaches it over real HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"  # moto's default account
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, log_file: Path | None = None, timeout: float = 20.0) -> MotoServer:
        port = free_port()
        log = log_file.open("ab") if log_file else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("moto_keepalive.py")), "127.0.0.1", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = cls(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {process.returncode}; see {log_file}")
            if server.healthy():
                return server
            time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"moto server did not answer on {server.endpoint} within {timeout:.0f} s")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1) as response:  # noqa: S310 - loopback URL we built
                return bool(response.status == 200)
        except OSError:
            return False

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
