"""Peak memory of the running process, for the benchmarks' child processes."""


def peak_rss_mb() -> float:
    """VmHWM: the peak RSS of this process image, in MB.

    Not `ru_maxrss`, which also counts the parent's memory at fork time (a parent
    holding a reference's DuckDB data would inflate the child's figure).
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")
