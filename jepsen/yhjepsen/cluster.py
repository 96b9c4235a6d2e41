"""A real yunhand cluster, one node per network namespace.

Run directory layout (all under RUN/):
  keys/admin.key       "PUBLIC PRIVATE" (random, generated per run)
  keys/cluster.secret
  conf/n<i>.conf       yunhand config ("key = value")
  data/n<i>/           data dir (a small tmpfs for the disk-full nemesis)
  logs/n<i>.log        stderr of every start of node i (appended)
  cwd/n<i>/            working directory (core files would land here)
  faketime/n<i>        libfaketime offset file (clock nemesis)
  nodes.jsonl          process events (start / exit, expected or not)

Processes are started as
  prlimit --core=... -- ip netns exec yhj-n<i> BIN/yunhand --config CONF
(prlimit and ip exec, so the Popen pid is yunhand's) and ended by that pid.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time

from . import netns
from .client import ApiError, Client, TransportError

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
CORE_LIMIT = 256 << 20


class ClusterError(Exception):
    pass


class Node:
    def __init__(self, cluster, i):
        self.c = cluster
        self.id = i
        self.name = "n%d" % i
        self.ip = netns.node_ip(i)
        self.api = (self.ip, netns.API_PORT)
        self.raft_addr = "%s:%d" % (self.ip, netns.RAFT_PORT)
        self.api_addr = "%s:%d" % (self.ip, netns.API_PORT)
        self.data_dir = os.path.join(cluster.run_dir, "data", self.name)
        self.conf = os.path.join(cluster.run_dir, "conf",
                                 self.name + ".conf")
        self.log = os.path.join(cluster.run_dir, "logs", self.name + ".log")
        self.cwd = os.path.join(cluster.run_dir, "cwd", self.name)
        self.faketime = os.path.join(cluster.run_dir, "faketime", self.name)
        self.proc = None
        self.last_rc = None  # status of its last exit on its own
        self.paused = False
        self.expect_exit = False
        self.join = False
        self.corrupted = False
        # Files the corrupt nemesis damaged in this data dir (until wiped):
        # only such a node may be replaced when it refuses to start.
        self.damaged = []
        self.removing = False  # RemoveNode sent: it may exit by itself
        self.tmpfs = False

    @property
    def running(self):
        return self.proc is not None


class Cluster:
    def __init__(self, run_dir, bin_dir, net, n_nodes, members, log,
                 snapshot_threshold=256, snapshot_trailing=64,
                 election_timeout=None, heartbeat_timeout=None,
                 log_level="info", faketime=False, tmpfs_mb=0, t0_ns=None):
        """@election_timeout/@heartbeat_timeout None: yunhand's defaults
        (cluster/node.c cluster_config_defaults), as in production."""
        self.run_dir = run_dir
        self.yunhand = os.path.join(bin_dir, "yunhand")
        self.net = net
        self.log = log
        self.opts = {"snapshot-threshold": snapshot_threshold,
                     "snapshot-trailing": snapshot_trailing,
                     "election-timeout": election_timeout,
                     "heartbeat-timeout": heartbeat_timeout,
                     "log-level": log_level}
        self.faketime = faketime
        self.tmpfs_mb = tmpfs_mb
        self.nodes = {i: Node(self, i) for i in range(1, n_nodes + 1)}
        self.initial = list(members)
        self.members = set(members)  # raft voters as far as we know
        self.lock = threading.RLock()
        # Same time base as the histories and nemesis.jsonl.
        self.t0 = time.monotonic_ns() if t0_ns is None else t0_ns
        for d in ("keys", "conf", "data", "logs", "cwd", "faketime"):
            os.makedirs(os.path.join(run_dir, d), exist_ok=True)
        self.events_fh = open(os.path.join(run_dir, "nodes.jsonl"), "a")
        self.public_key = "yhjpub" + secrets.token_hex(16)
        self.private_key = secrets.token_hex(32)
        self.admin_key_file = os.path.join(run_dir, "keys", "admin.key")
        self.secret_file = os.path.join(run_dir, "keys", "cluster.secret")
        with open(self.admin_key_file, "w") as fh:
            fh.write("%s %s\n" % (self.public_key, self.private_key))
        with open(self.secret_file, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        os.chmod(self.admin_key_file, 0o600)
        os.chmod(self.secret_file, 0o600)
        for n in self.nodes.values():
            os.makedirs(n.data_dir, exist_ok=True)
            os.makedirs(n.cwd, exist_ok=True)
            with open(n.faketime, "w") as fh:
                fh.write("+0\n")
            if tmpfs_mb:
                netns.run(["mount", "-t", "tmpfs", "-o",
                           "size=%dm,mode=0700" % tmpfs_mb,
                           netns.TMPFS_SOURCE, n.data_dir])
                n.tmpfs = True
        self.stop_monitor = threading.Event()
        self.monitor = threading.Thread(target=self._monitor, daemon=True,
                                        name="node-monitor")
        self.monitor.start()

    # -- bookkeeping --
    def now(self):
        return time.monotonic_ns() - self.t0

    def event(self, **kw):
        kw["time"] = self.now()
        with self.lock:
            self.events_fh.write(json.dumps(kw, sort_keys=True) + "\n")
            self.events_fh.flush()

    def _monitor(self):
        while not self.stop_monitor.wait(0.1):
            with self.lock:
                for n in self.nodes.values():
                    if n.proc is None or n.expect_exit:
                        continue
                    rc = n.proc.poll()
                    if rc is not None:
                        self.log("%s exited on its own: %s" % (n.name, rc))
                        self.event(node=n.name, event="exit", pid=n.proc.pid,
                                   returncode=rc,
                                   expected=(rc == 0 and n.removing),
                                   removing=n.removing,
                                   corrupted=n.corrupted)
                        n.last_rc = rc
                        n.proc = None
                        n.paused = False

    # -- configuration --
    def write_conf(self, n, join):
        lines = ["id = %d" % n.id, "data-dir = %s" % n.data_dir,
                 "raft-addr = %s" % n.raft_addr,
                 "api-addr = %s" % n.api_addr,
                 "admin-key-file = %s" % self.admin_key_file,
                 "cluster-secret-file = %s" % self.secret_file]
        peers = sorted(set(self.initial) | ({n.id} if join else set()))
        for p in peers:
            pn = self.nodes[p]
            lines.append("peer = %d,%s,%s" % (p, pn.raft_addr, pn.api_addr))
        for k, v in self.opts.items():
            if v is not None:
                lines.append("%s = %s" % (k, v))
        if join:
            lines.append("join = 1")
        with open(n.conf, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    # -- processes --
    def start(self, i, join=None):
        n = self.nodes[i]
        with self.lock:
            if n.proc is not None:
                return
            if join is not None:
                n.join = join
            self.write_conf(n, n.join)
            env = dict(os.environ)
            if self.faketime:
                env.update({"LD_PRELOAD": FAKETIME_LIB,
                            "FAKETIME_TIMESTAMP_FILE": n.faketime,
                            "FAKETIME_CACHE_DURATION": "1",
                            "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
            argv = (["prlimit", "--core=%d" % CORE_LIMIT, "--"] +
                    self.net.exec_argv(i, [self.yunhand, "--config",
                                           n.conf]))
            logfh = open(n.log, "ab")
            # The wall clock too: node logs are in wall time, histories
            # and nemesis.jsonl in ns since the run's start.
            wall = time.time()
            logfh.write(b"==== harness: start %s at +%.3fs (wall %s.%03d)\n"
                        % (n.name.encode(), self.now() / 1e9,
                           time.strftime("%H:%M:%S",
                                         time.gmtime(wall)).encode(),
                           int(wall * 1000) % 1000))
            logfh.flush()
            try:
                n.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=logfh,
                    stderr=subprocess.STDOUT, cwd=n.cwd, env=env,
                    start_new_session=True, close_fds=True)
            finally:
                logfh.close()
            n.paused = False
            n.expect_exit = False
            n.removing = False
            self.event(node=n.name, event="start", pid=n.proc.pid,
                       join=n.join, corrupted=n.corrupted)

    def _reap(self, n, sig_desc, graceful, timeout):
        try:
            rc = n.proc.wait(timeout)
            extra = {}
        except subprocess.TimeoutExpired:
            n.proc.kill()
            rc = n.proc.wait(10)
            extra = {"stop_timeout": timeout}
        self.event(node=n.name, event="exit", pid=n.proc.pid, returncode=rc,
                   expected=True, graceful=graceful, signal=sig_desc,
                   **extra)
        n.proc = None
        n.paused = False
        return rc

    def kill(self, i):
        n = self.nodes[i]
        with self.lock:
            if n.proc is None:
                return None
            n.expect_exit = True
            try:
                n.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            return self._reap(n, "SIGKILL", False, 10)

    def stop(self, i, timeout=10):
        n = self.nodes[i]
        with self.lock:
            if n.proc is None:
                return None
            n.expect_exit = True
            try:
                if n.paused:
                    n.proc.send_signal(signal.SIGCONT)
                n.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        return self._reap(n, "SIGTERM", True, timeout)

    def pause(self, i):
        n = self.nodes[i]
        with self.lock:
            if n.proc is None or n.paused:
                return False
            n.proc.send_signal(signal.SIGSTOP)
            n.paused = True
            return True

    def resume(self, i):
        n = self.nodes[i]
        with self.lock:
            if n.proc is None or not n.paused:
                return False
            n.proc.send_signal(signal.SIGCONT)
            n.paused = False
            return True

    def set_clock(self, i, offset_s):
        """libfaketime offset for node i (wall clock only)."""
        n = self.nodes[i]
        tmp = n.faketime + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%+ds\n" % int(offset_s) if int(offset_s) else "+0\n")
        os.replace(tmp, n.faketime)

    def log_since_start(self, i):
        """The node's log since the harness last started it."""
        n = self.nodes[i]
        try:
            with open(n.log, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        k = text.rfind("==== harness: start %s " % n.name)
        return text[k:] if k >= 0 else text

    def wipe(self, i):
        n = self.nodes[i]
        n.damaged = []
        for name in os.listdir(n.data_dir):
            p = os.path.join(n.data_dir, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)

    def shutdown(self):
        """Stop every node gracefully, then stop the monitor and unmount."""
        for i in self.nodes:
            if self.nodes[i].proc is not None:
                self.stop(i)
        self.stop_monitor.set()
        self.monitor.join(5)
        for n in self.nodes.values():
            if n.tmpfs:
                netns.run(["umount", "-l", n.data_dir], check=False)
                n.tmpfs = False
        self.events_fh.close()

    def emergency_kill(self):
        for n in self.nodes.values():
            if n.proc is not None:
                n.expect_exit = True
                try:
                    n.proc.kill()
                    n.proc.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    pass

    # -- API --
    def client(self, i, timeout=5.0, auth=True):
        n = self.nodes[i]
        if auth:
            return Client(n.ip, netns.API_PORT, self.public_key,
                          self.private_key, timeout=timeout,
                          connect_timeout=min(2.0, timeout))
        return Client(n.ip, netns.API_PORT, timeout=timeout,
                      connect_timeout=min(2.0, timeout))

    def describe(self, i, timeout=1.0):
        c = self.client(i, timeout, auth=False)
        try:
            return c.call("DescribeCluster", {})
        except (ApiError, TransportError):
            return None
        finally:
            c.close()

    def voters(self, timeout=2.0):
        """Voter ids per the leader's own DescribeCluster, or None."""
        ld = self.leader(timeout)
        if ld is None:
            return None
        d = self.describe(ld, timeout)
        if not d or not isinstance(d.get("Nodes"), list):
            return None
        return sorted(n.get("NodeID") for n in d["Nodes"]
                      if n.get("Role", "voter") == "voter")

    def running_ids(self):
        return [i for i, n in self.nodes.items()
                if n.proc is not None and not n.paused]

    def leader(self, timeout=1.0):
        """Node id that a running node reports as leader (self-reported
        leader with the highest term wins), or None."""
        best = None
        for i in self.running_ids():
            d = self.describe(i, timeout)
            if not d:
                continue
            if d.get("State") == "leader":
                t = d.get("Term", 0)
                if best is None or t > best[0]:
                    best = (t, d.get("NodeID", i))
        return best[1] if best else None

    def wait_leader(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(n.proc is not None for n in self.nodes.values()):
                return None  # every node exited: no point waiting
            ld = self.leader()
            if ld is not None:
                return ld
            time.sleep(0.2)
        return None

    def call_any(self, method, req, timeout=30.0, prefer=None, op_to=3.0,
                 exclude=()):
        """Call on any running node (not in @exclude) until one answers
        with a result or a definite error; returns the result map, raises
        the last error."""
        deadline = time.monotonic() + timeout
        last = None
        order = list(prefer or []) + [i for i in sorted(self.nodes)
                                      if i not in (prefer or [])]
        order = [i for i in order if i not in exclude]
        k = 0
        while time.monotonic() < deadline:
            ids = [i for i in order if i in self.running_ids()]
            if not ids:
                time.sleep(0.2)
                continue
            i = ids[k % len(ids)]
            k += 1
            c = self.client(i, timeout=min(op_to, max(
                0.1, deadline - time.monotonic())))
            try:
                return c.call(method, req)
            except ApiError as e:
                last = e
                if e.definite():
                    raise
            except TransportError as e:
                last = e
            finally:
                c.close()
            time.sleep(0.2)
        raise last or ClusterError("%s: no node answered" % method)

    def wait_ready(self, timeout=40.0):
        """A leader exists and the admin key works (bootstrap applied)."""
        deadline = time.monotonic() + timeout
        if self.wait_leader(timeout) is None:
            dead = [n.name for n in self.nodes.values()
                    if n.id in self.members and n.proc is None]
            raise ClusterError("no leader within %ss%s" % (
                timeout, " (exited: %s)" % ",".join(dead) if dead else ""))
        while time.monotonic() < deadline:
            try:
                self.call_any("DescribeUser", {"Limit": 1},
                              timeout=max(1, deadline - time.monotonic()))
                return
            except ApiError as e:
                if e.retcode != 130:
                    raise ClusterError("admin call failed: %s" % e)
            except (TransportError, ClusterError):
                pass
            time.sleep(0.3)
        raise ClusterError("admin key not usable within %ss" % timeout)
