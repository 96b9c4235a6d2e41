"""What a host hears on WatchCommands when billing, not a user, ends a
resource: a machine purged by the billing timer (expiry -> _BillStop ->
_Recycle -> _Purge) gives its host the same tombstones (the machine, its
boot disk, the boot disk's snapshot) as one purged by PurgeResource; a
prepaid data disk attached to a running machine is never recycled
attached: billing asks the host to detach it (_BillDetach, on the stream),
and recycles it only after the host reported Detached."""
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


def must(rc, r, what):
    if rc != 0:
        print("# %s: %s %s" % (what, rc, r))
        c.dump_logs()
        sys.exit(1)
    return r


r = must(*adm.call("CreateZone", {"Name": "z1", "RequestToken": Y.token()}), "CreateZone")
zone = r["ZoneID"]
must(*adm.call("CreateStoragePool", {"ZoneID": zone, "SetType": "Standard", "Backend": "local",
                                      "Capacity": 10000, "RequestToken": Y.token()}), "pool")
# a month of 6 s, stopped 1 s after, recycled 2 s later, purged 2 s later;
# no Dynamic charges during the test
must(*adm.call("ModifyBillingConfig", {"Period": 3600, "MonthLength": 6, "GracePeriod": 1,
                                        "RecycleAfter": 2, "Retention": 2, "HostLease": 100000,
                                        "RequestToken": Y.token()}), "ModifyBillingConfig")
r = must(*adm.call("RegisterHost", {"ZoneID": zone, "CPU": 16, "Memory": 32768, "Name": "h1",
                                     "RequestToken": Y.token()}), "RegisterHost")
host, hpub, hpriv = r["HostID"], r["PublicKey"], r["PrivateKey"]
hc = c.client(pub=hpub, priv=hpriv)
must(*hc.call("HostHeartbeat", {"RequestToken": Y.token()}), "HostHeartbeat")
image = must(*adm.call("CreateImage", {"Name": "tiny", "Size": 1, "RequestToken": Y.token()}),
             "CreateImage")["ImageID"]
tenant = must(*adm.call("CreateUser", {"UserEmail": "bill@agent.example",
                                        "PassWord": "password-bill", "RequestToken": Y.token()}),
              "CreateUser")["UserID"]
must(*adm.call("Recharge", {"UserID": tenant, "Amount": 100000, "FromType": "Bank",
                            "SerialNo": "s1", "RequestToken": Y.token()}), "Recharge")
k = must(*adm.call("CreateAPIKey", {"UserID": tenant, "RequestToken": Y.token()}), "key")
ten = c.client(pub=k["PublicKey"], priv=k["PrivateKey"])

w = Y.Conn(c.api(c.leader()), hpub, hpriv)
rc, r = w.call("WatchCommands", {"FromIndex": 1})
t.ok(rc == 0, "WatchCommands accepted for the host", r)
cmds = []
lock = threading.Lock()
collect_err = []


def collect():
    while True:
        try:
            m = w.recv()
        except Exception as e:
            collect_err.append(repr(e))
            return
        if m is None:
            return
        if m[0] == 2 and m[1] == "WatchCommands":
            with lock:
                cmds.append(m[2][0])


threading.Thread(target=collect, daemon=True).start()


def snapshot():
    with lock:
        return list(cmds)


def wait_for(pred, secs=20.0):
    end = time.time() + secs
    while time.time() < end:
        x = pred()
        if x:
            return x
        time.sleep(0.05)
    return pred()


def spec_of(rid, pred=lambda s: True):
    lst = [x for x in snapshot() if x.get("ResourceID") == rid and pred(x["Spec"])]
    return lst[-1] if lst else None


def report(rid, state, gen):
    return hc.call("ReportState", {"ResourceID": rid, "State": state, "Generation": gen,
                                   "RequestToken": Y.token()})


def machine(ct):
    r = must(*ten.call("CreateVMInstance", {"ZoneID": zone, "ImageID": image, "CPU": 1,
                                            "Memory": 1024, "ChargeType": ct,
                                            "RequestToken": Y.token()}), "CreateVMInstance")
    vm, boot = r["VMID"], r["BootDiskID"]
    x = wait_for(lambda: spec_of(vm))
    must(*report(vm, "Running", x["Spec"]["Generation"]), "report Running")
    snap = must(*ten.call("CreateSnapshot", {"DiskID": boot, "RequestToken": Y.token()}),
                "CreateSnapshot")["SnapshotID"]
    return vm, boot, snap


def tombstones(ids):
    """{ResourceID: (ResourceType, HostID, Action)} of the tombstones for @ids."""
    out = {}
    for x in snapshot():
        s = x["Spec"]
        if x.get("ResourceID") in ids and s.get("DesiredState") == "Deleted":
            out[x["ResourceID"]] = (s.get("ResourceType"), s.get("HostID"), x.get("Action"))
    return out


# by hand: a Dynamic machine deleted and purged by its tenant
uvm, uboot, usnap = machine("Dynamic")
must(*ten.call("DeleteVMInstance", {"VMID": uvm, "RequestToken": Y.token()}), "DeleteVMInstance")
must(*ten.call("PurgeResource", {"ResourceID": uvm, "RequestToken": Y.token()}), "PurgeResource")
user = wait_for(lambda: len(tombstones((uvm, uboot, usnap))) == 3 and
                tombstones((uvm, uboot, usnap)), 10)
t.ok(user and {v[:2] for v in user.values()} == {("VM", host), ("Disk", host), ("Snapshot", host)},
     "PurgeResource: tombstones for the machine, its boot disk and its snapshot", user)

# by the timer: a prepaid machine with an attached prepaid data disk
tvm, tboot, tsnap = machine("Month")
disk = must(*ten.call("CreateDisk", {"ZoneID": zone, "Size": 5, "ChargeType": "Month",
                                     "RequestToken": Y.token()}), "CreateDisk")["DiskID"]
must(*ten.call("AttachDisk", {"DiskID": disk, "VMID": tvm, "RequestToken": Y.token()}),
     "AttachDisk")
x = wait_for(lambda: spec_of(disk, lambda s: s.get("DesiredAttach") == "Attached"))
must(*report(disk, "Attached", x["Spec"]["Generation"]), "report Attached")

# the executor: stops what billing stops, detaches what billing detaches
done = {}
end = time.time() + 60
while time.time() < end and len(tombstones((tvm, tboot, tsnap))) < 3:
    s = spec_of(tvm, lambda s: s.get("DesiredState") == "Stopped")
    if s and "stop" not in done:
        done["stop"] = report(tvm, "Stopped", s["Spec"]["Generation"])
    s = spec_of(disk, lambda s: s.get("DesiredAttach") == "Detached")
    if s and "detach" not in done:
        done["detach_action"] = s.get("Action")
        rc, r = ten.call("DescribeRecycledResource", {"ResourceIDs.0": disk})
        done["recycled_before_detach"] = rc == 0 and r.get("TotalCount") == 1
        done["detach"] = report(disk, "Detached", s["Spec"]["Generation"])
    time.sleep(0.1)
timer = tombstones((tvm, tboot, tsnap))
t.ok(done.get("stop", (None,))[0] == 0, "billing stopped the machine (host reported Stopped)",
     done)
t.ok(done.get("detach_action") == "_BillDetach" and done.get("detach", (None,))[0] == 0,
     "billing asked the host to detach the attached data disk (_BillDetach on the stream)", done)
t.ok(done.get("recycled_before_detach") is False, "the disk was not recycled while attached",
     done)
t.ok(timer and {v[:2] for v in timer.values()} == {v[:2] for v in user.values()} and
     all(v[2] == "_Purge" for v in timer.values()),
     "_Purge: the same tombstones as PurgeResource", (timer, user))
rc, r = adm.call("DescribeOperationLog", {"ResourceID": disk, "RetCode": 0, "Limit": 100})
acts = [i["Action"] for i in sorted(r.get("Infos", []), key=lambda i: i["Index"])]
steps = [a for a in acts if a in ("_BillStop", "_BillDetach", "ReportState", "_Recycle", "_Purge")]
t.ok(rc == 0 and steps[-5:] == ["_BillStop", "_BillDetach", "ReportState", "_Recycle", "_Purge"]
     if "_Purge" in steps else
     rc == 0 and steps[-4:] == ["_BillStop", "_BillDetach", "ReportState", "_Recycle"],
     "the disk's steps are commands in the operation log, detach before recycle", acts)
t.ok(not collect_err, "every WatchCommands notification decodes", collect_err)
w.close()
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
