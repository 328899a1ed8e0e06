"""Reading and parsing the landing area's telemetry files, a bounded number ahead.

Worker threads read and parse (`ingestion.telemetry`) while the dlt source writes; a file
condemned by its path or too big is not parsed, and one the parser did not foresee is
reported for quarantine, never raised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from dlt.sources.filesystem import FileItemDict

from ingestion.listing import Listing, ListingPolicy
from ingestion.telemetry import ParsedTelemetry, QuarantineError, parse_telemetry, sha256


@dataclass
class FileResult:
    item: FileItemDict
    data_sha: str
    parsed: ParsedTelemetry | None
    error: str | None
    size: int
    data: bytes | None  # kept only for quarantine
    vanished: bool = False  # deleted between listing and reading
    trusted_path: bool = True  # its name says which machine-hour it covers


def read_and_parse(item: FileItemDict, problem: str | None, policy: ListingPolicy) -> FileResult:
    """Read one file and parse it, unless its path already condemned it."""
    size = int(item["size_in_bytes"])
    trusted = problem is None or problem.startswith(f"{size:,} bytes")  # only too big
    if size > policy.max_file_bytes:  # never read into memory; stays in the landing area
        return FileResult(item, "", None, problem, size, None, trusted_path=trusted)
    try:
        data = item.read_bytes()
    except FileNotFoundError:
        return FileResult(item, "", None, None, size, None, vanished=True)
    digest = sha256(data)
    if problem:
        return FileResult(item, digest, None, problem, len(data), data, trusted_path=trusted)
    try:
        parsed = parse_telemetry(data)
    except QuarantineError as exc:
        return FileResult(item, digest, None, str(exc), len(data), data)
    except Exception as exc:  # a file the parser did not foresee: quarantine, go on
        reason = f"unreadable: {type(exc).__name__}: {exc}"
        return FileResult(item, digest, None, reason, len(data), data)
    interval = int(parsed.header.keys["sample_interval_s"])
    most = 2 * -(-3600 // interval) + 10  # twice an hour's rows, and a little slack
    if parsed.rows_read > most:
        reason = (
            f"{parsed.rows_read:,} rows: more than the {most:,} one machine-hour may have "
            f"at sample_interval_s {interval}"
        )
        return FileResult(item, digest, None, reason, len(data), data)
    return FileResult(item, digest, parsed, None, len(data), None)


# Below this mean size a file is mostly Python work around a short Arrow parse: more
# threads then only queue for the GIL, and the writing thread with them
THREADED_FILE_BYTES = 64 * 1024


def prefetch(listing: Listing, policy: ListingPolicy, workers: int) -> Iterator[FileResult]:
    """Read and parse in worker threads, in order, a bounded number of files ahead,
    so that parsing overlaps with writing and memory does not grow with the batch."""
    sizes = [int(item["size_in_bytes"]) for item in listing.new]
    small = bool(sizes) and sum(sizes) / len(sizes) < THREADED_FILE_BYTES
    threads = 1 if small else max(1, workers)
    ahead = 16 * threads
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[FileResult]] = deque()
        for item in listing.new:
            problem = listing.problems.get(item["relative_path"])
            pending.append(pool.submit(read_and_parse, item, problem, policy))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
