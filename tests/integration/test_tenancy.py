"""Issue 4 on a real cluster: tenant isolation, role denials, a quota race of
64 concurrent creates that can never exceed the quota, billing ticks
proposed by the leader with exact balances, and replicas agreeing on every
balance (same digest)."""
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


def tenant(email):
    r = must(*adm.call("CreateUser", {"UserEmail": email, "PassWord": "password-" + email,
                                       "RequestToken": Y.token()}), "CreateUser")
    uid = r["UserID"]
    k = must(*adm.call("CreateAPIKey", {"UserID": uid, "RequestToken": Y.token()}), "CreateAPIKey")
    return uid, c.client(pub=k["PublicKey"], priv=k["PrivateKey"])


zone = must(*adm.call("CreateZone", {"Name": "z", "RequestToken": Y.token()}), "zone")["ZoneID"]
must(*adm.call("CreateStoragePool", {"ZoneID": zone, "SetType": "SSD", "Backend": "local",
                                      "Capacity": 100000, "RequestToken": Y.token()}), "pool")
a_id, a = tenant("a@ten.example")
b_id, b = tenant("b@ten.example")

# Isolation.
d = must(*a.call("CreateDisk", {"ZoneID": zone, "Size": 10, "SetType": "SSD",
                                 "RequestToken": Y.token()}), "CreateDisk")["DiskID"]
rc, r = b.call("DescribeDisk", {"DiskIDs.0": d})
t.ok(rc == 0 and r.get("TotalCount") == 0, "another tenant does not see the disk", r)
rc, r = b.call("ResizeDisk", {"DiskID": d, "Size": 20, "RequestToken": Y.token()})
t.ok(rc in (Y.ENOTFOUND, Y.EPERM), "another tenant cannot resize it", rc)
rc, r = adm.call("DescribeDisk", {"DiskIDs.0": d})
t.ok(rc == 0 and r.get("TotalCount") == 1, "the admin sees it")

# Roles: a sub-account with Describe* only.
sub = must(*a.call("CreateSubAccount", {"UserEmail": "s@ten.example", "PassWord": "password-sub",
                                         "RequestToken": Y.token()}), "CreateSubAccount")["SubAccountID"]
role = must(*a.call("CreateRole", {"RoleName": "ro", "Permissions.0": "Describe*",
                                    "RequestToken": Y.token()}), "CreateRole")["RoleID"]
must(*a.call("AttachRole", {"RoleID": role, "SubAccountID": sub, "RequestToken": Y.token()}), "AttachRole")
sk = must(*a.call("CreateAPIKey", {"UserID": sub, "RequestToken": Y.token()}), "sub key")
s = c.client(pub=sk["PublicKey"], priv=sk["PrivateKey"])
rc, r = s.call("DescribeDisk", {})
t.ok(rc == 0 and r.get("TotalCount") == 1, "the sub-account reads its tenant's disks", r)
rc, r = s.call("CreateDisk", {"ZoneID": zone, "Size": 1, "SetType": "SSD", "RequestToken": Y.token()})
t.ok(rc == Y.EPERM, "the sub-account's role denies CreateDisk (140)", (rc, r))

# Quota race: limit 10 disks, 64 concurrent creates through all nodes.
must(*adm.call("ModifyQuota", {"UserID": b_id, "ResourceType": "Disk", "Limit": 10,
                                "RequestToken": Y.token()}), "ModifyQuota")
results = []
lock = threading.Lock()
def create(i):
    cl = c.client(endpoints=c.api(1 + i % 3), pub=b.pub, priv=b.priv)
    rc, r = cl.call("CreateDisk", {"ZoneID": zone, "Size": 1, "SetType": "SSD",
                                    "RequestToken": Y.token()})
    with lock:
        results.append(rc)
    cl.close()
ths = [threading.Thread(target=create, args=(i,)) for i in range(64)]
for th in ths:
    th.start()
for th in ths:
    th.join(60)
ok_n = results.count(0)
t.ok(ok_n == 10 and results.count(Y.EQUOTA) == 54,
     "64 concurrent creates against a quota of 10: exactly 10 succeed, 54 get 170",
     {rc: results.count(rc) for rc in set(results)})
rc, r = b.call("DescribeDisk", {"Limit": 100})
t.ok(rc == 0 and r.get("TotalCount") == 10, "the tenant holds exactly 10 disks", r.get("TotalCount"))

# Billing: hourly disks charged by the leader's ticks, period 1 s.
must(*adm.call("ModifyBillingConfig", {"Period": 1, "RequestToken": Y.token()}), "billing config")
must(*adm.call("ModifyPrice", {"Spec": "Disk:SSD", "ChargeType": "Dynamic", "Price": 7,
                                "RequestToken": Y.token()}), "price")
c_id, cten = tenant("c@ten.example")
must(*adm.call("Recharge", {"UserID": c_id, "Amount": 100000, "FromType": "Bank",
                             "SerialNo": "sn-1", "RequestToken": Y.token()}), "Recharge")
rc, r = adm.call("Recharge", {"UserID": c_id, "Amount": 100000, "FromType": "Bank",
                              "SerialNo": "sn-1", "RequestToken": Y.token()})
t.ok(rc == Y.EEXIST, "a SerialNo is accepted once (161)", rc)
dd = must(*cten.call("CreateDisk", {"ZoneID": zone, "Size": 3, "SetType": "SSD",
                                     "RequestToken": Y.token()}), "billed disk")["DiskID"]
time.sleep(4.5)
# Freeze the clock of billing (a long period) so the figures below are stable.
must(*adm.call("ModifyBillingConfig", {"Period": 3600, "RequestToken": Y.token()}), "billing config")
time.sleep(0.3)
rc, r = adm.call("DescribeTransaction", {"UserID": c_id, "Type": "Charge", "Limit": 100})
charges = [x for x in r.get("Infos", []) if x.get("ResourceID") == dd]
periods = [x.get("Period") for x in charges]
t.ok(rc == 0 and len(charges) >= 3, "the leader charged the disk every period (%d charges)" % len(charges), r)
t.ok(len(periods) == len(set(periods)), "never twice for one period", periods)
rc, bal = adm.call("DescribeBalance", {"UserID": c_id})
rc2, txns = adm.call("DescribeTransaction", {"UserID": c_id, "Limit": 100})
total = sum(x["Amount"] for x in txns.get("Infos", []))
t.ok(rc == 0 and bal.get("Balance") == total,
     "the balance is exactly the sum of its transactions (integer money)", (bal, total))
t.ok(all(x["Amount"] == -7 * 3 for x in charges), "each charge is price x size = 21", [x["Amount"] for x in charges])

# Every replica agrees on every balance: same digest at the same index.
d = c.converged([1, 2, 3], deadline=20)
t.ok(d is not None, "replicas converge on one digest after billing ticks")
bad = c.scan_logs()
t.ok(not bad, "no sanitizer report or assertion in node logs", bad[:3])
if t.failed:
    c.dump_logs()
sys.exit(1 if t.failed else 0)
