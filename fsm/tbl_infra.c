/* Infrastructure: zones, hosts (with their executor credentials and
 * heartbeat lease), images, anti-affinity groups. All in the infra table,
 * keyed by ID ("zone-", "host-", "image-", "aag-").
 *
 * A host is registered by the administrator with its capacity; the
 * registration creates an API key bound to the host actor (UserID =
 * HostID, no tenant), which may only call agent actions (HostHeartbeat,
 * ReportState). A heartbeat extends the lease (HostLease seconds of log
 * time) and makes the host Online; when the lease ends the leader proposes
 * _HostExpire, which marks it Unknown (never Stopped: its machines may
 * still run) and bumps its executor Epoch; its machines show Unknown too
 * until the host heartbeats again or their executor reports (tbl_vmops.c),
 * and so do its gateways (gwhost.c). Disabled hosts get no new placements
 * (machines or gateways). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define NAME_MAX_LEN 64

int fsm__is_host_id(const char *id)
{
    return strncmp(id, "host-", 5) == 0;
}

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

static int name_taken(struct fsm_ctx *c,
                      const char *prefix,
                      const char *tenant,
                      const char *name,
                      int *taken)
{
    size_t pl = strlen(prefix);
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *taken = 0;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_INFRA], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'infra'");
    }
    fsm__rec_init(&r);
    k.mv_data = (void *)prefix;
    k.mv_size = pl;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !*taken;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0) {
            break;
        }
        if (fsm__rec_decode(v.mv_data, v.mv_size, &r) == 0) {
            *taken = strcmp(fsm__rec_s(&r, "Name"), name) == 0 &&
                     strcmp(fsm__rec_s(&r, "TenantID"), tenant) == 0;
        }
    }
    fsm__rec_free(&r);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'infra'");
    }
    return 0;
}

static int arch_ok(const char *a)
{
    return strcmp(a, "x86_64") == 0 || strcmp(a, "aarch64") == 0;
}

/* Arch parameter: x86_64 (default) or aarch64. */
static int arch_arg(struct fsm_ctx *c, char out[16])
{
    TRY(fsm__arg_str_or(c, "Arch", 15, "x86_64", out));
    if (!arch_ok(out)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Arch': x86_64 or aarch64");
    }
    return 0;
}

static int ident_ok(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Load infra record @id of kind @prefix ("zone-"...), 150 if absent. */
static int infra_get(struct fsm_ctx *c,
                     const char *prefix,
                     const char *what,
                     const char *id,
                     struct fsm_rec *r)
{
    int rc = YH_ENOTFOUND;

    if (strncmp(id, prefix, strlen(prefix)) == 0) {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, id, strlen(id), r);
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "%s '%s' not found", what, id);
    }
    return rc;
}

static int infra_save(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    fsm__rec_set_i(r, "Revision", (int64_t)c->index);
    return fsm__rec_save(c, FSM_TBL_INFRA, id, strlen(id), r);
}

/* The end of every create: save new record @r (freed here) and answer
 * its ID as field @id_field. */
static int infra_created(struct fsm_ctx *c,
                         const char *id_field,
                         const char *id,
                         struct fsm_rec *r)
{
    int rc = infra_save(c, id, r);

    fsm__rec_free(r);
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, id_field), id);
    }
    return rc;
}

/* ---- zones ---- */

struct zone_args
{
    char name[NAME_MAX_LEN + 1]; /* Name */
    int64_t overcommit;          /* CPUOvercommit, percent */
};

static int zone_args(struct fsm_ctx *c, struct zone_args *a)
{
    TRY(fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, a->name, NULL));
    return fsm__arg_int_or(c, "CPUOvercommit", 100, 1000, 100, &a->overcommit);
}

int fsm__zone_create_check(struct fsm_ctx *c)
{
    struct zone_args a;

    return zone_args(c, &a);
}

int fsm__zone_create_apply(struct fsm_ctx *c)
{
    struct zone_args a;
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int taken;

    TRY(zone_args(c, &a));
    TRY(name_taken(c, "zone-", "", a.name, &taken));
    if (taken) {
        return fsm__reject(c, YH_EEXIST, "zone '%s' already exists", a.name);
    }
    TRY(fsm__new_id(c, "zone", id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "ZoneID", id);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_i(&r, "CPUOvercommit", a.overcommit);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    return infra_created(c, "ZoneID", id, &r);
}

int fsm__zone_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_INFRA, "zone-", "ZoneIDs", 1,
                         NULL,          NULL,    NULL};

    return fsm__describe(c, &d);
}

int fsm__zone_get(struct fsm_ctx *c, const char *id)
{
    struct fsm_rec z;
    int rc;

    fsm__rec_init(&z);
    rc = infra_get(c, "zone-", "zone", id, &z);
    fsm__rec_free(&z);
    return rc;
}

/* ---- hosts ---- */

struct host_args
{
    char zone[FSM_ID_SIZE];      /* ZoneID */
    char name[NAME_MAX_LEN + 1]; /* Name */
    int64_t cpu, mem, gpu;       /* capacity */
    char gpu_model[33];          /* GPUModel */
    char arch[16];               /* Arch */
    char sets[16][FSM_ID_SIZE];  /* StorageSetTypes */
    unsigned n_sets;             /* count */
};

static int host_args(struct fsm_ctx *c, struct host_args *a)
{
    TRY(fsm__arg_str(c, "ZoneID", 1, FSM_ID_SIZE - 1, a->zone, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_int(c, "CPU", 1, 1, 4096, &a->cpu, NULL));
    TRY(fsm__arg_int(c, "Memory", 1, 512, (int64_t)64 << 20, &a->mem, NULL));
    TRY(fsm__arg_int_or(c, "GPU", 0, 64, 0, &a->gpu));
    TRY(fsm__arg_str(c, "GPUModel", 0, 32, a->gpu_model, NULL));
    if (!ident_ok(a->gpu_model) || (a->gpu > 0 && a->gpu_model[0] == '\0')) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'GPUModel': required with GPU, "
                           "letters, digits, '-' and '_'");
    }
    TRY(arch_arg(c, a->arch));
    TRY(fsm__arg_list(c, "StorageSetTypes", 16, a->sets, &a->n_sets));
    for (unsigned i = 0; i < a->n_sets; i++) {
        if (!ident_ok(a->sets[i]) || strlen(a->sets[i]) > 32) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter 'StorageSetTypes'");
        }
    }
    return 0;
}

int fsm__host_register_check(struct fsm_ctx *c)
{
    struct host_args a;

    return host_args(c, &a);
}

int fsm__host_register_apply(struct fsm_ctx *c)
{
    struct host_args a;
    char id[FSM_ID_SIZE];
    struct fsm_rec r, z;
    MDB_val v;
    int rc;

    TRY(host_args(c, &a));
    fsm__rec_init(&z);
    rc = infra_get(c, "zone-", "zone", a.zone, &z);
    fsm__rec_free(&z);
    TRY(rc);
    /* the stamp's key must be new before anything is written */
    {
        char pub[FSM_KEY_SIZE];
        TRY(fsm__stamp_str(c, "PublicKey", FSM_KEY_SIZE - 1, pub));
        rc = fsm__get(c->f, c->txn, FSM_TBL_KEYS, pub, strlen(pub), &v);
        if (rc == 0) {
            return fsm__reject(c, YH_EEXIST, "API key '%s' already exists",
                               pub);
        }
        if (rc != YH_ENOTFOUND) {
            return rc;
        }
    }
    TRY(fsm__new_id(c, "host", id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "HostID", id);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "ZoneID", a.zone);
    fsm__rec_set_s(&r, "Arch", a.arch);
    fsm__rec_set_i(&r, "CPU", a.cpu);
    fsm__rec_set_i(&r, "Memory", a.mem);
    fsm__rec_set_i(&r, "GPU", a.gpu);
    fsm__rec_set_s(&r, "GPUModel", a.gpu_model);
    fsm__rec_set_l(&r, "StorageSetTypes", a.sets, a.n_sets);
    fsm__rec_set_s(&r, "State", "Unknown");
    fsm__rec_set_b(&r, "Disabled", 0);
    fsm__rec_set_i(&r, "LeaseExpire", 0);
    fsm__rec_set_i(&r, "Epoch", 1);
    fsm__rec_set_i(&r, "UsedCPU", 0);
    fsm__rec_set_i(&r, "UsedMemory", 0);
    fsm__rec_set_i(&r, "UsedGPU", 0);
    fsm__rec_set_i(&r, "VMCount", 0);
    fsm__rec_set_i(&r, "GatewayCount", 0);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    rc = infra_save(c, id, &r);
    fsm__rec_free(&r);
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "HostID"), id);
        rc = fsm__key_store(c, id);
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return rc;
}

int fsm__host_heartbeat_apply(struct fsm_ctx *c)
{
    const char *id = c->actor->user_id;
    struct fsm_bill_cfg cfg;
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = infra_get(c, "host-", "host", id, &r);
    if (rc == 0) {
        rc = fsm__bill_cfg(c->f, c->txn, &cfg);
    }
    if (rc == 0 && strcmp(fsm__rec_s(&r, "State"), "Online") != 0) {
        /* back from Unknown: its machines' and gateways' marks end */
        rc = fsm__vm_host_back(c, id);
        if (rc == 0) {
            rc = fsm__gw_host_back(c, id);
        }
    }
    if (rc == 0) {
        fsm__rec_set_s(&r, "State", "Online");
        fsm__rec_set_i(&r, "LeaseExpire", now_s(c) + cfg.host_lease);
        rc = infra_save(c, id, &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "HostID"), id);
        yh_mp_pack_str(fsm__field(c, "State"), "Online");
        msgpack_pack_int64(fsm__field(c, "LeaseExpire"),
                           fsm__rec_i(&r, "LeaseExpire"));
        msgpack_pack_int64(fsm__field(c, "Epoch"), fsm__rec_i(&r, "Epoch"));
    }
    fsm__rec_free(&r);
    return rc;
}

static int host_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const char *zone = arg;

    (void)c;
    return zone[0] == '\0' || strcmp(fsm__rec_s(r, "ZoneID"), zone) == 0;
}

int fsm__host_describe(struct fsm_ctx *c)
{
    char zone[FSM_ID_SIZE];
    struct fsm_desc d = {FSM_TBL_INFRA, "host-", "HostIDs", 1,
                         host_keep,     NULL,    zone};

    TRY(fsm__arg_str(c, "ZoneID", 0, FSM_ID_SIZE - 1, zone, NULL));
    return fsm__describe(c, &d);
}

int fsm__host_disable_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "HostID", 1, FSM_ID_SIZE - 1, id, NULL);
}

static int host_set_disabled(struct fsm_ctx *c, int disabled)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__arg_str(c, "HostID", 1, FSM_ID_SIZE - 1, id, NULL));
    fsm__rec_init(&r);
    rc = infra_get(c, "host-", "host", id, &r);
    if (rc == 0 && fsm__rec_i(&r, "Disabled") != disabled) {
        fsm__rec_set_b(&r, "Disabled", disabled);
        rc = infra_save(c, id, &r);
    }
    fsm__rec_free(&r);
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    return rc;
}

int fsm__host_disable_apply(struct fsm_ctx *c)
{
    return host_set_disabled(c, 1);
}

int fsm__host_enable_apply(struct fsm_ctx *c)
{
    return host_set_disabled(c, 0);
}

int fsm__host_expire_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    if (fsm__arg_str(c, "HostID", 1, FSM_ID_SIZE - 1, id, NULL) != 0) {
        return YH_EPROTO;
    }
    fsm__rec_init(&r);
    rc = infra_get(c, "host-", "host", id, &r);
    if (rc != 0) {
        goto out;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    if (strcmp(fsm__rec_s(&r, "State"), "Online") != 0 ||
        now_s(c) < fsm__rec_i(&r, "LeaseExpire")) {
        rc = fsm__reject(c, YH_ESTATE, "host '%s' holds its lease", id);
        goto out;
    }
    /* Unknown, not down: its machines may still run. The epoch bump
     * fences the old executor session. */
    fsm__rec_set_s(&r, "State", "Unknown");
    fsm__rec_set_i(&r, "Epoch", fsm__rec_i(&r, "Epoch") + 1);
    rc = infra_save(c, id, &r);
    if (rc == 0) {
        /* so are its machines (tbl_vmops.c) and gateways (gwhost.c) */
        rc = fsm__vm_host_unknown(c, id);
    }
    if (rc == 0) {
        rc = fsm__gw_host_unknown(c, id);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

int fsm__host_use_rec(struct fsm_ctx *c,
                      const char *host,
                      struct fsm_rec *r,
                      int64_t cpu,
                      int64_t mem,
                      int64_t gpu,
                      int64_t vms)
{
    fsm__rec_set_i(r, "UsedCPU", fsm__rec_i(r, "UsedCPU") + cpu);
    fsm__rec_set_i(r, "UsedMemory", fsm__rec_i(r, "UsedMemory") + mem);
    fsm__rec_set_i(r, "UsedGPU", fsm__rec_i(r, "UsedGPU") + gpu);
    fsm__rec_set_i(r, "VMCount", fsm__rec_i(r, "VMCount") + vms);
    return infra_save(c, host, r);
}

int fsm__host_use(struct fsm_ctx *c,
                  const char *host,
                  int64_t cpu,
                  int64_t mem,
                  int64_t gpu,
                  int64_t vms)
{
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, host, strlen(host), &r);
    if (rc == 0) {
        rc = fsm__host_use_rec(c, host, &r, cpu, mem, gpu, vms);
    } else if (rc == YH_ENOTFOUND) {
        rc = 0; /* hosts are never deleted; nothing to release */
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__host_tick(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t now_ns,
                   fsm_propose_cb *cb,
                   void *arg)
{
    static const struct fsm_actor sys = {"", "", 1};
    int64_t now = (int64_t)(now_ns / 1000000000u);
    struct yh_buf args = YH_BUF_INIT, env = YH_BUF_INIT;
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_val k, v;
    int err = 0;
    int rc;

    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_INFRA], &cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on 'infra'");
    }
    fsm__rec_init(&r);
    k.mv_data = "host-";
    k.mv_size = 5;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct fsm_out o;
        if (k.mv_size < 5 || memcmp(k.mv_data, "host-", 5) != 0) {
            break;
        }
        if (fsm__rec_decode(v.mv_data, v.mv_size, &r) != 0 ||
            strcmp(fsm__rec_s(&r, "State"), "Online") != 0 ||
            now < fsm__rec_i(&r, "LeaseExpire")) {
            continue;
        }
        yh_buf_reset(&args);
        fsm__out_init(&o, &args);
        msgpack_pack_map(&o.pk, 1);
        yh_mp_pack_kv_str(&o.pk, "HostID", fsm__rec_s(&r, "HostID"));
        err = o.oom
                  ? YH_ENOMEM
                  : fsm__cmd_internal("_HostExpire", &sys, now_ns, &args, &env);
        if (err == 0 && cb(arg, env.data, env.len) != 0) {
            break;
        }
        if (err != 0) {
            break;
        }
    }
    fsm__rec_free(&r);
    mdb_cursor_close(cur);
    yh_buf_release(&args);
    yh_buf_release(&env);
    if (err != 0) {
        return err;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(f, rc, "read 'infra'");
    }
    return 0;
}

/* ---- images ---- */

struct image_args
{
    char name[NAME_MAX_LEN + 1]; /* Name */
    char os[16];                 /* OsType */
    char arch[16];               /* Arch */
    int64_t size;                /* Size, GB */
};

static int image_args(struct fsm_ctx *c, struct image_args *a)
{
    TRY(fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_str_or(c, "OsType", sizeof a->os - 1, "Linux", a->os));
    if (strcmp(a->os, "Linux") != 0 && strcmp(a->os, "Windows") != 0) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'OsType': Linux or Windows");
    }
    TRY(arch_arg(c, a->arch));
    return fsm__arg_int_or(c, "Size", 1, 2048, 20, &a->size);
}

int fsm__image_create_check(struct fsm_ctx *c)
{
    struct image_args a;

    return image_args(c, &a);
}

int fsm__image_create_apply(struct fsm_ctx *c)
{
    struct image_args a;
    char id[FSM_ID_SIZE];
    struct fsm_rec r;

    TRY(image_args(c, &a));
    TRY(fsm__new_id(c, "image", id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "ImageID", id);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "OsType", a.os);
    fsm__rec_set_s(&r, "Arch", a.arch);
    fsm__rec_set_i(&r, "Size", a.size);
    fsm__rec_set_s(&r, "State", "Available");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    return infra_created(c, "ImageID", id, &r);
}

/* Base images (no tenant) are public; custom images their tenant's. */
static int image_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const char *tenant = fsm__rec_s(r, "TenantID");

    (void)arg;
    return tenant[0] == '\0' || fsm__owns(c, tenant);
}

int fsm__image_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_INFRA, "image-", "ImageIDs", 1,
                         image_keep,    NULL,     NULL};

    return fsm__describe(c, &d);
}

int fsm__image_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "ImageID", 1, FSM_ID_SIZE - 1, id, NULL);
}

/* DeleteImage: a base image by the administrator, a custom image by its
 * tenant (or the administrator); refused while a machine (recycled ones
 * too: they may come back) was installed from it ("I" rows). A create or
 * reinstall applied after the delete finds no image (150). */
int fsm__image_delete_apply(struct fsm_ctx *c)
{
    const char *types[1] = {"Image"};
    int64_t delta[1] = {-1};
    char id[FSM_ID_SIZE], tenant[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__image_delete_check(c));
    fsm__arg_str(c, "ImageID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = strncmp(id, "image-", 6) == 0
             ? fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, id, strlen(id), &r)
             : YH_ENOTFOUND;
    snprintf(tenant, sizeof tenant, "%s",
             rc == 0 ? fsm__rec_s(&r, "TenantID") : "");
    fsm__rec_free(&r);
    if (rc == 0 && tenant[0] != '\0' && !fsm__owns(c, tenant)) {
        rc = YH_ENOTFOUND; /* another tenant's custom image */
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "image '%s' not found", id);
    }
    TRY(rc);
    if (tenant[0] == '\0' && !c->actor->admin) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: image '%s' is a base image "
                           "(administrator only)",
                           id);
    }
    TRY(fsm__net_users(c, 'I', id, "image"));
    if (tenant[0] != '\0') {
        TRY(fsm__usage_add(c, tenant, 1, types, delta));
    }
    rc = fsm__cdel(c, FSM_TBL_INFRA, id, strlen(id));
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    return rc;
}

/* ---- anti-affinity groups (tenant-owned) ---- */

int fsm__aag_create_check(struct fsm_ctx *c)
{
    char name[NAME_MAX_LEN + 1];
    char tenant[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, name, NULL));
    return fsm__owner_arg(c, tenant);
}

int fsm__aag_create_apply(struct fsm_ctx *c)
{
    char name[NAME_MAX_LEN + 1];
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE];
    struct fsm_rec r;
    int taken;

    TRY(fsm__arg_str(c, "Name", 1, NAME_MAX_LEN, name, NULL));
    TRY(fsm__owner_arg(c, tenant));
    TRY(name_taken(c, "aag-", tenant, name, &taken));
    if (taken) {
        return fsm__reject(c, YH_EEXIST,
                           "anti-affinity group '%s' already exists", name);
    }
    TRY(fsm__new_id(c, "aag", id));
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "AntiAffinityGroupID", id);
    fsm__rec_set_s(&r, "Name", name);
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    return infra_created(c, "AntiAffinityGroupID", id, &r);
}

int fsm__aag_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_INFRA, "aag-", "AntiAffinityGroupIDs", 0, NULL,
                         NULL,          NULL};

    return fsm__describe(c, &d);
}
