/* Unit tests of storage: pools and disk placement, attach/detach with
 * executor reports, snapshots (quota, billing, rollback rules), clones,
 * custom images, tenant isolation, and determinism of a random stream of
 * them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h"
#include "tests/lib/fsmtest.h"

#define SEC FSMTEST_SEC

/* A zone with one host, an image, two SSD pools and two tenants. */
struct world
{
    char z[FSM_ID_SIZE], z2[FSM_ID_SIZE];     /* zones */
    char p1[FSM_ID_SIZE], p2[FSM_ID_SIZE];    /* SSD pools of z: 100, 150 GB */
    char host[FSM_ID_SIZE], img[FSM_ID_SIZE]; /* host of z, image */
    struct fsm_actor agent;                   /* the host's executor */
    struct fsm_actor t, u;                    /* tenants */
    char tid[FSM_ID_SIZE], uid[FSM_ID_SIZE];  /* their IDs */
};

static void str_of(struct fsmtest *x, const char *key, char *out)
{
    snprintf(out, FSM_ID_SIZE, "%s", fsmtest_res_str(x, key));
}

static void world(struct fsmtest *x, struct world *w)
{
    struct fsm_key k;

    assert_int_equal(
        fsmtest_call(x, "CreateZone", &x->admin, "Name", "z1", NULL), 0);
    str_of(x, "ZoneID", w->z);
    assert_int_equal(
        fsmtest_call(x, "CreateZone", &x->admin, "Name", "z2", NULL), 0);
    str_of(x, "ZoneID", w->z2);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w->z, "SetType", "SSD", "Backend", "ceph",
                                  "Pool", "ssd-a", "Capacity", "100", NULL),
                     0);
    str_of(x, "PoolID", w->p1);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w->z, "SetType", "SSD", "Backend", "local",
                                  "Capacity", "150", "Name", "local-ssd", NULL),
                     0);
    str_of(x, "PoolID", w->p2);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w->z2, "SetType", "SSD", "Backend", "ceph",
                                  "Pool", "ssd-a", "Capacity", "100", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", w->z,
                                  "CPU", "16", "Memory", "65536", NULL),
                     0);
    str_of(x, "HostID", w->host);
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k), 0);
    w->agent = k.actor;
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w->agent, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "debian",
                                  "Size", "10", NULL),
                     0);
    str_of(x, "ImageID", w->img);
    /* where the machines' boot disks go */
    fsmtest_pool(x, w->z, "Standard");
    fsmtest_pool(x, w->z2, "Standard");
    fsmtest_make_tenant(x, "t@x.io", &w->t, w->tid);
    fsmtest_make_tenant(x, "u@x.io", &w->u, w->uid);
}

static int64_t field_int(struct fsmtest *x,
                         const struct fsm_actor *a,
                         const char *action,
                         const char *ids,
                         const char *id,
                         const char *key)
{
    assert_int_equal(fsmtest_call(x, action, a, ids, id, NULL), 0);
    assert_int_equal(fsmtest_n_infos(x), 1);
    return fsmtest_info_int(x, 0, key);
}

static const char *field_str(struct fsmtest *x,
                             const struct fsm_actor *a,
                             const char *action,
                             const char *ids,
                             const char *id,
                             const char *key)
{
    assert_int_equal(fsmtest_call(x, action, a, ids, id, NULL), 0);
    assert_int_equal(fsmtest_n_infos(x), 1);
    return fsmtest_info_str(x, 0, key);
}

#define DISK_INT(id, key) \
    field_int(x, &x->admin, "DescribeDisk", "DiskIDs", id, key)
#define DISK_STR(id, key) \
    field_str(x, &x->admin, "DescribeDisk", "DiskIDs", id, key)
#define POOL_INT(id, key) \
    field_int(x, &x->admin, "DescribeStoragePool", "PoolIDs", id, key)
#define VM_STR(id, key) \
    field_str(x, &x->admin, "DescribeVMInstance", "VMIDs", id, key)

/* The executor reports @state of the current generation of @id. */
static int report(struct fsmtest *x,
                  const struct fsm_actor *agent,
                  const char *id,
                  const char *state)
{
    char gen[24];
    int vm = strncmp(id, "uhost-", 6) == 0;

    snprintf(gen, sizeof gen, "%lld",
             (long long)(vm ? field_int(x, &x->admin, "DescribeVMInstance",
                                        "VMIDs", id, "Generation")
                            : DISK_INT(id, "Generation")));
    return fsmtest_call(x, "ReportState", agent, "ResourceID", id, "State",
                        state, "Generation", gen, NULL);
}

static void disk(struct fsmtest *x,
                 const struct fsm_actor *a,
                 const char *zone,
                 const char *size,
                 char *id)
{
    assert_int_equal(fsmtest_call(x, "CreateDisk", a, "ZoneID", zone, "Size",
                                  size, "SetType", "SSD", NULL),
                     0);
    str_of(x, "DiskID", id);
}

/* A running VM of @a in the world's zone. */
static void vm(struct fsmtest *x,
               struct world *w,
               const struct fsm_actor *a,
               char *id)
{
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", a, "ZoneID", w->z, "ImageID",
                     w->img, "CPU", "1", "Memory", "1024", NULL),
        0);
    str_of(x, "VMID", id);
    assert_int_equal(report(x, &w->agent, id, "Running"), 0);
    assert_string_equal(VM_STR(id, "State"), "Running");
}

static void stop_vm(struct fsmtest *x, struct world *w, const char *id)
{
    assert_int_equal(
        fsmtest_call(x, "StopVMInstance", &x->admin, "VMID", id, NULL), 0);
    assert_int_equal(report(x, &w->agent, id, "Stopped"), 0);
    assert_string_equal(VM_STR(id, "State"), "Stopped");
}

/* The disks-by-machine rows of 'res_list' (fsm__vm_disk_walk) name
 * exactly the disks whose records say they are bound to @vm, in order. */
struct walked
{
    char ids[16][FSM_ID_SIZE];
    unsigned n;
};

static int walked_add(void *arg, const char *disk)
{
    struct walked *w = arg;

    assert_true(w->n < 16);
    snprintf(w->ids[w->n++], FSM_ID_SIZE, "%s", disk);
    return 0;
}

static void index_matches(struct fsmtest *x, const char *vm)
{
    struct walked w = {.n = 0};
    unsigned n = 0;
    MDB_txn *txn;

    assert_int_equal(fsm__rtxn_begin(x->f, &txn), 0);
    assert_int_equal(fsm__vm_disk_walk(x->f, txn, vm, walked_add, &w), 0);
    fsm__rtxn_end(x->f, txn);
    assert_int_equal(
        fsmtest_call(x, "DescribeDisk", &x->admin, "Limit", "100", NULL), 0);
    for (unsigned i = 0; i < fsmtest_n_infos(x); i++) {
        if (strcmp(fsmtest_info_str(x, i, "VMID"), vm) != 0) {
            continue;
        }
        assert_true(n < w.n);
        assert_string_equal(w.ids[n], fsmtest_info_str(x, i, "DiskID"));
        n++;
    }
    assert_int_equal(n, w.n);
}

/* ---- pools and placement ---- */

static void pools(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char d1[FSM_ID_SIZE], d2[FSM_ID_SIZE], d3[FSM_ID_SIZE];

    world(x, &w);
    /* validation */
    assert_int_equal(
        fsmtest_call(x, "CreateStoragePool", &w.t, "ZoneID", w.z, "SetType",
                     "SSD", "Backend", "local", "Capacity", "10", NULL),
        YH_EPERM);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w.z, "SetType", "SSD", "Backend", "ceph",
                                  "Capacity", "10", NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w.z, "SetType", "SSD", "Backend", "local",
                                  "Pool", "p", "Capacity", "10", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w.z, "SetType", "SSD", "Backend", "nfs",
                                  "Capacity", "10", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w.z, "SetType", "S S", "Backend", "local",
                                  "Capacity", "10", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w.z, "SetType", "SSD", "Backend", "local",
                                  "Capacity", "0", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  "zone-404", "SetType", "SSD", "Backend",
                                  "local", "Capacity", "10", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w.z, "SetType", "HDD", "Backend", "ceph",
                                  "Pool", "ssd-a", "Capacity", "10", NULL),
                     YH_EEXIST); /* that Ceph pool is registered already */
    /* described by the admin only, filtered */
    assert_int_equal(fsmtest_call(x, "DescribeStoragePool", &w.t, NULL),
                     YH_EPERM);
    assert_int_equal(
        fsmtest_call(x, "DescribeStoragePool", &x->admin, "ZoneID", w.z, NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 3); /* + Standard */
    assert_string_equal(fsmtest_info_str(x, 0, "Backend"), "ceph");
    assert_string_equal(fsmtest_info_str(x, 0, "Pool"), "ssd-a");
    assert_int_equal(fsmtest_info_int(x, 0, "Capacity"), 100);
    assert_true(fsmtest_info_int(x, 0, "Revision") > 0);

    /* a disk needs its zone; it goes to the pool with the most room */
    assert_int_equal(fsmtest_call(x, "CreateDisk", &w.t, "Size", "10",
                                  "SetType", "SSD", NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", "zone-9",
                                  "Size", "10", NULL),
                     YH_ENOTFOUND);
    disk(x, &w.t, w.z, "60", d1);
    assert_string_equal(DISK_STR(d1, "PoolID"), w.p2); /* 150 free */
    assert_string_equal(DISK_STR(d1, "ZoneID"), w.z);
    disk(x, &w.t, w.z, "60", d2);
    assert_string_equal(DISK_STR(d2, "PoolID"), w.p1); /* 100 > 90 */
    assert_int_equal(POOL_INT(w.p2, "Used"), 60);
    assert_int_equal(POOL_INT(w.p2, "DiskCount"), 1);
    /* no pool has 91 GB left: 172, and nothing was written */
    assert_int_equal(fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", w.z, "Size",
                                  "91", "SetType", "SSD", NULL),
                     YH_ECAPACITY);
    assert_int_equal(fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", w.z, "Size",
                                  "1", "SetType", "HDD", NULL),
                     YH_ECAPACITY); /* no HDD pool at all */
    disk(x, &w.t, w.z, "90", d3);
    assert_string_equal(DISK_STR(d3, "PoolID"), w.p2);
    /* growing stays within the pool */
    assert_int_equal(
        fsmtest_call(x, "ResizeDisk", &w.t, "DiskID", d1, "Size", "61", NULL),
        YH_ECAPACITY);
    assert_int_equal(
        fsmtest_call(x, "ResizeDisk", &w.t, "DiskID", d2, "Size", "100", NULL),
        0);
    assert_int_equal(POOL_INT(w.p1, "Used"), 100);
    /* deleted disks keep their room until purged */
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", d2, NULL),
                     0);
    assert_int_equal(POOL_INT(w.p1, "Used"), 100);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", d2, NULL), 0);
    assert_int_equal(POOL_INT(w.p1, "Used"), 0);
    assert_int_equal(POOL_INT(w.p1, "DiskCount"), 0);
    /* the oplog names the pool */
    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "ResourceID", w.p1, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "Action"), "CreateStoragePool");
}

/* ---- attach / detach ---- */

static void attach(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char d[FSM_ID_SIZE], d2[FSM_ID_SIZE], dz2[FSM_ID_SIZE], du[FSM_ID_SIZE];
    char v[FSM_ID_SIZE], v2[FSM_ID_SIZE], job[FSM_ID_SIZE];
    struct fsm_actor other;
    char other_id[FSM_ID_SIZE];
    struct fsm_key k;

    world(x, &w);
    disk(x, &w.t, w.z, "10", d);
    disk(x, &w.t, w.z, "10", d2);
    disk(x, &w.t, w.z2, "10", dz2);
    disk(x, &w.u, w.z, "10", du);
    vm(x, &w, &w.t, v);
    vm(x, &w, &w.t, v2);
    /* another host, to report on what is not its own */
    assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", w.z,
                                  "CPU", "4", "Memory", "4096", NULL),
                     0);
    str_of(x, "HostID", other_id);
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k), 0);
    other = k.actor;

    /* validation and isolation */
    assert_int_equal(fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d, NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.u, "DiskID", d, "VMID", v, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.u, "DiskID", du, "VMID", v, NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &x->admin, "DiskID", du, "VMID", v, NULL),
        YH_EINVAL); /* another tenant's machine */
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", dz2, "VMID", v, NULL),
        YH_EINVAL); /* another zone */
    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", d, NULL),
                     YH_ESTATE); /* not attached */

    /* attach: Attaching until the machine's host reports it */
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d, "VMID", v, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Attaching");
    str_of(x, "JobID", job);
    assert_string_equal(DISK_STR(d, "VMID"), v);
    assert_string_equal(DISK_STR(d, "DesiredAttach"), "Attached");
    index_matches(x, v); /* its boot disk and d */
    index_matches(x, v2);
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d, "VMID", v2, NULL),
        YH_ESTATE); /* one machine at a time */
    assert_int_equal(report(x, &other, d, "Attached"), YH_EPERM);
    assert_int_equal(report(x, &w.agent, d, "Running"), YH_EINVAL);
    assert_int_equal(report(x, &w.agent, d, "Attached"), 0);
    assert_string_equal(DISK_STR(d, "State"), "InUse");
    assert_string_equal(DISK_STR(d, "ObservedAttach"), "Attached");
    assert_int_equal(fsmtest_call(x, "DescribeJob", &w.t, "JobIDs", job, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Success");
    assert_string_equal(fsmtest_info_str(x, 0, "ResourceID"), d);
    /* a disk in use is not deleted */
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", d, NULL),
                     YH_ESTATE);

    /* detach: still bound to v until the executor confirms */
    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", d, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Detaching");
    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", d, NULL),
                     0); /* idempotent */
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d, "VMID", v2, NULL),
        YH_ESTATE);
    assert_int_equal(report(x, &w.agent, d, "Detached"), 0);
    assert_string_equal(DISK_STR(d, "State"), "Available");
    assert_string_equal(DISK_STR(d, "VMID"), "");
    index_matches(x, v);
    /* now free for the other machine; an executor failure shows */
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d, "VMID", v2, NULL), 0);
    assert_int_equal(report(x, &w.agent, d, "Error"), 0);
    assert_string_equal(DISK_STR(d, "State"), "Error");

    /* purging a machine detaches its disks */
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d2, "VMID", v, NULL), 0);
    assert_int_equal(report(x, &w.agent, d2, "Attached"), 0);
    assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", v, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", v, NULL), 0);
    assert_string_equal(DISK_STR(d2, "State"), "Available");
    assert_string_equal(DISK_STR(d2, "VMID"), "");
    index_matches(x, v);
    index_matches(x, v2);
}

/* ---- snapshots ---- */

static void snapshots(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char d[FSM_ID_SIZE], v[FSM_ID_SIZE], s1[FSM_ID_SIZE], s2[FSM_ID_SIZE];
    struct fsmtest_tick tc;
    int charged = 0;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                     "ResourceType", "Snapshot", "Limit", "2", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "Snapshot",
                     "ChargeType", "Dynamic", "Price", "7", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period", "10", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                     "1000", "FromType", "Bank", "SerialNo", "s1", NULL),
        0);
    disk(x, &w.t, w.z, "10", d);
    vm(x, &w, &w.t, v);

    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.u, "DiskID", d, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d,
                                  "Name", "before", NULL),
                     0);
    str_of(x, "SnapshotID", s1);
    assert_true(strncmp(s1, "snap-", 5) == 0);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     0);
    str_of(x, "SnapshotID", s2);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     YH_EQUOTA);
    assert_int_equal(fsmtest_call(x, "DescribeQuota", &w.t, NULL), 0);
    /* isolation and the filter */
    assert_int_equal(fsmtest_call(x, "DescribeSnapshot", &w.u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.t, "DiskID", d, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "Name"), "before");
    assert_int_equal(fsmtest_info_int(x, 0, "Size"), 10);
    assert_string_equal(fsmtest_info_str(x, 0, "ChargeType"), "Dynamic");
    assert_true(fsmtest_info_int(x, 0, "Revision") > 0);

    /* billed by the period */
    x->time += 30 * SEC;
    fsmtest_tick(x, &tc);
    assert_int_equal(
        fsmtest_call(x, "DescribeTransaction", &w.t, "ResourceID", s1, NULL),
        0);
    charged = (int)fsmtest_res_int(x, "TotalCount");
    assert_true(charged >= 1);
    assert_int_equal(fsmtest_info_int(x, 0, "Amount"), -7);

    /* rollback: not while attached to a running machine */
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d, "VMID", v, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.t, "SnapshotID", s1, NULL),
        YH_ESTATE); /* Attaching */
    assert_int_equal(report(x, &w.agent, d, "Attached"), 0);
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.t, "SnapshotID", s1, NULL),
        YH_ESTATE); /* its machine runs */
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.u, "SnapshotID", s1, NULL),
        YH_ENOTFOUND);
    stop_vm(x, &w, v);
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.t, "SnapshotID", s1, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "RollingBack");
    assert_string_equal(DISK_STR(d, "RollbackSnapshotID"), s1);
    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", d, NULL),
                     YH_ESTATE);
    assert_int_equal(report(x, &w.agent, d, "Attached"), 0);
    assert_string_equal(DISK_STR(d, "State"), "InUse");
    /* detached: rollback allowed */
    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", d, NULL), 0);
    assert_int_equal(report(x, &w.agent, d, "Detached"), 0);
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.t, "SnapshotID", s2, NULL), 0);

    /* a disk with snapshots is not deleted; a deleted snapshot is gone
     * from the list, in the recycle bin, and frees its quota when purged */
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", d, NULL),
                     YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "DeleteSnapshot", &w.t, "SnapshotID", s1, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteSnapshot", &w.t, "SnapshotID", s1, NULL),
        YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.t, "DiskID", d, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     YH_EQUOTA);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", s1, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     0);
}

/* ---- clones and custom images ---- */

static void clones_and_images(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char d[FSM_ID_SIZE], c1[FSM_ID_SIZE], c2[FSM_ID_SIZE], s[FSM_ID_SIZE];
    char v[FSM_ID_SIZE], img[FSM_ID_SIZE];

    world(x, &w);
    disk(x, &w.t, w.z, "40", d);
    assert_int_equal(fsmtest_call(x, "CloneDisk", &w.t, NULL), YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CloneDisk", &w.u, "SourceID", d, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "CloneDisk", &w.t, "SourceID", d, "Name", "copy", NULL),
        0);
    str_of(x, "DiskID", c1);
    assert_string_equal(DISK_STR(c1, "SourceID"), d);
    assert_string_equal(DISK_STR(c1, "ZoneID"), w.z);
    assert_string_equal(DISK_STR(c1, "SetType"), "SSD");
    assert_int_equal(DISK_INT(c1, "Size"), 40);
    assert_string_equal(DISK_STR(c1, "TenantID"), w.tid);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     0);
    str_of(x, "SnapshotID", s);
    assert_int_equal(fsmtest_call(x, "CloneDisk", &w.t, "SourceID", s, NULL),
                     0);
    str_of(x, "DiskID", c2);
    assert_string_equal(DISK_STR(c2, "SourceID"), s);
    /* each clone takes 40 GB of the 250: the fifth disk does not fit */
    assert_int_equal(fsmtest_call(x, "CloneDisk", &w.t, "SourceID", s, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CloneDisk", &w.t, "SourceID", s, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CloneDisk", &w.t, "SourceID", s, NULL),
                     YH_ECAPACITY);

    /* custom image from a stopped machine's boot disk */
    vm(x, &w, &w.t, v);
    assert_int_equal(fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", v,
                                  "Name", "golden", NULL),
                     YH_ESTATE);
    stop_vm(x, &w, v);
    assert_int_equal(
        fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", v, NULL),
        YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                                  "ResourceType", "Image", "Limit", "1", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", v,
                                  "Name", "golden", NULL),
                     0);
    str_of(x, "ImageID", img);
    assert_int_equal(fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", v,
                                  "Name", "golden2", NULL),
                     YH_EQUOTA);
    assert_int_equal(
        fsmtest_call(x, "DescribeImage", &w.t, "ImageIDs", img, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "ImageType"), "Custom");
    assert_string_equal(fsmtest_info_str(x, 0, "SourceVMID"), v);
    assert_int_equal(fsmtest_info_int(x, 0, "Size"), 10);
    /* other tenants neither see nor boot it */
    assert_int_equal(fsmtest_call(x, "DescribeImage", &w.u, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1); /* the base one */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.u, "ZoneID", w.z, "ImageID", img,
                     "CPU", "1", "Memory", "1024", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", img,
                     "CPU", "1", "Memory", "1024", NULL),
        0);
}

/* ---- determinism: a random stream of storage commands ---- */

static void determinism(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct world w;
    char id[FSM_ID_SIZE], v[2][FSM_ID_SIZE], a[32];
    uint64_t s = 0x452821e638d01377ull;
    char *dump1;

    x->log = fsmtest_log_new(3000);
    /* y gets x's history from the bootstrap on */
    {
        struct yh_buf bb = YH_BUF_INIT, res = YH_BUF_INIT;
        uint64_t tag;
        int skipped;
        assert_int_equal(fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0,
                                           FSMTEST_T0, &bb),
                         0);
        assert_int_equal(
            fsm_apply(y->f, 1, bb.data, bb.len, &res, NULL, &tag, &skipped), 0);
        yh_buf_release(&bb);
        yh_buf_release(&res);
    }
    world(x, &w);
    fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "Snapshot", "ChargeType",
                 "Dynamic", "Price", "1", NULL);
    fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period", "5",
                 "RecycleAfter", "20", "Retention", "20", NULL);
    fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount", "100000",
                 "FromType", "Bank", "SerialNo", "s", NULL);
    for (int i = 0; i < 2; i++) {
        vm(x, &w, &w.t, v[i]);
    }
    for (unsigned i = 0; i < 400; i++) {
        const struct fsm_actor *who = fsmtest_rnd(&s) % 4 ? &w.t : &w.u;
        unsigned n = (unsigned)(1 + fsmtest_rnd(&s) % 12);
        snprintf(a, sizeof a, "%u", 5 + n * 3);
        switch (fsmtest_rnd(&s) % 12) {
        case 0:
            fsmtest_call(x, "CreateDisk", who, "ZoneID", w.z, "Size", a,
                         "SetType", "SSD", NULL);
            break;
        case 1:
            snprintf(id, sizeof id, "bsi-%08u", n);
            fsmtest_call(x, "AttachDisk", who, "DiskID", id, "VMID",
                         v[fsmtest_rnd(&s) % 2], NULL);
            break;
        case 2:
            snprintf(id, sizeof id, "bsi-%08u", n);
            fsmtest_call(x, "DetachDisk", who, "DiskID", id, NULL);
            break;
        case 3:
        case 4:
            snprintf(id, sizeof id, "bsi-%08u", n);
            if (fsmtest_call(x, "DescribeDisk", &x->admin, "DiskIDs", id,
                             NULL) == 0 &&
                fsmtest_n_infos(x) == 1) {
                const char *st[] = {"Attached", "Detached", "Error"};
                char gen[24];
                char want[16];
                /* mostly a well-behaved executor; sometimes late or
                 * failing */
                snprintf(gen, sizeof gen, "%lld",
                         (long long)fsmtest_info_int(x, 0, "Generation") -
                             (long long)(fsmtest_rnd(&s) % 4 == 0));
                snprintf(want, sizeof want, "%s",
                         fsmtest_rnd(&s) % 4
                             ? fsmtest_info_str(x, 0, "DesiredAttach")
                             : st[fsmtest_rnd(&s) % 3]);
                fsmtest_call(x, "ReportState", &w.agent, "ResourceID", id,
                             "State", want, "Generation", gen, NULL);
            }
            break;
        case 5:
            snprintf(id, sizeof id, "bsi-%08u", n);
            fsmtest_call(x, "CreateSnapshot", who, "DiskID", id, NULL);
            break;
        case 6:
            snprintf(id, sizeof id, "snap-%08u", n);
            fsmtest_call(
                x, fsmtest_rnd(&s) % 2 ? "RollbackSnapshot" : "DeleteSnapshot",
                who, "SnapshotID", id, NULL);
            break;
        case 7:
            snprintf(id, sizeof id, "%s-%08u",
                     fsmtest_rnd(&s) % 2 ? "bsi" : "snap", n);
            fsmtest_call(x, "CloneDisk", who, "SourceID", id, NULL);
            break;
        case 8:
            snprintf(id, sizeof id, "bsi-%08u", n);
            fsmtest_call(x, fsmtest_rnd(&s) % 2 ? "DeleteDisk" : "ResizeDisk",
                         who, "DiskID", id, "Size", "60", NULL);
            break;
        case 9:
            fsmtest_call(
                x, fsmtest_rnd(&s) % 2 ? "StopVMInstance" : "StartVMInstance",
                &w.t, "VMID", v[n % 2], NULL);
            report(x, &w.agent, v[n % 2],
                   fsmtest_rnd(&s) % 3 ? VM_STR(v[n % 2], "DesiredState")
                                       : "Running");
            break;
        case 10:
            fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", v[n % 2], "Name",
                         "i", NULL);
            break;
        default:
            x->time += (1 + fsmtest_rnd(&s) % 6) * SEC;
            fsmtest_call(x, "HostHeartbeat", &w.agent, NULL);
            assert_int_equal(
                fsm_leader_tick(x->f, x->time, fsmtest_tick_apply_cb, x), 0);
            break;
        }
        if (fsmtest_rnd(&s) % 10 == 0) {
            assert_int_equal(fsm_flush(x->f), 0);
        }
    }
    assert_true(x->log->n > 300);
    fsmtest_replay(y->f, x->log, 11, 0);
    dump1 = fsmtest_assert_same(x->f, y->f);
    /* the stream reached the interesting paths */
    if (getenv("YH_TEST_DUMP") != NULL) {
        fputs(dump1, stderr);
    }
    assert_non_null(
        strstr(dump1, "\"Action\": \"AttachDisk\", \"State\": \"Success\""));
    assert_non_null(
        strstr(dump1, "\"Action\": \"DetachDisk\", \"State\": \"Success\""));
    assert_non_null(strstr(dump1, "\"Action\": \"RollbackSnapshot\""));
    assert_non_null(strstr(dump1, "\"SourceID\": \"snap-"));
    assert_non_null(strstr(dump1, "\"ImageType\": \"Custom\""));
    assert_non_null(strstr(dump1, "\"RetCode\": 172"));
    assert_non_null(strstr(dump1, "\"RetCode\": 162"));
    /* and a snapshot of the store restores to the same state */
    fsmtest_assert_restores(x->f, dump1);
    free(dump1);
    fsmtest_free(y);
}

/* ---- boot disks ---- */

/* Used of quota type @type for @a (0 when not listed). */
static int64_t quota_used(struct fsmtest *x,
                          const struct fsm_actor *a,
                          const char *type)
{
    assert_int_equal(fsmtest_call(x, "DescribeQuota", a, NULL), 0);
    for (unsigned i = 0; i < fsmtest_n_infos(x); i++) {
        if (strcmp(fsmtest_info_str(x, i, "ResourceType"), type) == 0) {
            return fsmtest_info_int(x, i, "Used");
        }
    }
    return 0;
}

static int64_t balance(struct fsmtest *x, const struct fsm_actor *a)
{
    assert_int_equal(fsmtest_call(x, "DescribeBalance", a, NULL), 0);
    return fsmtest_res_int(x, "Balance");
}

static void boot_disks(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm1[FSM_ID_SIZE], vm2[FSM_ID_SIZE], boot[FSM_ID_SIZE];
    char boot2[FSM_ID_SIZE], std[FSM_ID_SIZE], snap[FSM_ID_SIZE];
    char host[FSM_ID_SIZE];
    struct yh_buf spec = YH_BUF_INIT;
    struct fsmtest_tick tc;
    int64_t bal;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "DescribeStoragePool", &x->admin, "ZoneID", w.z, NULL),
        0);
    snprintf(std, sizeof std, "%s", fsmtest_info_str(x, 2, "PoolID"));
    assert_string_equal(fsmtest_info_str(x, 2, "SetType"), "Standard");
    /* the boot disk is priced with the machine (Disk per GB per month) */
    assert_int_equal(fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "Disk",
                                  "ChargeType", "Month", "Price", "30", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                     "10000", "FromType", "Bank", "SerialNo", "b1", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "ChargeType", "Month", NULL),
                     0);
    str_of(x, "VMID", vm1);
    str_of(x, "BootDiskID", boot);
    assert_int_equal(strncmp(boot, "bsi-", 4), 0);
    assert_int_equal(balance(x, &w.t), 10000 - 10 * 30);
    assert_int_equal(report(x, &w.agent, vm1, "Running"), 0);
    assert_string_equal(VM_STR(vm1, "BootDiskID"), boot);
    /* a disk resource: described with its machine, in a Standard pool */
    assert_int_equal(DISK_INT(boot, "Boot"), 1);
    assert_string_equal(DISK_STR(boot, "VMID"), vm1);
    assert_string_equal(DISK_STR(boot, "State"), "InUse");
    assert_string_equal(DISK_STR(boot, "SetType"), "Standard");
    assert_string_equal(DISK_STR(boot, "PoolID"), std);
    assert_string_equal(DISK_STR(boot, "ImageID"), w.img);
    assert_string_equal(DISK_STR(boot, "TenantID"), w.tid);
    assert_int_equal(DISK_INT(boot, "Size"), 10);
    assert_string_equal(DISK_STR(boot, "ChargeType"), ""); /* the VM pays */
    assert_int_equal(
        fsmtest_call(x, "DescribeDisk", &w.u, "DiskIDs.0", boot, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0); /* another tenant */
    /* counted: quotas and the pool */
    assert_int_equal(quota_used(x, &w.t, "Disk"), 1);
    assert_int_equal(quota_used(x, &w.t, "DiskGB:Standard"), 10);
    assert_int_equal(POOL_INT(std, "Used"), 10);
    assert_int_equal(POOL_INT(std, "DiskCount"), 1);
    /* streamed to the machine's host like an attached disk */
    assert_int_equal(fsm_host_spec(x->f, boot, host, &spec), 0);
    assert_string_equal(host, w.host);
    yh_buf_release(&spec);
    /* no pool of the set type, or no quota left: no machine */
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "BootDiskSetType", "HDD", NULL),
                     YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "HDD storage pool"));
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                                  "ResourceType", "Disk", "Limit", "1", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        YH_EQUOTA);
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                                  "ResourceType", "Disk", "Limit", "-1", NULL),
                     0);
    /* never on its own */
    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", boot, NULL),
                     YH_ESTATE);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "boot disk"));
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", boot, NULL),
                     YH_ESTATE);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "boot disk"));
    vm(x, &w, &w.t, vm2);
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", boot, "VMID", vm2, NULL),
        YH_ESTATE);
    /* grows only; the machine is re-priced for the month left */
    assert_int_equal(
        fsmtest_call(x, "ResizeDisk", &w.t, "DiskID", boot, "Size", "10", NULL),
        YH_EINVAL);
    bal = balance(x, &w.t);
    assert_int_equal(
        fsmtest_call(x, "ResizeDisk", &w.t, "DiskID", boot, "Size", "20", NULL),
        0);
    assert_true(balance(x, &w.t) < bal && balance(x, &w.t) >= bal - 300);
    assert_int_equal(fsmtest_call(x, "DescribeOrder", &w.t, "ResourceID", vm1,
                                  "OrderType", "Resize", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(DISK_INT(boot, "Size"), 20);
    assert_int_equal(field_int(x, &x->admin, "DescribeVMInstance", "VMIDs", vm1,
                               "BootDiskSpace"),
                     20);
    assert_int_equal(quota_used(x, &w.t, "DiskGB:Standard"), 30);
    assert_int_equal(POOL_INT(std, "Used"), 30);
    /* snapshots; a rollback only while the machine is stopped */
    assert_int_equal(
        fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", boot, NULL), 0);
    str_of(x, "SnapshotID", snap);
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.t, "SnapshotID", snap, NULL),
        YH_ESTATE);
    stop_vm(x, &w, vm1);
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.t, "SnapshotID", snap, NULL), 0);
    assert_string_equal(DISK_STR(boot, "State"), "RollingBack");
    assert_int_equal(report(x, &w.agent, boot, "Detached"), YH_EINVAL);
    assert_int_equal(report(x, &w.agent, boot, "Attached"), 0);
    assert_string_equal(DISK_STR(boot, "State"), "InUse");
    /* to the recycle bin and back with its machine */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm1, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeDisk", &w.t, "DiskIDs.0", boot, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1); /* the machine */
    assert_string_equal(fsmtest_info_str(x, 0, "VMID"), vm1);
    assert_int_equal(
        fsmtest_call(x, "RecoverResource", &w.t, "ResourceID", boot, NULL),
        YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", boot, NULL),
        YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "RecoverResource", &w.t, "ResourceID", vm1, NULL), 0);
    assert_string_equal(DISK_STR(boot, "State"), "InUse");
    /* purged with it: usage and room released */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm1, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", vm1, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeDisk", &x->admin, "DiskIDs.0", boot, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(quota_used(x, &w.t, "Disk"), 1); /* vm2's */
    assert_int_equal(quota_used(x, &w.t, "DiskGB:Standard"), 10);
    assert_int_equal(POOL_INT(std, "Used"), 10);
    assert_int_equal(POOL_INT(std, "DiskCount"), 1);
    assert_int_equal(fsm_host_spec(x->f, boot, host, &spec), YH_ENOTFOUND);
    /* its snapshot went with it (snapshots_purged below) */
    assert_int_equal(fsmtest_call(x, "DescribeSnapshot", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), 0);
    /* billing: past its expiry a machine is stopped, recycled and purged
     * by the leader's commands, its boot disk with it */
    assert_int_equal(
        fsmtest_call(x, "ModifyBillingConfig", &x->admin, "MonthLength", "10",
                     "GracePeriod", "1", "RecycleAfter", "5", "Retention", "5",
                     "HostLease", "100000", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "ChargeType", "Month", NULL),
                     0);
    str_of(x, "VMID", vm1);
    str_of(x, "BootDiskID", boot2);
    assert_int_equal(quota_used(x, &w.t, "Disk"), 2);
    x->time += 12 * SEC;
    assert_true(fsmtest_tick(x, &tc) >= 1);
    assert_string_equal(VM_STR(vm1, "SuspendReason"), "Expired");
    assert_string_equal(DISK_STR(boot2, "State"), "InUse");
    x->time += 6 * SEC;
    assert_true(fsmtest_tick(x, &tc) >= 1);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "VMID"), vm1);
    assert_int_equal(
        fsmtest_call(x, "DescribeDisk", &w.t, "DiskIDs.0", boot2, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0); /* recycled */
    assert_int_equal(quota_used(x, &w.t, "Disk"), 2);
    x->time += 6 * SEC;
    assert_true(fsmtest_tick(x, &tc) >= 1);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(quota_used(x, &w.t, "Disk"), 1);
    assert_int_equal(POOL_INT(std, "DiskCount"), 1);
    assert_int_equal(fsm_host_spec(x->f, boot2, host, &spec), YH_ENOTFOUND);
    assert_string_equal(DISK_STR(VM_STR(vm2, "BootDiskID"), "State"), "InUse");
    yh_buf_release(&spec);
}

/* ---- a purged disk's snapshots ---- */

/* Whether @key is a row of table @t. */
static int has_row(struct fsmtest *x, enum fsm_tbl t, const void *key, size_t n)
{
    MDB_txn *txn;
    MDB_val v;
    int rc;

    assert_int_equal(fsm__rtxn_begin(x->f, &txn), 0);
    rc = fsm__get(x->f, txn, t, key, n, &v);
    fsm__rtxn_end(x->f, txn);
    assert_true(rc == 0 || rc == YH_ENOTFOUND);
    return rc == 0;
}

/* Snapshot @id is gone for good: no record, no row of the tenant's
 * index or of the listed index, not in the recycle bin. */
static void snap_gone(struct fsmtest *x, const struct world *w, const char *id)
{
    char key[2 * FSM_ID_SIZE + 2];
    size_t n;

    assert_false(has_row(x, FSM_TBL_RES, id, strlen(id)));
    n = fsm__key2(key, w->tid, id);
    assert_false(has_row(x, FSM_TBL_TENANT_RES, key, n));
    key[0] = 'L';
    snprintf(key + 1, sizeof key - 1, "%s", id);
    assert_false(has_row(x, FSM_TBL_RES_LIST, key, 1 + strlen(id)));
    assert_int_equal(fsmtest_call(x, "DescribeSnapshot", &x->admin,
                                  "SnapshotIDs.0", id, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(
        fsmtest_call(x, "RecoverResource", &w->t, "ResourceID", id, NULL),
        YH_ENOTFOUND);
}

/* Charges of resource @id so far. */
static int64_t charges(struct fsmtest *x, const char *id)
{
    assert_int_equal(fsmtest_call(x, "DescribeTransaction", &x->admin,
                                  "ResourceID", id, "Limit", "100", NULL),
                     0);
    return fsmtest_res_int(x, "TotalCount");
}

/* The array @key of the newest oplog record of @action about @id, as
 * "a,b,c". */
static void oplog_list(struct fsmtest *x,
                       const char *action,
                       const char *id,
                       const char *key,
                       char *out,
                       size_t size)
{
    const msgpack_object *l;
    size_t o = 0;

    assert_int_equal(fsmtest_call(x, "DescribeOperationLog", &x->admin,
                                  "Action", action, "ResourceID", id, NULL),
                     0);
    assert_true(fsmtest_n_infos(x) >= 1);
    out[0] = '\0';
    l = yh_mp_get(fsmtest_info(x, 0), key);
    if (l == NULL) {
        return;
    }
    assert_int_equal(l->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < l->via.array.size; i++) {
        const msgpack_object *v = &l->via.array.ptr[i];
        assert_int_equal(v->type, MSGPACK_OBJECT_STR);
        o += (size_t)snprintf(out + o, size - o, "%s%.*s", i ? "," : "",
                              (int)v->via.str.size, v->via.str.ptr);
        assert_true(o < size);
    }
}

static void snapshots_purged(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char d[FSM_ID_SIZE], d2[FSM_ID_SIZE], s1[FSM_ID_SIZE], s2[FSM_ID_SIZE];
    char s3[FSM_ID_SIZE], v[FSM_ID_SIZE], b[FSM_ID_SIZE], b1[FSM_ID_SIZE];
    char b2[FSM_ID_SIZE], list[512], want[512], d3[FSM_ID_SIZE];
    char s4[FSM_ID_SIZE], v3[FSM_ID_SIZE];
    struct yh_buf spec = YH_BUF_INIT;
    char host[FSM_ID_SIZE];
    struct fsmtest_tick tc;
    int64_t used0, n1;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "Snapshot",
                     "ChargeType", "Dynamic", "Price", "7", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period", "10",
                     "MonthLength", "40", "GracePeriod", "1", "RecycleAfter",
                     "5", "Retention", "100000", "HostLease", "100000", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                     "100000", "FromType", "Bank", "SerialNo", "p1", NULL),
        0);
    used0 = quota_used(x, &w.t, "Snapshot");
    assert_int_equal(used0, 0);

    /* a data disk (prepaid for a "month" of 40 s) with two snapshots, one
     * of them already in the recycle bin; another disk's snapshot */
    assert_int_equal(
        fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", w.z, "Size", "10",
                     "SetType", "SSD", "ChargeType", "Month", NULL),
        0);
    str_of(x, "DiskID", d);
    disk(x, &w.t, w.z, "10", d2);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     0);
    str_of(x, "SnapshotID", s1);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     0);
    str_of(x, "SnapshotID", s2);
    assert_int_equal(
        fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d2, NULL), 0);
    str_of(x, "SnapshotID", s3);
    assert_int_equal(
        fsmtest_call(x, "DeleteSnapshot", &w.t, "SnapshotID", s2, NULL), 0);
    /* and a prepaid disk attached to a machine, with a snapshot */
    vm(x, &w, &w.t, v3);
    assert_int_equal(
        fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", w.z, "Size", "10",
                     "SetType", "SSD", "ChargeType", "Month", NULL),
        0);
    str_of(x, "DiskID", d3);
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d3, "VMID", v3, NULL), 0);
    assert_int_equal(report(x, &w.agent, d3, "Attached"), 0);
    assert_int_equal(
        fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d3, NULL), 0);
    str_of(x, "SnapshotID", s4);
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), 4);
    /* a disk with snapshots is still not deleted on its own request */
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", d, NULL),
                     YH_ESTATE);

    /* expired: billing stops it and moves it to the recycle bin (the
     * attached one once its executor detached it); their snapshots stay
     * (a recovery would find them) and are billed */
    x->time += 42 * SEC;
    fsmtest_tick(x, &tc);
    assert_string_equal(DISK_STR(d, "SuspendReason"), "Expired");
    x->time += 6 * SEC;
    fsmtest_tick(x, &tc);
    assert_string_equal(DISK_STR(d3, "State"), "Detaching");
    assert_int_equal(report(x, &w.agent, d3, "Detached"), 0);
    fsmtest_tick(x, &tc);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 3); /* d, d3, s2 */
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.t, "DiskID", d, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "SnapshotID"), s1);
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), 4);
    n1 = charges(x, s1);
    assert_true(n1 >= 4);

    /* purged for good: both snapshots go in the same command */
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", d, NULL), 0);
    snap_gone(x, &w, s1);
    snap_gone(x, &w, s2);
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), 2); /* s3, s4 */
    assert_int_equal(fsmtest_call(x, "DescribeSnapshot", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "SnapshotID"), s3);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1); /* d3 */
    /* recorded: the purge's oplog record lists them (and is found by
     * their IDs); a detached disk concerns no host: no Gone */
    snprintf(want, sizeof want, "%s,%s", s1, s2);
    oplog_list(x, "PurgeResource", d, "Purged", list, sizeof list);
    assert_string_equal(list, want);
    oplog_list(x, "PurgeResource", s2, "Purged", list, sizeof list);
    assert_string_equal(list, want);
    oplog_list(x, "PurgeResource", d, "Gone", list, sizeof list);
    assert_string_equal(list, "");
    /* the one that was attached: billing detached it before recycling
     * it, so it concerns no host either */
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", d3, NULL), 0);
    snap_gone(x, &w, s4);
    oplog_list(x, "PurgeResource", d3, "Purged", list, sizeof list);
    assert_string_equal(list, s4);
    oplog_list(x, "PurgeResource", s4, "Gone", list, sizeof list);
    assert_string_equal(list, "");
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), 1); /* s3 */
    /* their billing stopped with them, the other one's goes on */
    x->time += 30 * SEC;
    fsmtest_tick(x, &tc);
    assert_int_equal(charges(x, s1), n1);
    assert_true(charges(x, s3) > n1);
    /* a charge proposed before the purge is a harmless rejection */
    {
        struct yh_buf args = YH_BUF_INIT, env = YH_BUF_INIT;
        struct fsm_out o;
        fsm__out_init(&o, &args);
        msgpack_pack_map(&o.pk, 3);
        yh_mp_pack_kv_str(&o.pk, "ResourceID", s1);
        yh_mp_pack_kv_int(&o.pk, "Epoch", 0);
        yh_mp_pack_kv_int(&o.pk, "Period", n1 + 1);
        assert_int_equal(
            fsm__cmd_internal("_BillCharge", &x->admin, x->time, &args, &env),
            0);
        assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ENOTFOUND);
        yh_buf_release(&args);
        yh_buf_release(&env);
    }
    assert_int_equal(charges(x, s1), n1);

    /* a machine's boot disk: its snapshots survive the recycle bin and a
     * recovery, and go with the machine's purge */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        0);
    str_of(x, "VMID", v);
    str_of(x, "BootDiskID", b);
    assert_int_equal(report(x, &w.agent, v, "Running"), 0);
    used0 = quota_used(x, &w.t, "Snapshot");
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", b, NULL),
                     0);
    str_of(x, "SnapshotID", b1);
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", b, NULL),
                     0);
    str_of(x, "SnapshotID", b2);
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), used0 + 2);
    assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", v, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.t, "DiskID", b, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(
        fsmtest_call(x, "RecoverResource", &w.t, "ResourceID", v, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.t, "DiskID", b, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 2);
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), used0 + 2);
    /* recovered, they still roll the disk back */
    stop_vm(x, &w, v);
    assert_int_equal(
        fsmtest_call(x, "RollbackSnapshot", &w.t, "SnapshotID", b1, NULL), 0);
    assert_int_equal(report(x, &w.agent, b, "Attached"), 0);
    assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", v, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", v, NULL), 0);
    snap_gone(x, &w, b1);
    snap_gone(x, &w, b2);
    assert_false(has_row(x, FSM_TBL_RES, b, strlen(b)));
    assert_int_equal(quota_used(x, &w.t, "Snapshot"), used0);
    /* listed with the boot disk, after its snapshots; the machine's host
     * is in Gone: it gets a tombstone for each (docs/api.md) */
    snprintf(want, sizeof want, "%s,%s,%s", b1, b2, b);
    oplog_list(x, "PurgeResource", v, "Purged", list, sizeof list);
    assert_string_equal(list, want);
    oplog_list(x, "PurgeResource", b2, "Gone", list, sizeof list);
    assert_string_equal(list, w.host);
    assert_int_equal(fsm_host_spec(x->f, b, host, &spec), YH_ENOTFOUND);
    /* the other snapshot is untouched */
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.t, "SnapshotIDs.0", s3, NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    yh_buf_release(&spec);
}

/* ---- snapshots by disk ---- */

/* The "S" rows of 'res_list' are exactly the (disk, snapshot) pairs the
 * snapshot records name, recycled ones included: every row's snapshot
 * exists and names that disk, and there are as many rows as records.
 * Returns the number of rows. */
static size_t snap_index_exact(struct fsmtest *x)
{
    size_t rows = 0, recs = 0;
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    int rc;

    assert_int_equal(fsm__rtxn_begin(x->f, &txn), 0);
    fsm__rec_init(&r);
    assert_int_equal(mdb_cursor_open(txn, x->f->dbis[FSM_TBL_RES_LIST], &cur),
                     0);
    k.mv_data = "S";
    k.mv_size = 1;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && ((const char *)k.mv_data)[0] == 'S';
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *key = k.mv_data;
        const char *nul = memchr(key, '\0', k.mv_size);
        char disk[FSM_ID_SIZE], snap[FSM_ID_SIZE];
        assert_non_null(nul);
        snprintf(disk, sizeof disk, "%.*s", (int)(nul - key - 1), key + 1);
        snprintf(snap, sizeof snap, "%.*s",
                 (int)(k.mv_size - (size_t)(nul - key) - 1), nul + 1);
        assert_int_equal(
            fsm__rec_load(x->f, txn, FSM_TBL_RES, snap, strlen(snap), &r), 0);
        assert_string_equal(fsm__rec_s(&r, "DiskID"), disk);
        rows++;
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_cursor_open(txn, x->f->dbis[FSM_TBL_RES], &cur), 0);
    k.mv_data = "snap-";
    k.mv_size = 5;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > 5 && memcmp(k.mv_data, "snap-", 5) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        recs++;
    }
    mdb_cursor_close(cur);
    fsm__rec_free(&r);
    fsm__rtxn_end(x->f, txn);
    assert_int_equal(rows, recs);
    return rows;
}

static int count_one(void *arg, const char *id)
{
    (void)id;
    ++*(unsigned *)arg;
    return 0;
}

/* How many snapshots the walk of disk @d's rows finds. */
static unsigned disk_snaps(struct fsmtest *x, const char *d)
{
    unsigned n = 0;
    MDB_txn *txn;

    assert_int_equal(fsm__rtxn_begin(x->f, &txn), 0);
    assert_int_equal(fsm__disk_snap_walk(x->f, txn, d, count_one, &n), 0);
    fsm__rtxn_end(x->f, txn);
    return n;
}

#define N_DISKS 20
#define SNAPS_EACH 50 /* N_DISKS * SNAPS_EACH other snapshots */

static void snapshots_by_disk(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char others[N_DISKS][FSM_ID_SIZE], d[FSM_ID_SIZE], v[FSM_ID_SIZE];
    char b[FSM_ID_SIZE], s[4][FSM_ID_SIZE], bs[2][FSM_ID_SIZE];
    char list[256], want[256];
    uint64_t r0;

    world(x, &w);
    /* 1,000 snapshots of other disks */
    for (int i = 0; i < N_DISKS; i++) {
        disk(x, &w.t, w.z, "1", others[i]);
        for (int j = 0; j < SNAPS_EACH; j++) {
            assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID",
                                          others[i], NULL),
                             0);
        }
    }
    assert_int_equal(snap_index_exact(x), N_DISKS * SNAPS_EACH);
    assert_int_equal(disk_snaps(x, others[7]), SNAPS_EACH);
    /* the per-disk limit (64) is counted from the disk's rows */
    disk(x, &w.t, w.z, "1", d);
    for (int j = 0; j < 3; j++) {
        assert_int_equal(
            fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL), 0);
        str_of(x, "SnapshotID", s[j]);
    }
    r0 = x->f->stat_disk_snap_reads;
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     0);
    str_of(x, "SnapshotID", s[3]);
    assert_int_equal(x->f->stat_disk_snap_reads - r0, 3); /* not 1,003 */
    assert_int_equal(disk_snaps(x, d), 4);
    /* DescribeSnapshot by DiskID reads the disk's 4 rows, not a scan, for
     * the tenant and for the administrator; another tenant sees none */
    r0 = x->f->stat_disk_snap_reads;
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.t, "DiskID", d, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 4);
    assert_int_equal(x->f->stat_disk_snap_reads - r0, 4);
    assert_int_equal(fsmtest_call(x, "DescribeSnapshot", &x->admin, "DiskID", d,
                                  "Offset", "1", "Limit", "2", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 4);
    assert_string_equal(fsmtest_info_str(x, 0, "SnapshotID"), s[1]);
    assert_string_equal(fsmtest_info_str(x, 1, "SnapshotID"), s[2]);
    assert_int_equal(x->f->stat_disk_snap_reads - r0, 8);
    assert_int_equal(
        fsmtest_call(x, "DescribeSnapshot", &w.u, "DiskID", d, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* DeleteDisk's check reads the disk's 4, then refuses */
    r0 = x->f->stat_disk_snap_reads;
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", d, NULL),
                     YH_ESTATE);
    assert_int_equal(x->f->stat_disk_snap_reads - r0, 4);
    /* a snapshot in the recycle bin keeps its row; its purge drops it */
    for (int j = 0; j < 4; j++) {
        assert_int_equal(
            fsmtest_call(x, "DeleteSnapshot", &w.t, "SnapshotID", s[j], NULL),
            0);
    }
    assert_int_equal(disk_snaps(x, d), 4);
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", d, NULL),
                     YH_ESTATE);
    for (int j = 0; j < 4; j++) {
        assert_int_equal(
            fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", s[j], NULL),
            0);
    }
    assert_int_equal(disk_snaps(x, d), 0);
    r0 = x->f->stat_disk_snap_reads;
    assert_int_equal(fsmtest_call(x, "DeleteDisk", &w.t, "DiskID", d, NULL), 0);
    assert_int_equal(x->f->stat_disk_snap_reads - r0, 0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", d, NULL), 0);
    assert_int_equal(x->f->stat_disk_snap_reads - r0, 0);

    /* a machine's purge takes its boot disk's 2 snapshots, reading 2 */
    vm(x, &w, &w.t, v);
    assert_int_equal(
        fsmtest_call(x, "DescribeVMInstance", &w.t, "VMIDs.0", v, NULL), 0);
    snprintf(b, sizeof b, "%s", fsmtest_info_str(x, 0, "BootDiskID"));
    assert_true(b[0] != '\0');
    for (int j = 0; j < 2; j++) {
        assert_int_equal(
            fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", b, NULL), 0);
        str_of(x, "SnapshotID", bs[j]);
    }
    assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", v, NULL),
                     0);
    r0 = x->f->stat_disk_snap_reads;
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", v, NULL), 0);
    assert_int_equal(x->f->stat_disk_snap_reads - r0, 2);
    snprintf(want, sizeof want, "%s,%s,%s", bs[0], bs[1], b);
    oplog_list(x, "PurgeResource", v, "Purged", list, sizeof list);
    assert_string_equal(list, want);
    snap_gone(x, &w, bs[0]);
    snap_gone(x, &w, bs[1]);
    assert_int_equal(disk_snaps(x, b), 0);
    /* the others are untouched, the index still exact */
    assert_int_equal(snap_index_exact(x), N_DISKS * SNAPS_EACH);
    for (int i = 0; i < N_DISKS; i++) {
        assert_int_equal(disk_snaps(x, others[i]), SNAPS_EACH);
    }
}

/* ---- purged by the billing timer: the same tombstones ---- */

/* A prepaid machine with a snapshot of its boot disk, and a prepaid data
 * disk detached with a snapshot; their IDs. */
struct billed
{
    char vm[FSM_ID_SIZE], boot[FSM_ID_SIZE], bsnap[FSM_ID_SIZE];
    char disk[FSM_ID_SIZE], dsnap[FSM_ID_SIZE];
};

static void billed(struct fsmtest *x, struct world *w, struct billed *b)
{
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w->t, "ZoneID", w->z,
                                  "ImageID", w->img, "CPU", "1", "Memory",
                                  "1024", "ChargeType", "Month", NULL),
                     0);
    str_of(x, "VMID", b->vm);
    str_of(x, "BootDiskID", b->boot);
    assert_int_equal(report(x, &w->agent, b->vm, "Running"), 0);
    assert_int_equal(
        fsmtest_call(x, "CreateSnapshot", &w->t, "DiskID", b->boot, NULL), 0);
    str_of(x, "SnapshotID", b->bsnap);
    assert_int_equal(
        fsmtest_call(x, "CreateDisk", &w->t, "ZoneID", w->z, "Size", "10",
                     "SetType", "SSD", "ChargeType", "Month", NULL),
        0);
    str_of(x, "DiskID", b->disk);
    assert_int_equal(
        fsmtest_call(x, "CreateSnapshot", &w->t, "DiskID", b->disk, NULL), 0);
    str_of(x, "SnapshotID", b->dsnap);
}

/* The lists of the purge of @id by @action, with @b's IDs replaced by
 * their role, as "Purged=...;Gone=...". */
static void purge_lists(struct fsmtest *x,
                        const char *action,
                        const char *id,
                        const struct billed *b,
                        const char *host,
                        char *out,
                        size_t size)
{
    const char *keys[2] = {"Purged", "Gone"};
    size_t o = 0;

    out[0] = '\0';
    for (int k = 0; k < 2; k++) {
        char list[512], *save = NULL;
        oplog_list(x, action, id, keys[k], list, sizeof list);
        o +=
            (size_t)snprintf(out + o, size - o, "%s%s=", k ? ";" : "", keys[k]);
        for (char *t = strtok_r(list, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            const char *role = strcmp(t, b->boot) == 0    ? "boot"
                               : strcmp(t, b->bsnap) == 0 ? "bsnap"
                               : strcmp(t, b->disk) == 0  ? "disk"
                               : strcmp(t, b->dsnap) == 0 ? "dsnap"
                               : strcmp(t, host) == 0     ? "host"
                                                          : t;
            o += (size_t)snprintf(out + o, size - o, "%s ", role);
        }
        assert_true(o < size);
    }
}

/* What the hosts hear of a purge comes from its oplog record (Purged,
 * Gone: api/server/dispatch.c turns them into tombstones): a purge by the
 * billing timer (expiry -> _BillStop -> _Recycle -> _Purge) must list
 * exactly what PurgeResource lists for the same resources. */
static void timer_purge_tombstones(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    struct billed u, t;
    char user_vm[512], timer_vm[512], user_disk[512], timer_disk[512];
    struct fsmtest_tick tc;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period", "10",
                     "MonthLength", "40", "GracePeriod", "1", "RecycleAfter",
                     "5", "Retention", "10", "HostLease", "100000", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                     "100000", "FromType", "Bank", "SerialNo", "p1", NULL),
        0);
    billed(x, &w, &u);
    /* by hand: deleted, then purged */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", u.vm, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", u.vm, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteSnapshot", &w.t, "SnapshotID", u.dsnap, NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", u.dsnap, NULL), 0);
    /* (a disk's own deletion needs its snapshots gone: purge it from the
     * bin after the billing recycled it, like the timer would) */
    assert_int_equal(
        fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", u.disk, NULL), 0);
    str_of(x, "SnapshotID", u.dsnap);

    /* by the timer: expired, stopped, recycled, purged */
    billed(x, &w, &t);
    x->time += 42 * SEC;
    fsmtest_tick(x, &tc);
    assert_string_equal(VM_STR(t.vm, "SuspendReason"), "Expired");
    assert_int_equal(report(x, &w.agent, t.vm, "Stopped"), 0);
    x->time += 6 * SEC;
    fsmtest_tick(x, &tc);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 3); /* 2 disks, t.vm */
    /* u.disk by hand, out of the bin */
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", u.disk, NULL), 0);
    x->time += 11 * SEC;
    fsmtest_tick(x, &tc);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    snap_gone(x, &w, t.bsnap);
    snap_gone(x, &w, t.dsnap);

    purge_lists(x, "PurgeResource", u.vm, &u, w.host, user_vm, sizeof user_vm);
    purge_lists(x, "_Purge", t.vm, &t, w.host, timer_vm, sizeof timer_vm);
    assert_string_equal(user_vm, "Purged=bsnap boot ;Gone=host ");
    assert_string_equal(timer_vm, user_vm);
    purge_lists(x, "PurgeResource", u.disk, &u, w.host, user_disk,
                sizeof user_disk);
    purge_lists(x, "_Purge", t.disk, &t, w.host, timer_disk, sizeof timer_disk);
    assert_string_equal(user_disk, "Purged=dsnap ;Gone=");
    assert_string_equal(timer_disk, user_disk);
}

/* ---- billing and an attached data disk ---- */

/* An internal command the leader's tick would propose, applied now. */
static int internal(struct fsmtest *x, const char *type, const char *id)
{
    struct yh_buf args = YH_BUF_INIT, env = YH_BUF_INIT;
    struct fsm_out o;
    int rc;

    fsm__out_init(&o, &args);
    msgpack_pack_map(&o.pk, 1);
    yh_mp_pack_kv_str(&o.pk, "ResourceID", id);
    assert_int_equal(fsm__cmd_internal(type, &x->admin, x->time, &args, &env),
                     0);
    rc = fsmtest_apply_raw(x, env.data, env.len);
    yh_buf_release(&args);
    yh_buf_release(&env);
    return rc;
}

/* Successful oplog records of @action about @id. */
static int64_t logged(struct fsmtest *x, const char *action, const char *id)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeOperationLog", &x->admin, "Action", action,
                     "ResourceID", id, "RetCode", "0", NULL),
        0);
    return fsmtest_res_int(x, "TotalCount");
}

/* A prepaid data disk attached to a running machine expires: billing
 * stops (suspends) it, and when it is due for the recycle bin asks its
 * executor to detach it (_BillDetach, a job) instead of recycling it
 * attached; the executor's Detached report unbinds it and the next tick
 * recycles it. Every step is a logged command; the machine keeps
 * running. */
static void billing_detaches_attached_disk(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char v[FSM_ID_SIZE], d[FSM_ID_SIZE], d2[FSM_ID_SIZE], job[FSM_ID_SIZE];
    char host[FSM_ID_SIZE];
    struct yh_buf spec = YH_BUF_INIT;
    struct fsmtest_tick tc;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period", "10",
                     "MonthLength", "40", "GracePeriod", "1", "RecycleAfter",
                     "5", "Retention", "100000", "HostLease", "100000", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                     "100000", "FromType", "Bank", "SerialNo", "p1", NULL),
        0);
    vm(x, &w, &w.t, v);
    for (int i = 0; i < 2; i++) {
        char *id = i == 0 ? d : d2;
        assert_int_equal(
            fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", w.z, "Size", "10",
                         "SetType", "SSD", "ChargeType", "Month", NULL),
            0);
        str_of(x, "DiskID", id);
        assert_int_equal(
            fsmtest_call(x, "AttachDisk", &w.t, "DiskID", id, "VMID", v, NULL),
            0);
        assert_int_equal(report(x, &w.agent, id, "Attached"), 0);
        assert_string_equal(DISK_STR(id, "State"), "InUse");
    }

    /* expired: suspended, still attached (the guest keeps its disk until
     * the recycle is due: a renewal lifts the stop) */
    x->time += 42 * SEC;
    fsmtest_tick(x, &tc);
    assert_string_equal(DISK_STR(d, "SuspendReason"), "Expired");
    assert_string_equal(DISK_STR(d, "State"), "InUse");
    /* due for the bin: detached first, not recycled */
    x->time += 6 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 2);
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(tc.codes[1], 0);
    for (int i = 0; i < 2; i++) {
        const char *id = i == 0 ? d : d2;
        assert_string_equal(DISK_STR(id, "State"), "Detaching");
        assert_string_equal(DISK_STR(id, "DesiredAttach"), "Detached");
        assert_string_equal(DISK_STR(id, "VMID"), v);
        assert_int_equal(logged(x, "_BillDetach", id), 1);
        assert_int_equal(logged(x, "_Recycle", id), 0);
    }
    /* a job for its executor, on the machine's host */
    snprintf(job, sizeof job, "%s", DISK_STR(d, "JobID"));
    assert_int_equal(fsmtest_call(x, "DescribeJob", &w.t, "JobIDs", job, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "Action"), "_BillDetach");
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Running");
    assert_int_equal(fsm_host_spec(x->f, d, host, &spec), 0);
    assert_string_equal(host, w.host);
    /* asked once: no new command until the executor answers */
    x->time += 1 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    /* a stale or forged step is a harmless rejection, nothing written */
    assert_int_equal(internal(x, "_Recycle", d), YH_ESTATE);
    assert_int_equal(internal(x, "_BillDetach", d), YH_ESTATE);
    assert_string_equal(DISK_STR(d, "State"), "Detaching");
    /* the tenant renews d2 meanwhile: its stop is lifted, the detach
     * goes on */
    assert_int_equal(
        fsmtest_call(x, "RenewResource", &w.t, "ResourceID", d2, NULL), 0);
    /* the executor confirms: unbound, then recycled by the next tick */
    assert_int_equal(report(x, &w.agent, d, "Detached"), 0);
    assert_int_equal(report(x, &w.agent, d2, "Detached"), 0);
    assert_string_equal(DISK_STR(d, "State"), "Available");
    assert_string_equal(DISK_STR(d, "VMID"), "");
    assert_int_equal(fsmtest_call(x, "DescribeJob", &w.t, "JobIDs", job, NULL),
                     0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Success");
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(logged(x, "_Recycle", d), 1);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "DiskID"), d);
    assert_string_equal(fsmtest_info_str(x, 0, "VMID"), "");
    /* d2: renewed, detached, not recycled */
    assert_string_equal(DISK_STR(d2, "State"), "Available");
    assert_int_equal(DISK_INT(d2, "Suspended"), 0);
    assert_int_equal(logged(x, "_Recycle", d2), 0);
    /* the machine was never touched */
    assert_string_equal(VM_STR(v, "State"), "Running");
    assert_int_equal(logged(x, "_BillStop", v), 0);
    index_matches(x, v);
    yh_buf_release(&spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pools, fsmtest_setup, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(attach, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshots, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(clones_and_images, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshots_purged, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(snapshots_by_disk, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(timer_purge_tombstones, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(billing_detaches_attached_disk,
                                        fsmtest_setup, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(boot_disks, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism, fsmtest_setup,
                                        fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
