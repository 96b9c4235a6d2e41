"""Network namespaces for the harness.

Layout (everything named "yhj*", created and removed by the harness):
  root namespace   bridge yhj-br0 with 10.213.0.1/24 (the clients' side)
  yhj-n<i>         one namespace per node, veth yhj-v<i> (root, on the
                   bridge) <-> eth0 (inside) with 10.213.0.<10+i>/24
  filter chains    YHJ-PART (partitions) and YHJ-LOSS (random drop) hooked
                   into INPUT of every node namespace
  nat OUTPUT       in proxy mode, node-to-node TCP is DNATed to the
                   userspace proxy on 10.213.0.1 (see proxy.py)

The harness never touches addresses outside 10.213.0.0/24 and refuses to
start if anything else on the machine already uses that range.  Stale
resources of a crashed run are removed at start (under the global lock),
and a watchdog process removes them if the harness dies.
"""

import fcntl
import os
import signal
import subprocess
import time

PREFIX = "yhj"
BRIDGE = "yhj-br0"
NET = "10.213.0"
HOST_IP = NET + ".1"
TMPFS_SOURCE = "yhj-tmpfs"
LOCK_PATH = "/run/lock/yhj-jepsen.lock"
API_PORT = 7400
RAFT_PORT = 7500
CMD_TIMEOUT = 15


class NetError(Exception):
    pass


def ns_name(i):
    return "%s-n%d" % (PREFIX, i)


def node_ip(i):
    if not 1 <= i <= 9:
        raise ValueError("node ids 1..9")
    return "%s.%d" % (NET, 10 + i)


def run(cmd, timeout=CMD_TIMEOUT, check=True, input_=None):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, input=input_)
    except subprocess.TimeoutExpired:
        raise NetError("%s: timed out after %ss" % (" ".join(cmd), timeout))
    except OSError as e:
        raise NetError("%s: %s" % (" ".join(cmd), e))
    if check and p.returncode != 0:
        raise NetError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                            (p.stderr or p.stdout).strip()))
    return p


def environment_problem():
    """None if the harness can run here, else the reason."""
    if os.geteuid() != 0:
        return "not root"
    try:
        run(["ip", "netns", "list"], timeout=5)
    except NetError as e:
        return "ip netns unusable: %s" % e
    for tool in ("iptables", "prlimit"):
        try:
            run([tool, "--version"], timeout=5)
        except NetError as e:
            return "%s unusable: %s" % (tool, e)
    return None


class Lock:
    """Global lock: one harness at a time owns the yhj* resources."""

    def __init__(self, path=LOCK_PATH):
        self.path = path
        self.fd = None

    def acquire(self, wait_s=0):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise NetError("another harness run holds %s" %
                                   self.path)
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self.fd = fd
        return fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def list_namespaces():
    p = run(["ip", "netns", "list"], check=False)
    out = []
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX + "-"):
            out.append(name)
    return out


def list_links():
    p = run(["ip", "-o", "link", "show"], check=False)
    out = []
    for line in p.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        if name.startswith(PREFIX + "-"):
            out.append(name)
    return out


def list_tmpfs():
    out = []
    with open("/proc/mounts") as fh:
        for line in fh:
            f = line.split()
            if len(f) >= 3 and f[0] == TMPFS_SOURCE:
                out.append(f[1].replace("\\040", " "))
    return out


def ns_pids(ns):
    p = run(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def cleanup_stale(log=None):
    """Remove every yhj* namespace (killing the processes inside, which
    the harness started), link and tmpfs mount.  Returns what it removed."""
    removed = []
    for ns in list_namespaces():
        for pid in ns_pids(ns):
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
                removed.append("pid %d in %s" % (pid, ns))
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while ns_pids(ns) and time.monotonic() < deadline:
            time.sleep(0.05)
        run(["ip", "netns", "del", ns], check=False)
        removed.append("netns " + ns)
    for link in list_links():
        run(["ip", "link", "del", link], check=False)
        removed.append("link " + link)
    for mnt in list_tmpfs():
        run(["umount", "-l", mnt], check=False)
        removed.append("tmpfs " + mnt)
    if log and removed:
        log("cleaned up stale resources: %s" % ", ".join(removed))
    return removed


def range_in_use():
    """Addresses in 10.213.0.0/24 that are not ours, if any."""
    p = run(["ip", "-o", "-4", "addr", "show"], check=False)
    bad = []
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[3].startswith(NET + "."):
            if not f[1].startswith(PREFIX + "-"):
                bad.append("%s on %s" % (f[3], f[1]))
    p = run(["ip", "-4", "route", "show"], check=False)
    for line in p.stdout.splitlines():
        if line.startswith(NET + ".") and ("dev " + BRIDGE) not in line:
            bad.append("route " + line.strip())
    return bad


class Net:
    """The bridge and node namespaces for one run."""

    def __init__(self, n_nodes, log=None):
        self.n = n_nodes
        self.log = log or (lambda m: None)
        self.up = False
        self.proxy_ports = None  # {(src, dst, port): proxy port}

    def ns(self, i):
        return ns_name(i)

    def exec_argv(self, i, argv):
        return ["ip", "netns", "exec", ns_name(i)] + list(argv)

    def setup(self):
        cleanup_stale(self.log)
        bad = range_in_use()
        if bad:
            raise NetError("10.213.0.0/24 already in use: %s" %
                           "; ".join(bad))
        self.up = True
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "addr", "add", HOST_IP + "/24", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])
        for i in range(1, self.n + 1):
            ns = ns_name(i)
            veth = "%s-v%d" % (PREFIX, i)
            peer = "%s-p%d" % (PREFIX, i)
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name",
                 peer])
            run(["ip", "link", "set", peer, "netns", ns])
            run(["ip", "-n", ns, "link", "set", peer, "name", "eth0"])
            run(["ip", "-n", ns, "addr", "add", node_ip(i) + "/24", "dev",
                 "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
            for chain in ("YHJ-PART", "YHJ-LOSS"):
                self.ipt(i, ["-N", chain])
                self.ipt(i, ["-A", "INPUT", "-j", chain])
        self.wait_links()

    def wait_links(self, timeout=10):
        """Wait until every veth is forwarding (bridge port state)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = run(["ip", "-o", "link", "show", "master", BRIDGE],
                    check=False)
            up = sum(1 for line in p.stdout.splitlines()
                     if "state UP" in line)
            if up >= self.n:
                return
            time.sleep(0.1)
        raise NetError("bridge ports did not come up in %ss" % timeout)

    def teardown(self):
        if not self.up:
            return
        cleanup_stale(self.log)
        self.up = False

    def ipt(self, i, args, table=None, check=True):
        argv = ["iptables", "-w", "5"]
        if table:
            argv += ["-t", table]
        return run(self.exec_argv(i, argv + list(args)), check=check)

    # Partitions: drop packets from @src arriving at @dst.
    def cut(self, src, dst):
        self.ipt(dst, ["-A", "YHJ-PART", "-s", node_ip(src), "-j", "DROP"])

    def heal_partitions(self):
        for i in range(1, self.n + 1):
            self.ipt(i, ["-F", "YHJ-PART"], check=False)

    def set_loss(self, nodes, prob):
        for i in nodes:
            for j in nodes:
                if i != j:
                    self.ipt(i, ["-A", "YHJ-LOSS", "-s", node_ip(j), "-m",
                                 "statistic", "--mode", "random",
                                 "--probability", "%.3f" % prob, "-j",
                                 "DROP"])

    def heal_loss(self):
        for i in range(1, self.n + 1):
            self.ipt(i, ["-F", "YHJ-LOSS"], check=False)

    def enable_proxy(self, port_of):
        """DNAT node-to-node TCP to the proxy: @port_of(src, dst, port)."""
        self.proxy_ports = {}
        for i in range(1, self.n + 1):
            for j in range(1, self.n + 1):
                if i == j:
                    continue
                for port in (API_PORT, RAFT_PORT):
                    pp = port_of(i, j, port)
                    self.proxy_ports[(i, j, port)] = pp
                    self.ipt(i, ["-A", "OUTPUT", "-d", node_ip(j), "-p",
                                 "tcp", "--dport", str(port), "-j", "DNAT",
                                 "--to-destination",
                                 "%s:%d" % (HOST_IP, pp)], table="nat")
