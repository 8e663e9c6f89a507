#!/usr/bin/env python3
"""How busy the machine is, for the comparison scripts: the load average, the cores other
processes keep busy, the top consumers, and a wait for a quiet machine. Linux (/proc) only;
Python's standard library only (runs with the system python3 or the peers venv).

Usage:
    python3 machine_load.py show [--window 2]
    python3 machine_load.py wait [--max-load 0.5] [--max-other 0.2] [--timeout 900] [--window 2]

`wait` returns (exit 0) once the 1-minute load average is below --max-load and, over a sample
of --window seconds, the processes other than this one keep fewer than --max-other cores busy;
it prints the load and the top consumers every 30 s while it waits; after --timeout seconds it
exits 3 with a message naming them. `show` prints one sample.

As a module: `loadavg()`, `busy_cpu_seconds()`, `sample(window, exclude)`, `wait_quiet(...)`,
`describe(sample)`.
"""

import argparse
import os
import sys
import time


def loadavg():
    """(1, 5, 15)-minute load averages."""
    return os.getloadavg()


def busy_cpu_seconds():
    """CPU seconds the whole machine has been busy (user, nice, system, irq, softirq, steal: all
    but idle and iowait, /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        ticks = [int(v) for v in fields[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def processes():
    """{pid: (command, parent pid, CPU seconds)} of every process now (/proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                text = f.read()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces and parentheses.
        close = text.rfind(")")
        comm = text[text.find("(") + 1:close]
        rest = text[close + 2:].split()
        try:
            out[int(name)] = (comm, int(rest[1]), (int(rest[11]) + int(rest[12])) / tick)
        except (IndexError, ValueError):
            continue
    return out


def tree(roots, procs):
    """The pids in `roots` and all their descendants in `procs`."""
    children = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, ()))
    return seen


def sample(window=2.0, exclude=None, top=5):
    """The machine over `window` seconds: {"load": 1-min load average at the end, "busy": cores
    busy in all, "ours": cores used by `exclude` (default: this process) and its descendants,
    "other": busy - ours, "top": [(cores, pid, command)] of the busiest other processes}."""
    roots = [os.getpid()] if exclude is None else list(exclude)
    p0, b0, t0 = processes(), busy_cpu_seconds(), time.perf_counter()
    time.sleep(window)
    p1, b1, t1 = processes(), busy_cpu_seconds(), time.perf_counter()
    wall = t1 - t0
    ours_pids = tree(roots, p1) | tree(roots, p0)
    ours = sum(p1[pid][2] - p0[pid][2] for pid in ours_pids if pid in p0 and pid in p1) / wall
    busy = None if b0 is None or b1 is None else (b1 - b0) / wall
    others = sorted(((p1[pid][2] - p0.get(pid, (None, None, 0.0))[2]) / wall, pid, p1[pid][0])
                    for pid in p1 if pid not in ours_pids)
    others = [o for o in reversed(others) if o[0] >= 0.01][:top]
    return {"load": loadavg()[0], "busy": busy, "ours": ours,
            "other": None if busy is None else max(0.0, busy - ours), "top": others}


def describe(s):
    """One line: the load average, other processes' cores, the top consumers."""
    other = "?" if s["other"] is None else f"{s['other']:.2f}"
    top = ", ".join(f"{comm} (pid {pid}) {cores:.2f}" for cores, pid, comm in s["top"]) or "none"
    return f"1-min load {s['load']:.2f}; other processes {other} cores busy; top: {top}"


def cpu_seconds():
    """(this process's CPU seconds, its waited-for children's)."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


class OtherLoad:
    """Cores other processes kept busy between start() and stop(): the machine's busy time less
    this process's and its children's CPU time, per wall second (None when /proc is unreadable)."""

    def start(self):
        self.busy0, self.own0, self.wall0 = busy_cpu_seconds(), cpu_seconds(), time.perf_counter()

    def stop(self):
        busy1, own1, wall1 = busy_cpu_seconds(), cpu_seconds(), time.perf_counter()
        wall = wall1 - self.wall0
        if self.busy0 is None or busy1 is None or wall <= 0:
            return None
        ours = (own1[0] - self.own0[0]) + (own1[1] - self.own0[1])
        return max(0.0, ((busy1 - self.busy0) - ours) / wall)


def verdict(clean, no_wait, other_load):
    """The `clean:` line of a comparison: yes when the machine was quiet at the start and every
    part of every round kept other load at or below the threshold; else NO, with why."""
    ol = other_load
    if clean:
        return f"clean: yes (a quiet machine at the start; other load ≤ {ol['threshold']} in every part of every round)"
    why = []
    if no_wait:
        why.append("not waited for a quiet machine")
    if ol["parts_above"]:
        why.append(f"other load above {ol['threshold']} in {ol['parts_above']} of {ol['parts']} parts")
    return f"clean: NO ({'; '.join(why) or 'other load unknown'}): these times are not a clean comparison"


def wait_quiet(max_load=0.5, max_other=0.2, timeout=900.0, window=2.0, exclude=None,
               log=lambda m: print(m, file=sys.stderr, flush=True), report_every=30.0):
    """Waits until the 1-minute load average < max_load and other processes use < max_other cores
    (over `window` s). Returns the last sample and the seconds waited; raises TimeoutError (with
    the last sample's description) after `timeout` seconds."""
    start = time.perf_counter()
    last_report = -report_every
    while True:
        s = sample(window, exclude)
        waited = time.perf_counter() - start
        if s["load"] < max_load and (s["other"] is None or s["other"] < max_other):
            if waited > window * 1.5:
                log(f"quiet after {waited:.0f} s: {describe(s)}")
            return s, waited
        if waited >= timeout:
            raise TimeoutError(f"the machine did not become quiet in {timeout:.0f} s "
                               f"(wanted 1-min load < {max_load}, other processes < {max_other} cores): {describe(s)}")
        if waited - last_report >= report_every:
            log(f"waiting for a quiet machine ({waited:.0f} s of at most {timeout:.0f}): {describe(s)}")
            last_report = waited
        time.sleep(max(0.0, 5.0 - window))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print one sample")
    show.add_argument("--window", type=float, default=2.0)
    wait = sub.add_parser("wait", help="wait for a quiet machine")
    wait.add_argument("--max-load", type=float, default=0.5)
    wait.add_argument("--max-other", type=float, default=0.2)
    wait.add_argument("--timeout", type=float, default=900.0)
    wait.add_argument("--window", type=float, default=2.0)
    args = parser.parse_args()
    if args.command == "show":
        print(describe(sample(args.window)))
        return 0
    try:
        s, waited = wait_quiet(args.max_load, args.max_other, args.timeout, args.window)
    except TimeoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(f"quiet: {describe(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
