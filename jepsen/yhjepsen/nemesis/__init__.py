"""Nemeses: faults injected on a seeded schedule.

The schedule is generated up front from the seed (fault, start time,
duration, and random numbers that pick targets); targets that depend on
the cluster ("the leader", "a running node") are resolved when the fault
starts, and every start/heal is written to nemesis.jsonl with the resolved
targets.  A run's nemesis is one fault type or a combination (two faults at
once).  See faults.py for the faults.

Catch-up: after a heal that brings a node back (restart, resume, partition
healed, node re-added), the time until that node has applied everything
the leader had committed at the heal ({"event": "catchup", "ms"} in
nemesis.jsonl; "interrupted" when the next fault started first, "ms" null
when it did not catch up within CATCHUP_TIMEOUT).
"""

import json
import random
import threading
import time

from . import faults

CATCHUP_TIMEOUT = 30.0

# name -> list of fault names (a combination runs two of them at once)
NEMESES = {
    "none": [],
    "partition-one": ["partition-one"],
    "isolate-leader": ["isolate-leader"],
    "bridge": ["bridge"],
    "one-way": ["one-way"],
    "kill": ["kill"],
    "kill-leader": ["kill-leader"],
    "kill-all": ["kill-all"],
    "pause": ["pause"],
    "pause-leader": ["pause-leader"],
    "clock": ["clock"],
    "membership": ["membership"],
    "transfer": ["transfer"],
    "disk-full": ["disk-full"],
    "corrupt": ["corrupt"],
    "loss": ["loss"],
    "delay": ["delay"],
    # combinations
    "kill+partition": ["kill", "partition-one"],
    "pause+loss": ["pause", "loss"],
    "transfer+delay": ["transfer", "delay"],
    "membership+kill": ["membership", "kill"],
    "clock+isolate-leader": ["clock", "isolate-leader"],
    "disk-full+kill-leader": ["disk-full", "kill-leader"],
}

QUICK = ["kill", "pause", "isolate-leader"]


def requirements(name):
    """Cluster features a nemesis needs: proxy, faketime, tmpfs, spares."""
    req = set()
    for f in NEMESES[name]:
        req |= faults.FAULTS[f].needs
    return req


def schedule(name, seed, duration):
    """Deterministic list of entries {"at", "duration", "faults": [{"fault",
    "params"}]}."""
    rng = random.Random("nemesis-%s-%s" % (name, seed))
    kinds = NEMESES[name]
    out = []
    if not kinds:
        return out
    t = rng.uniform(3.0, 5.0)
    while t < duration - 5.0:
        if len(kinds) > 1:
            picked = rng.sample(kinds, 2) if rng.random() < 0.5 else \
                [rng.choice(kinds)]
        else:
            picked = list(kinds)
        dur = max(faults.FAULTS[k].duration(rng) for k in picked)
        dur = min(dur, max(1.0, duration - 2.0 - t))
        out.append({"at": round(t, 3), "duration": round(dur, 3),
                    "faults": [{"fault": k,
                                "params": faults.FAULTS[k].plan(rng)}
                               for k in picked]})
        t += dur + rng.uniform(3.0, 6.0)
    return out


class Runner(threading.Thread):
    """Executes a schedule against a run context."""

    def __init__(self, ctx, entries, path):
        threading.Thread.__init__(self, name="nemesis", daemon=True)
        self.ctx = ctx
        self.entries = entries
        self.fh = open(path, "w", encoding="utf-8")
        self.stop_ev = threading.Event()
        self.active = []
        self.lock = threading.Lock()
        self.errors = []
        self.events = []
        self.gen = 0          # fault entries started so far
        self.measures = []    # catch-up threads

    def record(self, **kw):
        kw["time"] = self.ctx.now()
        with self.lock:
            self.events.append(kw)
            self.fh.write(json.dumps(kw, sort_keys=True, default=str) +
                          "\n")
            self.fh.flush()

    def run(self):
        start = self.ctx.t_start
        for e in self.entries:
            if self.stop_ev.wait(max(0.0, start + e["at"] -
                                     time.monotonic())):
                break
            self.gen += 1
            for spec in e["faults"]:
                f = faults.FAULTS[spec["fault"]]
                try:
                    state = f.start(self.ctx, spec["params"])
                    self.active.append((f, state))
                    self.record(event="start", fault=f.name,
                                params=spec["params"], state=state)
                except Exception as ex:  # recorded, run continues
                    self.errors.append("%s start: %s" % (f.name, ex))
                    self.record(event="start-failed", fault=f.name,
                                params=spec["params"], error=str(ex))
            if self.stop_ev.wait(e["duration"]):
                break
            self.heal_all()
        self.heal_all()

    def heal_all(self):
        while self.active:
            f, state = self.active.pop()
            try:
                t_heal = self.ctx.now()
                res = f.heal(self.ctx, state)
                self.record(event="heal", fault=f.name, state=state,
                            result=res)
            except Exception as ex:
                self.errors.append("%s heal: %s" % (f.name, ex))
                self.record(event="heal-failed", fault=f.name, state=state,
                            error=str(ex))
                continue
            nodes = f.healed(state, res)
            if nodes:
                th = threading.Thread(target=self.catchup, daemon=True,
                                      args=(f.name, list(nodes), t_heal,
                                            self.gen),
                                      name="catchup-%s" % f.name)
                th.start()
                self.measures.append(th)

    def catchup(self, fault, nodes, t_heal, gen):
        """Time from the heal until every node in @nodes applied the
        leader's commit index at the heal (or the first index a leader
        reports, if there was none then)."""
        c = self.ctx.cluster
        deadline = time.monotonic() + CATCHUP_TIMEOUT
        target = None
        pending = set(nodes)
        while pending and time.monotonic() < deadline and self.gen == gen:
            if target is None:
                ld = c.leader(0.5)
                d = c.describe(ld, 0.5) if ld is not None else None
                if d and d.get("State") == "leader" and \
                        isinstance(d.get("CommitIndex"), int):
                    target = d["CommitIndex"]
                else:
                    time.sleep(0.05)
                    continue
            for i in sorted(pending):
                d = c.describe(i, 0.5)
                if d and isinstance(d.get("AppliedIndex"), int) and \
                        d["AppliedIndex"] >= target:
                    self.record(event="catchup", fault=fault, node=i,
                                target=target,
                                ms=(self.ctx.now() - t_heal) // 1000000)
                    pending.discard(i)
            time.sleep(0.05)
        for i in sorted(pending):
            self.record(event="catchup", fault=fault, node=i, target=target,
                        ms=None, interrupted=self.gen != gen)

    def stop(self, timeout=120):
        self.stop_ev.set()
        self.join(timeout)
        if self.is_alive():
            self.errors.append("nemesis did not stop in %ss" % timeout)
        for th in self.measures:
            th.join(CATCHUP_TIMEOUT + 5)
        self.fh.close()
