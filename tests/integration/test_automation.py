"""Issue 5 automation on a real cluster: autoscaling reacting to metrics an
agent reports (a registered host places the machines), and a timer that
fires exactly once per due time across a kill -9 of the leader (the new
leader rebuilds the schedule from the replicated state)."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster  # noqa: E402

t = Y.TAP()
c = Cluster(3)
adm = c.client()


must = c.must


def wait_for(pred, deadline):
    end = time.time() + deadline
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return None


zone = must(*adm.call("CreateZone", {"Name": "z", "RequestToken": Y.token()}), "zone")["ZoneID"]
must(*adm.call("CreateStoragePool", {"ZoneID": zone, "SetType": "SSD", "Backend": "local",
                                      "Capacity": 100000, "RequestToken": Y.token()}), "pool")
must(*adm.call("CreateStoragePool", {"ZoneID": zone, "SetType": "Standard", "Backend": "local",
                                      "Capacity": 100000, "RequestToken": Y.token()}), "boot pool")
r = must(*adm.call("RegisterHost", {"ZoneID": zone, "CPU": 16, "Memory": 32768, "Name": "h1",
                                     "RequestToken": Y.token()}), "RegisterHost")
host = c.client(pub=r["PublicKey"], priv=r["PrivateKey"])
image = must(*adm.call("CreateImage", {"Name": "tiny", "Size": 1, "RequestToken": Y.token()}),
             "CreateImage")["ImageID"]
tid = must(*adm.call("CreateUser", {"UserEmail": "auto@ten.example", "PassWord": "password-auto",
                                     "RequestToken": Y.token()}), "CreateUser")["UserID"]
k = must(*adm.call("CreateAPIKey", {"UserID": tid, "RequestToken": Y.token()}), "CreateAPIKey")
ten = c.client(pub=k["PublicKey"], priv=k["PrivateKey"])

# The agent keeps its host Online.
stop = threading.Event()


def heartbeat():
    hb = c.client(pub=r["PublicKey"], priv=r["PrivateKey"])
    while not stop.is_set():
        try:
            hb.call("HostHeartbeat", {"RequestToken": Y.token()}, deadline=5.0)
        except Exception:
            pass
        stop.wait(2.0)


threading.Thread(target=heartbeat, daemon=True).start()
wait_for(lambda: adm.call("DescribeHost", {})[1].get("Infos", [{}])[0].get("State") == "Online", 10)

# ---- autoscaling ----------------------------------------------------------

rc, r = ten.call("CreateScalingGroup", {"Name": "web", "Min": 1, "Max": 2, "Desired": 1,
                                        "Cooldown": 2,
                                        "Template": {"ZoneID": zone, "ImageID": image, "CPU": 1,
                                                     "Memory": 512},
                                        "RequestToken": Y.token()})
t.ok(rc == 0 and r.get("ScalingGroupID"), "CreateScalingGroup", r)
gid = r.get("ScalingGroupID")
rc, r = ten.call("CreateScalingPolicy", {"ScalingGroupID": gid, "MetricName": "CPUUtilization",
                                         "Comparison": "GT", "Threshold": 80, "Adjustment": 1,
                                         "RequestToken": Y.token()})
t.ok(rc == 0 and r.get("ScalingPolicyID"), "CreateScalingPolicy", r)


def group():
    rc, r = ten.call("DescribeScalingGroup", {"ScalingGroupIDs": [gid]})
    return r["Infos"][0] if rc == 0 and r.get("Infos") else None


g = wait_for(lambda: (lambda g: g if g and len(g["VMIDs"]) == 1 else None)(group()), 15)
t.ok(g is not None, "the leader creates the group's first machine (Desired 1)", group())
vm1 = g["VMIDs"][0] if g else None
rc, r = ten.call("DescribeVMInstance", {"VMIDs": [vm1]})
t.ok(rc == 0 and r.get("TotalCount") == 1 and r["Infos"][0]["HostID"], "it is placed on the host", r)

# The agent reports a hot CPU until the group scales out.
deadline = time.time() + 30
scaled = None
while time.time() < deadline:
    rc, rr = host.call("ReportMetric", {"ResourceID": vm1, "MetricName": "CPUUtilization",
                                        "Value": 95, "RequestToken": Y.token()})
    if rc not in (0, Y.EEXIST):
        print("# ReportMetric: %s %s" % (rc, rr))
    g = group()
    if g and len(g["VMIDs"]) == 2:
        scaled = g
        break
    time.sleep(1.05)
t.ok(scaled is not None, "a hot CPU average scales the group out to 2 machines", group())
if scaled:
    types = [e["Type"] for e in scaled["Events"]]
    t.ok(types.count("Policy") == 1 and types.count("ScaleOut") == 2,
         "events: one policy step and two scale-outs", types)
rc, r = ten.call("DescribeMetric", {"ResourceID": vm1, "MetricName": "CPUUtilization"})
t.ok(rc == 0 and r["Infos"] and r["Infos"][0]["Values"][-1]["Value"] == 95,
     "DescribeMetric shows the reported samples", r)
rc, r = adm.call("CreateUser", {"UserEmail": "other@ten.example", "PassWord": "password-other",
                                "RequestToken": Y.token()})
k2 = must(*adm.call("CreateAPIKey", {"UserID": r["UserID"], "RequestToken": Y.token()}), "key")
other = c.client(pub=k2["PublicKey"], priv=k2["PrivateKey"])
rc, r = other.call("DescribeMetric", {"ResourceID": vm1})
t.ok(rc == Y.ENOTFOUND, "another tenant cannot read the machine's metrics", rc)
# Still hot, but at Max: no third machine, ever.
for vm in (scaled or {}).get("VMIDs", []):
    host.call("ReportMetric", {"ResourceID": vm, "MetricName": "CPUUtilization", "Value": 99,
                               "RequestToken": Y.token()})
time.sleep(3)
rc, r = ten.call("DescribeVMInstance", {})
t.ok(rc == 0 and r.get("TotalCount") == 2, "Max holds: exactly 2 machines", r.get("TotalCount"))
must(*ten.call("DeleteScalingGroup", {"ScalingGroupID": gid, "RequestToken": Y.token()}), "delete group")

# ---- a timer across a kill -9 of the leader ------------------------------

disk = must(*ten.call("CreateDisk", {"ZoneID": zone, "Size": 1, "SetType": "SSD",
                                     "RequestToken": Y.token()}), "CreateDisk")["DiskID"]
rc, r = ten.call("CreateTimer", {"Name": "snap", "Action": "CreateSnapshot", "Interval": 2,
                                 "ResourceIDs": [disk], "Params": {"Name": "auto"},
                                 "RequestToken": Y.token()})
t.ok(rc == 0 and r.get("TimerID"), "CreateTimer (CreateSnapshot every 2 s)", r)
timer = r.get("TimerID")
first = r.get("NextDue")
ok = wait_for(lambda: ten.call("DescribeTimer", {"TimerIDs": [timer]})[1]["Infos"][0]["FireCount"] >= 2, 15)
t.ok(ok, "the timer fires")
ld = c.leader()
c.kill(ld)
killed_at = int(time.time())
nl = c.leader(among=[n for n in (1, 2, 3) if n != ld], deadline=20)
t.ok(nl is not None and nl != ld, "a new leader after kill -9 of n%s" % ld, nl)
time.sleep(5)  # the new leader keeps firing from the replicated schedule
c.start(ld)
time.sleep(1)
rc, r = ten.call("DeleteTimer", {"TimerID": timer, "RequestToken": Y.token()})
t.ok(rc == 0, "DeleteTimer", r)
d = c.converged([1, 2, 3], deadline=30)
t.ok(d is not None, "replicas converge on one digest")

rc, r = ten.call("DescribeSnapshot", {"DiskID": disk, "Limit": 100})
snaps = r.get("TotalCount", -1)
fires = []
off = 0
while True:
    for _ in range(10):  # the restarted node may still be catching up
        rc, ol = adm.call("DescribeOperationLog", {"Action": "_TimerFire", "Limit": 100, "Offset": off})
        if rc == 0:
            break
        print("# DescribeOperationLog:", rc, ol)
        time.sleep(0.5)
    if rc != 0 or not ol.get("Infos"):
        break
    fires += [x for x in ol["Infos"] if x.get("ResourceID") == timer]
    off += 100
ok_dues = []
for x in fires:
    m = re.search(r"for due (\d+): (\d+) of", x.get("Message", ""))
    if x.get("RetCode") == 0 and m:
        ok_dues.append(int(m.group(1)))
dups = [x for x in fires if x.get("RetCode") == Y.EEXIST]
t.ok(len(ok_dues) >= 4, "the timer fired before and after the leader change (%d firings)" % len(ok_dues),
     ok_dues)
t.ok(len(ok_dues) == len(set(ok_dues)), "never twice for one due time", ok_dues)
t.ok(any(due > killed_at for due in ok_dues), "the new leader fired it", (killed_at, ok_dues))
t.ok(all((due - first) % 2 == 0 for due in ok_dues), "every firing is on the schedule", ok_dues)
t.ok(snaps == len(ok_dues), "one snapshot per firing (%d snapshots, %d firings, %d duplicate "
     "proposals refused)" % (snaps, len(ok_dues), len(dups)), (snaps, ok_dues))
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
stop.set()
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
