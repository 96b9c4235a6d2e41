"""Boot disks, DeleteImage and the billing stop of a machine with a running
job, through the API of a real 3-node cluster (the executor simulated with
RegisterHost / WatchCommands / ReportState, as in test_agent.py):

* CreateVMInstance makes a boot disk resource in a pool of its set type,
  counted in quotas and the pool, listed by DescribeDisk with its machine,
  streamed in the machine's spec (Disks, Boot true); it grows, snapshots
  and rolls back (machine stopped) like a disk, is never detached or
  deleted alone, follows its machine to the recycle bin, back and away,
  its snapshots with it (tombstones on the host's stream);
* DeleteImage is refused while a machine uses the image, by a tenant for a
  base image, and works for an unused custom image;
* a prepaid machine past its expiry is stopped by the leader: a job still
  running then ends Failed with a message, and the machine is recycled and
  purged with its boot disk;
* a machine's password reaches its host's stream only sealed
  (CredentialSealed), and the host's private key opens it."""
import hashlib
import hmac
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


must = c.must


call = Y.call


def one(cl, action, key, id_):
    r = must(*call(cl, action, **{key + ".0": id_}), action)
    return r["Infos"][0] if r["TotalCount"] == 1 and r["Infos"] else None


def quota_used(cl, typ):
    r = must(*call(cl, "DescribeQuota"), "DescribeQuota")
    for q in r["Infos"]:
        if q["ResourceType"] == typ:
            return q["Used"]
    return 0


def until(fn, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    return None


must(*call(adm, "ModifyBillingConfig", HostLease=100000), "lease")
zone = must(*call(adm, "CreateZone", Name="z"), "zone")["ZoneID"]
pool = must(*call(adm, "CreateStoragePool", ZoneID=zone, SetType="Standard", Backend="local",
                  Capacity=1000), "pool")["PoolID"]
r = must(*call(adm, "RegisterHost", ZoneID=zone, CPU=64, Memory=262144, Name="h1"), "host")
host, hpub, hpriv = r["HostID"], r["PublicKey"], r["PrivateKey"]
hc = c.client(pub=hpub, priv=hpriv)
must(*call(hc, "HostHeartbeat"), "heartbeat")
img = must(*call(adm, "CreateImage", Name="os", Size=5), "image")["ImageID"]

# the executor's stream
cmds, errs = [], []
for _ in range(20):
    w = Y.Conn(c.api(c.leader()), hpub, hpriv)
    rc, r = w.call("WatchCommands", {"FromIndex": 1})
    if rc != Y.EUNAVAIL:
        break
    w.close()
    time.sleep(0.2)
t.ok(rc == 0, "WatchCommands", r)


def collect():
    while True:
        try:
            m = w.recv()
        except Exception as e:  # a decoding error must fail the test
            errs.append(repr(e))
            return
        if m is None:
            return
        if m[0] == 2 and m[1] == "WatchCommands":
            cmds.append(m[2][0])


threading.Thread(target=collect, daemon=True).start()


def spec_of(rid, pred, timeout=10.0):
    def f():
        for x in list(cmds):
            if x.get("ResourceID") == rid and x.get("Spec") and pred(x["Spec"]):
                return x["Spec"]
        return None
    return until(f, timeout)


def report(rid, state, gen):
    return call(hc, "ReportState", ResourceID=rid, State=state, Generation=gen)


r = must(*call(adm, "CreateUser", UserEmail="boot@x.example", PassWord="password-boot"), "user")
tid = r["UserID"]
k = must(*call(adm, "CreateAPIKey", UserID=tid), "key")
ten = c.client(pub=k["PublicKey"], priv=k["PrivateKey"])
must(*call(adm, "Recharge", UserID=tid, Amount=100000, FromType="Bank", SerialNo="boot-1"),
     "recharge")

# ---- boot disks ----
r = must(*call(ten, "CreateVMInstance", ZoneID=zone, ImageID=img, CPU=1, Memory=1024,
               Name="web"), "CreateVMInstance")
vm, boot = r["VMID"], r.get("BootDiskID", "")
t.ok(boot.startswith("bsi-"), "CreateVMInstance answers a BootDiskID", r)
d = one(ten, "DescribeDisk", "DiskIDs", boot)
t.ok(d is not None and d.get("Boot") is True and d["VMID"] == vm and d["State"] == "InUse"
     and d["PoolID"] == pool and d["SetType"] == "Standard" and d["Size"] == 5
     and d["ImageID"] == img, "DescribeDisk shows the boot disk with its machine", d)
t.ok(one(ten, "DescribeVMInstance", "VMIDs", vm)["BootDiskID"] == boot,
     "the machine names its boot disk")
p = one(adm, "DescribeStoragePool", "PoolIDs", pool)
t.ok(p["Used"] == 5 and p["DiskCount"] == 1, "the pool counts it", p)
t.ok(quota_used(ten, "Disk") == 1 and quota_used(ten, "DiskGB:Standard") == 5,
     "the tenant's disk quotas count it")
gen = one(ten, "DescribeVMInstance", "VMIDs", vm)["Generation"]
s = spec_of(vm, lambda s: s.get("Generation", 0) >= gen)
t.ok(s is not None and any(x.get("DiskID") == boot and x.get("Boot") is True
                           and x.get("DesiredAttach") == "Attached" for x in s.get("Disks", [])),
     "the machine's spec on its host lists the boot disk (Boot true)", s)
rc, r = call(ten, "CreateVMInstance", ZoneID=zone, ImageID=img, CPU=1, Memory=1024,
             BootDiskSetType="HDD")
t.ok(rc == 172 and "HDD storage pool" in r.get("Message", ""),
     "no pool of the boot disk's set type: 172", (rc, r))
rc, r = call(ten, "DetachDisk", DiskID=boot)
t.ok(rc == 162 and "boot disk" in r.get("Message", ""), "DetachDisk of a boot disk: 162", r)
rc, r = call(ten, "DeleteDisk", DiskID=boot)
t.ok(rc == 162 and "boot disk" in r.get("Message", ""), "DeleteDisk of a boot disk: 162", r)
rc, r = call(ten, "ResizeDisk", DiskID=boot, Size=4)
t.ok(rc == 121, "a boot disk only grows", r)
rc, r = call(ten, "ResizeDisk", DiskID=boot, Size=12)
t.ok(rc == 0 and one(ten, "DescribeVMInstance", "VMIDs", vm)["BootDiskSpace"] == 12
     and one(ten, "DescribeDisk", "DiskIDs", boot)["Size"] == 12
     and one(adm, "DescribeStoragePool", "PoolIDs", pool)["Used"] == 12,
     "ResizeDisk grows the boot disk, the machine and the pool follow", r)
must(*report(vm, "Running", gen), "report Running")
snap = must(*call(ten, "CreateSnapshot", DiskID=boot), "CreateSnapshot")["SnapshotID"]
rc, r = call(ten, "RollbackSnapshot", SnapshotID=snap)
t.ok(rc == 162, "no rollback of a running machine's boot disk", r)
must(*call(ten, "StopVMInstance", VMID=vm), "stop")
must(*report(vm, "Stopped", one(ten, "DescribeVMInstance", "VMIDs", vm)["Generation"]),
     "report Stopped")
r = must(*call(ten, "RollbackSnapshot", SnapshotID=snap), "RollbackSnapshot")
dgen = one(ten, "DescribeDisk", "DiskIDs", boot)["Generation"]
s = spec_of(boot, lambda s: s.get("Generation", 0) >= dgen)
t.ok(s is not None and s.get("State") == "RollingBack", "the rollback reaches the host", s)
must(*report(boot, "Attached", dgen), "report Attached")
t.ok(must(*call(ten, "WaitJob", JobID=r["JobID"], Timeout=10), "WaitJob")["Info"]["State"]
     == "Success" and one(ten, "DescribeDisk", "DiskIDs", boot)["State"] == "InUse",
     "the rollback of a stopped machine's boot disk completes")

# ---- DeleteImage ----
rc, r = call(adm, "DeleteImage", ImageID=img)
t.ok(rc == 162 and vm in r.get("Message", ""), "DeleteImage of an image in use: 162", r)
rc, r = call(ten, "DeleteImage", ImageID=img)
t.ok(rc == 140, "a tenant cannot delete a base image", r)
cimg = must(*call(ten, "CreateCustomImage", VMID=vm, Name="mine"), "custom")["ImageID"]
rc, r = call(ten, "DeleteImage", ImageID=cimg)
t.ok(rc == 0 and must(*call(ten, "DescribeImage", **{"ImageIDs.0": cimg}), "img")["TotalCount"]
     == 0, "the tenant deletes its unused custom image", r)

# ---- with its machine: recycle bin, back, purge ----
must(*call(ten, "DeleteVMInstance", VMID=vm), "delete")
t.ok(one(ten, "DescribeDisk", "DiskIDs", boot) is None, "recycled with its machine")
rc, r = call(ten, "RecoverResource", ResourceID=boot)
t.ok(rc == 162 and "boot disk" in r.get("Message", ""), "no recovery of a boot disk alone", r)
must(*call(ten, "RecoverResource", ResourceID=vm), "recover")
t.ok(one(ten, "DescribeDisk", "DiskIDs", boot)["State"] == "InUse",
     "recovered with its machine")
must(*call(ten, "DeleteVMInstance", VMID=vm), "delete")
must(*call(ten, "PurgeResource", ResourceID=vm), "purge")
p = one(adm, "DescribeStoragePool", "PoolIDs", pool)
t.ok(one(adm, "DescribeDisk", "DiskIDs", boot) is None and p["Used"] == 0
     and p["DiskCount"] == 0 and quota_used(ten, "Disk") == 0,
     "purged with its machine: pool room and quota released", p)
t.ok(one(ten, "DescribeSnapshot", "SnapshotIDs", snap) is None
     and quota_used(ten, "Snapshot") == 0,
     "its snapshot is purged with it: gone, quota released")
ol = must(*call(adm, "DescribeOperationLog", Action="PurgeResource", ResourceID=snap),
          "oplog")
t.ok(ol["TotalCount"] == 1 and ol["Infos"][0]["ResourceID"] == vm
     and ol["Infos"][0].get("Purged") == [snap, boot] and ol["Infos"][0].get("Gone") == [host],
     "the purge's operation-log record lists the snapshot and the boot disk", ol)


def tombstone(rid, typ):
    for x in list(cmds):
        s = x.get("Spec") or {}
        if (x.get("ResourceID") == rid and x.get("Action") == "PurgeResource"
                and s.get("State") == "Deleted" and s.get("ResourceType") == typ
                and s.get("HostID") == host):
            return x
    return None


tv = until(lambda: tombstone(vm, "VM"))
ts = until(lambda: tombstone(snap, "Snapshot"))
tb = until(lambda: tombstone(boot, "Disk"))
t.ok(tv and ts and tb and tv["Index"] == ts["Index"] == tb["Index"],
     "the host gets tombstones for the machine, its boot disk and the snapshot "
     "(one index)", (tv, ts, tb))
# a stream resumed from before the purge (the backfill walk) gets them too
got = set()
if tv:
    w2 = Y.Conn(c.api(c.leader()), hpub, hpriv, timeout=5.0)
    rc2, r2 = w2.call("WatchCommands", {"FromIndex": tv["Index"]})
    try:
        while rc2 == 0 and len(got) < 3:
            m = w2.recv()
            if m is None:
                break
            if m[0] == 2 and m[1] == "WatchCommands" and m[2][0]["Index"] == tv["Index"]:
                got.add((m[2][0]["ResourceID"], m[2][0]["Spec"].get("ResourceType")))
    except OSError:
        pass
    w2.close()
t.ok(got == {(vm, "VM"), (boot, "Disk"), (snap, "Snapshot")},
     "a stream resumed from before the purge replays the three tombstones", got)
rc, r = call(adm, "DeleteImage", ImageID=img)
t.ok(rc == 0, "DeleteImage once no machine uses it", r)
rc, r = call(ten, "CreateVMInstance", ZoneID=zone, ImageID=img, CPU=1, Memory=1024)
t.ok(rc == 150, "a deleted image boots nothing", r)

# ---- the password, sealed to the host ----
PW = "integration-secret-pw-9"


def unseal(sd):
    k = hmac.new(hpriv.encode(), b"yunhan-psk-seal-v1\0pw:" + sd["Nonce"].encode(),
                 hashlib.sha256).digest()
    ct = bytes.fromhex(sd["Ciphertext"])
    if hmac.new(k, b"mac" + ct, hashlib.sha256).hexdigest() != sd["MAC"]:
        return None
    ks = b"".join(hmac.new(k, b"enc" + i.to_bytes(4, "big"), hashlib.sha256).digest()
                  for i in range((len(ct) + 31) // 32))
    return bytes(a ^ b for a, b in zip(ct, ks)).decode()


img3 = must(*call(adm, "CreateImage", Name="os3", Size=1), "image")["ImageID"]
r = must(*call(ten, "CreateVMInstance", ZoneID=zone, ImageID=img3, CPU=1, Memory=1024,
               Password=PW), "CreateVMInstance with a password")
vm3 = r["VMID"]
g3 = one(ten, "DescribeVMInstance", "VMIDs", vm3)["Generation"]
s = spec_of(vm3, lambda s: s.get("Generation", 0) >= g3)
sd = (s or {}).get("CredentialSealed") or {}
t.ok(sd.get("HostID") == host and sd.get("PublicKey") == hpub and sd.get("Generation") == g3
     and unseal(sd) == PW, "the host opens the sealed password with its private key", sd)
t.ok(all(PW not in repr(x) for x in cmds), "the password is in no streamed spec in clear")
ol = must(*call(adm, "DescribeOperationLog", ResourceID=vm3), "oplog")
t.ok(PW not in repr(ol), "nor in the operation log")
must(*report(vm3, "Running", g3), "report Running")
must(*call(ten, "DeleteVMInstance", VMID=vm3), "delete")
must(*call(ten, "PurgeResource", ResourceID=vm3), "purge")

# ---- billing stops an expired machine with a running job ----
img2 = must(*call(adm, "CreateImage", Name="os2", Size=2), "image")["ImageID"]
must(*call(adm, "ModifyPrice", Spec="Disk", ChargeType="Month", Price=10), "price")
must(*call(adm, "ModifyBillingConfig", MonthLength=4, GracePeriod=1, RecycleAfter=3,
           Retention=3), "billing config")
r = must(*call(ten, "CreateVMInstance", ZoneID=zone, ImageID=img2, CPU=1, Memory=1024,
               ChargeType="Month"), "CreateVMInstance Month")
vm2, boot2 = r["VMID"], r["BootDiskID"]
must(*report(vm2, "Running", one(ten, "DescribeVMInstance", "VMIDs", vm2)["Generation"]),
     "report Running")
job = must(*call(ten, "RestartVMInstance", VMID=vm2), "restart")["JobID"]
info = must(*call(ten, "WaitJob", JobID=job, Timeout=20), "WaitJob")["Info"]
t.ok(info["State"] == "Failed" and info.get("Message") == "stopped by billing (Expired)",
     "the expiry stop ends the running job Failed, saying why", info)
m = one(ten, "DescribeVMInstance", "VMIDs", vm2) or {}
t.ok(m.get("DesiredState") == "Stopped" and m.get("SuspendReason") == "Expired",
     "the machine is stopped for expiry", m)
gone = until(lambda: one(adm, "DescribeDisk", "DiskIDs", boot2) is None
             and must(*call(adm, "DescribeRecycledResource"), "bin")["TotalCount"] == 0
             and one(adm, "DescribeStoragePool", "PoolIDs", pool)["DiskCount"] == 0, 30)
t.ok(gone, "recycled and purged by the leader with its boot disk")

d = c.converged([1, 2, 3], deadline=20)
t.ok(d is not None, "replicas converge on one digest")
t.ok(not errs, "every notification decodes", errs)
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
