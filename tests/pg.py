"""A real PostgreSQL server for tests, on 127.0.0.1, in a throwaway folder.

Debian's `postgresql` package (`make packages` installs it). PostgreSQL refuses to run
as root, so under root the server runs as the package's `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found: run `make packages` (Debian's postgresql)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the superuser's URL of a fresh server; stop and remove it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="shopfloor-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run(
        [*as_user, _binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E",
         "UTF8", "--no-instructions"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [*as_user, _binary("pg_ctl"), "-D", str(data), "-l", str(root / "log")]
    subprocess.run([*ctl, "-o", options, "-w", "-t", "120", "start"], check=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
