"""Node logs and exits: any assertion failure, crash, sanitizer report or
core file fails the run.  A node that exits on its own with a status
(exit(70) on a full disk, refusing corrupted files) is a deliberate
fail-stop, not a crash: it is listed in "notes", not as an anomaly.

Input: the run directory, holding
  logs/<node>.log      stderr of every start of the node (appended)
  nodes.jsonl          process events written by the runner:
                       {"node", "event": "start"|"exit", "pid", "time",
                        "returncode" (exit), "expected" (exit: the harness
                        killed or stopped it), "corrupted" (start after the
                        corruption nemesis), "note"}
  cwd/<node>/          the nodes' working directories (core files land here)
"""

import json
import os
import re
import signal

PATTERNS = [
    ("sanitizer", re.compile(r"(Address|Leak|UndefinedBehavior|Thread|"
                             r"Memory)Sanitizer")),
    ("sanitizer", re.compile(r"runtime error: ")),
    ("assertion", re.compile(r"Assertion `.*' failed|assertion failed|"
                             r"ASSERT(ION)? FAIL", re.I)),
    ("crash", re.compile(r"stack smashing detected|double free|"
                         r"corrupted size vs|malloc\(\): |free\(\): invalid|"
                         r"Segmentation fault|core dumped")),
]

CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS,
                 signal.SIGILL, signal.SIGFPE, signal.SIGSYS,
                 signal.SIGTRAP}


def _events(run_dir):
    path = os.path.join(run_dir, "nodes.jsonl")
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def check(run_dir):
    anomalies = []
    notes = []
    stats = {"log_lines": 0, "error_lines": 0, "starts": 0, "exits": 0,
             "unexpected_exits": 0}
    logdir = os.path.join(run_dir, "logs")
    if os.path.isdir(logdir):
        for name in sorted(os.listdir(logdir)):
            path = os.path.join(logdir, name)
            with open(path, encoding="utf-8", errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    stats["log_lines"] += 1
                    if line.startswith("error "):
                        stats["error_lines"] += 1
                    for kind, rx in PATTERNS:
                        if rx.search(line):
                            anomalies.append({
                                "type": kind, "file": "logs/" + name,
                                "line": n, "text": line.strip()[:300],
                                "message": "%s in logs/%s:%d" %
                                           (kind, name, n)})
                            break
    for ev in _events(run_dir):
        if ev.get("event") == "start":
            stats["starts"] += 1
        if ev.get("event") != "exit":
            continue
        stats["exits"] += 1
        rc = ev.get("returncode")
        if ev.get("expected"):
            # Killed or stopped by the harness; a graceful stop must still
            # exit 0 (SIGTERM) and a stop that needed SIGKILL is reported.
            if ev.get("stop_timeout"):
                anomalies.append({
                    "type": "stop-timeout", "node": ev.get("node"),
                    "message": "%s did not exit within %ss of SIGTERM" %
                               (ev.get("node"), ev.get("stop_timeout"))})
            elif ev.get("graceful") and rc not in (0,):
                anomalies.append({
                    "type": "bad-exit", "node": ev.get("node"),
                    "returncode": rc,
                    "message": "%s exited %r after SIGTERM (expected 0)" %
                               (ev.get("node"), rc)})
            continue
        if isinstance(rc, int) and rc < 0 and -rc in CRASH_SIGNALS:
            kind = "crash"
        elif isinstance(rc, int) and rc > 0:
            # A deliberate exit with a status (fail-stop, e.g. on a full
            # disk or on corrupted files) is not a crash; it is listed so
            # the report shows it, and liveness suffers visibly.
            stats["fail_stop_exits"] = stats.get("fail_stop_exits", 0) + 1
            notes.append({"type": "fail-stop-exit", "node": ev.get("node"),
                          "returncode": rc, "time": ev.get("time"),
                          "corrupted": bool(ev.get("corrupted")),
                          "last_error": _last_error(run_dir,
                                                    ev.get("node"))})
            continue
        else:
            kind = "unexpected-exit"
        stats["unexpected_exits"] += 1
        anomalies.append({
            "type": kind, "node": ev.get("node"), "returncode": rc,
            "time": ev.get("time"),
            "message": "%s (pid %s) exited on its own with %s" %
                       (ev.get("node"), ev.get("pid"),
                        ("signal %s" % signal.Signals(-rc).name)
                        if isinstance(rc, int) and rc < 0 else
                        "status %r" % rc)})
    for root, _dirs, files in os.walk(run_dir):
        for f in files:
            if f == "core" or re.match(r"core\.\d+$", f):
                p = os.path.relpath(os.path.join(root, f), run_dir)
                anomalies.append({"type": "core-file", "file": p,
                                  "message": "core file %s" % p})
    return {"valid": not anomalies, "anomalies": anomalies, "stats": stats,
            "notes": notes}


def _last_error(run_dir, node):
    path = os.path.join(run_dir, "logs", "%s.log" % node)
    last = None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("error "):
                    last = line.strip()[:300]
    except OSError:
        pass
    return last
