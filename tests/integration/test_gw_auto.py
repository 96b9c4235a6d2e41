"""Issue 5 gaps on a real cluster: a NAT gateway's SNAT whitelist (machines
of the served subnets, validated, streamed to the gateway's host, dropped
when a machine is purged), an HTTPS vserver's certificate key reaching the
load balancer's host sealed to the host's key (never in clear), a scaling
group registering the machines it creates as backends of its vserver and
removing them when it scales in, scaling policies and groups modified and
deleted, and a timer disabled, enabled and re-scheduled with ModifyTimer."""
import hashlib
import hmac
import os
import struct
import subprocess
import sys
import tempfile
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


def wait_for(pred, deadline):
    end = time.time() + deadline
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    return None


def tenant(email):
    r = must(*call(adm, "CreateUser", UserEmail=email, PassWord="password-" + email), "CreateUser")
    k = must(*call(adm, "CreateAPIKey", UserID=r["UserID"]), "CreateAPIKey")
    return r["UserID"], c.client(pub=k["PublicKey"], priv=k["PrivateKey"])


zone = must(*call(adm, "CreateZone", Name="z"), "zone")["ZoneID"]
must(*call(adm, "CreateStoragePool", ZoneID=zone, SetType="SSD", Backend="local",
           Capacity=100000), "pool")
must(*call(adm, "CreateStoragePool", ZoneID=zone, SetType="Standard", Backend="local",
           Capacity=100000), "boot pool")
r = must(*call(adm, "RegisterHost", ZoneID=zone, CPU=64, Memory=262144, Name="h1"), "host")
host, hpub, hpriv = r["HostID"], r["PublicKey"], r["PrivateKey"]
must(*call(c.client(pub=hpub, priv=hpriv), "HostHeartbeat"), "heartbeat")
stop = threading.Event()


def beat():
    bc = c.client(pub=hpub, priv=hpriv)
    while not stop.wait(2.0):
        try:
            bc.call("HostHeartbeat", {"RequestToken": Y.token()})
        except Exception:
            pass


threading.Thread(target=beat, daemon=True).start()
image = must(*call(adm, "CreateImage", Name="tiny", Size=1), "image")["ImageID"]
must(*call(adm, "CreateEIPPool", Name="p", Network="198.51.100.0/24", OperatorName="Bgp"), "eip pool")
a_id, a = tenant("a@gaps.example")
b_id, b = tenant("b@gaps.example")

va = must(*call(a, "CreateVPC", Name="v", Network="10.1.0.0/16"), "vpc")["VPCID"]
sa = must(*call(a, "CreateSubnet", VPCID=va, Network="10.1.1.0/24"), "subnet")["SubnetID"]
sa2 = must(*call(a, "CreateSubnet", VPCID=va, Network="10.1.2.0/24"), "subnet 2")["SubnetID"]
vb = must(*call(b, "CreateVPC", Name="v", Network="10.1.0.0/16"), "vpc b")["VPCID"]
sb = must(*call(b, "CreateSubnet", VPCID=vb, Network="10.1.1.0/24"), "subnet b")["SubnetID"]


def vm(cl, sub):
    return must(*call(cl, "CreateVMInstance", ZoneID=zone, ImageID=image, CPU=1, Memory=512,
                      SubnetID=sub), "vm")["VMID"]


a1, a2, b1 = vm(a, sa), vm(a, sa2), vm(b, sb)
a1_ip = must(*a.call("DescribeVMInstance", {"VMIDs": [a1]}), "describe")["Infos"][0]["InternalIP"]

# The host's stream, on a follower.
ld = c.leader()
follower = [n for n in (1, 2, 3) if n != ld][0]
w = Y.Conn(c.api(follower), hpub, hpriv)
rc, r = w.call("WatchCommands", {})
t.ok(rc == 0, "WatchCommands for the host", r)
cmds = []


def collect():
    while True:
        try:
            m = w.recv()
        except Exception:
            return
        if m is None:
            return
        if m[0] == 2 and m[1] == "WatchCommands":
            cmds.append(m[2][0])


threading.Thread(target=collect, daemon=True).start()


def spec_after(rid, action, pred, wait=8.0):
    end = time.time() + wait
    while time.time() < end:
        for x in list(cmds):
            if x.get("ResourceID") == rid and x.get("Action") == action and pred(x["Spec"]):
                return x
        time.sleep(0.05)
    return None


# ---- the NAT whitelist ----------------------------------------------------

e = must(*call(a, "AllocateEIP", OperatorName="Bgp", Bandwidth=5), "eip")["EIPID"]
gw = must(*call(a, "CreateNATGW", VPCID=va, EIPID=e, SubnetIDs=[sa]), "natgw")["NATGWID"]
rc, r = call(a, "AddWhiteListResource", NATGWID=gw, ResourceIDs=[a2])
t.ok(rc == Y.EINVAL, "a machine outside the served subnets is refused (121)", (rc, r))
rc, r = call(a, "AddWhiteListResource", NATGWID=gw, ResourceIDs=[b1])
t.ok(rc == Y.ENOTFOUND, "another tenant's machine is not found (150)", (rc, r))
rc, r = call(b, "AddWhiteListResource", NATGWID=gw, ResourceIDs=[b1])
t.ok(rc == Y.ENOTFOUND, "another tenant cannot touch the gateway (150)", (rc, r))
rc, r = call(a, "AddWhiteListResource", NATGWID=gw, ResourceIDs=[a1])
t.ok(rc == 0 and r.get("WhiteListCount") == 1, "AddWhiteListResource", r)
rc, r = call(a, "AddWhiteListResource", NATGWID=gw, ResourceIDs=[a1])
t.ok(rc == Y.EEXIST, "a machine is listed once (161)", (rc, r))
rc, r = call(a, "EnableWhiteList", NATGWID=gw, IfOpen=1)
t.ok(rc == 0 and r.get("Mode") == "Whitelist", "EnableWhiteList switches the Mode", r)
x = spec_after(gw, "EnableWhiteList",
               lambda s: s.get("Mode") == "Whitelist" and
               s.get("WhiteList") == [{"ResourceID": a1, "IPs": [a1_ip]}])
t.ok(x is not None and x["Spec"].get("Generation") == x["Index"],
     "the gateway's host gets the mode and the whitelist with the machine's address",
     [y.get("Action") for y in cmds[-5:]])
rc, r = a.call("DescribeWhiteListResource", {"NATGWID": gw})
t.ok(rc == 0 and r.get("TotalCount") == 1 and r["Infos"][0]["ResourceID"] == a1 and
     r["Infos"][0]["IPs"] == [a1_ip] and r.get("Mode") == "Whitelist", "DescribeWhiteListResource", r)
rc, r = b.call("DescribeWhiteListResource", {"NATGWID": gw})
t.ok(rc == Y.ENOTFOUND, "another tenant cannot read it", (rc, r))
must(*call(a, "DeleteVMInstance", VMID=a1), "delete a1")
must(*call(a, "PurgeResource", ResourceID=a1), "purge a1")
x = spec_after(gw, "PurgeResource", lambda s: s.get("WhiteList") == [])
t.ok(x is not None, "purging a listed machine takes it out of the host's whitelist")
rc, r = a.call("DescribeNATGW", {"NATGWIDs": [gw]})
t.ok(rc == 0 and r["Infos"][0].get("WhiteListCount") == 0 and r["Infos"][0]["Mode"] == "Whitelist",
     "DescribeNATGW: WhiteListCount 0, Mode kept", r)

# ---- the certificate's key, sealed to the load balancer's host --------------

tmp = tempfile.mkdtemp(prefix="yh-gaps-")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", tmp + "/k.pem", "-out", tmp + "/c.pem", "-subj", "/CN=lb.example",
                "-days", "2"], check=True, capture_output=True)
cert_pem = open(tmp + "/c.pem").read()
key_pem = open(tmp + "/k.pem").read()
ssl = must(*call(a, "CreateCertificate", Certificate=cert_pem, PrivateKey=key_pem), "cert")["SSLID"]
lb = must(*call(a, "CreateLB", VPCID=va, SubnetID=sa), "lb")["LBID"]
vs443 = must(*call(a, "CreateVServer", LBID=lb, Protocol="HTTPS", FrontendPort=443, SSLID=ssl),
             "https vserver")["VServerID"]
x = spec_after(lb, "CreateVServer", lambda s: any(v.get("VServerID") == vs443
                                                  for v in s.get("VServers", [])))
v = [v for v in x["Spec"]["VServers"] if v["VServerID"] == vs443][0] if x else {}
sealed = v.get("CertificateKeySealed")
t.ok(v.get("Certificate") == cert_pem and sealed and sealed.get("PublicKey") == hpub,
     "the HTTPS vserver reaches the host with its certificate and the key sealed to the host", v)
if sealed:
    k = hmac.new(hpriv.encode(), b"yunhan-psk-seal-v1\x00" + ssl.encode(), hashlib.sha256).digest()
    ct = bytes.fromhex(sealed["Ciphertext"])
    mac_ok = hmac.compare_digest(hmac.new(k, b"mac" + ct, hashlib.sha256).hexdigest(), sealed["MAC"])
    stream = b"".join(hmac.new(k, b"enc" + struct.pack(">I", i), hashlib.sha256).digest()
                      for i in range((len(ct) + 31) // 32))
    opened = bytes(p ^ q for p, q in zip(ct, stream)).decode()
    t.ok(mac_ok and opened == key_pem, "the agent opens the private key with its host key")
key_line = key_pem.splitlines()[1]
t.ok(key_line not in repr(cmds), "no streamed spec carries the private key in clear")
rc, r = a.call("DescribeCertificate", {"SSLIDs": [ssl]})
t.ok(rc == 0 and key_line not in repr(r) and "PrivateKey" not in r["Infos"][0],
     "DescribeCertificate never returns the key", r)
rc, r = adm.call("DescribeOperationLog", {"Limit": 100})
t.ok(rc == 0 and key_line not in repr(r), "nor does the operation log")

# ---- a scaling group behind the load balancer -----------------------------

vs80 = must(*call(a, "CreateVServer", LBID=lb, Protocol="TCP", FrontendPort=80), "vserver")["VServerID"]
rc, r = call(a, "CreateScalingGroup", Name="web", Min=1, Max=3, Desired=1, Cooldown=0,
             VServerID=vs80, Template={"ZoneID": zone, "ImageID": image, "CPU": 1, "Memory": 512,
                                       "SubnetID": sa})
t.ok(rc == Y.EMISSING, "a vserver needs the backends' Port (120)", (rc, r))
rc, r = call(a, "CreateScalingGroup", Name="web", Min=1, Max=3, Desired=1, Cooldown=0,
             VServerID=vs80, Port=8080, Weight=3,
             Template={"ZoneID": zone, "ImageID": image, "CPU": 1, "Memory": 512})
t.ok(rc == Y.EINVAL, "machines without a network cannot be backends (121)", (rc, r))
gid = must(*call(a, "CreateScalingGroup", Name="web", Min=1, Max=3, Desired=1, Cooldown=0,
                 VServerID=vs80, Port=8080, Weight=3,
                 Template={"ZoneID": zone, "ImageID": image, "CPU": 1, "Memory": 512,
                           "SubnetID": sa}), "group")["ScalingGroupID"]


def group():
    rc, r = a.call("DescribeScalingGroup", {"ScalingGroupIDs": [gid]})
    return r["Infos"][0] if rc == 0 and r.get("Infos") else None


def backends():
    rc, r = a.call("DescribeLB", {"LBIDs": [lb]})
    if rc != 0 or not r.get("Infos"):
        return None
    for v in r["Infos"][0]["VServers"]:
        if v["VServerID"] == vs80:
            return sorted((b["BindResourceID"], b["Port"], b["Weight"]) for b in v["RSs"])
    return None


def settled(n):
    g = group()
    if not g or len(g["VMIDs"]) != n:
        return None
    be = backends()
    want = sorted((m, 8080, 3) for m in g["VMIDs"])
    return g if be == want else None


g = wait_for(lambda: settled(1), 20)
t.ok(g is not None, "the group's first machine is a backend of its vserver (port 8080, weight 3)",
     (group(), backends()))
must(*call(a, "ModifyScalingGroup", ScalingGroupID=gid, Desired=3), "desired 3")
g = wait_for(lambda: settled(3), 30)
t.ok(g is not None, "ModifyScalingGroup Desired 3: three machines, three backends", (group(), backends()))
if g:
    newest = g["VMIDs"][-1]
    x = spec_after(lb, "_ScaleReconcile", lambda s: newest in [b.get("BindResourceID")
                                                              for v in s.get("VServers", [])
                                                              for b in v.get("Backends", [])])
    t.ok(x is not None, "the load balancer's host gets the new backend with the scale-out")
rc, r = call(a, "ModifyScalingGroup", ScalingGroupID=gid, Min=4)
t.ok(rc == Y.EINVAL, "Min above Max is refused (121)", (rc, r))
rc, r = call(b, "ModifyScalingGroup", ScalingGroupID=gid, Desired=1)
t.ok(rc == Y.ENOTFOUND, "another tenant cannot modify the group (150)", (rc, r))
must(*call(a, "ModifyScalingGroup", ScalingGroupID=gid, Max=1), "max 1")
g = wait_for(lambda: settled(1), 30)
t.ok(g is not None and g["Desired"] == 1 and g["Max"] == 1,
     "Max 1: Desired follows, the group scales in and its machines leave the vserver",
     (group(), backends()))

# ---- scaling policies ------------------------------------------------------

p1 = must(*call(a, "CreateScalingPolicy", ScalingGroupID=gid, MetricName="CPUUtilization",
                Comparison="GT", Threshold=80, Adjustment=1), "policy")["ScalingPolicyID"]
rc, r = a.call("DescribeScalingPolicy", {"ScalingGroupID": gid})
t.ok(rc == 0 and r.get("TotalCount") == 1 and r["Infos"][0]["ScalingPolicyID"] == p1,
     "DescribeScalingPolicy", r)
rc, r = call(a, "ModifyScalingPolicy", ScalingPolicyID=p1, Threshold=70, Adjustment=2)
t.ok(rc == 0, "ModifyScalingPolicy", r)
rc, r = a.call("DescribeScalingPolicy", {"ScalingPolicyIDs": [p1]})
t.ok(rc == 0 and r["Infos"][0]["Threshold"] == 70 and r["Infos"][0]["Adjustment"] == 2,
     "the policy shows its new threshold and adjustment", r)
rc, r = call(b, "DeleteScalingPolicy", ScalingPolicyID=p1)
t.ok(rc == Y.ENOTFOUND, "another tenant cannot delete it (150)", (rc, r))
must(*call(a, "DeleteScalingPolicy", ScalingPolicyID=p1), "delete policy")
t.ok(group()["PolicyIDs"] == [], "DeleteScalingPolicy: the group forgets it", group())
must(*call(a, "DeleteScalingGroup", ScalingGroupID=gid), "delete group")

# ---- ModifyTimer -----------------------------------------------------------

disk = must(*call(a, "CreateDisk", ZoneID=zone, Size=1, SetType="SSD"), "disk")["DiskID"]
timer = must(*call(a, "CreateTimer", Action="CreateSnapshot", Interval=1, ResourceIDs=[disk]),
             "timer")["TimerID"]


def fires():
    rc, r = a.call("DescribeTimer", {"TimerIDs": [timer]})
    return r["Infos"][0] if rc == 0 and r.get("Infos") else None


t.ok(wait_for(lambda: fires()["FireCount"] >= 1, 10), "the timer fires")
rc, r = call(a, "ModifyTimer", TimerID=timer, State="Disabled")
t.ok(rc == 0 and r.get("State") == "Disabled" and r.get("NextDue") == 0, "ModifyTimer: disabled", r)
n0 = fires()["FireCount"]
time.sleep(3)
t.ok(fires()["FireCount"] == n0, "a disabled timer does not fire", (n0, fires()["FireCount"]))
rc, r = call(a, "ModifyTimer", TimerID=timer, State="Active", Interval=2, Name="every-2s")
t.ok(rc == 0 and r.get("State") == "Active" and r.get("NextDue") >= int(time.time()) - 2,
     "ModifyTimer: enabled again, every 2 s", r)
t.ok(wait_for(lambda: fires()["FireCount"] > n0, 10), "it fires again", fires())
must(*call(a, "ModifyTimer", TimerID=timer, State="Disabled"), "disable again")
info = fires()
t.ok(info["Interval"] == 2 and info["Name"] == "every-2s", "DescribeTimer shows the changes", info)
rc, r = a.call("DescribeSnapshot", {"DiskID": disk, "Limit": 100})
must(*call(a, "DeleteTimer", TimerID=timer), "delete timer")
t.ok(rc == 0 and r.get("TotalCount") == info["FireCount"],
     "one snapshot per firing (%s)" % info["FireCount"], r.get("TotalCount"))
hist = [h["Due"] for h in info["History"]]
t.ok(len(hist) == len(set(hist)), "never twice for one due time", hist)

d = c.converged([1, 2, 3], deadline=30)
t.ok(d is not None, "replicas converge on one digest")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
stop.set()
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
