"""A corpus of malformed and hostile inputs that real file servers and careless exports
produce, none of them among the simulator's defect classes.

`write_corpus(landing, outside)` writes every case into one landing area (plus a few
files outside it, which nothing may read) and returns what each case must become.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.landing import HandMachine, render, telemetry_rel, write_registry

HOUR0 = datetime(2026, 5, 4, tzinfo=UTC)
GOOD = HandMachine("HX-1", "PRENSA-9", {"pressao_bar": 180.0, "temperatura_c": 55.0}, 600)
NAMES = HandMachine("HX-2", "TORNO-3", {"rpm": 1500.0}, 600)  # sensor names under test
TECHNICIANS = ("Joana Lima", "Zé Ninguém", "Müller Þór")
NOTES = "trocou rolamento; ligar para Joana 11 99999-0000"
CANARY = 987654.321  # a value only the files outside the landing area hold


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # the class of problem
    expect: str  # loaded | partial | quarantined | skipped | duplicate | superseded | rejects
    # | export_reject | waiting | unregistered
    path: str | None = None  # landing-relative path of the input (a line: in `export`)
    reason: str = ""  # a piece of the reason the outcome must give
    line: int | None = None  # export line


def _deliver(path: Path, data: bytes, hour: datetime | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = ((hour or HOUR0) + timedelta(hours=1, minutes=2)).timestamp()
    os.utime(path, (when, when), follow_symlinks=False)


def _header(machine: str = "HX-1", interval: int = 600, model: str = "PRENSA-9") -> str:
    return (
        "# shopfloor machine export v1\n"
        f"# machine_id: {machine}\n# model: {model}\n# firmware: 7.1\n"
        "# plant: Planta Teste\n# timezone: America/Sao_Paulo\n"
        "# start_time: 2026-05-04T00:00:00-03:00\n"
        f"# sample_interval_s: {interval}\n"
    )


def _file(columns: list[str], rows: list[list[str]], **header: object) -> bytes:
    lines = [";".join(["timestamp", "status", *columns])]
    lines += [";".join(r) for r in rows]
    return (_header(**header) + "\n".join(lines) + "\n").encode()  # type: ignore[arg-type]


def _row(k: int, *values: str, hour: datetime = HOUR0, offset: str = "-03:00") -> list[str]:
    local = hour - timedelta(hours=3) + timedelta(seconds=600 * k)
    return [f"{local:%Y-%m-%dT%H:%M:%S}{offset}", "RUN", *values]


def write_corpus(landing: Path, outside: Path) -> list[Case]:
    cases: list[Case] = []
    write_registry(landing, [GOOD, NAMES])
    hours = [HOUR0 + timedelta(hours=h) for h in range(6)]
    for hour in hours[:4]:  # the good files: their rows must arrive intact
        _deliver(landing / telemetry_rel("HX-1", hour), render(GOOD, hour), hour)

    def tel(name: str, kind: str, expect: str, rel: str, data: bytes, reason: str = "") -> None:
        _deliver(landing / rel, data)
        cases.append(Case(name, kind, expect, rel, reason))

    def hx2(hour: int) -> str:
        return telemetry_rel("HX-2", HOUR0 + timedelta(hours=hour))

    # -- sensor names that collide with the pipeline's, dbt's or SQL's own words: loaded
    for k, column in enumerate(
        [
            "machine_id",
            "reading_at",
            "source_file",
            "source_line",
            "ingested_at",
            "utc_offset_min",
            "source_file_sha256",
            "hour_at",
            "load_id",
            "order",
            "select",
            "group",
            "sensor",
            "s_rpm",
        ]
    ):
        data = _file([column], [_row(i, f"{k},{i}") for i in range(6)], machine="HX-2")
        tel(f"sensor named {column}", "name collision", "loaded", hx2(k), data)

    # -- files that would exhaust memory
    wide = [f"c{i}" for i in range(5000)]
    tel(
        "5,000 sensor columns",
        "memory",
        "quarantined",
        hx2(20),
        _file(wide, [_row(0, *(["1"] * 5000))], machine="HX-2"),
        "at most 512",
    )
    many = [_row(i % 6, "1,0") for i in range(9000)]
    tel(
        "9,000 rows at 600 s",
        "memory",
        "quarantined",
        hx2(21),
        _file(["rpm"], many, machine="HX-2"),
        "more than the",
    )

    # -- names and folders that do not say which machine-hour a file is
    for k, (name, rel, reason) in enumerate(
        [
            ("latest.txt at the top", "telemetry/latest.txt", "file name does not follow"),
            ("latest.txt in a machine folder", "telemetry/HX-1/latest.txt", "does not follow"),
            ("no machine folder", "telemetry/2026/05/04/HX-1_20260504T07.txt", "does not follow"),
            (
                "impossible hour",
                "telemetry/HX-1/2026/02/30/HX-1_20260230T25.txt",
                "impossible hour",
            ),
            ("month 13", "telemetry/HX-1/2026/13/01/HX-1_20261301T01.txt", "impossible hour"),
            (
                "folder date differs",
                "telemetry/HX-1/2026/05/09/HX-1_20260504T08.txt",
                "date folders",
            ),
            (
                "machine differs",
                "telemetry/HX-1/2026/05/04/HX-9_20260504T09.txt",
                "does not follow",
            ),
            (
                "space in the name",
                "telemetry/HX-1/2026/05/04/HX-1 20260504T10.txt",
                "does not follow",
            ),
            (
                "accent in machine",
                "telemetry/MÁQ/2026/05/04/MÁQ_20260504T10.txt",
                "does not follow",
            ),
            (
                "SQL in machine",
                "telemetry/x';drop/2026/05/04/x';drop_20260504T10.txt",
                "not follow",
            ),
            ("year 2099", "telemetry/HX-1/2099/05/04/HX-1_20990504T10.txt", "in the future"),
            ("year 1970", "telemetry/HX-1/1970/05/04/HX-1_19700504T10.txt", "older than"),
        ]
    ):
        body = render(GOOD, HOUR0 + timedelta(hours=100 + k))  # content of its own
        tel(name, "file name", "quarantined", rel, body, reason)

    # -- not telemetry files at all: recorded, never read
    for name, rel, reason in [
        ("upper-case extension", "telemetry/HX-1/2026/05/04/HX-1_20260504T11.TXT", ".TXT"),
        ("csv extension", "telemetry/HX-1/2026/05/04/HX-1_20260504T11.csv", ".csv"),
        ("no extension", "telemetry/HX-1/2026/05/04/HX-1_20260504T11", "extension none"),
        ("hidden file", "telemetry/HX-1/.DS_Store", "extension"),
        ("partial download", "telemetry/HX-1/2026/05/04/HX-1_20260504T11.txt.part", ".part"),
    ]:
        tel(name, "not telemetry", "skipped", rel, render(GOOD, HOUR0), reason)
    secret = outside / "secret.txt"
    canary = str(CANARY).replace(".", ",")
    _deliver(secret, _file(["pressao_bar"], [_row(0, canary)]))
    link = landing / "telemetry/HX-1/2026/05/04/HX-1_20260504T12.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    cases.append(
        Case(
            "symlink to a file outside",
            "escape",
            "skipped",
            str(link.relative_to(landing)),
            "symbolic link",
        )
    )
    (outside / "telemetry_dir/2026/05/04").mkdir(parents=True)
    _deliver(
        outside / "telemetry_dir/2026/05/04/HX-7_20260504T01.txt",
        _file(["pressao_bar"], [_row(0, canary)], machine="HX-7"),
    )
    (landing / "telemetry/HX-7").symlink_to(outside / "telemetry_dir")
    cases.append(
        Case(
            "symlinked machine folder",
            "escape",
            "absent",
            "telemetry/HX-7/2026/05/04/HX-7_20260504T01.txt",
        )
    )
    fifo = landing / "telemetry/HX-1/2026/05/04/HX-1_20260504T13.txt"
    os.mkfifo(fifo)
    cases.append(
        Case(
            "FIFO named like a file",
            "not telemetry",
            "skipped",
            str(fifo.relative_to(landing)),
            "not a regular file",
        )
    )

    # -- unreadable or untrustworthy content: quarantined with a specific reason
    for hour, (name, data, reason) in enumerate(
        [
            ("UTF-16 export", render(GOOD, HOUR0).decode().encode("utf-16"), "binary file"),
            ("CR-only line ends", render(GOOD, HOUR0).replace(b"\n", b"\r"), "CR only"),
            ("repeated column", _file(["rpm", "rpm"], [_row(0, "1", "2")]), "repeated column"),
            ("upper-case column", _file(["RPM"], [_row(0, "1")]), "invalid column name"),
            ("double underscore", _file(["a__b"], [_row(0, "1")]), "invalid column name"),
            ("long column name", _file(["x" * 80], [_row(0, "1")]), "invalid column name"),
            ("column _dlt_id", _file(["_dlt_id"], [_row(0, "1")]), "invalid column name"),
            (
                "folder differs from header",
                _file(["rpm"], [_row(0, "1")], machine="HX-9"),
                "differs from folder",
            ),
            ("interval 0", _file(["rpm"], [_row(0, "1")], interval=0), "not in 1..3600"),
            ("interval 99999", _file(["rpm"], [_row(0, "1")], interval=99999), "not in 1..3600"),
            (
                "gzip bytes",
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + os.urandom(64),
                "binary file",
            ),
            ("HTML error page", b"<html><body>502 Bad Gateway</body></html>\n", "no header block"),
            ("JSON export", b'{"machine_id": "HX-1", "rows": []}\n', "no header block"),
            ("header block only", _header().encode(), "no header row"),
            ("comma separated", _header().encode() + b"timestamp,status,rpm\n", "delimiter"),
            (
                "missing header keys",
                b"# shopfloor\n# machine_id: HX-1\ntimestamp;status;rpm\n",
                "lacks",
            ),
        ],
        start=30,
    ):
        tel(
            name,
            "content",
            "quarantined",
            telemetry_rel("HX-1", HOUR0 + timedelta(hours=hour)),
            data,
            reason,
        )

    # -- readable files with bad rows: loaded, the rows rejected with their reason
    for hour, (name, rows, reason) in enumerate(
        [
            (
                "30 February",
                [_row(0, "1,0"), ["2026-02-30T10:00:00-03:00", "RUN", "1,0"]],
                "impossible calendar",
            ),
            ("offset +99:00", [_row(0, "1,0"), _row(1, "1,0", offset="+99:00")], "beyond ±14:00"),
            ("no offset", [_row(0, "1,0"), ["2026-05-04T00:10:00", "RUN", "1,0"]], "UTC offset"),
            (
                "lower-case status",
                [_row(0, "1,0"), [_row(1, "1")[0], "run", "1,0"]],
                "unknown status",
            ),
            ("decimal point", [_row(0, "1,0"), _row(1, "48.25")], "non-numeric"),
            ("thousands separator", [_row(0, "1,0"), _row(1, "1.234,5")], "non-numeric"),
            ("NaN text", [_row(0, "1,0"), _row(1, "NaN")], "non-numeric"),
            ("a 1 MB line", [_row(0, "1,0"), _row(1, "9" * 1_000_000)], "non-numeric"),
            ("quoted value", [_row(0, "1,0"), _row(1, '"1,5"')], "non-numeric"),
            ("extra field", [_row(0, "1,0"), _row(1, "1,0", "2,0")], "wrong column count"),
        ],
        start=50,
    ):
        data = _file(["rpm"], rows, machine="HX-2")
        tel(name, "row", "rejects", hx2(hour), data, reason)
    tel(
        "UTF-8 byte order mark",
        "content",
        "loaded",
        hx2(60),
        b"\xef\xbb\xbf" + _file(["rpm"], [_row(0, "1,0")], machine="HX-2"),
    )
    crlf = _file(["rpm"], [_row(0, "1,0"), _row(1, "2,0")], machine="HX-2").replace(b"\n", b"\r\n")
    tel("CRLF line ends", "content", "loaded", hx2(61), crlf)

    # -- two versions of one machine-hour: only the later is counted
    first = _file(["rpm"], [_row(i, "1,0") for i in range(6)], machine="HX-2")
    second = _file(["rpm"], [_row(i, "2,0") for i in range(6)], machine="HX-2")  # as complete
    tel("first of two files for one hour", "double count", "superseded", hx2(62), first)
    other = hx2(62).replace(".txt", " (1).txt")
    _deliver(landing / other, second, HOUR0 + timedelta(hours=1))
    cases.append(Case("second file for the same hour", "double count", "loaded", other))
    tel("identical copy", "double count", "duplicate", hx2(63).replace(".txt", " (1).txt"), first)

    # -- a file still being written: taken at a later run
    growing = landing / telemetry_rel("HX-3", HOUR0)
    growing.parent.mkdir(parents=True)
    growing.write_bytes(_file(["rpm"], [_row(0, "1,0")], machine="HX-3")[:-5])
    cases.append(
        Case("file still being written", "double count", "waiting", telemetry_rel("HX-3", HOUR0))
    )

    cases += _maintenance(landing)
    cases += _registry_rows(landing)
    return cases


def _maintenance(landing: Path) -> list[Case]:
    """One export, each bad line a case; the good lines load."""
    header = (
        "work_order;machine_id;reported_at;started_at;ended_at;maintenance_type;"
        "component;failure_mode;technician;notes"
    )
    good = "04/05/2026 08:00;04/05/2026 08:30;04/05/2026 10:00"
    lines: list[tuple[str, str, str, str]] = [  # name, expect, reason, line
        ("good", "loaded", "", f'OS-1;HX-1;{good};preventive;all;;{TECHNICIANS[0]};"{NOTES}"'),
        (
            "ISO date",
            "export_reject",
            "reported_at",
            f"OS-2;HX-1;2026-05-04 08:00;04/05/2026 08:30;;preventive;all;;{TECHNICIANS[0]};",
        ),
        (
            "text date",
            "export_reject",
            "started_at",
            f"OS-3;HX-1;04/05/2026 08:00;ontem;;corrective;pump;leak;{TECHNICIANS[1]};",
        ),
        (
            "unquoted ;",
            "export_reject",
            "fields",
            f"OS-4;HX-1;{good};preventive;all;;{TECHNICIANS[0]};{NOTES}",
        ),
        ("latin-1 name", "loaded", "", f"OS-5;HX-1;{good};preventive;all;;{TECHNICIANS[1]};"),
        (
            "missing field",
            "export_reject",
            "fields",
            f"OS-6;HX-1;{good};preventive;all;{TECHNICIANS[0]}",
        ),
        (
            "31 February",
            "export_reject",
            "ended_at",
            f"OS-7;HX-1;04/05/2026 08:00;04/05/2026 09:00;31/02/2026 10:00;preventive;all;;{TECHNICIANS[2]};",
        ),
        (
            "hour 25",
            "export_reject",
            "reported_at",
            f"OS-8;HX-1;04/05/2026 25:00;04/05/2026 09:00;;preventive;all;;{TECHNICIANS[2]};",
        ),
        (
            "unknown type",
            "export_reject",
            "maintenance_type",
            f"OS-9;HX-1;{good};emergency;all;;{TECHNICIANS[2]};",
        ),
        (
            "unknown machine",
            "unregistered",
            "",
            f"OS-10;HX-99;{good};corrective;pump;leak;{TECHNICIANS[2]};",
        ),
        (
            "ends before it starts",
            "export_reject",
            "before",
            f"OS-11;HX-1;04/05/2026 08:00;04/05/2026 09:00;04/05/2026 07:00;corrective;pump;leak;{TECHNICIANS[0]};",
        ),
        (
            "work order twice (earlier)",
            "export_reject",
            "listed again",
            f"OS-12;HX-1;{good};preventive;all;;{TECHNICIANS[0]};",
        ),
        (
            "work order twice (later)",
            "loaded",
            "",
            f"OS-12;HX-1;04/05/2026 08:00;04/05/2026 08:30;04/05/2026 11:00;preventive;all;;{TECHNICIANS[0]};",
        ),
        (
            "empty work order",
            "export_reject",
            "work_order",
            f";HX-1;{good};preventive;all;;{TECHNICIANS[0]};",
        ),
        (
            "SQL in machine id",
            "export_reject",
            "machine id",
            f'OS-13;"HX-1\';drop table x;--";{good};preventive;all;;{TECHNICIANS[0]};',
        ),
        (
            "note over two lines",
            "loaded",
            "",
            f'OS-14;HX-1;{good};preventive;all;;{TECHNICIANS[0]};"linha 1\nlinha 2"',
        ),
    ]
    text = header + "\n"
    cases = []
    line = 2
    for name, expect, reason, content in lines:
        encoded = content
        cases.append(
            Case(
                f"maintenance: {name}",
                "maintenance row",
                expect,
                "maintenance/maintenance_log.csv",
                reason,
                line,
            )
        )
        text += encoded + "\n"
        line += encoded.count("\n") + 1
    data = text.encode()
    # one line in latin-1: the name must still hash as the same person
    data = data.replace(
        f"OS-5;HX-1;{good};preventive;all;;{TECHNICIANS[1]}".encode(),
        f"OS-5;HX-1;{good};preventive;all;;{TECHNICIANS[1]}".encode("latin-1"),
    )
    _deliver(landing / "maintenance/maintenance_log.csv", data)
    return cases


def _registry_rows(landing: Path) -> list[Case]:
    machines = (landing / "registry/machines.csv").read_text().splitlines()
    machines += [
        "HX-1,OUTRO,B,2020-01-01,1.0,",  # duplicate id: the first line counts
        "HX-5,PRENSA-9,A,2020-01-01,22.5,,surplus",  # an extra field
        "HX-6,PRENSA-9,A,2026-13-01,22.5,",  # an impossible date
        "HX 8,PRENSA-9,A,2020-01-01,22.5,",  # not a machine id
    ]
    _deliver(landing / "registry/machines.csv", ("\n".join(machines) + "\n").encode())
    ratings = (landing / "registry/sensor_ratings.csv").read_text().splitlines()
    ratings += ["PRENSA-9,novo_c,c,muito,200", "PRENSA-9,pressao_bar,bar,0,300"]
    _deliver(landing / "registry/sensor_ratings.csv", ("\n".join(ratings) + "\n").encode())
    n, r = len(machines), len(ratings)
    return [
        Case(
            "registry: duplicate machine",
            "registry row",
            "export_reject",
            "registry/machines.csv",
            "already given",
            n - 3,
        ),
        Case(
            "registry: extra field",
            "registry row",
            "export_reject",
            "registry/machines.csv",
            "fields",
            n - 2,
        ),
        Case(
            "registry: impossible date",
            "registry row",
            "export_reject",
            "registry/machines.csv",
            "installed_on",
            n - 1,
        ),
        Case(
            "registry: bad machine id",
            "registry row",
            "export_reject",
            "registry/machines.csv",
            "machine_id",
            n,
        ),
        Case(
            "ratings: text number",
            "registry row",
            "export_reject",
            "registry/sensor_ratings.csv",
            "rated_min",
            r - 1,
        ),
        Case(
            "ratings: duplicate",
            "registry row",
            "export_reject",
            "registry/sensor_ratings.csv",
            "already given",
            r,
        ),
    ]
