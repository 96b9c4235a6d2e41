"""Start and drive a local cluster through the real CLI (bin/yunhan cluster)
for integration tests. Everything lives in a temp dir that is removed (and
every process stopped by PID) at exit."""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import yhclient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("YH_BIN", os.path.join(ROOT, "bin"))
YUNHAN = os.path.join(BIN, "yunhan")


def _free(port):
    import socket
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def base_port():
    """A base whose API (base+1..) and raft (base+101..) ports are free:
    start from one derived from the PID so parallel suites spread out.
    Below Linux's ephemeral range (32768-60999): a port there can be taken
    by any outgoing connection while a node is down, and its restart then
    fails to listen (seen: "raft start: I/O error" in test_durability)."""
    if os.environ.get("YH_BASE_PORT"):
        return int(os.environ["YH_BASE_PORT"])
    start = os.getpid() % 220
    for i in range(220):
        base = 10000 + ((start + i) % 220) * 100
        if all(_free(base + d) for d in list(range(1, 8)) + list(range(101, 108))):
            return base
    raise RuntimeError("no free port range for a test cluster")


class Cluster:
    def __init__(self, nodes=3, extra=None, name="c", tmpfs=None):
        """tmpfs=(SUBDIR, MB): before the nodes start, mount a tmpfs of MB
        megabytes on DIR/n<i>/SUBDIR of every node (root only), unmounted
        by cleanup()."""
        self.tmp = tempfile.mkdtemp(prefix="yh-it-")
        self.dir = os.path.join(self.tmp, name)
        self.base = base_port()
        self.nodes = nodes
        self.mounts = []
        atexit.register(self.cleanup)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, lambda *_: sys.exit(130))
        if tmpfs:
            sub, mb = tmpfs
            for n in range(1, nodes + 1):
                path = os.path.join(self.dir, "n%d" % n, sub)
                os.makedirs(path, mode=0o700)
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % mb,
                                "yh-it", path], check=True, timeout=10)
                self.mounts.append(path)
        args = [YUNHAN, "cluster", "up", "--dir", self.dir, "--nodes", str(nodes),
                "--base-port", str(self.base)] + (extra or [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=90)
        if r.returncode != 0:
            sys.stdout.write(r.stdout + r.stderr)
            self.dump_logs()
            raise RuntimeError("cluster up failed")
        self.env = yhclient.env(os.path.join(self.dir, "env"))
        self.endpoints = self.env["YUNHAN_ENDPOINT"]
        self.pub = self.env["YUNHAN_PUBLIC_KEY"]
        self.priv = self.env["YUNHAN_PRIVATE_KEY"]

    def api(self, n):
        return "127.0.0.1:%d" % (self.base + n)

    def client(self, endpoints=None, pub=None, priv=None):
        return yhclient.Client(endpoints or self.endpoints, pub or self.pub, priv or self.priv)

    def cli(self, *args, check=True, timeout=60):
        r = subprocess.run([YUNHAN, "cluster"] + list(args) + ["--dir", self.dir],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("yunhan cluster %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def kill(self, n, sig="KILL"):
        return self.cli("kill", "--node", str(n), "--signal", sig)

    def start(self, n):
        return self.cli("start", "--node", str(n))

    def pid(self, n):
        try:
            with open(os.path.join(self.dir, "n%d.pid" % n)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def describe(self, n, timeout=3.0):
        try:
            c = yhclient.Conn(self.api(n), timeout=timeout)
            try:
                rc, res = c.call("DescribeCluster", {}, auth=False)
            finally:
                c.close()
            return res if rc == 0 else None
        except (OSError, ConnectionError):
            return None

    def leader(self, deadline=20.0, among=None):
        end = time.time() + deadline
        while time.time() < end:
            for n in among or range(1, self.nodes + 1):
                d = self.describe(n)
                if d and d.get("State") == "leader":
                    return n
            time.sleep(0.1)
        return None

    def converged(self, nodes, deadline=60.0):
        """Wait until all @nodes report the same AppliedIndex and Digest."""
        end = time.time() + deadline
        last = None
        while time.time() < end:
            ds = [self.describe(n) for n in nodes]
            if all(ds):
                idx = {d["AppliedIndex"] for d in ds}
                dig = {d["Digest"] for d in ds}
                last = [(n, d["AppliedIndex"], d["Digest"][:12]) for n, d in zip(nodes, ds)]
                if len(idx) == 1 and len(dig) == 1:
                    return ds[0]
            time.sleep(0.2)
        print("# not converged: %s" % last)
        return None

    def must(self, rc, r, what):
        """r when rc is 0; otherwise print it, dump the node logs and stop
        the test (a setup step every later check depends on)."""
        if rc != 0:
            print("# %s: %s %s" % (what, rc, r))
            self.dump_logs()
            raise SystemExit(1)
        return r

    def dump_logs(self, lines=30):
        for n in range(1, 8):
            p = os.path.join(self.dir, "n%d.log" % n)
            if os.path.exists(p):
                print("# --- n%d.log" % n)
                with open(p, errors="replace") as f:
                    for line in f.readlines()[-lines:]:
                        print("# " + line.rstrip())

    def scan_logs(self):
        """Sanitizer reports, assertion failures or crashes in node logs."""
        bad = []
        for n in range(1, 8):
            p = os.path.join(self.dir, "n%d.log" % n)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    for line in f:
                        if ("Sanitizer" in line or "runtime error" in line
                                or "Assertion" in line or "assertion" in line):
                            bad.append("n%d: %s" % (n, line.strip()))
        return bad

    def cleanup(self):
        if not os.path.isdir(self.tmp):
            return
        try:
            subprocess.run([YUNHAN, "cluster", "down", "--dir", self.dir],
                           capture_output=True, timeout=30)
        except Exception:
            pass
        for n in range(1, 8):  # belt and braces: by PID
            pid = self.pid(n)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for path in self.mounts:
            subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)
        self.mounts = []
        if os.environ.get("YH_KEEP"):
            print("# kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def jdump(x):
    return json.dumps(x, default=str)
