"""Smoke test with a real BI tool: Apache Superset reads both serving targets over HTTP.

Not part of `make test` (installing Superset takes minutes and hundreds of packages);
run it by hand after changing the serving layer:

    uv venv /tmp/superset -p 3.11
    uv pip install --python /tmp/superset/bin/python apache-superset duckdb-engine \\
        psycopg2-binary duckdb==1.5.6 "flask-caching>=2.3,<2.4" rich cachetools
    uv run python scripts/superset_smoke.py --superset /tmp/superset/bin/superset

It simulates a small plant, starts a real PostgreSQL (tests/pg.py), runs `shopfloor run`
with both serving targets, starts Superset on 127.0.0.1, registers the DuckDB catalog
(read-only) and the Postgres marts (as the read-only role) as databases through
Superset's REST API, then runs SQL Lab queries on both in a loop while two more hourly
runs go on. It prints the queries, failures and the hours each target showed.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fleets import simulate_fleet
from tests.pg import postgres_server

QUERY = (
    "select (select max(hour_at) from marts.fct_machine_hours) as latest_hour,"
    " (select max(hour_at) from marts.fct_machine_hour_features) as latest_feature_hour,"
    " (select count(*) from marts.fct_machine_hours) as machine_hours"
)


class Superset:
    def __init__(self, base: str) -> None:
        self.base = base
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={**self.headers, "Referer": self.base},
            method=method,
        )
        try:
            with self.opener.open(request, timeout=120) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None

    def login(self) -> None:
        token = self.call(
            "POST",
            "/api/v1/security/login",
            {"username": "admin", "password": "admin", "provider": "db", "refresh": True},
        )["access_token"]
        self.headers["Authorization"] = f"Bearer {token}"
        self.headers["X-CSRFToken"] = self.call("GET", "/api/v1/security/csrf_token/")["result"]

    def add_database(self, name: str, uri: str) -> int:
        created = self.call(
            "POST",
            "/api/v1/database/",
            {"database_name": name, "sqlalchemy_uri": uri, "expose_in_sqllab": True},
        )
        return int(created["id"])

    def sql(self, database_id: int, query: str) -> list[dict[str, Any]]:
        result = self.call(
            "POST",
            "/api/v1/sqllab/execute/",
            {"database_id": database_id, "sql": query, "runAsync": False, "schema": "marts"},
        )
        return list(result["data"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plant(root: Path, hours: int) -> None:
    simulate_fleet(root, machines=4, hours=hours, seed=9, sample_interval_s=900)


def shopfloor_run(root: Path, env: dict[str, str]) -> int:
    return subprocess.run(
        ["shopfloor", "run", "--data-dir", str(root / "data"), "--landing", str(root / "landing")],
        env=env,
        capture_output=True,
    ).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--superset", required=True, help="the superset command of its venv")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="superset_smoke_"))
    with postgres_server() as admin_url:
        env = {
            **os.environ,
            "SHOPFLOOR_PSEUDONYM_KEY": "smoke",
            "SHOPFLOOR_BI_POSTGRES_URL": admin_url,
        }
        plant(root, 48)
        assert shopfloor_run(root, env) == 0, "the first run failed"
        home = root / "superset"
        home.mkdir()
        (home / "superset_config.py").write_text(
            f"SECRET_KEY = 'smoke-test-only'\n"
            f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{home / 'superset.db'}'\n"
            "PREVENT_UNSAFE_DB_CONNECTIONS = False\nWTF_CSRF_ENABLED = False\n"
            "FEATURE_FLAGS = {}\n"
        )
        senv = {**os.environ, "SUPERSET_CONFIG_PATH": str(home / "superset_config.py")}
        for command in (
            ["db", "upgrade"],
            ["fab", "create-admin", "--username", "admin", "--firstname", "a",
             "--lastname", "b", "--email", "a@b.example", "--password", "admin"],
            ["init"],
        ):  # fmt: skip
            subprocess.run([args.superset, *command], env=senv, check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen(
            [args.superset, "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
            env=senv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/health", timeout=5)
                    break
                except OSError:
                    time.sleep(1)
            bi = Superset(base)
            bi.login()
            catalog = root / "data" / "serving" / "bi.duckdb"
            databases = {
                "duckdb": bi.add_database(
                    "shopfloor (DuckDB)", f"duckdb:///{catalog}?access_mode=read_only"
                ),
                "postgres": bi.add_database(
                    "shopfloor (Postgres)",
                    admin_url.replace("postgres@", "shopfloor_bi@", 1),
                ),
            }
            stop = threading.Event()
            seen: dict[str, set[str]] = {name: set() for name in databases}
            counts = {name: 0 for name in databases}
            failures: list[str] = []
            inconsistent = 0

            def poll() -> None:
                nonlocal inconsistent
                while not stop.is_set():
                    for name, database_id in databases.items():
                        try:
                            row = bi.sql(database_id, QUERY)[0]
                            counts[name] += 1
                            seen[name].add(str(row["latest_hour"]))
                            inconsistent += row["latest_hour"] != row["latest_feature_hour"]
                        except Exception as exc:  # the smoke test counts every failure
                            failures.append(f"{name}: {type(exc).__name__}: {exc}")
                    time.sleep(0.2)

            reader = threading.Thread(target=poll)
            reader.start()
            runs = []
            for extra in (1, 2):
                plant(root, 48 + extra)
                runs.append(shopfloor_run(root, env))
            stop.set()
            reader.join()
        finally:
            server.terminate()
            server.wait()
    print(f"hourly runs during the queries: exit codes {runs}")
    for name in databases:
        print(
            f"Superset SQL Lab on {name}: {counts[name]} queries, "
            f"latest hours seen {sorted(seen[name])}"
        )
    print(f"failed queries: {len(failures)}; inconsistent answers: {inconsistent}")
    for failure in failures[:5]:
        print("  ", failure[:300])
    sys.exit(1 if failures or inconsistent or any(runs) else 0)


if __name__ == "__main__":
    main()
