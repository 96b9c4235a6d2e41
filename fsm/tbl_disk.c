/* Disks ("bsi-" IDs): the first billable resource, and the per-type usage
 * every resource contributes to quotas.
 *
 * A disk is created Available in a zone and a set type (the storage class
 * that prices and quotas are per), placed at apply into a storage pool of
 * that set type in that zone (tbl_storage.c), grown only (within its
 * pool), and deleted to the recycle bin. Its record lives in the generic
 * resources table with the billing fields that fsm__bill_create fills. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define DISK_PREFIX "bsi"
#define DISK_MAX_GB 32000
#define NAME_MAX_LEN 64

unsigned fsm__res_usage(const struct fsm_rec *r,
                        const char **types,
                        int64_t *delta,
                        char (*buf)[48])
{
    const char *t = fsm__rec_s(r, "ResourceType");
    unsigned n = 0;

    if (strcmp(t, "VM") == 0) {
        static const char *const vm[] = {"VM", "CPU", "Memory", "GPU"};
        for (; n < 4; n++) {
            types[n] = vm[n];
        }
        delta[0] = 1;
        delta[1] = fsm__rec_i(r, "CPU");
        delta[2] = fsm__rec_i(r, "Memory");
        delta[3] = fsm__rec_i(r, "GPU");
    } else if (strcmp(t, "Disk") == 0) {
        types[n] = "Disk";
        delta[n++] = 1;
        snprintf(buf[n], 48, "DiskGB:%s", fsm__rec_s(r, "SetType"));
        types[n] = buf[n];
        delta[n++] = fsm__rec_i(r, "Size");
    } else if (strcmp(t, "EIP") == 0) {
        n = fsm__eip_usage(r, types, delta);
    } else if (strcmp(t, "Snapshot") == 0) {
        types[n] = "Snapshot";
        delta[n++] = 1;
    } else {
        n = fsm__gw_usage(r, types, delta); /* NATGW, LB, VPNGateway */
    }
    return n;
}

static int set_type_arg(struct fsm_ctx *c, char out[33])
{
    int given;

    TRY(fsm__arg_str(c, "SetType", 0, 32, out, &given));
    if (!given) {
        snprintf(out, 33, "Standard");
    }
    for (const char *p = out; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'SetType': letters, "
                               "digits, '-' and '_'");
        }
    }
    return 0;
}

/* ---- CreateDisk ---- */

static int disk_args(struct fsm_ctx *c, struct fsm_disk_spec *a)
{
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_str(c, "ZoneID", 1, FSM_ID_SIZE - 1, a->zone, NULL));
    TRY(fsm__arg_int(c, "Size", 1, 1, DISK_MAX_GB, &a->size, NULL));
    TRY(set_type_arg(c, a->set));
    return fsm__charge_args(c, a->ct, &a->quantity);
}

int fsm__disk_create_check(struct fsm_ctx *c)
{
    struct fsm_disk_spec a;
    char tenant[FSM_ID_SIZE];

    TRY(disk_args(c, &a));
    return fsm__owner_arg(c, tenant);
}

int fsm__disk_insert(struct fsm_ctx *c,
                     const char *tenant,
                     const struct fsm_disk_spec *a,
                     const char *source)
{
    char id[FSM_ID_SIZE], pool[FSM_ID_SIZE];
    const char *types[8];
    int64_t delta[8], price;
    char buf[8][48];
    struct fsm_rec r;
    unsigned n;
    int rc;

    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "ResourceType", "Disk");
    fsm__rec_set_s(&r, "SetType", a->set);
    fsm__rec_set_i(&r, "Size", a->size);
    n = fsm__res_usage(&r, types, delta, buf);
    /* every rejection before the first write */
    rc = fsm__zone_get(c, a->zone);
    if (rc == 0) {
        rc = fsm__quota_check(c, tenant, n, types, delta);
    }
    if (rc == 0) {
        rc = fsm__disk_price(c, a->set, a->size, a->ct, &price);
    }
    if (rc == 0) {
        rc = fsm__bill_create(c, tenant, &r, a->ct, a->quantity, price, 1);
    }
    if (rc == 0) {
        rc = fsm__pool_pick(c, a->zone, a->set, a->size, pool);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, DISK_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_free(&r);
    fsm__rec_set_s(&r, "DiskID", id);
    fsm__rec_set_s(&r, "_IDField", "DiskID");
    fsm__rec_set_s(&r, "ResourceType", "Disk");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", a->name);
    fsm__rec_set_s(&r, "ZoneID", a->zone);
    fsm__rec_set_s(&r, "PoolID", pool);
    fsm__rec_set_s(&r, "SetType", a->set);
    fsm__rec_set_i(&r, "Size", a->size);
    fsm__rec_set_s(&r, "State", "Available");
    if (source[0] != '\0') {
        fsm__rec_set_s(&r, "SourceID", source);
    }
    /* attachment: desired vs observed, like a machine's power state */
    fsm__rec_set_s(&r, "VMID", "");
    fsm__rec_set_s(&r, "DesiredAttach", "Detached");
    fsm__rec_set_s(&r, "ObservedAttach", "");
    fsm__rec_set_i(&r, "ObservedGeneration", 0);
    fsm__rec_set_i(&r, "Generation", 0);
    fsm__rec_set_s(&r, "JobID", "");
    fsm__rec_set_i(&r, "CreateTime", (int64_t)(c->time_ns / 1000000000u));
    rc = fsm__bill_create(c, tenant, &r, a->ct, a->quantity, price, 0);
    if (rc == 0) {
        rc = fsm__usage_add(c, tenant, n, types, delta);
    }
    if (rc == 0) {
        rc = fsm__pool_use(c, pool, a->size, 1);
    }
    if (rc == 0) {
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "DiskID"), id);
        yh_mp_pack_str(fsm__field(c, "PoolID"), pool);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

int fsm__disk_create_apply(struct fsm_ctx *c)
{
    struct fsm_disk_spec a;
    char tenant[FSM_ID_SIZE];

    TRY(disk_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    return fsm__disk_insert(c, tenant, &a, "");
}

/* ---- DescribeDisk ---- */

int fsm__disk_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {
        FSM_TBL_RES, DISK_PREFIX "-", "DiskIDs", 0, fsm__keep_live, NULL, NULL};

    return fsm__describe(c, &d);
}

int fsm__disk_get(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = 0;

    if (strncmp(id, DISK_PREFIX "-", sizeof DISK_PREFIX) != 0) {
        rc = YH_ENOTFOUND;
    } else {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), r);
    }
    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "disk '%s' not found", id);
    }
    if (rc == 0 && strcmp(fsm__rec_s(r, "State"), "Recycled") == 0) {
        return fsm__reject(c, YH_ESTATE, "disk '%s' is in the recycle bin", id);
    }
    return rc;
}

/* ---- ResizeDisk ---- */

int fsm__disk_resize_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    int64_t size;

    TRY(fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_int(c, "Size", 1, 1, DISK_MAX_GB, &size, NULL);
}

int fsm__disk_resize_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], tenant[FSM_ID_SIZE], type[48];
    const char *types[1] = {type};
    int64_t size, old, delta[1], price = 0;
    struct fsm_rec r, m;
    int boot;
    int rc;

    TRY(fsm__disk_resize_check(c));
    fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__arg_int(c, "Size", 1, 1, DISK_MAX_GB, &size, NULL);
    fsm__rec_init(&r);
    fsm__rec_init(&m);
    rc = fsm__disk_get(c, id, &r);
    if (rc != 0) {
        goto out;
    }
    boot = (int)fsm__rec_i(&r, "Boot");
    old = fsm__rec_i(&r, "Size");
    if (size <= old) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'Size': disks only grow (now "
                         "%" PRId64 " GB)",
                         old);
        goto out;
    }
    if (fsm__rec_i(&r, "Suspended")) {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is suspended (%s)", id,
                         fsm__rec_s(&r, "SuspendReason"));
        goto out;
    }
    snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&r, "TenantID"));
    snprintf(type, sizeof type, "DiskGB:%s", fsm__rec_s(&r, "SetType"));
    delta[0] = size - old;
    rc = fsm__quota_check(c, tenant, 1, types, delta);
    if (rc == 0) {
        rc = fsm__pool_room(c, fsm__rec_s(&r, "PoolID"), delta[0]);
    }
    if (boot) {
        /* billed with its machine: the machine is re-priced */
        if (rc == 0) {
            rc = fsm__boot_resize(c, &r, size, &m, 1);
        }
    } else {
        if (rc == 0) {
            rc = fsm__disk_price(c, fsm__rec_s(&r, "SetType"), size,
                                 fsm__rec_s(&r, "ChargeType"), &price);
        }
        if (rc == 0) {
            rc = fsm__bill_resize(c, tenant, &r, price, 1);
        }
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_i(&r, "Size", size);
    rc = boot ? fsm__boot_resize(c, &r, size, &m, 0)
              : fsm__bill_resize(c, tenant, &r, price, 0);
    if (rc == 0) {
        rc = fsm__usage_add(c, tenant, 1, types, delta);
    }
    if (rc == 0) {
        rc = fsm__pool_use(c, fsm__rec_s(&r, "PoolID"), delta[0], 0);
    }
    if (rc == 0) {
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        msgpack_pack_int64(fsm__field(c, "Size"), size);
    }
out:
    fsm__rec_free(&r);
    fsm__rec_free(&m);
    return rc;
}

/* ---- DeleteDisk ---- */

int fsm__disk_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__disk_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__disk_delete_check(c));
    fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = fsm__disk_get(c, id, &r);
    if (rc == 0) {
        rc = fsm__boot_alone(c, id, &r, "deleted", "delete");
    }
    if (rc == 0 && fsm__rec_s(&r, "VMID")[0] != '\0') {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is attached to '%s'", id,
                         fsm__rec_s(&r, "VMID"));
    }
    if (rc == 0) {
        rc = fsm__disk_snapshots_none(c, id);
    }
    if (rc == 0) {
        rc = fsm__res_delete(c, id, &r);
    }
    fsm__rec_free(&r);
    return rc;
}
