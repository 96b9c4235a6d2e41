"""The faults.  Each has plan(rng) -> params (chosen at schedule time from
the seed), start(ctx, params) -> state (targets resolved now) and
heal(ctx, state) -> result.  States are JSON-serialisable and go to
nemesis.jsonl.  A state with "leader_fault": true marks a fault that took
the leader away (used for the failover-time measurement)."""

import errno
import os
import random
import threading
import time

from ..client import ApiError, TransportError


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


class PartitionOne(Fault):
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
class Kill(Fault):
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


class Pause(Fault):
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
        ctx.cluster.call_any("AddNode", {"NodeID": i,
                                         "RaftAddress": n.raft_addr,
                                         "APIAddress": n.api_addr},
                             timeout=timeout)
        res = "added"
    except (ApiError, TransportError, RuntimeError) as e:
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
        ctx.cluster.call_any("RemoveNode", {"NodeID": i}, timeout=timeout)
        res = "removed"
    except (ApiError, TransportError, RuntimeError) as e:
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
                except (ApiError, TransportError, RuntimeError) as e:
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


class DiskFull(Fault):
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


class Corrupt(Fault):
    """Flip bytes in one file of a stopped follower, restart it.  The raft
    metadata files (term and vote) are left alone: losing a vote breaks any
    Raft; everything else must be detected or survived.  A node that refuses
    to start is replaced (RemoveNode, wipe, join, AddNode) at heal."""
    name = "corrupt"
    min_dur, max_dur = 5.0, 8.0

    def plan(self, rng):
        return {"r": round(rng.random(), 6), "seed": rng.randrange(1 << 30)}

    def start(self, ctx, params):
        c = ctx.cluster
        leader = c.leader()
        cands = [m for m in _running_members(ctx) if m != leader]
        t = _pick(cands, params["r"])
        c.kill(t)
        n = c.nodes[t]
        files = []
        for root, _dirs, names in os.walk(n.data_dir):
            for f in names:
                p = os.path.join(root, f)
                if (f.startswith("metadata") or f == FILLER or
                        f.endswith(".lock") or os.path.getsize(p) == 0):
                    continue
                files.append(p)
        rng = random.Random(params["seed"])
        flips = []
        victim = None
        if files:
            victim = rng.choice(sorted(files))
            size = os.path.getsize(victim)
            with open(victim, "r+b") as fh:
                for _ in range(rng.randint(1, 8)):
                    off = rng.randrange(size)
                    fh.seek(off)
                    old = fh.read(1)[0]
                    new = old ^ (1 << rng.randrange(8))
                    fh.seek(off)
                    fh.write(bytes([new]))
                    flips.append([off, old, new])
        n.corrupted = True
        c.start(t)
        return {"node": t,
                "file": os.path.relpath(victim, n.data_dir) if victim
                else None, "flips": flips}

    def heal(self, ctx, state):
        c = ctx.cluster
        t = state["node"]
        time.sleep(1.0)
        if c.nodes[t].proc is not None:
            c.nodes[t].corrupted = False
            return "still running"
        res = remove_node(ctx, t)
        c.nodes[t].corrupted = False
        return "refused to start; replaced: %s; %s" % (res,
                                                         add_node(ctx, t))


FAULTS = {f.name: f for f in (
    PartitionOne(), IsolateLeader(), Bridge(), OneWay(), Loss(), Delay(),
    Kill(), KillLeader(), KillAll(), Pause(), PauseLeader(), Clock(),
    Membership(), Transfer(), DiskFull(), Corrupt())}
