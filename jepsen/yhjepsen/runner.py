"""One run: namespaces + cluster + workloads + nemesis, then heal, final
reads, checkers and results.json.

Run directory (jepsen/runs/<timestamp>-<workloads>-<nemesis>-<seed>/):
  params.json            everything needed to replay the run (--replay)
  binaries.json          sha256 of bin/yunhand (and bin/yunhan)
  nemesis-schedule.json  the seeded schedule; nemesis.jsonl what happened
  history-<w>.jsonl      one history per workload
  replicas.json          DescribeCluster polls after healing
  nodes.jsonl, logs/, conf/, keys/, data/, cwd/   (cluster.py)
  results.json           verdicts, anomalies, stats, failover times
"""

import hashlib
import json
import os
import shutil
import threading
import time

from . import checkers, history, netns, nemesis, proxy
from .checkers import logs as logs_checker
from .checkers import replicas as replicas_checker
from .client import ApiError, TransportError
from .cluster import Cluster, ClusterError
from .nemesis import faults
from .nemesis.faults import FILLER
from .workloads.bank import Bank
from .workloads.idempotency import Idempotency
from .workloads.register import Register
from .workloads.set import SetWorkload

WORKLOADS = {"register": Register, "set": SetWorkload,
             "idempotency": Idempotency, "bank": Bank}
MUTATING = ("write", "cas", "add", "create", "recharge", "renew")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Ctx:
    """What workloads and faults see of the run."""

    def __init__(self, run_dir, tag, log):
        self.run_dir = run_dir
        self.tag = tag
        self.log = log
        self.t0 = time.monotonic_ns()
        self.t_start = time.monotonic()
        self.cluster = None
        self.net = None
        self.proxy = None
        self.blocked = set()
        self.private = {}
        self.meta = {}
        # (node, AppliedIndex, Digest) seen during the run (cluster monitor,
        # corrupt nemesis): two digests for one index is divergence.
        self.observed = []
        self.obs_lock = threading.Lock()

    def now(self):
        return time.monotonic_ns() - self.t0

    def observe(self, node_id, index, digest):
        with self.obs_lock:
            self.observed.append({"node": "n%d" % node_id,
                                  "AppliedIndex": index, "Digest": digest,
                                  "time": self.now()})

    def client_nodes(self):
        c = self.cluster
        ids = sorted(i for i in c.members)
        return ids or sorted(c.nodes)


class Run:
    def __init__(self, params, runs_dir, bin_dir, log):
        self.p = params
        self.log = log
        self.bin_dir = bin_dir
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        wl = "+".join(params["workloads"]) if len(params["workloads"]) < 3 \
            else "all"
        self.dir = os.path.join(runs_dir, "%s-%s-%s-%s" % (
            stamp, wl, params["nemesis"].replace("+", "_"), params["seed"]))
        n = 1
        base = self.dir
        while os.path.exists(self.dir):
            n += 1
            self.dir = "%s.%d" % (base, n)
        os.makedirs(self.dir)
        self.ctx = None
        self.results = None
        self.notes = []

    def write_json(self, name, obj):
        with open(os.path.join(self.dir, name), "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True, default=str)
            fh.write("\n")

    def execute(self):
        """Runs and checks; returns results (also in results.json).
        Harness failures are results with "error"."""
        p = self.p
        self.write_json("params.json", p)
        # Run a private copy of the binary: bin/ is rebuilt by other work
        # meanwhile, and a core file is only useful with its binary.
        bins = {}
        run_bin = os.path.join(self.dir, "bin")
        os.makedirs(run_bin)
        for b in ("yunhand", "yunhan"):
            path = os.path.join(self.bin_dir, b)
            if os.path.exists(path):
                dst = os.path.join(run_bin, b)
                shutil.copy2(path, dst)
                bins[b] = sha256_file(dst)
        bins["source"] = self.bin_dir
        self.write_json("binaries.json", bins)
        req = nemesis.requirements(p["nemesis"])
        sched = nemesis.schedule(p["nemesis"], p["seed"], p["time"])
        self.write_json("nemesis-schedule.json", sched)
        tag = "%s%d" % (hashlib.sha256(self.dir.encode()).hexdigest()[:6],
                        p["seed"] % 1000)
        ctx = self.ctx = Ctx(self.dir, tag, self.log)
        n_nodes = p["nodes"] + (2 if "spares" in req else 0)
        recs = {}
        error = None
        workers = []
        nem = None
        stop = threading.Event()
        replicas_data = {"nodes": [], "rounds": []}
        try:
            ctx.net = netns.Net(n_nodes, log=self.log)
            ctx.net.setup()
            if "proxy" in req:
                ctx.proxy = proxy.Proxy(netns.HOST_IP, seed=p["seed"],
                                        log=self.log)
                for i in range(1, n_nodes + 1):
                    for j in range(1, n_nodes + 1):
                        if i != j:
                            for port in (netns.API_PORT, netns.RAFT_PORT):
                                ctx.proxy.add_route(
                                    proxy.port_of(i, j, port), i, j,
                                    (netns.node_ip(j), port))
                ctx.proxy.start()
                ctx.net.enable_proxy(proxy.port_of)
            ctx.cluster = Cluster(
                self.dir, run_bin, ctx.net, n_nodes,
                list(range(1, p["nodes"] + 1)), self.log,
                snapshot_threshold=p["snapshot_threshold"],
                snapshot_trailing=p["snapshot_trailing"],
                faketime="faketime" in req,
                tmpfs_mb=p["tmpfs_mb"] if "tmpfs" in req else 0,
                election_timeout=p.get("election_timeout"),
                heartbeat_timeout=p.get("heartbeat_timeout"),
                t0_ns=ctx.t0)
            for i in range(1, p["nodes"] + 1):
                ctx.cluster.start(i)
            ctx.cluster.wait_ready(40)
            wls = []
            for name in p["workloads"]:
                rec = history.Recorder(
                    os.path.join(self.dir, "history-%s.jsonl" % name),
                    t0_ns=ctx.t0)
                recs[name] = rec
                wl = WORKLOADS[name](ctx, rec, p["seed"], workers=(
                    p.get("workers") or {}).get(name))
                wl.setup()
                wls.append(wl)
            self.write_json("meta.json", ctx.meta)
            ctx.t_start = time.monotonic()
            nem = nemesis.Runner(ctx, sched,
                                 os.path.join(self.dir, "nemesis.jsonl"))
            for wl in wls:
                for slot in range(wl.workers):
                    th = threading.Thread(target=wl.worker,
                                          args=(slot, stop), daemon=True,
                                          name="%s-%d" % (wl.name, slot))
                    th.start()
                    workers.append(th)
            nem.start()
            mon = threading.Thread(target=self.monitor, args=(stop,),
                                   daemon=True, name="cluster-monitor")
            mon.start()
            self.log("running %s under %s for %ss (seed %s)" % (
                ",".join(p["workloads"]), p["nemesis"], p["time"],
                p["seed"]))
            time.sleep(max(0, ctx.t_start + p["time"] - time.monotonic()))
            nem.stop()
            self.heal_everything()
            # Load on a healed cluster for a moment, then stop the workers
            # (they finish their current operation, bounded by timeouts).
            time.sleep(2)
            stop.set()
            for th in workers:
                th.join(max(1, 40))
            alive = [th.name for th in workers if th.is_alive()]
            if alive:
                error = "workers did not stop: %s" % ",".join(alive)
            # Workloads whose state changes by itself (billing ticks) stop
            # it, so that every node's final state is the same.
            for wl in wls:
                wl.quiesce()
            replicas_data = self.poll_replicas()
            for wl in wls:
                for i in sorted(ctx.cluster.members):
                    wl.final(i)
        except (ClusterError, netns.NetError, OSError, RuntimeError,
                ApiError, TransportError) as e:
            error = "%s: %s" % (type(e).__name__, e)
            self.log("run error: %s" % error)
        finally:
            stop.set()
            if nem is not None and nem.is_alive():
                nem.stop(30)
            for rec in recs.values():
                rec.close()
            if ctx.cluster is not None:
                try:
                    ctx.cluster.shutdown()
                except Exception as e:  # keep tearing down
                    self.log("shutdown: %s" % e)
                    ctx.cluster.emergency_kill()
            if ctx.proxy is not None:
                ctx.proxy.stop()
            if ctx.net is not None:
                ctx.net.teardown()
        replicas_data["observed"] = list(ctx.observed)
        self.write_json("replicas.json", replicas_data)
        return self.check(recs, nem, error, replicas_data)

    def monitor(self, stop, period=1.0):
        """Sample DescribeCluster of every running node into cluster.jsonl
        (state, term, leader, commit/applied index) for diagnosis."""
        c = self.ctx.cluster
        with open(os.path.join(self.dir, "cluster.jsonl"), "w") as fh:
            while not stop.wait(period):
                rows = {}

                def one(i):
                    d = c.describe(i, 0.8)
                    rows[i] = d
                ths = [threading.Thread(target=one, args=(i,))
                       for i in c.running_ids()]
                for th in ths:
                    th.start()
                for th in ths:
                    th.join(2)
                t = self.ctx.now()
                for i in sorted(rows):
                    d = rows[i]
                    row = {"time": t, "node": "n%d" % i}
                    if d is None:
                        row["error"] = "no answer"
                    else:
                        for k in ("State", "Term", "LeaderID", "CommitIndex",
                                  "AppliedIndex", "Digest"):
                            row[k] = d.get(k)
                        if isinstance(d.get("AppliedIndex"), int) and \
                                isinstance(d.get("Digest"), str):
                            self.ctx.observe(i, d["AppliedIndex"],
                                             d["Digest"])
                    fh.write(json.dumps(row, sort_keys=True) + "\n")
                fh.flush()

    def heal_everything(self):
        ctx = self.ctx
        c = ctx.cluster
        ctx.net.heal_partitions()
        ctx.net.heal_loss()
        ctx.blocked.clear()
        if ctx.proxy is not None:
            ctx.proxy.set_delay(0.0)
            ctx.proxy.set_blocked(set())
        for i, n in c.nodes.items():
            c.set_clock(i, 0)
            c.resume(i)
            f = os.path.join(n.data_dir, FILLER)
            if os.path.exists(f):
                os.unlink(f)
        for i in sorted(c.members):
            if c.nodes[i].proc is None:
                c.start(i)
        if c.wait_leader(30) is None:
            raise ClusterError("no leader 30 s after healing")
        # A node whose data dir the corrupt nemesis damaged may refuse to
        # start (or have stopped itself since): replace it, as an operator
        # would.  An undamaged node that refuses is not touched: the final
        # reads then fail, as they should.
        for i in sorted(c.members):
            if c.nodes[i].damaged and faults.settle(ctx, i) == "exited":
                why = faults.refused_start(ctx, i)
                self.log("n%d refuses to start (%s): replacing it" % (i, why))
                self.notes.append({"type": "replaced", "node": "n%d" % i,
                                   "damaged": list(c.nodes[i].damaged),
                                   "refusal": why,
                                   "result": faults.replace_node(ctx, i)})
        # A membership change answered "unknown" may have happened after
        # all: from here on, trust the cluster's own configuration.
        voters = c.voters()
        if voters is not None and set(voters) != c.members:
            self.log("configuration after healing: voters %s, harness "
                     "thought %s" % (voters, sorted(c.members)))
            self.notes.append({"type": "membership-resync",
                               "voters": voters,
                               "harness": sorted(c.members)})
            for i in sorted(c.nodes):
                if i in voters and c.nodes[i].proc is None:
                    c.start(i)
            c.members = set(i for i in voters if i in c.nodes)

    def poll_replicas(self, timeout=40):
        c = self.ctx.cluster
        nodes = ["n%d" % i for i in sorted(c.members)]
        data = {"nodes": nodes, "rounds": []}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rnd = [None] * len(nodes)

            def one(k, i):
                d = c.describe(i, 2.0)
                if d is None:
                    rnd[k] = {"node": "n%d" % i, "error": "no answer"}
                else:
                    rnd[k] = {"node": "n%d" % i,
                              "AppliedIndex": d.get("AppliedIndex"),
                              "CommitIndex": d.get("CommitIndex"),
                              "Digest": d.get("Digest"),
                              "State": d.get("State"),
                              "Term": d.get("Term"),
                              "LeaderID": d.get("LeaderID"),
                              "Voters": sorted(
                                  n.get("NodeID") for n in d.get("Nodes")
                                  or [] if n.get("Role") == "voter")}
            ths = [threading.Thread(target=one, args=(k, i))
                   for k, i in enumerate(sorted(c.members))]
            for th in ths:
                th.start()
            for th in ths:
                th.join(5)
            data["rounds"].append([r for r in rnd if r is not None])
            if replicas_checker.check(data)["stats"]["converged"]:
                break
            time.sleep(0.5)
        return data

    # -------------------------------------------------------------- check
    def check(self, recs, nem, error, replicas_data):
        p = self.p
        res = {"dir": self.dir, "params": p, "error": error, "checks": {}}
        try:
            with open(os.path.join(self.dir, "binaries.json")) as fh:
                res["yunhand_sha256"] = json.load(fh).get("yunhand")
        except (OSError, ValueError):
            pass
        nodes = replicas_data.get("nodes") or None
        all_events = {}
        for name, rec in recs.items():
            path = os.path.join(self.dir, "history-%s.jsonl" % name)
            try:
                events = history.load(path)
                all_events[name] = events
                r = checkers.check_events(name, events, expect_nodes=nodes)
            except (history.HistoryError, ValueError) as e:
                r = {"valid": False, "anomalies": [
                    {"type": "checker-error", "message": str(e)}],
                    "stats": {}}
            res["checks"][name] = r
        if error is None or replicas_data["rounds"]:
            res["checks"]["replicas"] = replicas_checker.check(replicas_data)
        res["checks"]["logs"] = logs_checker.check(self.dir)
        # Totals for the summary.
        ops = 0
        info = 0
        for events in all_events.values():
            for ev in events:
                if ev["process"] >= 1000000:
                    continue
                if ev["type"] == "invoke":
                    ops += 1
                elif ev["type"] == "info":
                    info += 1
        res["ops"] = ops
        res["info"] = info
        res["anomalies"] = sum(len(r["anomalies"])
                               for r in res["checks"].values())
        res["lost_acks"] = sum(a.get("count", 1)
                               for r in res["checks"].values()
                               for a in r["anomalies"]
                               if a["type"] == "lost-ack")
        res["failover_ms"] = failover_times(nem.events if nem else [],
                                            all_events)
        res["catchup_ms"] = [
            {"fault": ev["fault"], "node": ev["node"], "ms": ev["ms"]}
            for ev in (nem.events if nem else [])
            if ev.get("event") == "catchup" and not ev.get("interrupted")]
        res["nemesis_errors"] = nem.errors if nem else []
        res["notes"] = self.notes + res["checks"]["logs"].get("notes", [])
        res["valid"] = (error is None and
                        all(r["valid"] is True
                            for r in res["checks"].values()))
        slim = json.loads(json.dumps(res, default=str))
        for r in slim["checks"].values():
            if len(r["anomalies"]) > 50:
                r["anomalies_total"] = len(r["anomalies"])
                r["anomalies"] = r["anomalies"][:50]
        self.write_json("results.json", slim)
        self.results = res
        # The data dirs (raft segments are preallocated, 64 MiB each) are
        # kept only where something failed, for the post-mortem.
        if res["valid"] and not p.get("keep_data"):
            shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)
        return res


def failover_times(nem_events, all_events):
    """For each fault that took the leader away: ms from the fault to the
    first acknowledged write invoked after it (None if none until the
    end)."""
    oks = []
    for events in all_events.values():
        inv = {}
        for ev in events:
            if ev["f"] not in MUTATING:
                continue
            if ev["type"] == "invoke":
                inv[ev["process"]] = ev["time"]
            elif ev["type"] == "ok" and ev["process"] in inv:
                oks.append((inv[ev["process"]], ev["time"]))
    oks.sort(key=lambda x: x[1])
    out = []
    for ev in nem_events:
        if ev.get("event") != "start":
            continue
        st = ev.get("state") or {}
        if not (isinstance(st, dict) and st.get("leader_fault")):
            continue
        t = ev["time"]
        first = next((done for (i, done) in oks if i >= t), None)
        out.append({"fault": ev["fault"], "at_ms": t // 1000000,
                    "ms": (first - t) // 1000000 if first else None})
    return out
