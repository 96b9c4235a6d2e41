/* Boot disks: a machine's boot disk as a disk resource ("bsi-", Boot
 * true).
 *
 * CreateVMInstance places the boot disk, in the same apply, into the
 * storage pool of BootDiskSetType in the machine's zone with the most free
 * room (172 if none has BootDiskSpace free), counts it against the
 * tenant's "Disk" and "DiskGB:<SetType>" quotas and the pool's usage, and
 * binds it to the machine: VMID, DesiredAttach Attached, State InUse, so
 * every path that follows a disk's machine (the machine's spec "Disks",
 * the host a disk's spec goes to, who may ReportState on it) treats it as
 * an attached disk. The machine's record names it (BootDiskID).
 *
 * It is billed with its machine, as UCloudStack bills the system disk in
 * the instance's order: the machine's price already holds the boot disk
 * (fsm__vm_price, "Disk[:Set]" per GB); the disk record has no ChargeType,
 * so billing ticks never charge, stop, recycle or purge it on its own. A
 * ResizeDisk of it re-prices the machine (fsm__bill_resize on the
 * machine's record).
 *
 * It cannot be attached elsewhere, detached, deleted, recovered or purged
 * on its own (162 naming its machine); it follows its machine to the
 * recycle bin (DeleteVMInstance, _Recycle), back (RecoverResource) and
 * away (PurgeResource, _Purge: usage and pool room released, its
 * snapshots deleted, all listed in the oplog's "Purged"). Snapshots,
 * rollbacks (its machine stopped) and clones work as for any disk. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

int fsm__boot_quota(const struct fsm_vm_spec *s,
                    const char **types,
                    int64_t *delta,
                    char (*buf)[48],
                    unsigned n)
{
    types[n] = "Disk";
    delta[n++] = 1;
    snprintf(buf[n], 48, "DiskGB:%s", s->boot_set);
    types[n] = buf[n];
    delta[n++] = s->boot_gb;
    return (int)n;
}

int fsm__boot_create(struct fsm_ctx *c,
                     const char *vm,
                     struct fsm_rec *m,
                     const char *pool,
                     const struct fsm_vm_spec *s)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec d;
    int rc;

    TRY(fsm__new_id(c, "bsi", id));
    fsm__rec_init(&d);
    fsm__rec_set_s(&d, "DiskID", id);
    fsm__rec_set_s(&d, "_IDField", "DiskID");
    fsm__rec_set_s(&d, "ResourceType", "Disk");
    fsm__rec_set_s(&d, "TenantID", fsm__rec_s(m, "TenantID"));
    fsm__rec_set_s(&d, "Name", fsm__rec_s(m, "Name"));
    fsm__rec_set_s(&d, "ZoneID", fsm__rec_s(m, "ZoneID"));
    fsm__rec_set_s(&d, "PoolID", pool);
    fsm__rec_set_s(&d, "SetType", s->boot_set);
    fsm__rec_set_i(&d, "Size", s->boot_gb);
    fsm__rec_set_s(&d, "State", "InUse");
    fsm__rec_set_b(&d, "Boot", 1);
    fsm__rec_set_s(&d, "ImageID", fsm__rec_s(m, "ImageID"));
    fsm__rec_set_s(&d, "VMID", vm);
    fsm__rec_set_s(&d, "DesiredAttach", "Attached");
    fsm__rec_set_s(&d, "ObservedAttach", "");
    fsm__rec_set_i(&d, "ObservedGeneration", 0);
    fsm__rec_set_i(&d, "Generation", 0);
    fsm__rec_set_s(&d, "JobID", "");
    fsm__rec_set_i(&d, "CreateTime", (int64_t)(c->time_ns / 1000000000u));
    fsm__rec_set_i(&d, "Revision", (int64_t)c->index);
    rc = fsm__pool_use(c, pool, s->boot_gb, 1);
    if (rc == 0) {
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &d);
    }
    fsm__rec_free(&d);
    if (rc == 0) {
        fsm__rec_set_s(m, "BootDiskID", id);
        yh_mp_pack_str(fsm__field(c, "BootDiskID"), id);
    }
    return rc;
}

int fsm__boot_alone(struct fsm_ctx *c,
                    const char *id,
                    const struct fsm_rec *d,
                    const char *what,
                    const char *verb)
{
    if (fsm__rec_i(d, "Boot")) {
        return fsm__reject(c, YH_ESTATE,
                           "disk '%s' is the boot disk of '%s': it cannot be "
                           "%s on its own (%s its machine)",
                           id, fsm__rec_s(d, "VMID"), what, verb);
    }
    return 0;
}

/* The boot disk of machine @m in @d (*found = 0 for a machine without
 * one). */
static int boot_load(struct fsm_ctx *c,
                     const struct fsm_rec *m,
                     char id[FSM_ID_SIZE],
                     struct fsm_rec *d,
                     int *found)
{
    int rc;

    *found = 0;
    snprintf(id, FSM_ID_SIZE, "%s", fsm__rec_s(m, "BootDiskID"));
    if (strcmp(fsm__rec_s(m, "ResourceType"), "VM") != 0 || id[0] == '\0') {
        return 0;
    }
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), d);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    *found = rc == 0;
    return rc;
}

/* Only when the machine and the disk disagree about the recycle bin (a
 * recovery of a merely suspended machine leaves the disk alone). */
int fsm__boot_follow(struct fsm_ctx *c, const struct fsm_rec *m)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec d;
    int found;
    int rc;

    fsm__rec_init(&d);
    rc = boot_load(c, m, id, &d, &found);
    if (rc == 0 && found &&
        (strcmp(fsm__rec_s(m, "State"), "Recycled") == 0) !=
            (strcmp(fsm__rec_s(&d, "State"), "Recycled") == 0)) {
        const char *state = fsm__rec_s(m, "State");
        if (strcmp(state, "Recycled") == 0) {
            fsm__rec_set_s(&d, "_PrevState", fsm__rec_s(&d, "State"));
            fsm__rec_set_s(&d, "State", "Recycled");
            fsm__rec_set_i(&d, "RecycleTime", fsm__rec_i(m, "RecycleTime"));
        } else {
            fsm__rec_set_s(&d, "State",
                           fsm__rec_s(&d, "_PrevState")[0] != '\0'
                               ? fsm__rec_s(&d, "_PrevState")
                               : "InUse");
            fsm__rec_set_i(&d, "RecycleTime", 0);
        }
        fsm__rec_set_i(&d, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &d);
    }
    fsm__rec_free(&d);
    return rc;
}

int fsm__boot_purge(struct fsm_ctx *c, const struct fsm_rec *m)
{
    const char *types[8];
    int64_t delta[8];
    char buf[8][48];
    char id[FSM_ID_SIZE];
    struct fsm_rec d;
    unsigned n;
    int found;
    int rc;

    fsm__rec_init(&d);
    rc = boot_load(c, m, id, &d, &found);
    if (rc == 0 && found) {
        n = fsm__res_usage(&d, types, delta, buf);
        for (unsigned i = 0; i < n; i++) {
            delta[i] = -delta[i];
        }
        rc = fsm__usage_add(c, fsm__rec_s(&d, "TenantID"), n, types, delta);
        if (rc == 0) {
            rc = fsm__pool_use(c, fsm__rec_s(&d, "PoolID"),
                               -fsm__rec_i(&d, "Size"), -1);
        }
        if (rc == 0) {
            rc = fsm__auto_purge(c, id); /* its metric rings, alarms */
        }
        if (rc == 0) {
            rc = fsm__disk_purge_release(c, id, &d); /* its snapshots */
        }
        if (rc == 0) {
            rc = fsm__res_drop(c, id);
        }
        if (rc == 0) {
            rc = fsm__purged_add(c, id);
        }
    }
    fsm__rec_free(&d);
    return rc;
}

int fsm__boot_image(struct fsm_ctx *c, const struct fsm_rec *m)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec d;
    int found;
    int rc;

    fsm__rec_init(&d);
    rc = boot_load(c, m, id, &d, &found);
    if (rc == 0 && found) {
        fsm__rec_set_s(&d, "ImageID", fsm__rec_s(m, "ImageID"));
        fsm__rec_set_i(&d, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &d);
    }
    fsm__rec_free(&d);
    return rc;
}

int fsm__boot_resize(struct fsm_ctx *c,
                     const struct fsm_rec *d,
                     int64_t size,
                     struct fsm_rec *m,
                     int check_only)
{
    const char *vm = fsm__rec_s(d, "VMID");
    struct fsm_vm_spec spec;
    int64_t price;

    if (check_only) {
        int rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), m);
        if (rc == YH_ENOTFOUND) {
            return fsm__reject(c, YH_ENOTFOUND, "VM '%s' not found", vm);
        }
        TRY(rc);
        if (fsm__rec_i(m, "Suspended")) {
            return fsm__reject(c, YH_ESTATE, "VM '%s' is suspended (%s)", vm,
                               fsm__rec_s(m, "SuspendReason"));
        }
    }
    memset(&spec, 0, sizeof spec);
    spec.cpu = fsm__rec_i(m, "CPU");
    spec.mem = fsm__rec_i(m, "Memory");
    spec.gpu = fsm__rec_i(m, "GPU");
    snprintf(spec.gpu_type, sizeof spec.gpu_type, "%s",
             fsm__rec_s(m, "GPUType"));
    snprintf(spec.boot_set, sizeof spec.boot_set, "%s",
             fsm__rec_s(m, "BootDiskSetType"));
    spec.boot_gb = size;
    snprintf(spec.data_set, sizeof spec.data_set, "Standard");
    TRY(fsm__vm_price(c, &spec, fsm__rec_s(m, "ChargeType"), &price));
    TRY(fsm__bill_resize(c, fsm__rec_s(m, "TenantID"), m, price, check_only));
    if (!check_only) {
        fsm__rec_set_i(m, "BootDiskSpace", size);
        fsm__rec_set_i(m, "Revision", (int64_t)c->index);
        TRY(fsm__rec_save(c, FSM_TBL_RES, vm, strlen(vm), m));
    }
    return 0;
}
