"""Issue 5 (gateways) on a real cluster: NAT gateways, load balancers,
certificates and VPN between two tenants that never see or touch each
other's; a host's WatchCommands stream gets a machine's spec again when
its security group rules, NICs or EIPs change; gateways are placed on the
host and its stream gets their specs (a NAT rule change, a VPN connection
with its pre-shared key sealed to the host), the host reports them
Available, and gets a tombstone when one is deleted or purged by billing;
and concurrent BindEIP / UnBindEIP of one EIP through different nodes:
exactly one of each pair wins, every time, and the replicas agree."""
import hashlib
import hmac
import os
import struct
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


def tenant(email):
    r = must(*call(adm, "CreateUser", UserEmail=email, PassWord="password-" + email), "CreateUser")
    uid = r["UserID"]
    k = must(*call(adm, "CreateAPIKey", UserID=uid), "CreateAPIKey")
    return uid, c.client(pub=k["PublicKey"], priv=k["PrivateKey"]), k


zone = must(*call(adm, "CreateZone", Name="z"), "zone")["ZoneID"]
must(*call(adm, "CreateStoragePool", ZoneID=zone, SetType="Standard", Backend="local",
           Capacity=100000), "pool")
r = must(*call(adm, "RegisterHost", ZoneID=zone, CPU=64, Memory=262144, Name="h1"), "host")
host, hpub, hpriv = r["HostID"], r["PublicKey"], r["PrivateKey"]
hc = c.client(pub=hpub, priv=hpriv)
must(*call(hc, "HostHeartbeat"), "heartbeat")
stop_beat = threading.Event()


def beat():
    # the host keeps its lease for the whole test (gateways and machines
    # are placed on Online hosts only)
    bc = c.client(pub=hpub, priv=hpriv)
    while not stop_beat.wait(3.0):
        bc.call("HostHeartbeat", {"RequestToken": Y.token()})
    bc.close()


beat_th = threading.Thread(target=beat, daemon=True)
beat_th.start()
image = must(*call(adm, "CreateImage", Name="tiny", Size=1), "image")["ImageID"]
must(*call(adm, "CreateEIPPool", Name="p", Network="198.51.100.0/24", OperatorName="Bgp"), "pool")
a_id, a, a_key = tenant("a@gw.example")
b_id, b, b_key = tenant("b@gw.example")


def net(cl, cidr, sub):
    v = must(*call(cl, "CreateVPC", Name="v", Network=cidr), "vpc")["VPCID"]
    s = must(*call(cl, "CreateSubnet", VPCID=v, Network=sub), "subnet")["SubnetID"]
    return v, s


def vm(cl, sub):
    return must(*call(cl, "CreateVMInstance", ZoneID=zone, ImageID=image, CPU=1, Memory=1024,
                      SubnetID=sub), "vm")["VMID"]


def eip(cl):
    return must(*call(cl, "AllocateEIP", OperatorName="Bgp", Bandwidth=5), "eip")["EIPID"]


va, sa = net(a, "10.1.0.0/16", "10.1.1.0/24")
vb, sb = net(b, "10.1.0.0/16", "10.1.1.0/24")
a1, a2 = vm(a, sa), vm(a, sa)
b1 = vm(b, sb)

# The host's stream, on a follower, from now on.
ld = c.leader()
follower = [n for n in (1, 2, 3) if n != ld][0]
w = Y.Conn(c.api(follower), hpub, hpriv)
rc, r = w.call("WatchCommands", {})
t.ok(rc == 0 and r.get("HostID") == host, "WatchCommands for the host", r)
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


def spec_after(vmid, action, pred, wait=5.0):
    end = time.time() + wait
    while time.time() < end:
        for x in list(cmds):
            if x.get("ResourceID") == vmid and x.get("Action") == action and pred(x["Spec"]):
                return x
        time.sleep(0.05)
    return None


# Security group rules reach the host's agent in the machine's spec.
sg = must(*call(a, "CreateSecurityGroup", Name="web"), "sg")["SecurityGroupID"]
must(*call(a, "BindSecurityGroup", SecurityGroupID=sg, ResourceID=a1), "bind sg")
must(*call(a, "CreateSecurityGroupRule", SecurityGroupID=sg,
           **{"Rules.0": "TCP|443|0.0.0.0/0|ACCEPT|HIGH"}), "rule")
x = spec_after(a1, "CreateSecurityGroupRule",
               lambda s: any("TCP|443|0.0.0.0/0|ACCEPT|HIGH|INGRESS" in g.get("Rules", [])
                             for g in s.get("SecurityGroups", [])))
t.ok(x is not None, "a rule change sends the bound machine's spec with the rule to its host",
     [(y.get("Action"), y.get("ResourceID")) for y in cmds[-5:]])
if x:
    t.ok(x["Spec"].get("NetGeneration") == x["Index"], "its NetGeneration is the change's index",
         (x["Spec"].get("NetGeneration"), x["Index"]))
nic = must(*call(a, "CreateNIC", SubnetID=sa), "nic")["NICID"]
must(*call(a, "AttachNIC", NICID=nic, VMID=a1), "attach")
x = spec_after(a1, "AttachNIC", lambda s: [n.get("NICID") for n in s.get("NICs", [])] == [nic])
t.ok(x is not None, "AttachNIC sends the machine's spec with the NIC to its host")
ea = eip(a)
must(*call(a, "BindEIP", EIPID=ea, ResourceID=a1), "bind eip")
x = spec_after(a1, "BindEIP", lambda s: [e.get("EIPID") for e in s.get("EIPs", [])] == [ea])
t.ok(x is not None, "BindEIP sends the machine's spec with the EIP to its host")
must(*call(a, "UnBindEIP", EIPID=ea), "unbind eip")
x = spec_after(a1, "UnBindEIP", lambda s: s.get("EIPs") == [])
t.ok(x is not None, "UnBindEIP sends the machine's spec without it")

# Gateways of tenant a.
ngw_eip = eip(a)
gw = must(*call(a, "CreateNATGW", VPCID=va, EIPID=ngw_eip, Name="nat",
                **{"SubnetIDs.0": sa}), "natgw")["NATGWID"]
rule = must(*call(a, "CreateNATGWRule", NATGWID=gw, Protocol="TCP", EIPPort="2222",
                  PrivateIP="10.1.1.2", PrivatePort="22"), "nat rule")["RuleID"]
lb = must(*call(a, "CreateLB", VPCID=va, SubnetID=sa), "lb")["LBID"]
vs = must(*call(a, "CreateVServer", LBID=lb, Protocol="TCP", FrontendPort=80), "vserver")["VServerID"]
rs = must(*call(a, "CreateRS", VServerID=vs, BindResourceID=a1, Port=8080), "rs")["RSID"]
vgw = must(*call(a, "CreateVPNGateway", VPCID=va, EIPID=eip(a)), "vpngw")["VPNGatewayID"]
rgw = must(*call(a, "CreateRemoteVPNGateway", IP="203.0.113.7"), "remote")["RemoteVPNGatewayID"]
psk = "integration-psk-Zq81"
conn = must(*call(a, "CreateVPNConnection", VPNGatewayID=vgw, RemoteVPNGatewayID=rgw,
                  PreSharedKey=psk, **{"LocalSubnetIDs.0": sa, "RemoteCIDRs.0": "192.168.0.0/16"}),
            "vpn connection")["VPNConnectionID"]

# The gateways are placed on the host; its stream gets their specs.
for kind, gid, rtype in (("CreateNATGW", gw, "NATGW"), ("CreateLB", lb, "LB"),
                         ("CreateVPNGateway", vgw, "VPNGateway")):
    x = spec_after(gid, kind, lambda s: True)
    t.ok(x is not None and x["Spec"].get("ResourceType") == rtype and
         x["Spec"].get("HostID") == host and x["Spec"].get("DesiredState") == "Available",
         "%s: the host's stream gets the gateway's spec" % kind,
         x or [(y.get("Action"), y.get("ResourceID")) for y in cmds[-5:]])
x = spec_after(gw, "CreateNATGWRule",
               lambda s: [r.get("RuleID") for r in s.get("Rules", [])] == [rule])
t.ok(x is not None and x["Spec"].get("Generation") == x["Index"] and
     x["Spec"]["Rules"][0].get("EIPPort") == "2222" and
     x["Spec"]["Rules"][0].get("PrivateIP") == "10.1.1.2",
     "a NAT rule sends the gateway's spec with the rule at a new generation", x)
if x:
    rc, r = call(hc, "ReportState", ResourceID=gw, State="Available",
                 Generation=x["Spec"]["Generation"])
    t.ok(rc == 0 and r.get("State") == "Available", "the host reports the gateway Available", (rc, r))
    rc, r = a.call("DescribeNATGW", {"NATGWIDs.0": gw})
    t.ok(rc == 0 and r["Infos"][0]["State"] == "Available" and
         r["Infos"][0]["HostID"] == host and r["Infos"][0]["ObservedGeneration"] == x["Index"],
         "the tenant sees its gateway Available on the host", r.get("Infos"))
    rc, r = call(hc, "ReportState", ResourceID=gw, State="Error",
                 Generation=x["Spec"]["Generation"] - 1)
    t.ok(rc == Y.ECONFLICT, "a report of an older generation is refused (160)", (rc, r))
x = spec_after(lb, "CreateRS",
               lambda s: [b.get("RSID") for v in s.get("VServers", [])
                          for b in v.get("Backends", [])] == [rs])
t.ok(x is not None and x["Spec"]["VServers"][0]["Backends"][0].get("Port") == 8080,
     "a backend sends the load balancer's spec with it", x)
x = spec_after(vgw, "CreateVPNConnection",
               lambda s: [k.get("VPNConnectionID") for k in s.get("Connections", [])] == [conn])
sealed = x["Spec"]["Connections"][0].get("PreSharedKeySealed") if x else None
t.ok(sealed is not None and sealed.get("PublicKey") == hpub,
     "a VPN connection reaches the host with its key sealed to the host's key", x)
if sealed:
    k = hmac.new(hpriv.encode(), b"yunhan-psk-seal-v1\x00" + conn.encode(), hashlib.sha256).digest()
    ct = bytes.fromhex(sealed["Ciphertext"])
    mac_ok = hmac.compare_digest(hmac.new(k, b"mac" + ct, hashlib.sha256).hexdigest(), sealed["MAC"])
    stream = b"".join(hmac.new(k, b"enc" + struct.pack(">I", i), hashlib.sha256).digest()
                      for i in range((len(ct) + 31) // 32))
    opened = bytes(p ^ q for p, q in zip(ct, stream)).decode()
    t.ok(mac_ok and opened == psk, "the agent opens the pre-shared key with its private key")
t.ok(psk not in repr(cmds), "no streamed spec carries the pre-shared key in clear")

# Isolation: b sees none of them and can touch none of them.
for action, key, rid in (("DescribeNATGW", "NATGWIDs.0", gw), ("DescribeLB", "LBIDs.0", lb),
                         ("DescribeVPNGateway", "VPNGatewayIDs.0", vgw),
                         ("DescribeRemoteVPNGateway", "RemoteVPNGatewayIDs.0", rgw),
                         ("DescribeVPNConnection", "VPNConnectionIDs.0", conn),
                         ("DescribeEIP", "EIPIDs.0", ea), ("DescribeNIC", "NICIDs.0", nic)):
    rc, r = b.call(action, {key: rid})
    t.ok(rc == 0 and r.get("TotalCount") == 0, "%s: the other tenant sees nothing" % action, r)
    rc, r = b.call(action, {})
    t.ok(rc == 0 and r.get("TotalCount") == 0, "%s: the other tenant lists nothing" % action, r)
for action, kw in (("DeleteNATGW", {"NATGWID": gw}), ("DeleteNATGWRule", {"RuleID": rule}),
                   ("CreateNATGWRule", {"NATGWID": gw, "Protocol": "UDP", "EIPPort": "53",
                                        "PrivateIP": "10.1.1.2", "PrivatePort": "53"}),
                   ("DeleteLB", {"LBID": lb}), ("DeleteVServer", {"VServerID": vs}),
                   ("DeleteRS", {"RSID": rs}),
                   ("CreateRS", {"VServerID": vs, "BindResourceID": b1, "Port": 1}),
                   ("CreateVServer", {"LBID": lb, "Protocol": "UDP", "FrontendPort": 53}),
                   ("DeleteVPNConnection", {"VPNConnectionID": conn}),
                   ("DeleteVPNGateway", {"VPNGatewayID": vgw}),
                   ("DeleteRemoteVPNGateway", {"RemoteVPNGatewayID": rgw}),
                   ("BindEIP", {"EIPID": ea, "ResourceID": b1}),
                   ("BindEIP", {"EIPID": eip(b), "ResourceID": gw}),
                   ("AttachNIC", {"NICID": nic, "VMID": b1}),
                   ("CreateNATGW", {"VPCID": va, "EIPID": eip(b), "SubnetIDs.0": sa})):
    rc, r = call(b, action, **kw)
    t.ok(rc == Y.ENOTFOUND, "%s on the other tenant's resources: 150" % action, (rc, r))
rc, r = a.call("DescribeNATGW", {})
t.ok(rc == 0 and r.get("TotalCount") == 1 and len(r["Infos"][0]["Rules"]) == 1,
     "the owner still has its gateway and rule", r)
rc, r = a.call("DescribeVPNConnection", {})
t.ok(rc == 0 and r["Infos"][0].get("PreSharedKey") == "******" and psk not in repr(r),
     "the pre-shared key is masked", r.get("Infos"))
rc, r = a.call("DescribeOperationLog", {"Limit": 100})
t.ok(rc == 0 and psk not in repr(r), "the pre-shared key is not in the operation log")
# Cross-VPC backend refused.
vc, sc = net(a, "10.9.0.0/16", "10.9.1.0/24")
a3 = vm(a, sc)
rc, r = call(a, "CreateRS", VServerID=vs, BindResourceID=a3, Port=8080)
t.ok(rc == Y.EINVAL, "a backend of another VPC is refused (121)", (rc, r))

# Races: one EIP, two binders through two nodes; then two unbinders.
targets = [a2, lb]
rounds = 12
bind_ok, unbind_ok, winners = [], [], []
for i in range(rounds):
    e = eip(a)
    for kind in ("BindEIP", "UnBindEIP"):
        res = [None, None]
        bar = threading.Barrier(2)
        def go(j):
            cl = c.client(endpoints=c.api(1 + (i + j) % 3), pub=a_key["PublicKey"],
                          priv=a_key["PrivateKey"])
            kw = {"EIPID": e, "RequestToken": Y.token()}
            if kind == "BindEIP":
                kw["ResourceID"] = targets[j]
            bar.wait()
            res[j] = cl.call(kind, kw)[0]
            cl.close()
        ths = [threading.Thread(target=go, args=(j,)) for j in (0, 1)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(30)
        (bind_ok if kind == "BindEIP" else unbind_ok).append(sorted(res))
        if kind == "BindEIP":
            rc, r = a.call("DescribeEIP", {"EIPIDs.0": e})
            won = targets[res.index(0)] if 0 in res else None
            winners.append(won)
            t.ok(rc == 0 and r["Infos"][0]["BindResourceID"] == won,
                 "round %d: the EIP is bound to the winner" % i, (res, r["Infos"][0]))
    call(a, "ReleaseEIP", EIPID=e)
t.ok(all(x == [0, Y.ESTATE] for x in bind_ok),
     "%d concurrent BindEIP pairs: exactly one wins each, the other gets 162" % rounds, bind_ok)
t.ok(all(x == [0, Y.ESTATE] for x in unbind_ok),
     "%d concurrent UnBindEIP pairs: exactly one wins each, the other gets 162" % rounds, unbind_ok)

# Deletes: in use first, then in order.
rc, r = call(a, "DeleteVPNGateway", VPNGatewayID=vgw)
t.ok(rc == Y.ESTATE, "a VPN gateway with a connection is not deleted (162)", (rc, r))
rc, r = call(a, "DeleteSubnet", SubnetID=sa)
t.ok(rc == Y.ESTATE, "a subnet served by gateways is not deleted (162)", (rc, r))
must(*call(a, "DeleteVPNConnection", VPNConnectionID=conn), "delete conn")
must(*call(a, "DeleteVPNGateway", VPNGatewayID=vgw), "delete vpngw")
must(*call(a, "DeleteNATGW", NATGWID=gw), "delete natgw")
must(*call(a, "DeleteLB", LBID=lb), "delete lb")
rc, r = a.call("DescribeEIP", {"EIPIDs.0": ngw_eip})
t.ok(rc == 0 and r["Infos"][0]["State"] == "Available", "deleting the NAT gateway frees its EIP", r)


def tombstone(gid, action, wait=10.0):
    end = time.time() + wait
    while time.time() < end:
        for x in list(cmds):
            if x.get("ResourceID") == gid and x.get("Action") == action and \
                    x["Spec"].get("DesiredState") == "Deleted":
                return x
        time.sleep(0.05)
    return None


for gid, action, rtype in ((gw, "DeleteNATGW", "NATGW"), (lb, "DeleteLB", "LB"),
                           (vgw, "DeleteVPNGateway", "VPNGateway")):
    x = tombstone(gid, action)
    t.ok(x is not None and x["Spec"].get("ResourceType") == rtype and
         x["Spec"].get("HostID") == host and x["Spec"].get("Generation") == x["Index"],
         "%s: the host's stream gets the tombstone" % action, x)

# Billing purges a gateway of a tenant in arrears: its host is told.
must(*call(adm, "ModifyPrice", Spec="NATGW", ChargeType="Dynamic", Price=1000), "price")
c_id, cten, _ = tenant("c@gw.example")
must(*call(adm, "Recharge", UserID=c_id, Amount=1500, FromType="Bank", SerialNo="gw-c-1"),
     "recharge")
vcv, scv = net(cten, "10.5.0.0/16", "10.5.1.0/24")
cgw = must(*call(cten, "CreateNATGW", VPCID=vcv, EIPID=eip(cten), **{"SubnetIDs.0": scv}),
           "natgw of c")["NATGWID"]
must(*call(adm, "ModifyBillingConfig", Period=1, GracePeriod=1, RecycleAfter=1, Retention=1),
     "fast billing")
x = spec_after(cgw, "_BillStop", lambda s: s.get("DesiredState") == "Stopped", wait=30.0)
t.ok(x is not None, "arrears: the host is told to stop the gateway (DesiredState Stopped)", x)
x = tombstone(cgw, "_Purge", wait=30.0)
t.ok(x is not None and x["Spec"].get("ResourceType") == "NATGW" and
     x["Spec"].get("HostID") == host, "the billing purge sends the host a tombstone", x)
must(*call(adm, "ModifyBillingConfig", Period=3600, GracePeriod=259200, RecycleAfter=259200,
           Retention=604800), "billing back")
must(*call(adm, "ModifyPrice", Spec="NATGW", ChargeType="Dynamic", Price=0), "price back")
# A backfill from index 1 carries the tombstones too.
w2 = Y.Conn(c.api(ld), hpub, hpriv)
rc, r = w2.call("WatchCommands", {"FromIndex": 1})
back = []
end = time.time() + 10
while time.time() < end and not any(x.get("ResourceID") == cgw and x.get("Action") == "_Purge"
                                     for x in back):
    m = w2.recv()
    if m is None:
        break
    if m[0] == 2 and m[1] == "WatchCommands":
        back.append(m[2][0])
t.ok(rc == 0 and any(x.get("ResourceID") == gw and x["Spec"].get("DesiredState") == "Deleted"
                     for x in back) and
     any(x.get("ResourceID") == cgw and x.get("Action") == "_Purge" for x in back),
     "a backfill from index 1 includes the gateways' tombstones", len(back))
w2.close()
stop_beat.set()
beat_th.join(10)

# Every replica agrees.
d = c.converged([1, 2, 3], deadline=20)
t.ok(d is not None, "replicas converge on one digest")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
