"""CPU seconds a process has used, from /proc/<pid>/stat (utime + stime): the kernel's count of
CPU time, which niceness or a busy machine does not inflate (wall time it does). A process tree
(PostgreSQL's postmaster and its backends) counts its live children and the children it has
reaped (cutime + cstime)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT

TICK = os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces): the
    state is [0], the parent's pid [1], utime [11], stime [12], cutime [13], cstime [14]."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def own_seconds(pid: int) -> float:
    f = _fields(pid)
    return (int(f[11]) + int(f[12])) / TICK


def tree_seconds(pid: int) -> float:
    """The process, its live descendants, and the children it has waited for."""
    f = _fields(pid)
    total = sum(int(x) for x in f[11:15])
    for child in children(pid):
        try:
            total += round(tree_seconds(child) * TICK)
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended in between: its time went to our cutime, or will
    return total / TICK


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdecimal():
            try:
                if int(_fields(int(entry.name))[1]) == pid:
                    out.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                pass
    return out


@dataclass(frozen=True)
class Measured:
    """A process to measure: its name in the table, its pid, and whether its children count."""

    name: str
    pid: int
    tree: bool = False

    def seconds(self) -> float:
        try:
            return tree_seconds(self.pid) if self.tree else own_seconds(self.pid)
        except (FileNotFoundError, ProcessLookupError):
            return float("nan")  # gone: the figure is unknown, not zero


def local_infra(env: Mapping[str, str]) -> list[Measured]:
    """The project's own Kafka, PostgreSQL and SMTP sink (infra/up.sh), those that run here."""
    run = Path(env.get("RUN_DIR") or ROOT / ".run")
    found = []
    for name, pid_file, tree in (
        ("kafka (java)", run / "kafka" / "pid", False),
        ("postgresql (all)", run / "postgres" / "data" / "postmaster.pid", True),
        ("smtp sink", run / "smtp" / "pid", False),
    ):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            found.append(Measured(name, pid, tree))
    return found


def snapshot(processes: list[Measured]) -> dict[str, float]:
    return {p.name: p.seconds() for p in processes}
