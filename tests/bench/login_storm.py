#!/usr/bin/python3
# Login storm: 16 threads of LoginByPassword on the leader while one
# client measures sequential write latency (yunhan bench). Usage:
#   login_storm.py CLUSTER_DIR BIN_DIR   (a cluster from `yunhan cluster up`)
import os, sys, threading, time, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y
D = sys.argv[1]; B = sys.argv[2]
env = {}
for line in open(D + "/env"):
    if line.startswith("export "):
        k, v = line[7:].strip().split("=", 1); env[k] = v.strip("'\"")
eps = env["YUNHAN_ENDPOINT"].split(",")
adm = Y.Client(env["YUNHAN_ENDPOINT"], env["YUNHAN_PUBLIC_KEY"], env["YUNHAN_PRIVATE_KEY"])
rc, r = adm.call("CreateUser", {"UserEmail": "storm@x.io", "PassWord": "password-storm", "RequestToken": Y.token()})
rc, d = adm.call("DescribeCluster")
leader_ep = d["LeaderAPIAddress"]
stop = time.time() + 8
n = [0]
def storm():
    c = Y.Conn(leader_ep)
    while time.time() < stop:
        c.call("LoginByPassword", {"UserEmail": "storm@x.io", "PassWord": "password-storm"}, auth=False)
        n[0] += 1
ths = [threading.Thread(target=storm) for _ in range(16)]
time.sleep(0.5)
for t in ths: t.start()
time.sleep(1)
e = dict(os.environ); e.update(env); e["YUNHAN_ENDPOINT"] = leader_ep
out = subprocess.run([B + "/yunhan", "bench", "--connections", "1", "--pipeline", "1", "--seconds", "5"], capture_output=True, text=True, env=e).stdout
for t in ths: t.join()
print([l for l in out.splitlines() if "latency" in l or "throughput" in l], "logins:", n[0])
