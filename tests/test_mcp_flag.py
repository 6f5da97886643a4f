"""`python app.py` serves MCP by default where the mcp package is installed; --no-mcp or GRADIO_MCP_SERVER=false not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import app
from similarity.config import Settings
from similarity.errors import ConfigError

from .helpers import TINY_ENV

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("flag", "setting", "installed", "expected"),
    [
        (None, None, True, True),  # the default where the extra is installed
        (None, None, False, False),  # ... and where it is not: the app starts without it
        (False, None, True, False),  # --no-mcp
        (None, False, True, False),  # GRADIO_MCP_SERVER=false (a Space cannot pass flags)
        (False, True, True, False),  # the flag wins over the environment
        (True, False, True, True),
    ],
)
def test_mcp_choice(flag, setting, installed, expected):
    assert app.mcp_server(flag, setting, installed=installed) is expected


@pytest.mark.parametrize(("flag", "setting"), [(True, None), (None, True)])
def test_asking_for_mcp_without_the_extra_says_how_to_install_it(flag, setting):
    with pytest.raises(ConfigError, match=r'pip install "gradio\[mcp\]"') as caught:
        app.mcp_server(flag, setting, installed=False)
    assert caught.value.exit_code == 2


def test_gradio_mcp_server_setting_is_read_and_checked():
    assert Settings.from_env({"GRADIO_MCP_SERVER": "false"}).mcp_server is False
    assert Settings.from_env({}).mcp_server is None
    with pytest.raises(ConfigError, match="GRADIO_MCP_SERVER"):
        Settings.from_env({"GRADIO_MCP_SERVER": "maybe"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mcp_page(args: list[str], tmp_path: Path) -> int:
    """Start ``python app.py ARGS`` on an empty memory catalog; the status of GET /gradio_api/mcp/ once it serves."""
    port = _free_port()
    env = {**os.environ, **TINY_ENV, "SIMILARITY_STORE": "memory://", "SIMILARITY_SEED_DEMO": "false"}
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), SIMILARITY_TAGGER="off")
    env.pop("GRADIO_MCP_SERVER", None)
    with open(tmp_path / "app.log", "w+") as log:
        proc = subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                        return httpx.get(f"http://127.0.0.1:{port}/gradio_api/mcp/", timeout=5).status_code
                except httpx.TransportError:
                    time.sleep(0.5)
            log.seek(0)
            raise AssertionError(f"the app did not start: {log.read()[-2000:]}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.slow
def test_app_serves_mcp_by_default_and_not_with_no_mcp(tmp_path):
    assert _mcp_page([], tmp_path) == 200  # the MCP landing page
    assert _mcp_page(["--no-mcp"], tmp_path) == 404
