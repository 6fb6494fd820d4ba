"""Shared pytest fixtures: the product binary and free loopback ports."""
import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pomerium_binary() -> Path:
    """The pomerium executable under test: $POMERIUM_BINARY, else the release build."""
    path = Path(os.environ.get("POMERIUM_BINARY", ROOT / ".build/release/pomerium"))
    if not path.is_file():
        pytest.fail(f"{path} is missing; build it with: swift build -c release --product pomerium")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
