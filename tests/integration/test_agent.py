"""The agents' contract on a real cluster: a host registers, heartbeats,
streams WatchCommands and reports state; WaitJob waits for the job; a
tenant's VM goes Creating -> Running as the executor reports."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import yhclient as Y  # noqa: E402
from yhcluster import Cluster  # noqa: E402

t = Y.TAP()
c = Cluster(3)
adm = c.client()


def ok(rc, r, what):
    if rc != 0:
        print("# %s: %s %s" % (what, rc, r))
    return rc == 0


rc, r = adm.call("CreateZone", {"Name": "z1", "RequestToken": Y.token()})
zone = r.get("ZoneID")
t.ok(ok(rc, r, "CreateZone") and zone, "CreateZone")
rc, r = adm.call("CreateStoragePool", {"ZoneID": zone, "SetType": "Standard", "Backend": "local",
                                        "Capacity": 10000, "RequestToken": Y.token()})
t.ok(ok(rc, r, "CreateStoragePool"), "a pool for the boot disks")
rc, r = adm.call("RegisterHost", {"ZoneID": zone, "CPU": 16, "Memory": 32768, "Name": "h1",
                                   "RequestToken": Y.token()})
t.ok(ok(rc, r, "RegisterHost") and r.get("PublicKey"), "RegisterHost returns host credentials")
host, hpub, hpriv = r.get("HostID"), r.get("PublicKey"), r.get("PrivateKey")
hc = c.client(pub=hpub, priv=hpriv)
rc, r = hc.call("HostHeartbeat", {"RequestToken": Y.token()})
t.ok(ok(rc, r, "HostHeartbeat") and r.get("State") == "Online", "the host heartbeats Online", r)
rc, r = adm.call("CreateImage", {"Name": "tiny", "Size": 1, "RequestToken": Y.token()})
image = r.get("ImageID")
t.ok(ok(rc, r, "CreateImage"), "CreateImage")

# Tenant with a key.
rc, r = adm.call("CreateUser", {"UserEmail": "vm@agent.example", "PassWord": "password-vm",
                                 "RequestToken": Y.token()})
tenant = r["UserID"]
rc, k = adm.call("CreateAPIKey", {"UserID": tenant, "RequestToken": Y.token()})
ten = c.client(pub=k["PublicKey"], priv=k["PrivateKey"])

# The host streams its commands (on a follower: any node serves it).
rc, r = ten.call("WatchCommands", {})
t.ok(rc == Y.EPERM, "WatchCommands refuses non-host credentials", rc)
ld = c.leader()
follower = [n for n in (1, 2, 3) if n != ld][0]
w = Y.Conn(c.api(follower), hpub, hpriv)
rc, r = w.call("WatchCommands", {"FromIndex": 1})
t.ok(rc == 0 and r.get("HostID") == host, "WatchCommands accepted for the host", r)
cmds = []
collect_err = []
def collect():
    while True:
        try:
            m = w.recv()
        except Exception as e:  # a decoding error must fail the test, not hang it
            collect_err.append(repr(e))
            return
        if m is None:
            return
        if m[0] == 2 and m[1] == "WatchCommands":
            cmds.append(m[2][0])
threading.Thread(target=collect, daemon=True).start()

rc, r = ten.call("CreateVMInstance", {"ZoneID": zone, "ImageID": image, "CPU": 2, "Memory": 1024,
                                       "Name": "vm1", "Password": "secret-pass-1",
                                       "RequestToken": Y.token()})
t.ok(ok(rc, r, "CreateVMInstance") and r.get("HostID") == host, "VM placed on the host", r)
vm, job = r.get("VMID"), r.get("JobID")

rc, r = ten.call("WaitJob", {"JobID": job, "Timeout": 1})
t.ok(rc == 0 and r.get("TimedOut") is True and r["Info"]["State"] == "Running",
     "WaitJob times out while the job runs", r)

end = time.time() + 5
while time.time() < end and not any(x.get("ResourceID") == vm for x in cmds):
    time.sleep(0.05)
spec = next((x["Spec"] for x in cmds if x.get("ResourceID") == vm), None)
t.ok(spec is not None, "the host received the VM's command on its stream", cmds[-3:])
if spec:
    t.ok(spec.get("DesiredState") == "Running" and spec.get("CPU") == 2 and "Generation" in spec,
         "the command carries the full desired spec and its generation", spec)
    t.ok(not any("Password" in key or "Salt" in key or "Hash" in key for key in spec),
         "no secret in the spec", list(spec))

# The executor reports; WaitJob (started before the report) returns.
res = {}
def waiter():
    res["r"] = ten.call("WaitJob", {"JobID": job, "Timeout": 20})
th = threading.Thread(target=waiter)
th.start()
time.sleep(0.5)
rc, r = hc.call("ReportState", {"ResourceID": vm, "State": "Running",
                                 "Generation": spec["Generation"] if spec else 0,
                                 "RequestToken": Y.token()})
t.ok(ok(rc, r, "ReportState"), "ReportState accepted", r)
th.join(25)
rc, r = res.get("r", (None, None))
t.ok(rc == 0 and r.get("TimedOut") is False and r["Info"]["State"] == "Success",
     "WaitJob returns when the executor reports", r)
rc, r = ten.call("DescribeVMInstance", {"VMIDs.0": vm})
t.ok(rc == 0 and r["Infos"][0]["State"] == "Running", "the VM shows Running", r)
rc, r = hc.call("ReportState", {"ResourceID": vm, "State": "Stopped", "Generation": 1,
                                 "RequestToken": Y.token()})
t.ok(rc == Y.ECONFLICT, "an older generation never overwrites newer state (160)", (rc, r))

# Stop: a new generation reaches the stream.
n0 = len(cmds)
rc, r = ten.call("StopVMInstance", {"VMID": vm, "RequestToken": Y.token()})
t.ok(rc == 0, "StopVMInstance", (rc, r))
def stopped():
    return [x for x in cmds[n0:] if x.get("ResourceID") == vm and
            x["Spec"].get("DesiredState") == "Stopped"]
end = time.time() + 5
while time.time() < end and not stopped():
    time.sleep(0.05)
new = stopped()
t.ok(new and new[-1]["Spec"]["DesiredState"] == "Stopped" and
     new[-1]["Spec"]["Generation"] > spec["Generation"], "StopVMInstance streams a newer generation",
     [(x["Index"], x["Action"], x["Spec"].get("DesiredState"), x["Spec"].get("Generation")) for x in cmds])

# Delete (recycle bin) then purge: the record is gone, and the host hears
# it on the live stream and on a backfill from before the purge.
rc, r = ten.call("DeleteVMInstance", {"VMID": vm, "RequestToken": Y.token()})
t.ok(rc == 0, "DeleteVMInstance (to the recycle bin)", (rc, r))
rc, r = ten.call("PurgeResource", {"ResourceID": vm, "RequestToken": Y.token()})
t.ok(rc == 0, "PurgeResource", (rc, r))
def gone(lst):
    return [x for x in lst if x.get("ResourceID") == vm and
            x["Spec"].get("DesiredState") == "Deleted"]
end = time.time() + 5
while time.time() < end and not gone(cmds):
    time.sleep(0.05)
g = gone(cmds)
t.ok(len(g) == 1 and g[0]["Spec"].get("HostID") == host and g[0]["Spec"].get("Generation") == g[0]["Index"],
     "the host's stream gets a tombstone for the purged machine", g or cmds[-3:])
w2 = Y.Conn(c.api(ld), hpub, hpriv)
rc, r = w2.call("WatchCommands", {"FromIndex": 1})
back = []
end = time.time() + 5
while time.time() < end and not gone(back):
    m = w2.recv()
    if m is None:
        break
    if m[0] == 2 and m[1] == "WatchCommands":
        back.append(m[2][0])
t.ok(rc == 0 and len(gone(back)) == 1, "a backfill from index 1 includes the tombstone", back[-3:])
w2.close()
t.ok(not collect_err, "every WatchCommands notification decodes", collect_err)
rc, r = ten.call("WaitJob", {"JobID": "job-nope"})
t.ok(rc == Y.ENOTFOUND, "WaitJob on an unknown job: 150", rc)
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
