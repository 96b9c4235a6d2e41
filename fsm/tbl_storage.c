/* Storage: pools, disk attachments, snapshots, clones and custom images.
 *
 * A storage pool ("pool-", infra table) is where a zone keeps the disks of
 * one set type: a Ceph pool or host-local storage, with a capacity in GB.
 * Disks are placed at apply into the pool of their set type and zone with
 * the most free room (a pure function of the state at that index, so every
 * replica picks the same pool); a disk never moves, so it grows only
 * within its pool. Recycled disks keep their room until purged.
 *
 * A disk attaches to one machine of its zone and tenant at a time. Like a
 * machine's power state it has a desired attachment (DesiredAttach,
 * set by AttachDisk/DetachDisk), an observed one (ObservedAttach,
 * ObservedGeneration, reported with ReportState by the host of the
 * machine) and a shown State that is transitional (Attaching, Detaching,
 * RollingBack) until the executor reports the disk's current Generation;
 * each change opens a job that the report completes.
 *
 * Snapshots ("snap-", resources table) are billed per snapshot (price
 * spec "Snapshot", Dynamic) and counted against the "Snapshot" quota. A
 * rollback rewrites the disk, so the disk must not be in use: detached, or
 * attached to a stopped machine.
 *
 * A custom image ("image-", infra table, owned by a tenant) is taken from
 * a stopped machine's boot disk and counted against the "Image" quota;
 * only its tenant sees and boots it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define NAME_MAX_LEN 64
#define POOL_MAX_GB (1000000000ll)
#define SNAP_PREFIX "snap-"
#define MAX_SNAP_PER_DISK 64

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static int ident_ok(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.')) {
            return 0;
        }
    }
    return 1;
}

/* Walk the records of @tbl under @prefix; @fn returning non-zero stops
 * (its value is returned unless it is 1: "found, stop"). */
static int walk(struct fsm_ctx *c,
                enum fsm_tbl tbl,
                const char *prefix,
                int (*fn)(struct fsm_ctx *c, const struct fsm_rec *r, void *a),
                void *arg)
{
    size_t pl = strlen(prefix);
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_val k, v;
    int stop = 0;
    int rc;

    rc = mdb_cursor_open(c->txn, c->f->dbis[tbl], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on '%s'",
                            fsm__tbls[tbl].name);
    }
    fsm__rec_init(&r);
    k.mv_data = (void *)prefix;
    k.mv_size = pl;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0) {
            break;
        }
        if (fsm__rec_decode(v.mv_data, v.mv_size, &r) != 0) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "record in '%s' is corrupt", fsm__tbls[tbl].name);
            stop = YH_ECORRUPT;
            break;
        }
        stop = fn(c, &r, arg);
    }
    fsm__rec_free(&r);
    mdb_cursor_close(cur);
    if (stop != 0) {
        return stop == 1 ? 0 : stop;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read '%s'", fsm__tbls[tbl].name);
    }
    return 0;
}

/* ---- storage pools ---- */

struct pool_args
{
    char zone[FSM_ID_SIZE];      /* ZoneID */
    char name[NAME_MAX_LEN + 1]; /* Name */
    char set[33];                /* SetType */
    char backend[8];             /* Backend */
    char pool[NAME_MAX_LEN + 1]; /* Pool (ceph) */
    int64_t capacity;            /* Capacity, GB */
};

static int pool_args(struct fsm_ctx *c, struct pool_args *a)
{
    int has_pool;

    TRY(fsm__arg_str(c, "ZoneID", 1, FSM_ID_SIZE - 1, a->zone, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_str(c, "SetType", 1, 32, a->set, NULL));
    if (!ident_ok(a->set) || strchr(a->set, '.') != NULL) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'SetType': letters, digits, "
                           "'-' and '_'");
    }
    TRY(fsm__arg_str(c, "Backend", 1, sizeof a->backend - 1, a->backend, NULL));
    if (strcmp(a->backend, "ceph") != 0 && strcmp(a->backend, "local") != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Backend': ceph or local");
    }
    TRY(fsm__arg_str(c, "Pool", 0, NAME_MAX_LEN, a->pool, &has_pool));
    if (strcmp(a->backend, "ceph") == 0 && a->pool[0] == '\0') {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter 'Pool' (the Ceph pool)");
    }
    if (strcmp(a->backend, "local") == 0 && has_pool) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Pool': only for Backend ceph");
    }
    if (!ident_ok(a->pool)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Pool': letters, digits, '-', "
                           "'_' and '.'");
    }
    return fsm__arg_int(c, "Capacity", 1, 1, POOL_MAX_GB, &a->capacity, NULL);
}

int fsm__pool_create_check(struct fsm_ctx *c)
{
    struct pool_args a;

    return pool_args(c, &a);
}

/* A Ceph pool of the zone already registered. */
static int ceph_pool_taken(struct fsm_ctx *c,
                           const struct fsm_rec *r,
                           void *arg)
{
    const struct pool_args *a = arg;

    (void)c;
    return strcmp(fsm__rec_s(r, "ZoneID"), a->zone) == 0 &&
                   strcmp(fsm__rec_s(r, "Backend"), "ceph") == 0 &&
                   strcmp(fsm__rec_s(r, "Pool"), a->pool) == 0
               ? fsm__reject(c, YH_EEXIST,
                             "Ceph pool '%s' of zone '%s' is already "
                             "registered as '%s'",
                             a->pool, a->zone, fsm__rec_s(r, "PoolID"))
               : 0;
}

int fsm__pool_create_apply(struct fsm_ctx *c)
{
    struct pool_args a;
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(pool_args(c, &a));
    TRY(fsm__zone_get(c, a.zone));
    if (strcmp(a.backend, "ceph") == 0) {
        TRY(walk(c, FSM_TBL_INFRA, "pool-", ceph_pool_taken, &a));
    }
    TRY(fsm__new_id(c, "pool", id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "PoolID", id);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "ZoneID", a.zone);
    fsm__rec_set_s(&r, "SetType", a.set);
    fsm__rec_set_s(&r, "Backend", a.backend);
    fsm__rec_set_s(&r, "Pool", a.pool);
    fsm__rec_set_i(&r, "Capacity", a.capacity);
    fsm__rec_set_i(&r, "Used", 0);
    fsm__rec_set_i(&r, "DiskCount", 0);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_INFRA, id, strlen(id), &r);
    fsm__rec_free(&r);
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "PoolID"), id);
    }
    return rc;
}

struct pool_filter
{
    char zone[FSM_ID_SIZE]; /* "" = any */
    char set[33];           /* "" = any */
};

static int pool_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct pool_filter *q = arg;

    (void)c;
    return (q->zone[0] == '\0' ||
            strcmp(fsm__rec_s(r, "ZoneID"), q->zone) == 0) &&
           (q->set[0] == '\0' || strcmp(fsm__rec_s(r, "SetType"), q->set) == 0);
}

int fsm__pool_describe(struct fsm_ctx *c)
{
    struct pool_filter q;
    struct fsm_desc d = {FSM_TBL_INFRA, "pool-", "PoolIDs", 1,
                         pool_keep,     NULL,    &q};

    TRY(fsm__arg_str(c, "ZoneID", 0, FSM_ID_SIZE - 1, q.zone, NULL));
    TRY(fsm__arg_str(c, "SetType", 0, 32, q.set, NULL));
    return fsm__describe(c, &d);
}

struct pick
{
    const char *zone, *set; /* wanted */
    int64_t gb;             /* size */
    int64_t best;           /* most free room seen */
    char *pool;             /* out */
};

static int pick_one(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    struct pick *p = arg;
    int64_t free_gb = fsm__rec_i(r, "Capacity") - fsm__rec_i(r, "Used");

    (void)c;
    /* the most free room wins; ties go to the first in ID order */
    if (strcmp(fsm__rec_s(r, "ZoneID"), p->zone) == 0 &&
        strcmp(fsm__rec_s(r, "SetType"), p->set) == 0 && free_gb >= p->gb &&
        free_gb > p->best) {
        p->best = free_gb;
        snprintf(p->pool, FSM_ID_SIZE, "%s", fsm__rec_s(r, "PoolID"));
    }
    return 0;
}

int fsm__pool_pick(struct fsm_ctx *c,
                   const char *zone,
                   const char *set,
                   int64_t gb,
                   char pool[FSM_ID_SIZE])
{
    struct pick p = {zone, set, gb, -1, pool};

    pool[0] = '\0';
    TRY(walk(c, FSM_TBL_INFRA, "pool-", pick_one, &p));
    if (pool[0] == '\0') {
        return fsm__reject(c, YH_ECAPACITY,
                           "insufficient capacity: no %s storage pool in "
                           "zone '%s' has %" PRId64 " GB free",
                           set, zone, gb);
    }
    return 0;
}

int fsm__pool_room(struct fsm_ctx *c, const char *pool, int64_t gb)
{
    struct fsm_rec r;
    int64_t free_gb;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, pool, strlen(pool), &r);
    free_gb = fsm__rec_i(&r, "Capacity") - fsm__rec_i(&r, "Used");
    fsm__rec_free(&r);
    if (rc == YH_ENOTFOUND || (rc == 0 && free_gb < gb)) {
        return fsm__reject(c, YH_ECAPACITY,
                           "insufficient capacity: storage pool '%s' has "
                           "%" PRId64 " GB free, %" PRId64 " needed",
                           pool, rc == 0 ? free_gb : 0, gb);
    }
    return rc;
}

int fsm__pool_use(struct fsm_ctx *c,
                  const char *pool,
                  int64_t gb,
                  int64_t disks)
{
    struct fsm_rec r;
    int rc;

    if (pool[0] == '\0') {
        return 0;
    }
    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, pool, strlen(pool), &r);
    if (rc == 0) {
        fsm__rec_set_i(&r, "Used", fsm__rec_i(&r, "Used") + gb);
        fsm__rec_set_i(&r, "DiskCount", fsm__rec_i(&r, "DiskCount") + disks);
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_INFRA, pool, strlen(pool), &r);
    } else if (rc == YH_ENOTFOUND) {
        rc = 0; /* pools are never deleted; nothing to release */
    }
    fsm__rec_free(&r);
    return rc;
}

/* ---- attachments ---- */

static int disk_save(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    fsm__rec_set_i(r, "Revision", (int64_t)c->index);
    TRY(fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), r));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    yh_mp_pack_str(fsm__field(c, "State"), fsm__rec_s(r, "State"));
    return 0;
}

int fsm__disk_attach_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL));
    if (strcmp(c->type, "AttachDisk") == 0) {
        TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    }
    return 0;
}

int fsm__disk_attach_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], vm[FSM_ID_SIZE];
    struct fsm_rec d, m;
    int rc;

    TRY(fsm__disk_attach_check(c));
    fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, vm, NULL);
    fsm__rec_init(&d);
    fsm__rec_init(&m);
    rc = fsm__disk_get(c, id, &d);
    if (rc == 0) {
        rc = fsm__vm_load(c, vm, &m);
    }
    if (rc == 0) {
        rc = fsm__vm_not_migrating(c, vm, &m);
    }
    if (rc != 0) {
        goto out;
    }
    if (fsm__rec_s(&d, "VMID")[0] != '\0') {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is attached to '%s' (%s)", id,
                         fsm__rec_s(&d, "VMID"), fsm__rec_s(&d, "State"));
    } else if (strcmp(fsm__rec_s(&d, "State"), "Available") != 0) {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is %s", id,
                         fsm__rec_s(&d, "State"));
    } else if (fsm__rec_i(&d, "Suspended")) {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is suspended (%s)", id,
                         fsm__rec_s(&d, "SuspendReason"));
    } else if (strcmp(fsm__rec_s(&d, "TenantID"), fsm__rec_s(&m, "TenantID")) !=
               0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'VMID': '%s' belongs to another "
                         "tenant than disk '%s'",
                         vm, id);
    } else if (strcmp(fsm__rec_s(&d, "ZoneID"), fsm__rec_s(&m, "ZoneID")) !=
               0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'VMID': '%s' is in zone '%s', "
                         "disk '%s' in '%s'",
                         vm, fsm__rec_s(&m, "ZoneID"), id,
                         fsm__rec_s(&d, "ZoneID"));
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&d, "VMID", vm);
    fsm__rec_set_s(&d, "DesiredAttach", "Attached");
    fsm__rec_set_s(&d, "State", "Attaching");
    rc = fsm__job_open(c, id, &d, c->type);
    if (rc == 0) {
        rc = disk_save(c, id, &d);
    }
out:
    fsm__rec_free(&d);
    fsm__rec_free(&m);
    return rc;
}

/* 162 while machine @vm (a disk is bound to) is being migrated. */
static int vm_moving(struct fsm_ctx *c, const char *vm)
{
    struct fsm_rec m;
    int rc;

    fsm__rec_init(&m);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &m);
    if (rc == 0) {
        rc = fsm__vm_not_migrating(c, vm, &m);
    } else if (rc == YH_ENOTFOUND) {
        rc = 0; /* purged: nothing moves */
    }
    fsm__rec_free(&m);
    return rc;
}

int fsm__disk_detach_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec d;
    const char *state;
    int rc;

    TRY(fsm__disk_attach_check(c));
    fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&d);
    rc = fsm__disk_get(c, id, &d);
    if (rc == 0) {
        rc = fsm__boot_alone(c, id, &d, "detached", "delete");
    }
    if (rc != 0) {
        goto out;
    }
    state = fsm__rec_s(&d, "State");
    if (fsm__rec_s(&d, "VMID")[0] == '\0') {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is not attached", id);
    } else if (strcmp(state, "Detaching") == 0) {
        /* already asked for: idempotent, like a machine's desired state */
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "State"), state);
        goto out;
    } else {
        rc = fsm__disk_detach(c, id, &d);
    }
out:
    fsm__rec_free(&d);
    return rc;
}

int fsm__disk_detach(struct fsm_ctx *c, const char *id, struct fsm_rec *d)
{
    if (strcmp(fsm__rec_s(d, "State"), "RollingBack") == 0) {
        return fsm__reject(c, YH_ESTATE, "disk '%s' is being rolled back", id);
    }
    TRY(vm_moving(c, fsm__rec_s(d, "VMID")));
    /* the disk stays bound to its machine until the executor confirms:
     * it cannot be attached elsewhere before */
    fsm__rec_set_s(d, "DesiredAttach", "Detached");
    fsm__rec_set_s(d, "State", "Detaching");
    TRY(fsm__job_open(c, id, d, c->type));
    return disk_save(c, id, d);
}

int fsm__disk_bound_data(const struct fsm_rec *r)
{
    return strcmp(fsm__rec_s(r, "ResourceType"), "Disk") == 0 &&
           !fsm__rec_i(r, "Boot") && fsm__rec_s(r, "VMID")[0] != '\0';
}

int fsm__disk_detach_wanted(struct fsm *f,
                            MDB_txn *txn,
                            const struct fsm_rec *r)
{
    const char *vm = fsm__rec_s(r, "VMID");
    struct fsm_rec m;
    int moving;

    if (strcmp(fsm__rec_s(r, "DesiredAttach"), "Detached") == 0 ||
        strcmp(fsm__rec_s(r, "State"), "RollingBack") == 0) {
        return 0; /* asked already, or wait for the rollback's end */
    }
    fsm__rec_init(&m);
    moving = fsm__rec_load(f, txn, FSM_TBL_RES, vm, strlen(vm), &m) == 0 &&
             fsm__rec_s(&m, "MigrateFromHostID")[0] != '\0';
    fsm__rec_free(&m);
    return !moving;
}

int fsm__disk_host(struct fsm_ctx *c,
                   const struct fsm_rec *disk,
                   char host[FSM_ID_SIZE])
{
    const char *vm = fsm__rec_s(disk, "VMID");
    struct fsm_rec m;
    int rc;

    host[0] = '\0';
    if (vm[0] == '\0') {
        return 0; /* nobody may report on a detached disk */
    }
    fsm__rec_init(&m);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &m);
    if (rc == 0) {
        snprintf(host, FSM_ID_SIZE, "%s", fsm__rec_s(&m, "HostID"));
    }
    fsm__rec_free(&m);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

void fsm__disk_settle(struct fsm_rec *d, const char *observed, int *ok)
{
    *ok = strcmp(observed, fsm__rec_s(d, "DesiredAttach")) == 0;
    if (strcmp(fsm__rec_s(d, "State"), "Recycled") == 0) {
        return;
    }
    if (strcmp(observed, "Attached") == 0) {
        fsm__rec_set_s(d, "State", "InUse");
    } else if (strcmp(observed, "Detached") == 0) {
        /* free for another machine only now */
        fsm__rec_set_s(d, "State", "Available");
        fsm__rec_set_s(d, "VMID", "");
        fsm__rec_set_s(d, "DesiredAttach", "Detached");
    } else {
        fsm__rec_set_s(d, "State", "Error");
    }
}

struct vm_disks
{
    char ids[64][FSM_ID_SIZE]; /* a machine's disks */
    unsigned n;                /* count */
};

static int vm_disk_one(void *arg, const char *disk)
{
    struct vm_disks *q = arg;

    if (q->n >= 64) {
        return 1;
    }
    snprintf(q->ids[q->n++], FSM_ID_SIZE, "%s", disk);
    return 0;
}

int fsm__vm_disks_release(struct fsm_ctx *c, const char *vm)
{
    struct vm_disks q;
    struct fsm_rec d;
    int rc = 0;

    q.n = 0;
    /* the disks-by-machine rows of 'res_list', not every disk record */
    TRY(fsm__vm_disk_walk(c->f, c->txn, vm, vm_disk_one, &q));
    fsm__rec_init(&d);
    for (unsigned i = 0; i < q.n && rc == 0; i++) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, q.ids[i],
                           strlen(q.ids[i]), &d);
        if (rc != 0) {
            break;
        }
        /* the machine is gone: so is the attachment */
        fsm__rec_set_s(&d, "VMID", "");
        fsm__rec_set_s(&d, "DesiredAttach", "Detached");
        if (strcmp(fsm__rec_s(&d, "State"), "Recycled") != 0) {
            fsm__rec_set_s(&d, "State", "Available");
        } else {
            fsm__rec_set_s(&d, "_PrevState", "Available");
        }
        fsm__rec_set_i(&d, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, q.ids[i], strlen(q.ids[i]), &d);
    }
    fsm__rec_free(&d);
    return rc;
}

/* ---- snapshots ---- */

/* The snapshots of one disk, recycled ones included (at most
 * MAX_SNAP_PER_DISK: CreateSnapshot counts them all), from the disk's "S"
 * rows of 'res_list' (rec.c), not every snapshot record. */
struct snap_ids
{
    struct fsm *f;                            /* for the statistics */
    const char *disk;                         /* of this disk */
    char ids[MAX_SNAP_PER_DISK][FSM_ID_SIZE]; /* SnapshotIDs, in ID order */
    unsigned n;                               /* count */
    int err;                                  /* YH_ECORRUPT: too many */
};

static int snap_id_add(void *arg, const char *id)
{
    struct snap_ids *q = arg;

    q->f->stat_disk_snap_reads++;
    if (q->n == MAX_SNAP_PER_DISK) {
        snprintf(q->f->errmsg, sizeof q->f->errmsg,
                 "disk '%s' has more than %d snapshot records", q->disk,
                 MAX_SNAP_PER_DISK);
        q->err = YH_ECORRUPT;
        return 1; /* stop */
    }
    snprintf(q->ids[q->n++], FSM_ID_SIZE, "%s", id);
    return 0;
}

/* The snapshots of @disk into @q (allocated by the caller). */
static int snap_ids(struct fsm_ctx *c, const char *disk, struct snap_ids *q)
{
    q->f = c->f;
    q->disk = disk;
    q->n = 0;
    q->err = 0;
    TRY(fsm__disk_snap_walk(c->f, c->txn, disk, snap_id_add, q));
    return q->err;
}

static int snap_count(struct fsm_ctx *c, const char *disk, unsigned *n)
{
    struct snap_ids *q = malloc(sizeof *q);
    int rc;

    if (q == NULL) {
        return YH_ENOMEM;
    }
    rc = snap_ids(c, disk, q);
    *n = q->n;
    free(q);
    return rc;
}

int fsm__disk_snapshots_none(struct fsm_ctx *c, const char *disk)
{
    unsigned n;

    TRY(snap_count(c, disk, &n));
    if (n > 0) {
        return fsm__reject(c, YH_ESTATE,
                           "disk '%s' has %u snapshot(s): delete them first",
                           disk, n);
    }
    return 0;
}

/* A snapshot lives in its disk's pool (an RBD snapshot of its image): it
 * cannot outlive the disk. While the disk is in the recycle bin its
 * snapshots stay (and are billed) so that a recovery finds them; when it
 * is purged they go in the same command. */
int fsm__disk_purge_release(struct fsm_ctx *c,
                            const char *disk,
                            const struct fsm_rec *d)
{
    static const char *const types[1] = {"Snapshot"};
    const char *vm = fsm__rec_s(d, "VMID");
    struct snap_ids *q;
    int64_t delta[1] = {-1};
    struct fsm_rec s, m;
    int rc;

    q = malloc(sizeof *q);
    if (q == NULL) {
        return YH_ENOMEM;
    }
    fsm__rec_init(&s);
    fsm__rec_init(&m);
    rc = snap_ids(c, disk, q);
    for (unsigned i = 0; rc == 0 && i < q->n; i++) {
        const char *id = q->ids[i];
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &s);
        if (rc == YH_ENOTFOUND ||
            (rc == 0 && strcmp(fsm__rec_s(&s, "DiskID"), disk) != 0)) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "'res_list' row of disk '%s' names snapshot '%s' of "
                     "another disk or none",
                     disk, id);
            rc = YH_ECORRUPT;
        }
        if (rc == 0) {
            /* counted from its creation until its purge, recycled or not;
             * no record, no more billing ticks */
            rc = fsm__usage_add(c, fsm__rec_s(&s, "TenantID"), 1, types, delta);
        }
        if (rc == 0) {
            rc = fsm__auto_purge(c, id); /* metric rings, alarm bindings */
        }
        if (rc == 0) {
            rc = fsm__cdel(c, FSM_TBL_RES, id, strlen(id));
        }
        if (rc == 0) {
            rc = fsm__purged_add(c, id);
        }
    }
    if (rc == 0 && vm[0] != '\0' && c->gone_host[0] == '\0') {
        /* bound to a machine (a boot disk: billing detaches a data disk
         * before it recycles it, _BillDetach): that machine's hosts
         * realised it and its snapshots, they get the tombstones */
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &m);
        if (rc == 0) {
            snprintf(c->gone_host, sizeof c->gone_host, "%s",
                     fsm__rec_s(&m, "HostID"));
            snprintf(c->gone_host2, sizeof c->gone_host2, "%s",
                     fsm__rec_s(&m, "MigrateFromHostID"));
        }
        rc = rc == YH_ENOTFOUND ? 0 : rc;
    }
    fsm__rec_free(&s);
    fsm__rec_free(&m);
    free(q);
    return rc;
}

int fsm__snap_create_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], name[NAME_MAX_LEN + 1];

    TRY(fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, name, NULL);
}

int fsm__snap_create_apply(struct fsm_ctx *c)
{
    char disk[FSM_ID_SIZE], name[NAME_MAX_LEN + 1], id[FSM_ID_SIZE];
    char tenant[FSM_ID_SIZE];
    const char *types[1] = {"Snapshot"};
    int64_t delta[1] = {1}, price;
    struct fsm_rec d, r;
    unsigned n;
    int rc;

    TRY(fsm__snap_create_check(c));
    fsm__arg_str(c, "DiskID", 1, FSM_ID_SIZE - 1, disk, NULL);
    fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, name, NULL);
    fsm__rec_init(&d);
    fsm__rec_init(&r);
    rc = fsm__disk_get(c, disk, &d);
    if (rc != 0) {
        goto out;
    }
    snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&d, "TenantID"));
    fsm__rec_set_s(&r, "ResourceType", "Snapshot");
    rc = snap_count(c, disk, &n);
    if (rc == 0 && n >= MAX_SNAP_PER_DISK) {
        rc = fsm__reject(c, YH_EQUOTA, "disk '%s' has %u snapshots already",
                         disk, n);
    }
    if (rc == 0) {
        rc = fsm__quota_check(c, tenant, 1, types, delta);
    }
    /* snapshots are charged by the period, per snapshot */
    if (rc == 0) {
        rc = fsm__price_of(c, "Snapshot", "Dynamic", 1, &price);
    }
    if (rc == 0) {
        rc = fsm__bill_create(c, tenant, &r, "Dynamic", 1, price, 1);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, "snap", id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_free(&r);
    fsm__rec_set_s(&r, "SnapshotID", id);
    fsm__rec_set_s(&r, "_IDField", "SnapshotID");
    fsm__rec_set_s(&r, "ResourceType", "Snapshot");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", name);
    fsm__rec_set_s(&r, "DiskID", disk);
    fsm__rec_set_s(&r, "ZoneID", fsm__rec_s(&d, "ZoneID"));
    fsm__rec_set_s(&r, "PoolID", fsm__rec_s(&d, "PoolID"));
    fsm__rec_set_s(&r, "SetType", fsm__rec_s(&d, "SetType"));
    fsm__rec_set_i(&r, "Size", fsm__rec_i(&d, "Size"));
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = fsm__bill_create(c, tenant, &r, "Dynamic", 1, price, 0);
    if (rc == 0) {
        rc = fsm__usage_add(c, tenant, 1, types, delta);
    }
    if (rc == 0) {
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "SnapshotID"), id);
    }
out:
    fsm__rec_free(&d);
    fsm__rec_free(&r);
    return rc;
}

struct snap_filter
{
    char disk[FSM_ID_SIZE]; /* "" = any */
};

static int snap_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct snap_filter *q = arg;

    (void)c;
    return strcmp(fsm__rec_s(r, "State"), "Recycled") != 0 &&
           (q->disk[0] == '\0' ||
            strcmp(fsm__rec_s(r, "DiskID"), q->disk) == 0);
}

/* With a DiskID, the disk's snapshots from its "S" rows, not a scan of
 * every snapshot (of the tenant, or of all for an administrator). */
static int snap_list(struct fsm_ctx *c,
                     void *arg,
                     char (*ids)[FSM_ID_SIZE],
                     unsigned max,
                     unsigned *n,
                     int *used)
{
    const struct snap_filter *q = arg;
    struct snap_ids *s;
    int rc;

    *n = 0;
    *used = 0;
    if (q->disk[0] == '\0') {
        return 0;
    }
    s = malloc(sizeof *s);
    if (s == NULL) {
        return YH_ENOMEM;
    }
    rc = snap_ids(c, q->disk, s);
    if (rc == 0) {
        for (unsigned i = 0; i < s->n && i < max; i++) {
            memcpy(ids[i], s->ids[i], FSM_ID_SIZE);
        }
        *n = s->n < max ? s->n : max;
        *used = 1;
    }
    free(s);
    return rc;
}

int fsm__snap_describe(struct fsm_ctx *c)
{
    struct snap_filter q;
    struct fsm_desc d = {FSM_TBL_RES, SNAP_PREFIX, "SnapshotIDs", 0, snap_keep,
                         NULL,        &q};

    TRY(fsm__arg_str(c, "DiskID", 0, FSM_ID_SIZE - 1, q.disk, NULL));
    return fsm__describe_from(c, &d, snap_list);
}

int fsm__snap_op_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "SnapshotID", 1, FSM_ID_SIZE - 1, id, NULL);
}

/* A live snapshot @id of the actor's tenant. */
static int snap_load(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = strncmp(id, SNAP_PREFIX, sizeof SNAP_PREFIX - 1) == 0
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), r)
                 : YH_ENOTFOUND;
    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "snapshot '%s' not found", id);
    }
    TRY(rc);
    if (strcmp(fsm__rec_s(r, "State"), "Recycled") == 0) {
        return fsm__reject(c, YH_ESTATE, "snapshot '%s' is in the recycle bin",
                           id);
    }
    return 0;
}

/* The same, named by parameter SnapshotID. */
static int snap_get(struct fsm_ctx *c, char id[FSM_ID_SIZE], struct fsm_rec *r)
{
    TRY(fsm__arg_str(c, "SnapshotID", 1, FSM_ID_SIZE - 1, id, NULL));
    return snap_load(c, id, r);
}

int fsm__snap_rollback_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], disk[FSM_ID_SIZE];
    struct fsm_rec s, d, m;
    const char *vm;
    int rc;

    fsm__rec_init(&s);
    fsm__rec_init(&d);
    fsm__rec_init(&m);
    rc = snap_get(c, id, &s);
    if (rc == 0) {
        snprintf(disk, sizeof disk, "%s", fsm__rec_s(&s, "DiskID"));
        rc = fsm__disk_get(c, disk, &d);
    }
    if (rc != 0) {
        goto out;
    }
    vm = fsm__rec_s(&d, "VMID");
    if (vm[0] == '\0') {
        if (strcmp(fsm__rec_s(&d, "State"), "Available") != 0) {
            rc = fsm__reject(c, YH_ESTATE, "disk '%s' is %s", disk,
                             fsm__rec_s(&d, "State"));
        }
    } else if (strcmp(fsm__rec_s(&d, "State"), "InUse") != 0) {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is %s", disk,
                         fsm__rec_s(&d, "State"));
    } else {
        /* attached: only while its machine is stopped, and stays so */
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &m);
        if (rc == 0 &&
            (strcmp(fsm__rec_s(&m, "State"), "Stopped") != 0 ||
             strcmp(fsm__rec_s(&m, "DesiredState"), "Stopped") != 0)) {
            rc = fsm__reject(c, YH_ESTATE,
                             "disk '%s' is in use by '%s' (%s): stop it or "
                             "detach the disk first",
                             disk, vm, fsm__rec_s(&m, "State"));
        }
    }
    if (rc != 0) {
        goto out;
    }
    /* the executor of the machine (or the storage agent of a detached
     * disk) rewrites it; its report of this generation completes the job */
    fsm__rec_set_s(&d, "State", "RollingBack");
    fsm__rec_set_s(&d, "RollbackSnapshotID", id);
    rc = fsm__job_open(c, disk, &d, c->type);
    if (rc == 0) {
        rc = disk_save(c, disk, &d);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "DiskID"), disk);
    }
out:
    fsm__rec_free(&s);
    fsm__rec_free(&d);
    fsm__rec_free(&m);
    return rc;
}

int fsm__snap_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec s;
    int rc;

    fsm__rec_init(&s);
    rc = snap_get(c, id, &s);
    if (rc == 0) {
        rc = fsm__res_delete(c, id, &s);
    }
    fsm__rec_free(&s);
    return rc;
}

/* ---- CloneDisk ---- */

int fsm__disk_clone_check(struct fsm_ctx *c)
{
    char src[FSM_ID_SIZE], name[NAME_MAX_LEN + 1], ct[16];
    char tenant[FSM_ID_SIZE];
    int64_t q;

    TRY(fsm__arg_str(c, "SourceID", 1, FSM_ID_SIZE - 1, src, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, name, NULL));
    TRY(fsm__charge_args(c, ct, &q));
    return fsm__owner_arg(c, tenant);
}

int fsm__disk_clone_apply(struct fsm_ctx *c)
{
    struct fsm_disk_spec a;
    char src[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__disk_clone_check(c));
    memset(&a, 0, sizeof a);
    fsm__arg_str(c, "SourceID", 1, FSM_ID_SIZE - 1, src, NULL);
    fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a.name, NULL);
    fsm__charge_args(c, a.ct, &a.quantity);
    fsm__rec_init(&r);
    if (strncmp(src, SNAP_PREFIX, sizeof SNAP_PREFIX - 1) == 0) {
        rc = snap_load(c, src, &r);
    } else {
        rc = fsm__disk_get(c, src, &r);
    }
    if (rc != 0) {
        goto out;
    }
    /* the clone is of the source's tenant, zone, set type and size */
    snprintf(a.zone, sizeof a.zone, "%s", fsm__rec_s(&r, "ZoneID"));
    snprintf(a.set, sizeof a.set, "%s", fsm__rec_s(&r, "SetType"));
    a.size = fsm__rec_i(&r, "Size");
    {
        char tenant[FSM_ID_SIZE];
        snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&r, "TenantID"));
        rc = fsm__disk_insert(c, tenant, &a, src);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- CreateCustomImage ---- */

int fsm__image_custom_check(struct fsm_ctx *c)
{
    char vm[FSM_ID_SIZE], name[NAME_MAX_LEN + 1];

    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, vm, NULL));
    return fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, name, NULL);
}

int fsm__image_custom_apply(struct fsm_ctx *c)
{
    char vm[FSM_ID_SIZE], name[NAME_MAX_LEN + 1], id[FSM_ID_SIZE];
    char tenant[FSM_ID_SIZE], base[FSM_ID_SIZE];
    const char *types[1] = {"Image"};
    int64_t delta[1] = {1};
    struct fsm_rec m, b, r;
    int rc;

    TRY(fsm__image_custom_check(c));
    fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, vm, NULL);
    fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, name, NULL);
    fsm__rec_init(&m);
    fsm__rec_init(&b);
    fsm__rec_init(&r);
    rc = fsm__vm_load(c, vm, &m);
    if (rc != 0) {
        goto out;
    }
    /* a consistent copy of the boot disk: the machine must be stopped and
     * meant to stay so */
    if (strcmp(fsm__rec_s(&m, "State"), "Stopped") != 0 ||
        strcmp(fsm__rec_s(&m, "DesiredState"), "Stopped") != 0) {
        rc = fsm__reject(c, YH_ESTATE, "VM '%s' must be stopped (it is %s)", vm,
                         fsm__rec_s(&m, "State"));
        goto out;
    }
    snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&m, "TenantID"));
    snprintf(base, sizeof base, "%s", fsm__rec_s(&m, "ImageID"));
    rc = fsm__quota_check(c, tenant, 1, types, delta);
    if (rc == 0) {
        /* the OS type comes from the image it was installed from */
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, base, strlen(base), &b);
        rc = rc == YH_ENOTFOUND ? 0 : rc;
    }
    if (rc == 0) {
        rc = fsm__new_id(c, "image", id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "ImageID", id);
    fsm__rec_set_s(&r, "Name", name);
    fsm__rec_set_s(
        &r, "OsType",
        fsm__rec_has(&b, "OsType") ? fsm__rec_s(&b, "OsType") : "Linux");
    fsm__rec_set_s(&r, "Arch", fsm__rec_s(&m, "Arch"));
    fsm__rec_set_i(&r, "Size", fsm__rec_i(&m, "BootDiskSpace"));
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_s(&r, "ImageType", "Custom");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "SourceVMID", vm);
    fsm__rec_set_s(&r, "BaseImageID", base);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    rc = fsm__usage_add(c, tenant, 1, types, delta);
    if (rc == 0) {
        rc = fsm__rec_save(c, FSM_TBL_INFRA, id, strlen(id), &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "ImageID"), id);
    }
out:
    fsm__rec_free(&m);
    fsm__rec_free(&b);
    fsm__rec_free(&r);
    return rc;
}
