"""Yunhan Jepsen-style harness: entry point.

  main.py --quick                 checker self-tests + register, set,
                                  idempotency and bank under kill, pause
                                  and isolate-leader (bounded to ~8 min)
  main.py --full [--runs N]       every nemesis (and combinations) x all
                                  workloads, N >= 3 runs each; writes the
                                  summary table to docs/jepsen.md
  main.py --nemesis N [--workload W,W] [--time S] [--seed X]   one run
  main.py --replay RUNDIR         the same run again from its params.json
  main.py --positive-control stale-reads|no-dedup [--runs N]
                                  a deliberately unsafe yunhand build
                                  (make yunhand-unsafe) must be caught by
                                  a checker within N runs (default 5);
                                  --full runs both after the matrix
  main.py --selftest              checker/client/netns self-tests only
  main.py --list                  nemeses and workloads

Prints "ok - NAME" / "not ok - NAME (why)" lines (tests/run.sh counts them)
and exits non-zero if any is "not ok".
"""

import argparse
import atexit
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JEPSEN = os.path.dirname(HERE)
REPO = os.path.dirname(JEPSEN)
sys.path.insert(0, JEPSEN)

from yhjepsen import netns, nemesis  # noqa: E402

FAILED = []
QUICK_BUDGET_S = 8 * 60

# Positive controls: yunhand built with a deliberate safety bug (see the
# YH_UNSAFE_* blocks in api/server/dispatch.c and fsm/fsm.c, built by `make
# yunhand-unsafe`), run under a nemesis that exposes it.  The control passes
# when the named checker reports one of the named anomalies.
POSITIVE_CONTROLS = {
    # Every read served locally without barrier or forwarding: a read on
    # the isolated old leader (clients still reach it) or on a lagging
    # follower returns a value the majority has already overwritten.
    # Register workers are spread over all nodes (slot % nodes, plus the
    # probe that moves to the next node after every operation).
    "stale-reads": {"binary": "yunhand-unsafe-stale",
                    "nemesis": "isolate-leader",
                    "workloads": ["register"],
                    "checker": "register",
                    "anomalies": ("nonlinearizable",)},
    # A retry with a known RequestToken is applied again: an indeterminate
    # create that did commit, retried with the same token on another node
    # after the leader was killed, answers "already exists" or makes a
    # second user.
    "no-dedup": {"binary": "yunhand-unsafe-nodedup",
                 "nemesis": "kill-leader",
                 "workloads": ["idempotency"],
                 "checker": "idempotency",
                 # More clients than the matrix's 3: more creates in
                 # flight when the leader dies.
                 "workers": {"idempotency": 12},
                 "anomalies": ("token-not-honored", "duplicate",
                               "wrong-id")},
}
PC_DEFAULT_RUNS = 5
PC_DEFAULT_TIME = 30.0


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def ok(name):
    print("ok - %s" % name, flush=True)


def not_ok(name, why):
    why = " ".join(str(why).split())[:400]
    print("not ok - %s (%s)" % (name, why), flush=True)
    FAILED.append(name)


# ------------------------------------------------------------ self-tests
SELFTESTS = [
    ("checker unit tests", "test_checkers.py",
     ["RegisterTest", "SetTest", "IdempotencyTest", "BankTest",
      "ReplicasLogsTest", "CliTest"]),
    ("checker mutation test", "test_checkers.py", ["MutationTest"]),
    ("client signing and framing", "test_client.py", None),
    ("netns setup, partitions, proxy, teardown", "test_netns.py", None),
]


def selftests():
    tests_dir = os.path.join(JEPSEN, "tests")
    for name, mod, classes in SELFTESTS:
        base = mod[:-3]
        targets = (["%s.%s" % (base, c) for c in classes] if classes
                   else [base])
        argv = [sys.executable, "-m", "unittest"] + targets
        t = time.monotonic()
        try:
            p = subprocess.run(argv, cwd=tests_dir, capture_output=True,
                               text=True, timeout=300)
        except subprocess.TimeoutExpired:
            not_ok(name, "timed out after 300 s")
            continue
        out = p.stderr.strip().splitlines()
        summary = out[-1] if out else ""
        ran = [line for line in out if line.startswith("Ran ")]
        if p.returncode == 0 and "skipped" not in summary:
            ok("%s (%s, %.1fs)" % (name, ran[0] if ran else "?",
                                   time.monotonic() - t))
        elif p.returncode == 0:
            not_ok(name, summary)
        else:
            fails = [line for line in out if line.startswith(("FAIL:",
                                                              "ERROR:"))]
            not_ok(name, "; ".join(fails[:3]) or summary)
            sys.stderr.write(p.stderr[-4000:] + "\n")


# -------------------------------------------------------------- watchdog
def watchdog():
    """Child process: when the harness goes away (stdin EOF), remove every
    yhj* resource.  It inherited the lock, so nobody else starts meanwhile."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    netns.cleanup_stale()
    return 0


class Harness:
    def __init__(self):
        self.lock = None
        self.watchdog = None
        self.wd_pipe = None
        self.current = None

    def acquire(self):
        self.lock = netns.Lock()
        fd = self.lock.acquire(wait_s=120)
        r, w = os.pipe()
        self.watchdog = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--watchdog"],
            stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(fd,), start_new_session=True)
        os.close(r)
        self.wd_pipe = w
        atexit.register(self.release)

    def release(self):
        run = self.current
        if run is not None and run.ctx is not None:
            c = run.ctx
            if c.cluster is not None:
                c.cluster.emergency_kill()
            if c.net is not None:
                try:
                    c.net.teardown()
                except netns.NetError:
                    pass
        if self.wd_pipe is not None:
            os.close(self.wd_pipe)
            self.wd_pipe = None
            try:
                self.watchdog.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def default_params(args, nemesis_name, seed, workloads=None):
    return {"nemesis": nemesis_name,
            "workloads": workloads or args.workload.split(","),
            "time": args.time, "seed": seed, "nodes": 3,
            "snapshot_threshold": args.snapshot_threshold,
            "snapshot_trailing": args.snapshot_trailing,
            "tmpfs_mb": args.tmpfs_mb, "keep_data": args.keep_data,
            "election_timeout": args.election_timeout,
            "heartbeat_timeout": args.heartbeat_timeout}


def report_run(res, label):
    from yhjepsen import checkers
    if res.get("error"):
        not_ok("%s run" % label, "%s; run %s" % (res["error"], res["dir"]))
    for name, r in res["checks"].items():
        st = r.get("stats", {})
        if r["valid"] is True:
            extra = ""
            if name in ("register", "set", "idempotency", "bank"):
                extra = " (%s ok, %s fail, %s info)" % (
                    st.get("ok", st.get("acked", "?")),
                    st.get("fail", st.get("failed", "?")),
                    st.get("info", "?"))
            ok("%s %s%s" % (label, name, extra))
        else:
            kinds = {}
            for a in r["anomalies"]:
                kinds[a["type"]] = kinds.get(a["type"], 0) + 1
            why = ", ".join("%s x%d" % kv for kv in sorted(kinds.items()))
            if r["valid"] != False:  # noqa: E712 - "unknown"
                why = "unknown: %s" % "; ".join(
                    u["message"] for u in r.get("unknown", []))
            not_ok("%s %s" % (label, name), "%s: %s; run %s" % (
                checkers.verdict_word(r["valid"]), why, res["dir"]))
            for a in r["anomalies"][:5]:
                sys.stderr.write("  anomaly: %s\n" % json.dumps(
                    a, default=str)[:600])
    fo = [f["ms"] for f in res.get("failover_ms", [])]
    if fo:
        log("%s failover ms: %s" % (label, fo))


def run_one(h, params, runs_dir, bin_dir, label, report=True):
    from yhjepsen.runner import Run
    run = Run(params, runs_dir, bin_dir, log)
    h.current = run
    log("%s: run dir %s" % (label, run.dir))
    t = time.monotonic()
    res = run.execute()
    h.current = None
    log("%s: done in %.0fs, %d ops, valid=%s" % (
        label, time.monotonic() - t, res.get("ops", 0), res["valid"]))
    if report:
        report_run(res, label)
    return res


def pc_binaries(name, bin_dir, runs_dir):
    """(Re)build the unsafe binaries and stage RUNS/.positive-NAME/ with
    yunhand = the unsafe build (and the safe yunhan): the run copies its
    binaries from there.  Returns the staging dir or None (reported)."""
    pc = POSITIVE_CONTROLS[name]
    label = "positive control %s" % name
    src = os.path.join(REPO, "bin", pc["binary"])
    try:
        p = subprocess.run(["make", "-C", REPO, "--no-print-directory",
                            "yunhand-unsafe"], capture_output=True,
                           text=True, timeout=600)
        built = p.returncode == 0
        why = (p.stderr or p.stdout).strip().splitlines()[-3:]
    except (OSError, subprocess.TimeoutExpired) as e:
        built, why = False, [str(e)]
    if not built:
        if not os.access(src, os.X_OK):
            not_ok(label, "make yunhand-unsafe failed: %s" % " ".join(why))
            return None
        log("%s: make yunhand-unsafe failed (%s); using the existing %s" %
            (label, " ".join(why), src))
    stage = os.path.join(runs_dir, ".positive-%s" % name)
    os.makedirs(stage, exist_ok=True)
    shutil.copy2(src, os.path.join(stage, "yunhand"))
    cli = os.path.join(bin_dir, "yunhan")
    if os.path.exists(cli):
        shutil.copy2(cli, os.path.join(stage, "yunhan"))
    return stage


def pc_caught(name, res):
    """The expected anomalies found in a run's results (a list)."""
    pc = POSITIVE_CONTROLS[name]
    r = res.get("checks", {}).get(pc["checker"])
    if not r or r.get("valid") is not False:
        return []
    return [a for a in r["anomalies"] if a["type"] in pc["anomalies"]]


def positive_control(h, name, runs, run_time, seed, args):
    """Run the unsafe build up to @runs times; ok when caught.  Returns a
    summary dict (also used by the report)."""
    pc = POSITIVE_CONTROLS[name]
    label = "positive control %s" % name
    summary = {"control": name, "runs": runs, "caught_in": None,
               "dirs": [], "nemesis": pc["nemesis"]}
    stage = pc_binaries(name, args.bin, args.runs_dir)
    if stage is None:
        return summary
    for k in range(1, runs + 1):
        params = default_params(args, pc["nemesis"], seed + k,
                                list(pc["workloads"]))
        params["time"] = run_time
        params["positive_control"] = name
        if pc.get("workers"):
            params["workers"] = dict(pc["workers"])
        params["positive_control_run"] = [k, runs]
        res = run_one(h, params, args.runs_dir, stage,
                      "%s #%d" % (label, k), report=False)
        summary["dirs"].append(res["dir"])
        found = pc_caught(name, res)
        others = ["%s: %s" % (n, checkers_verdict(r))
                  for n, r in sorted(res["checks"].items())
                  if r["valid"] is not True and n != pc["checker"]]
        if res.get("error") or others:
            log("%s #%d: also %s" % (label, k, "; ".join(
                ([res["error"]] if res.get("error") else []) + others)))
        if found:
            kinds = {}
            for a in found:
                kinds[a["type"]] = kinds.get(a["type"], 0) + 1
            summary["caught_in"] = k
            summary["anomalies"] = kinds
            for a in found[:3]:
                log("%s: %s" % (label, json.dumps(a, default=str)[:600]))
            ok("%s caught in run %d of %d (%s; run %s)" % (
                label, k, runs, ", ".join("%s x%d" % kv
                                          for kv in sorted(kinds.items())),
                res["dir"]))
            return summary
        log("%s #%d: not caught (%s valid=%s)" % (
            label, k, pc["checker"],
            res["checks"].get(pc["checker"], {}).get("valid")))
    not_ok(label, "%s under %s not flagged by the %s checker in %d runs; "
           "runs %s" % (pc["binary"], pc["nemesis"], pc["checker"], runs,
                        " ".join(summary["dirs"])))
    return summary


def checkers_verdict(r):
    from yhjepsen import checkers
    return checkers.verdict_word(r["valid"])


def env_ok(bin_dir):
    why = netns.environment_problem()
    if why is None and not os.access(os.path.join(bin_dir, "yunhand"),
                                     os.X_OK):
        why = "%s/yunhand missing (make all)" % bin_dir
    if why is None:
        bad = netns.range_in_use()
        if bad:
            why = "10.213.0.0/24 in use: %s" % "; ".join(bad)
    if why:
        not_ok("jepsen environment", why)
        return False
    ok("jepsen environment")
    return True


def main():
    ap = argparse.ArgumentParser(prog="jepsen/run.sh")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    g.add_argument("--replay", metavar="RUNDIR")
    g.add_argument("--selftest", action="store_true")
    g.add_argument("--list", action="store_true")
    g.add_argument("--positive-control", choices=sorted(POSITIVE_CONTROLS),
                   help="run an unsafe build that must be caught")
    g.add_argument("--watchdog", action="store_true", help=argparse.SUPPRESS)
    g.add_argument("--hold-net", type=int, metavar="N",
                   help=argparse.SUPPRESS)  # self-test of the cleanup
    g.add_argument("--report", metavar="RUNS_DIR",
                   help="rewrite docs/jepsen.md from existing run dirs")
    ap.add_argument("--nemesis", help="one nemesis (see --list)")
    ap.add_argument("--workload", default="register,set,idempotency,bank")
    ap.add_argument("--time", type=float,
                    help="seconds of load per run (60; positive "
                    "controls 30)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--runs", type=int,
                    help="--full: runs per cell (3); positive control: "
                    "runs allowed to catch it (5)")
    ap.add_argument("--no-positive-controls", action="store_true",
                    help="--full: skip the positive controls")
    ap.add_argument("--nemeses", help="--full: comma-separated subset")
    ap.add_argument("--snapshot-threshold", type=int, default=256)
    ap.add_argument("--snapshot-trailing", type=int, default=64)
    # raft_uv keeps up to three open 64 MiB segments allocated (192 MiB);
    # state, snapshots and the archive grow ~1.6 MB/s under the full load:
    # 256 MiB filled on its own after ~40 s (session 7's disk-full run 2:
    # two nodes stopped with ENOSPC that the nemesis had not caused).
    ap.add_argument("--tmpfs-mb", type=int, default=640,
                    help="size of each node's tmpfs for the disk-full "
                    "nemeses (640; must outlast the run's own growth)")
    ap.add_argument("--election-timeout", type=int, metavar="MS",
                    help="yunhand election timeout (default: yunhand's own,"
                    " cluster/node.c)")
    ap.add_argument("--heartbeat-timeout", type=int, metavar="MS",
                    help="yunhand heartbeat timeout (default: yunhand's "
                    "own)")
    ap.add_argument("--bin", help="directory with yunhand (default: the "
                    "repo's bin/, or RUNDIR/bin with --replay)")
    ap.add_argument("--runs-dir", default=os.path.join(JEPSEN, "runs"))
    ap.add_argument("--no-selftest", action="store_true")
    ap.add_argument("--keep-data", action="store_true",
                    help="keep node data dirs of valid runs too")
    args = ap.parse_args()
    pc_time = args.time if args.time is not None else PC_DEFAULT_TIME
    pc_runs = args.runs if args.runs is not None else PC_DEFAULT_RUNS
    if args.time is None:
        args.time = 60.0
    if args.runs is None:
        args.runs = 3

    if args.watchdog:
        return watchdog()
    if args.bin is None:
        args.bin = os.path.join(REPO, "bin")
        if args.replay and os.path.exists(os.path.join(args.replay, "bin",
                                                       "yunhand")):
            args.bin = os.path.join(os.path.abspath(args.replay), "bin")
    if args.list:
        print("nemeses: %s" % " ".join(nemesis.NEMESES))
        print("workloads: register set idempotency bank")
        return 0
    if args.report:
        from yhjepsen import report
        path = report.write(args.report, os.path.join(REPO, "docs",
                                                      "jepsen.md"))
        print("wrote %s" % path)
        return 0

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    if args.hold_net:
        # Set up N namespaces and wait to be interrupted or killed: the
        # netns self-test checks that everything is removed either way.
        h = Harness()
        h.acquire()
        net = netns.Net(args.hold_net, log=log)

        class Holder:
            ctx = None
        hold = Holder()
        hold.ctx = type("C", (), {"cluster": None, "net": net})()
        h.current = hold
        try:
            net.setup()
            print("ready", flush=True)
            time.sleep(600)
        finally:
            net.teardown()
            h.current = None
            h.release()
        return 0

    t_begin = time.monotonic()
    if args.selftest:
        selftests()
        return 1 if FAILED else 0
    if args.quick and not args.no_selftest:
        selftests()

    plans = []  # (label, params)
    seed = args.seed if args.seed is not None else random.randrange(1 << 20)
    if args.replay:
        with open(os.path.join(args.replay, "params.json")) as fh:
            params = json.load(fh)
        plans.append(("replay %s" % params["nemesis"], params))
    elif args.quick:
        # Three runs, each with all four workloads at once, one nemesis
        # each: the time left in the 8-minute budget is split between them.
        left = QUICK_BUDGET_S - (time.monotonic() - t_begin)
        per = max(20.0, min(args.time, (left - 3 * 45) / 3))
        for k, n in enumerate(nemesis.QUICK):
            p = default_params(args, n, seed + k)
            p["time"] = round(per, 1)
            plans.append(("quick %s" % n, p))
    elif args.full:
        names = (args.nemeses.split(",") if args.nemeses
                 else list(nemesis.NEMESES))
        for n in names:
            if n not in nemesis.NEMESES:
                not_ok("arguments", "unknown nemesis %r" % n)
                return 2
        k = 0
        for n in names:
            for r in range(max(3, args.runs) if not args.nemeses
                           else args.runs):
                plans.append(("full %s #%d" % (n, r + 1),
                              default_params(args, n, seed + k)))
                k += 1
    elif args.nemesis:
        if args.nemesis not in nemesis.NEMESES:
            not_ok("arguments", "unknown nemesis %r" % args.nemesis)
            return 2
        plans.append(("%s" % args.nemesis,
                      default_params(args, args.nemesis, seed)))
    elif args.positive_control:
        pass
    else:
        ap.print_usage()
        return 2
    controls = []
    if args.positive_control:
        controls = [args.positive_control]
    elif args.full and not args.no_positive_controls:
        controls = sorted(POSITIVE_CONTROLS)
        pc_runs = PC_DEFAULT_RUNS
        pc_time = PC_DEFAULT_TIME

    log("seed %d, %d run(s)%s" % (seed, len(plans), "" if not controls else
                                  ", positive controls %s (up to %d runs "
                                  "each)" % (" ".join(controls), pc_runs)))
    if not env_ok(args.bin):
        return 1
    h = Harness()
    try:
        h.acquire()
    except netns.NetError as e:
        not_ok("jepsen environment", e)
        return 1
    results = []
    pcs = []
    try:
        for label, params in plans:
            try:
                results.append(run_one(h, params, args.runs_dir, args.bin,
                                       label))
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a harness bug: report, go on
                import traceback
                traceback.print_exc()
                not_ok("%s harness" % label, "%s: %s" % (type(e).__name__,
                                                          e))
        for k, name in enumerate(controls):
            try:
                pcs.append(positive_control(h, name, pc_runs, pc_time,
                                            seed + 1000 * (k + 1), args))
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a harness bug: report, go on
                import traceback
                traceback.print_exc()
                not_ok("positive control %s harness" % name, "%s: %s" % (
                    type(e).__name__, e))
    finally:
        h.release()
    if args.full:
        from yhjepsen import report
        dirs = [r["dir"] for r in results]
        for pc in pcs:
            dirs += pc["dirs"]
        path = report.write(args.runs_dir, os.path.join(REPO, "docs",
                                                        "jepsen.md"), dirs)
        log("summary written to %s" % path)
    log("total %.0fs, %d not ok" % (time.monotonic() - t_begin,
                                    len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
