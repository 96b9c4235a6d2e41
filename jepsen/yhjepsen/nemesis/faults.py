"""The faults.  Each has plan(rng) -> params (chosen at schedule time from
the seed), start(ctx, params) -> state (targets resolved now),
heal(ctx, state) -> result, and healed(state, result) -> the nodes the heal
brought back (their catch-up time is measured).  States are
JSON-serialisable and go to nemesis.jsonl.  A state with "leader_fault":
true marks a fault that took the leader away (used for the failover-time
measurement)."""

import errno
import os
import random
import signal
import threading
import time

from ..client import ApiError, TransportError
from ..cluster import ClusterError


def _pick(ids, r):
    ids = sorted(ids)
    if not ids:
        raise RuntimeError("no candidate node")
    return ids[int(r * len(ids)) % len(ids)]


def _running_members(ctx):
    return sorted(set(ctx.cluster.running_ids()) & ctx.cluster.members)


class Fault:
    name = "?"
    needs = set()
    min_dur, max_dur = 4.0, 10.0

    def duration(self, rng):
        return rng.uniform(self.min_dur, self.max_dur)

    def plan(self, rng):
        return {"r": round(rng.random(), 6)}

    def start(self, ctx, params):
        raise NotImplementedError

    def heal(self, ctx, state):
        return None

    def healed(self, state, result):
        return []


class NodeFault(Fault):
    """A fault on one node, state["node"], that its heal brings back."""

    def healed(self, state, result):
        return [state["node"]]


# ---------------------------------------------------------------- network
def _cut(ctx, pairs):
    for a, b in pairs:
        ctx.net.cut(a, b)
    ctx.blocked |= set(pairs)
    if ctx.proxy is not None:
        ctx.proxy.set_blocked(ctx.blocked)


def _heal_cuts(ctx):
    ctx.net.heal_partitions()
    ctx.blocked.clear()
    if ctx.proxy is not None:
        ctx.proxy.set_blocked(set())


def _isolate(ctx, t):
    pairs = set()
    for o in ctx.cluster.nodes:
        if o != t:
            pairs |= {(t, o), (o, t)}
    _cut(ctx, pairs)
    return sorted(pairs)


class PartitionOne(NodeFault):
    """One node cut off from every other node (clients still reach it)."""
    name = "partition-one"

    def start(self, ctx, params):
        t = _pick(ctx.cluster.members, params["r"])
        leader = ctx.cluster.leader()
        return {"node": t, "pairs": _isolate(ctx, t),
                "leader_fault": t == leader}

    def heal(self, ctx, state):
        _heal_cuts(ctx)


class IsolateLeader(PartitionOne):
    name = "isolate-leader"

    def start(self, ctx, params):
        leader = ctx.cluster.leader()
        t = leader if leader is not None else _pick(ctx.cluster.members,
                                                    params["r"])
        return {"node": t, "pairs": _isolate(ctx, t),
                "leader_fault": leader is not None}


class Bridge(Fault):
    """Two sides that cannot talk, and one node that sees both."""
    name = "bridge"

    def plan(self, rng):
        return {"seed": rng.randrange(1 << 30)}

    def start(self, ctx, params):
        ms = sorted(ctx.cluster.members)
        random.Random(params["seed"]).shuffle(ms)
        k = (len(ms) - 1) // 2
        left, bridge, right = ms[:k], ms[k], ms[k + 1:]
        pairs = set()
        for a in left:
            for b in right:
                pairs |= {(a, b), (b, a)}
        _cut(ctx, pairs)
        return {"left": left, "bridge": bridge, "right": right,
                "pairs": sorted(pairs)}

    def heal(self, ctx, state):
        _heal_cuts(ctx)


class OneWay(Fault):
    """Packets from a to b are dropped, b to a still flow."""
    name = "one-way"

    def plan(self, rng):
        return {"seed": rng.randrange(1 << 30), "n": rng.choice([1, 1, 2])}

    def start(self, ctx, params):
        rng = random.Random(params["seed"])
        ms = sorted(ctx.cluster.members)
        pairs = set()
        while len(pairs) < params["n"]:
            a, b = rng.sample(ms, 2)
            if (b, a) not in pairs:
                pairs.add((a, b))
        _cut(ctx, pairs)
        return {"pairs": sorted(pairs)}

    def heal(self, ctx, state):
        _heal_cuts(ctx)


class Loss(Fault):
    """Random packet loss between nodes (iptables statistic)."""
    name = "loss"

    def plan(self, rng):
        return {"p": round(rng.uniform(0.05, 0.3), 3)}

    def start(self, ctx, params):
        ctx.net.set_loss(sorted(ctx.cluster.nodes), params["p"])
        return {"p": params["p"]}

    def heal(self, ctx, state):
        ctx.net.heal_loss()


class Delay(Fault):
    """Delay (and jitter) on node-to-node TCP through the proxy."""
    name = "delay"
    needs = {"proxy"}

    def plan(self, rng):
        return {"delay": round(rng.uniform(0.02, 0.2), 3),
                "jitter": round(rng.uniform(0.0, 0.05), 3),
                "reset": rng.choice([0.0, 0.0, 0.001])}

    def start(self, ctx, params):
        ctx.proxy.set_delay(params["delay"], params["jitter"],
                            params["reset"])
        return dict(params)

    def heal(self, ctx, state):
        ctx.proxy.set_delay(0.0)


# -------------------------------------------------------------- processes
class Kill(NodeFault):
    name = "kill"
    min_dur, max_dur = 3.0, 8.0

    def target(self, ctx, params, leader):
        return _pick(_running_members(ctx), params["r"])

    def start(self, ctx, params):
        leader = ctx.cluster.leader()
        t = self.target(ctx, params, leader)
        rc = ctx.cluster.kill(t)
        return {"node": t, "returncode": rc, "leader_fault": t == leader}

    def heal(self, ctx, state):
        ctx.cluster.start(state["node"])


class KillLeader(Kill):
    name = "kill-leader"

    def target(self, ctx, params, leader):
        if leader is not None:
            return leader
        return Kill.target(self, ctx, params, leader)


class KillAll(Fault):
    name = "kill-all"
    min_dur, max_dur = 1.0, 4.0

    def start(self, ctx, params):
        nodes = _running_members(ctx)
        for i in nodes:
            ctx.cluster.kill(i)
        return {"nodes": nodes, "leader_fault": True}

    def heal(self, ctx, state):
        for i in state["nodes"]:
            ctx.cluster.start(i)

    def healed(self, state, result):
        return list(state["nodes"])


class Pause(NodeFault):
    name = "pause"
    min_dur, max_dur = 3.0, 8.0

    def target(self, ctx, params, leader):
        return _pick(_running_members(ctx), params["r"])

    def start(self, ctx, params):
        leader = ctx.cluster.leader()
        t = self.target(ctx, params, leader)
        ctx.cluster.pause(t)
        return {"node": t, "leader_fault": t == leader}

    def heal(self, ctx, state):
        ctx.cluster.resume(state["node"])


class PauseLeader(Pause):
    name = "pause-leader"

    def target(self, ctx, params, leader):
        if leader is not None:
            return leader
        return Pause.target(self, ctx, params, leader)


# ------------------------------------------------------------------ clock
class Clock(Fault):
    """Wall-clock offsets (libfaketime; monotonic time is left alone),
    either a jump or strobing between two offsets."""
    name = "clock"
    needs = {"faketime"}
    min_dur, max_dur = 5.0, 10.0

    def plan(self, rng):
        return {"r": round(rng.random(), 6),
                "all": rng.random() < 0.3,
                "offsets": [rng.choice([-1, 1]) * rng.randint(2, 120)
                            for _ in range(9)],
                "strobe": rng.random() < 0.5,
                "period": round(rng.uniform(1.0, 2.0), 3)}

    def start(self, ctx, params):
        if params["all"]:
            nodes = sorted(ctx.cluster.nodes)
        else:
            nodes = [_pick(ctx.cluster.members, params["r"])]
        offs = {i: params["offsets"][(i - 1) % 9] for i in nodes}
        for i, o in offs.items():
            ctx.cluster.set_clock(i, o)
        state = {"nodes": nodes, "offsets": offs,
                 "strobe": params["strobe"]}
        if params["strobe"]:
            stop = threading.Event()

            def strobe():
                on = True
                while not stop.wait(params["period"]):
                    on = not on
                    for i, o in offs.items():
                        ctx.cluster.set_clock(i, o if on else 0)
            th = threading.Thread(target=strobe, daemon=True)
            th.start()
            ctx.private[id(state)] = (stop, th)
        return state

    def heal(self, ctx, state):
        st = ctx.private.pop(id(state), None)
        if st:
            st[0].set()
            st[1].join(5)
        for i in state["nodes"]:
            ctx.cluster.set_clock(i, 0)


# ------------------------------------------------------------- membership
def _cluster_voters(ctx):
    """Voters per the cluster's own view (DescribeCluster on a leader)."""
    return ctx.cluster.voters()


def add_node(ctx, i, timeout=10):
    n = ctx.cluster.nodes[i]
    ctx.cluster.wipe(i)
    ctx.cluster.start(i, join=True)
    try:
        # Not to the joiner itself: its state is still empty (no admin key
        # yet), it answers 130.
        ld = ctx.cluster.leader()
        ctx.cluster.call_any("AddNode", {"NodeID": i,
                                         "RaftAddress": n.raft_addr,
                                         "APIAddress": n.api_addr},
                             timeout=timeout, exclude=(i,),
                             prefer=[ld] if ld not in (None, i) else None)
        res = "added"
    except (ApiError, TransportError, RuntimeError,
            ClusterError) as e:
        res = "AddNode: %s" % e
    voters = _cluster_voters(ctx)
    if voters is not None and i in voters:
        ctx.cluster.members.add(i)
        return res
    if res == "added":
        ctx.cluster.members.add(i)
        return res
    # Not added: do not leave a stray joiner running.
    ctx.cluster.stop(i)
    raise RuntimeError("node %d not added: %s" % (i, res))


def remove_node(ctx, i, timeout=10):
    ctx.cluster.nodes[i].removing = True
    try:
        ctx.cluster.call_any("RemoveNode", {"NodeID": i}, timeout=timeout,
                             exclude=(i,))
        res = "removed"
    except (ApiError, TransportError, RuntimeError,
            ClusterError) as e:
        voters = _cluster_voters(ctx)
        if voters is None or i in voters:
            raise RuntimeError("RemoveNode %d: %s" % (i, e))
        res = "removed (answer lost: %s)" % e
    ctx.cluster.members.discard(i)
    ctx.cluster.stop(i)
    ctx.cluster.wipe(i)
    return res


class Membership(Fault):
    """Grow by a spare node (AddNode) or shrink by a follower (RemoveNode);
    healing undoes it."""
    name = "membership"
    needs = {"spares"}
    min_dur, max_dur = 5.0, 10.0

    def plan(self, rng):
        return {"r": round(rng.random(), 6), "grow": rng.random() < 0.5}

    def start(self, ctx, params):
        c = ctx.cluster
        members = sorted(c.members)
        spares = sorted(i for i in c.nodes if i not in c.members and
                        c.nodes[i].proc is None)
        grow = spares and (params["grow"] or len(members) < 3)
        if grow:
            i = spares[0]
            return {"mode": "grow", "node": i, "result": add_node(ctx, i)}
        leader = c.leader()
        cands = [m for m in members if m != leader]
        t = _pick(cands, params["r"])
        return {"mode": "shrink", "node": t, "result": remove_node(ctx, t)}

    def heal(self, ctx, state):
        if state["mode"] == "grow":
            return remove_node(ctx, state["node"])
        return add_node(ctx, state["node"])

    def healed(self, state, result):
        return [state["node"]] if state["mode"] == "shrink" else []


class Transfer(Fault):
    """TransferLeader to a random other voter, repeatedly, under load."""
    name = "transfer"
    min_dur, max_dur = 5.0, 10.0

    def plan(self, rng):
        return {"seed": rng.randrange(1 << 30),
                "period": round(rng.uniform(0.5, 1.5), 3)}

    def start(self, ctx, params):
        stop = threading.Event()
        log = []
        rng = random.Random(params["seed"])

        def loop():
            while not stop.wait(params["period"]):
                ld = ctx.cluster.leader()
                cands = sorted(m for m in ctx.cluster.members if m != ld)
                if not cands:
                    continue
                t = rng.choice(cands)
                try:
                    ctx.cluster.call_any("TransferLeader", {"NodeID": t},
                                         timeout=3, prefer=[ld] if ld
                                         else None)
                    log.append([round(ctx.now() / 1e9, 3), ld, t, "ok"])
                except (ApiError, TransportError, RuntimeError,
                        ClusterError) as e:
                    log.append([round(ctx.now() / 1e9, 3), ld, t,
                                str(e)[:100]])
        th = threading.Thread(target=loop, daemon=True)
        th.start()
        state = {"transfers": log}
        ctx.private[id(state)] = (stop, th)
        return state

    def heal(self, ctx, state):
        stop, th = ctx.private.pop(id(state))
        stop.set()
        th.join(10)
        return {"transfers": len(state["transfers"])}


# ------------------------------------------------------------------- disk
FILLER = "yhj-filler"


class DiskFull(NodeFault):
    """Fill the small tmpfs holding a node's data dir."""
    name = "disk-full"
    needs = {"tmpfs"}
    min_dur, max_dur = 4.0, 8.0

    def start(self, ctx, params):
        t = _pick(_running_members(ctx), params["r"])
        path = os.path.join(ctx.cluster.nodes[t].data_dir, FILLER)
        written = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for block in (1 << 20, 4096, 1):
                buf = b"\0" * block
                while True:
                    try:
                        written += os.write(fd, buf)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return {"node": t, "filled_bytes": written}

    def heal(self, ctx, state):
        path = os.path.join(ctx.cluster.nodes[state["node"]].data_dir,
                            FILLER)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        # A node that stopped itself on ENOSPC is restarted, as an operator
        # would once the disk has space again.
        if ctx.cluster.nodes[state["node"]].proc is None:
            ctx.cluster.start(state["node"])
            return "restarted after it exited"
        return "running"


# Files of a yunhand data dir by what they hold: state/ (LMDB), raft/
# (libraft closed and open segments, snapshots and their .meta; the
# metadata1/2 files hold term and vote and are left alone: losing a vote
# breaks any Raft), archive/ (copies of compacted segments, read only by
# `yunhan replay`).  A kind is picked first, so the few files that matter
# are hit as often as the many archive segments.
CORRUPT_KINDS = (("state", 3), ("snapshot", 2), ("segment", 2),
                 ("open-segment", 2), ("archive", 1))
TRUNCATABLE = ("snapshot", "segment", "open-segment")


def corruptible(data_dir):
    """{kind: [relative paths]} of the non-empty files of a data dir."""
    out = {k: [] for k, _w in CORRUPT_KINDS}
    for root, _dirs, names in os.walk(data_dir):
        for f in names:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, data_dir)
            if (f.startswith("metadata") or f == FILLER or
                    f.endswith(".lock") or f == "lock.mdb" or
                    os.path.getsize(p) == 0):
                continue
            if rel.startswith("state" + os.sep):
                out["state"].append(rel)
            elif rel.startswith("archive" + os.sep):
                out["archive"].append(rel)
            elif f.startswith("snapshot-"):
                out["snapshot"].append(rel)
            elif f.startswith("open-"):
                out["open-segment"].append(rel)
            else:
                out["segment"].append(rel)
    return {k: sorted(v) for k, v in out.items()}


def refused_start(ctx, i):
    """Why node @i exited since its last start (exit status or signal, and
    its last error line), or None while it runs."""
    n = ctx.cluster.nodes[i]
    if n.proc is not None:
        return None
    rc = n.last_rc
    how = ("signal %s" % signal.Signals(-rc).name
           if isinstance(rc, int) and rc < 0 else "status %r" % (rc,))
    text = ctx.cluster.log_since_start(i)
    errs = [line.strip() for line in text.splitlines()
            if line.startswith("error ") or "refusing" in line]
    return "%s: %s" % (how, errs[-1][:300] if errs else "no error line")


def settle(ctx, i, timeout=20.0):
    """Wait until node @i either exited or serves (answers DescribeCluster
    with an AppliedIndex at least the leader's commit index when we
    started).  Returns "exited", "serving" or "running" (neither in time)."""
    c = ctx.cluster
    deadline = time.monotonic() + timeout
    target = None
    while time.monotonic() < deadline:
        if c.nodes[i].proc is None:
            return "exited"
        if target is None:
            ld = c.leader(0.5)
            if ld is not None and ld != i:
                d = c.describe(ld, 0.5)
                if d and isinstance(d.get("CommitIndex"), int):
                    target = d["CommitIndex"]
        d = c.describe(i, 0.5)
        if (target is not None and d and
                isinstance(d.get("AppliedIndex"), int) and
                d["AppliedIndex"] >= target):
            return "serving"
        time.sleep(0.1)
    return "exited" if c.nodes[i].proc is None else "running"


def replace_node(ctx, i):
    """What an operator does with a node whose damaged data dir it refuses:
    RemoveNode, wipe the data dir, start it empty with join = 1, AddNode
    (it then gets the leader's snapshot and log)."""
    return "%s; %s" % (remove_node(ctx, i), add_node(ctx, i))


def digest_check(ctx, i, timeout=20.0):
    """Poll node @i and the other members until @i reports an AppliedIndex
    some other member reported too: the same Digest there means it
    converged to the same state.  Every observation also goes to
    ctx.observed (the replicas checker sees divergence at any index).
    Returns {"verified_at", "ms"} | {"diverged": ...} | {"unverified"}."""
    c = ctx.cluster
    t0 = time.monotonic()
    mine, theirs = {}, {}
    while time.monotonic() - t0 < timeout:
        others = [m for m in sorted(c.members) if m != i and
                  c.nodes[m].proc is not None]
        for m in [i] + others:
            d = c.describe(m, 0.5)
            if not d or not isinstance(d.get("AppliedIndex"), int) or \
                    not isinstance(d.get("Digest"), str):
                continue
            idx, dg = d["AppliedIndex"], d["Digest"]
            ctx.observe(m, idx, dg)
            (mine if m == i else theirs).setdefault(idx, {})[dg] = m
        common = sorted(set(mine) & set(theirs))
        for idx in common:
            if set(mine[idx]) != set(theirs[idx]):
                return {"diverged": {"index": idx, "node": mine[idx],
                                     "others": theirs[idx]}}
        if common:
            return {"verified_at": common[-1],
                    "ms": int((time.monotonic() - t0) * 1000)}
        time.sleep(0.02)
    return {"unverified": "no common AppliedIndex observed in %ss" %
            timeout}


class Corrupt(Fault):
    """Damage one file of a stopped follower (bit flips, or truncation of a
    segment or snapshot) and restart it.  The node must refuse to start or
    recover, never serve divergent data.  At heal the harness acts as an
    operator: a node that refused to start (exited, its last error line is
    recorded) is replaced (RemoveNode, wipe, join = 1, AddNode); then the
    node must report the same Digest as another member at a common
    AppliedIndex."""
    name = "corrupt"
    min_dur, max_dur = 5.0, 8.0

    def plan(self, rng):
        kinds = [k for k, w in CORRUPT_KINDS for _ in range(w)]
        return {"r": round(rng.random(), 6), "seed": rng.randrange(1 << 30),
                "kind": rng.choice(kinds), "truncate": rng.random() < 0.4}

    def start(self, ctx, params):
        c = ctx.cluster
        leader = c.leader()
        cands = [m for m in _running_members(ctx) if m != leader]
        t = _pick(cands, params["r"])
        c.kill(t)
        n = c.nodes[t]
        files = corruptible(n.data_dir)
        rng = random.Random(params["seed"])
        kind = params.get("kind", "state")
        if not files.get(kind):
            present = [k for k, _w in CORRUPT_KINDS if files[k]]
            kind = rng.choice(present) if present else None
        state = {"node": t, "kind": kind, "file": None}
        if kind is not None:
            rel = rng.choice(files[kind])
            victim = os.path.join(n.data_dir, rel)
            size = os.path.getsize(victim)
            state["file"] = rel
            if params.get("truncate") and kind in TRUNCATABLE:
                new = rng.randrange(size)
                os.truncate(victim, new)
                state["truncated"] = [size, new]
            else:
                flips = []
                with open(victim, "r+b") as fh:
                    for _ in range(rng.randint(1, 8)):
                        off = rng.randrange(size)
                        fh.seek(off)
                        old = fh.read(1)[0]
                        new = old ^ (1 << rng.randrange(8))
                        fh.seek(off)
                        fh.write(bytes([new]))
                        flips.append([off, old, new])
                state["flips"] = flips
            n.damaged.append(rel)
        n.corrupted = True
        c.start(t)
        return state

    def heal(self, ctx, state):
        c = ctx.cluster
        t = state["node"]
        res = {"outcome": settle(ctx, t)}
        if res["outcome"] == "exited":
            res["refusal"] = refused_start(ctx, t)
            res["replaced"] = replace_node(ctx, t)
        c.nodes[t].corrupted = False
        res["digest"] = digest_check(ctx, t)
        return res

    def healed(self, state, result):
        return [state["node"]]


FAULTS = {f.name: f for f in (
    PartitionOne(), IsolateLeader(), Bridge(), OneWay(), Loss(), Delay(),
    Kill(), KillLeader(), KillAll(), Pause(), PauseLeader(), Clock(),
    Membership(), Transfer(), DiskFull(), Corrupt())}
