"""Machine operations on a real cluster, the executors simulated through the
API (RegisterHost / HostHeartbeat / WatchCommands / ReportState, as in
test_agent.py): ResetVMInstancePassword and ReinstallVMInstance of a
stopped machine (never of a running one; the password nowhere in results
or specs), MigrateVMInstance between two registered hosts (both hosts'
streams get the spec, capacity on both until the target reports,
completion and rollback), a machine whose host's lease ends shows Unknown
and comes back with the heartbeat, and the replicas agree (same digest)."""
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
SECRETS = ("first-secret-1", "reset-secret-2", "reinstall-secret-3")


must = c.must


def no_secret(obj):
    s = repr(obj)
    return not any(p in s for p in SECRETS) and "PwHash" not in s and "Salt" not in s


zone = must(*adm.call("CreateZone", {"Name": "z", "RequestToken": Y.token()}), "zone")["ZoneID"]
must(*adm.call("CreateStoragePool", {"ZoneID": zone, "SetType": "Standard", "Backend": "local",
                                     "Capacity": 100000, "RequestToken": Y.token()}), "pool")
img = must(*adm.call("CreateImage", {"Name": "a", "Size": 8, "RequestToken": Y.token()}),
           "image")["ImageID"]
img2 = must(*adm.call("CreateImage", {"Name": "b", "Size": 5, "RequestToken": Y.token()}),
            "image")["ImageID"]
arm = must(*adm.call("CreateImage", {"Name": "c", "Arch": "aarch64", "RequestToken": Y.token()}),
           "image")["ImageID"]

# Two hosts, each with its executor's credentials and stream.
hosts = []
ld = c.leader()
for i in range(2):
    r = must(*adm.call("RegisterHost", {"ZoneID": zone, "CPU": 8, "Memory": 16384,
                                         "Name": "h%d" % i, "RequestToken": Y.token()}),
             "RegisterHost")
    h = {"id": r["HostID"], "cmds": [], "err": []}
    h["c"] = c.client(pub=r["PublicKey"], priv=r["PrivateKey"])
    must(*h["c"].call("HostHeartbeat", {"RequestToken": Y.token()}), "HostHeartbeat")
    # one stream on the leader, one on a follower
    node = ld if i == 0 else [n for n in (1, 2, 3) if n != ld][0]
    pub, priv = r["PublicKey"], r["PrivateKey"]
    for _ in range(20):
        # a follower that has not applied the new host key yet answers 191
        # (streams are never forwarded): retry on a fresh connection
        h["w"] = Y.Conn(c.api(node), pub, priv)
        rc, r = h["w"].call("WatchCommands", {"FromIndex": 1})
        if rc != Y.EUNAVAIL:
            break
        h["w"].close()
        time.sleep(0.2)
    t.ok(rc == 0 and r.get("HostID") == h["id"], "WatchCommands for host %d" % i, r)
    hosts.append(h)


def collect(h):
    while True:
        try:
            m = h["w"].recv()
        except Exception as e:  # a decoding error must fail the test
            h["err"].append(repr(e))
            return
        if m is None:
            return
        if m[0] == 2 and m[1] == "WatchCommands":
            h["cmds"].append(m[2][0])


for h in hosts:
    threading.Thread(target=collect, args=(h,), daemon=True).start()
by_id = {h["id"]: h for h in hosts}


def spec_for(h, vm, gen, timeout=5.0):
    """The first spec of @vm on @h's stream with Generation >= @gen."""
    end = time.time() + timeout
    while time.time() < end:
        for x in list(h["cmds"]):
            if x.get("ResourceID") == vm and x["Spec"].get("Generation", 0) >= gen:
                return x["Spec"]
        time.sleep(0.05)
    return None


def vm_info(vm):
    r = must(*adm.call("DescribeVMInstance", {"VMIDs.0": vm}), "DescribeVMInstance")
    return r["Infos"][0]


def host_info(hid):
    return must(*adm.call("DescribeHost", {"HostIDs.0": hid}), "DescribeHost")["Infos"][0]


def report(h, vm, state, gen):
    return h["c"].call("ReportState", {"ResourceID": vm, "State": state, "Generation": gen,
                                       "RequestToken": Y.token()})


def wait_job(client, job, timeout=20):
    rc, r = client.call("WaitJob", {"JobID": job, "Timeout": timeout})
    return r["Info"]["State"] if rc == 0 else "rc=%s" % rc


def settle(vm):
    """The machine's host reports its desired state at its generation."""
    i = vm_info(vm)
    must(*report(by_id[i["HostID"]], vm, i["DesiredState"], i["Generation"]), "ReportState")


r = must(*adm.call("CreateUser", {"UserEmail": "ops@x.example", "PassWord": "password-ops",
                                   "RequestToken": Y.token()}), "CreateUser")
k = must(*adm.call("CreateAPIKey", {"UserID": r["UserID"], "RequestToken": Y.token()}), "key")
ten = c.client(pub=k["PublicKey"], priv=k["PrivateKey"])

r = must(*ten.call("CreateVMInstance", {"ZoneID": zone, "ImageID": img, "CPU": 2,
                                         "Memory": 2048, "Password": SECRETS[0],
                                         "RequestToken": Y.token()}), "CreateVMInstance")
vm, src = r["VMID"], by_id[r["HostID"]]
dst = [h for h in hosts if h is not src][0]
t.ok(spec_for(src, vm, 1) is not None, "the placed host streams the new machine")
settle(vm)

# ---- ResetVMInstancePassword ----
rc, r = ten.call("ResetVMInstancePassword", {"VMID": vm, "Password": SECRETS[1],
                                              "RequestToken": Y.token()})
t.ok(rc == Y.ESTATE, "password reset of a running machine: 162", (rc, r))
rc, r = ten.call("ResetVMInstancePassword", {"VMID": vm, "Password": "short",
                                              "RequestToken": Y.token()})
t.ok(rc == Y.EINVAL, "a password under 8 characters: 121", (rc, r))
must(*ten.call("StopVMInstance", {"VMID": vm, "RequestToken": Y.token()}), "Stop")
settle(vm)
r = must(*ten.call("ResetVMInstancePassword", {"VMID": vm, "Password": SECRETS[1],
                                                "RequestToken": Y.token()}), "Reset")
t.ok(r.get("State") == "ResettingPassword" and r.get("JobID"), "reset: a job, ResettingPassword", r)
job = r["JobID"]
info = vm_info(vm)
gen = info["Generation"]
t.ok(info.get("CredentialGeneration") == gen, "CredentialGeneration is the new generation", info)
spec = spec_for(src, vm, gen)
t.ok(spec is not None and spec.get("CredentialGeneration") == gen and
     spec.get("State") == "ResettingPassword", "the host streams the reset", spec)
t.ok(spec is not None and no_secret(spec) and no_secret(info), "no password in spec or Describe")
rc, r = ten.call("WaitJob", {"JobID": job, "Timeout": 0})
t.ok(rc == 0 and r["Info"]["State"] == "Running", "the job runs until the executor reports", r)
must(*report(src, vm, "Stopped", gen), "ReportState")
t.ok(wait_job(ten, job) == "Success", "reset job Success after the report")

# ---- ReinstallVMInstance ----
rc, r = ten.call("ReinstallVMInstance", {"VMID": vm, "ImageID": arm, "Password": SECRETS[2],
                                          "RequestToken": Y.token()})
t.ok(rc == Y.EINVAL, "an image of another architecture: 121", (rc, r))
r = must(*ten.call("ReinstallVMInstance", {"VMID": vm, "ImageID": img2, "Password": SECRETS[2],
                                            "RequestToken": Y.token()}), "Reinstall")
t.ok(r.get("State") == "Reinstalling" and r.get("ImageID") == img2, "reinstall: Reinstalling", r)
job = r["JobID"]
info = vm_info(vm)
gen = info["Generation"]
spec = spec_for(src, vm, gen)
t.ok(spec is not None and spec.get("ImageID") == img2 and spec.get("ReinstallGeneration") == gen,
     "the spec carries the new image and the reinstall generation", spec)
t.ok(spec is not None and no_secret(spec) and no_secret(info), "no password in spec or Describe")
must(*report(src, vm, "Stopped", gen), "ReportState")
t.ok(wait_job(ten, job) == "Success", "reinstall job Success after the report")
t.ok(vm_info(vm)["State"] == "Stopped", "the machine is Stopped again")
must(*ten.call("StartVMInstance", {"VMID": vm, "RequestToken": Y.token()}), "Start")
settle(vm)
rc, r = ten.call("ReinstallVMInstance", {"VMID": vm, "Password": SECRETS[2],
                                          "RequestToken": Y.token()})
t.ok(rc == Y.ESTATE, "reinstall of a running machine: 162", (rc, r))

# ---- MigrateVMInstance ----
rc, r = ten.call("MigrateVMInstance", {"VMID": vm, "RequestToken": Y.token()})
t.ok(rc == Y.EPERM, "MigrateVMInstance is the administrator's", rc)
rc, r = adm.call("MigrateVMInstance", {"VMID": vm, "TargetHostID": src["id"],
                                        "RequestToken": Y.token()})
t.ok(rc == Y.EINVAL, "to its own host: 121", (rc, r))
r = must(*adm.call("MigrateVMInstance", {"VMID": vm, "RequestToken": Y.token()}), "Migrate")
t.ok(r.get("HostID") == dst["id"] and r.get("MigrateFromHostID") == src["id"] and
     r.get("State") == "Migrating", "the scheduler picks the other host", r)
job = r["JobID"]
gen = vm_info(vm)["Generation"]
s1, s2 = spec_for(src, vm, gen), spec_for(dst, vm, gen)
t.ok(s1 is not None and s2 is not None and s1 == s2 and s1.get("HostID") == dst["id"] and
     s1.get("MigrateFromHostID") == src["id"], "both hosts stream the same migration spec",
     (s1, s2))
t.ok(host_info(src["id"])["UsedCPU"] == 2 and host_info(dst["id"])["UsedCPU"] == 2,
     "capacity held on both hosts while migrating")
rc, r = ten.call("StopVMInstance", {"VMID": vm, "RequestToken": Y.token()})
t.ok(rc == Y.ESTATE, "no stop while migrating: 162", (rc, r))
must(*report(dst, vm, "Running", gen), "ReportState (target)")
t.ok(wait_job(adm, job) == "Success", "migration job Success when the target reports")
info = vm_info(vm)
t.ok(info["HostID"] == dst["id"] and "MigrateFromHostID" not in info and
     info["State"] == "Running", "the machine runs on the target", info)
t.ok(host_info(src["id"])["UsedCPU"] == 0 and host_info(dst["id"])["UsedCPU"] == 2,
     "the source's capacity is released")
rc, r = report(src, vm, "Running", gen)
t.ok(rc == Y.EPERM, "the old host no longer reports on it", rc)

# Rollback: migrate back, the source (now dst) reports it still has it.
r = must(*adm.call("MigrateVMInstance", {"VMID": vm, "TargetHostID": src["id"],
                                          "RequestToken": Y.token()}), "Migrate back")
job = r["JobID"]
gen = vm_info(vm)["Generation"]
t.ok(spec_for(src, vm, gen) is not None and spec_for(dst, vm, gen) is not None,
     "both hosts stream the second migration")
must(*report(dst, vm, "Running", gen), "ReportState (source)")
t.ok(wait_job(adm, job) == "Failed", "a report from the source rolls the migration back")
info = vm_info(vm)
t.ok(info["HostID"] == dst["id"] and info["State"] == "Running" and
     "MigrateFromHostID" not in info, "the machine stays on its host", info)
t.ok(host_info(src["id"])["UsedCPU"] == 0 and host_info(src["id"])["VMCount"] == 0,
     "the target's capacity is released")

# A full target is refused (capacity re-checked when applied).
full = must(*adm.call("CreateVMInstance", {"ZoneID": zone, "ImageID": img, "CPU": 7,
                                            "Memory": 1024, "TenantID": info["TenantID"],
                                            "RequestToken": Y.token()}), "filler")
t.ok(full.get("HostID") == src["id"], "the filler lands on the empty host", full)
rc, r = adm.call("MigrateVMInstance", {"VMID": vm, "RequestToken": Y.token()})
t.ok(rc == Y.ECAPACITY, "no host with room: 172", (rc, r))

# ---- a host whose lease ends: its machines show Unknown, never Stopped ----
must(*adm.call("ModifyBillingConfig", {"HostLease": 3, "RequestToken": Y.token()}), "lease")
stop_beat = threading.Event()


def beat():
    while not stop_beat.is_set():
        src["c"].call("HostHeartbeat", {"RequestToken": Y.token()})
        time.sleep(0.5)


th = threading.Thread(target=beat, daemon=True)
th.start()
must(*dst["c"].call("HostHeartbeat", {"RequestToken": Y.token()}), "a last, short lease")
end = time.time() + 20
while time.time() < end and vm_info(vm)["State"] != "Unknown":
    time.sleep(0.2)
info = vm_info(vm)
t.ok(info["State"] == "Unknown" and info["ObservedState"] == "Unknown" and
     info["DesiredState"] == "Running", "the silent host's machine shows Unknown", info)
t.ok(host_info(dst["id"])["State"] == "Unknown" and host_info(src["id"])["State"] == "Online",
     "only the silent host is Unknown")
r = must(*dst["c"].call("HostHeartbeat", {"RequestToken": Y.token()}), "heartbeat")
info = vm_info(vm)
t.ok(info["State"] == "Running" and info["ObservedState"] == "Running",
     "the heartbeat gives the machine its state back", info)
stop_beat.set()
th.join(5)
must(*adm.call("ModifyBillingConfig", {"HostLease": 30, "RequestToken": Y.token()}), "lease")

d = c.converged([1, 2, 3], deadline=20)
t.ok(d is not None, "replicas converge on one digest")
t.ok(not hosts[0]["err"] and not hosts[1]["err"], "every notification decodes",
     hosts[0]["err"] + hosts[1]["err"])
t.ok(all(no_secret(x) for h in hosts for x in h["cmds"]), "no password in any streamed spec")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
