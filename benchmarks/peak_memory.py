"""Peak memory of a benchmark process, shared by the benchmark scripts (imported from their folder)."""

import resource
from pathlib import Path


def vm_hwm_mb(process: int | str = "self") -> float | None:
    """Peak RSS of a process from Linux's VmHWM, which counts from exec (ru_maxrss would carry over the parent's
    peak into a child); None where /proc is not there."""
    try:
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_mb() -> float:
    """This process's peak RSS in MB (ru_maxrss where /proc is not there)."""
    return vm_hwm_mb("self") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
