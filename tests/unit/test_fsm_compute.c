/* Unit tests of infrastructure and compute: zones, hosts (credentials,
 * heartbeat lease, expiry, disable), images, anti-affinity groups, the
 * scheduler, VM lifecycle with jobs and executor reports, resize, recycle
 * bin and capacity release. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"

#define SEC 1000000000ull
#define T0 (1700000000ull * SEC)

/* ---- fixture (as in test_fsm.c) ---- */

struct fx
{
    char dir[64];           /* temp dir holding the store */
    struct fsm *f;          /* store under test */
    struct fsm_config cfg;  /* its config */
    uint64_t index;         /* last log index fed */
    uint64_t time;          /* leader clock (ns) */
    struct fsm_actor admin; /* bootstrap administrator */
    msgpack_unpacked res;   /* last result */
    struct yh_buf env;      /* last envelope */
    struct yh_buf out;      /* last result bytes */
    struct yh_buf resbuf;   /* bytes x->res points into */
    int proposed;           /* last call produced an entry */
};

static int rm_entry(const char *path,
                    const struct stat *st,
                    int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static struct fx *fx_new(void)
{
    struct fx *x = calloc(1, sizeof *x);
    char err[YH_ERRMSG_SIZE];

    assert_non_null(x);
    snprintf(x->dir, sizeof x->dir, "/tmp/yh-test-fsmx-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    x->cfg.nosync = 1;
    x->cfg.map_size = 64u << 20;
    x->cfg.token_ttl_ns = 3600 * SEC;
    x->time = T0;
    msgpack_unpacked_init(&x->res);
    assert_int_equal(fsm_open(&x->f, x->dir, &x->cfg, err), 0);
    return x;
}

static void fx_free(struct fx *x)
{
    fsm_close(x->f);
    nftw(x->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    msgpack_unpacked_destroy(&x->res);
    yh_buf_release(&x->env);
    yh_buf_release(&x->out);
    yh_buf_release(&x->resbuf);
    free(x);
}

static void bootstrap(struct fx *x);

static int setup(void **state)
{
    struct fx *x = fx_new();

    bootstrap(x);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static void set_result(struct fx *x, const struct yh_buf *b)
{
    size_t off = 0;

    msgpack_unpacked_destroy(&x->res);
    msgpack_unpacked_init(&x->res);
    if (b != &x->resbuf) {
        yh_buf_reset(&x->resbuf);
        assert_int_equal(yh_buf_append(&x->resbuf, b->data, b->len), 0);
    }
    assert_int_equal(msgpack_unpack_next(&x->res, (const char *)x->resbuf.data,
                                         x->resbuf.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(x->res.data.type, MSGPACK_OBJECT_MAP);
}

static int64_t res_int(struct fx *x, const char *key)
{
    int64_t v = -1;

    if (yh_mp_int(&x->res.data, key, &v) != 0) {
        fprintf(stderr, "no integer '%s' in ", key);
        msgpack_object_print(stderr, x->res.data);
        fprintf(stderr, "\n");
        fail();
    }
    return v;
}

static const char *res_str(struct fx *x, const char *key)
{
    static char buf[4][256];
    static int i;
    char *out = buf[i++ & 3];

    if (yh_mp_strcpy(&x->res.data, key, out, 256) != 0) {
        out[0] = '\0';
    }
    return out;
}

/* Infos[i] of the last result. */
static const msgpack_object *info(struct fx *x, unsigned i)
{
    const msgpack_object *v = yh_mp_get(&x->res.data, "Infos");

    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
    assert_true(i < v->via.array.size);
    return &v->via.array.ptr[i];
}

static unsigned n_infos(struct fx *x)
{
    const msgpack_object *v = yh_mp_get(&x->res.data, "Infos");

    assert_non_null(v);
    return v->via.array.size;
}

static const char *info_str(struct fx *x, unsigned i, const char *key)
{
    static char buf[4][256];
    static int j;
    char *out = buf[j++ & 3];

    if (yh_mp_strcpy(info(x, i), key, out, 256) != 0) {
        out[0] = '\0';
    }
    return out;
}

static __attribute__((unused)) int64_t info_int(struct fx *x,
                                                unsigned i,
                                                const char *key)
{
    const msgpack_object *o = yh_mp_get(info(x, i), key);
    int64_t v = -999999;

    if (o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN) {
        return o->via.boolean;
    }
    assert_int_equal(yh_mp_int(info(x, i), key, &v), 0);
    return v;
}

static int apply_raw(struct fx *x, const void *cmd, size_t len)
{
    int skipped = 1;
    uint64_t tag;

    x->index++;
    assert_int_equal(
        fsm_apply(x->f, x->index, cmd, len, &x->out, NULL, &tag, &skipped), 0);
    assert_int_equal(skipped, 0);
    set_result(x, &x->out);
    return (int)res_int(x, "RetCode");
}

static int call_obj(struct fx *x,
                    const char *action,
                    const struct fsm_actor *actor,
                    const msgpack_object *req)
{
    enum fsm_action_kind kind = fsm_action_kind(action, NULL);
    struct yh_buf result = YH_BUF_INIT;
    int rc;

    x->time += SEC;
    x->proposed = 0;
    if (kind == FSM_ACT_READ) {
        assert_int_equal(fsm_query(x->f, action, req, actor, &result), 0);
        set_result(x, &result);
        yh_buf_release(&result);
        return (int)res_int(x, "RetCode");
    }
    assert_int_equal(fsm_cmd_prepare(x->f, action, req, actor, "127.0.0.1:5555",
                                     x->time, 77, &x->env, &result),
                     0);
    if (x->env.len == 0) {
        set_result(x, &result);
        yh_buf_release(&result);
        rc = (int)res_int(x, "RetCode");
        assert_int_not_equal(rc, 0);
        return rc;
    }
    yh_buf_release(&result);
    x->proposed = 1;
    return apply_raw(x, x->env.data, x->env.len);
}

/* call(x, action, actor, "Key", "value", ..., NULL) */
static int call(struct fx *x,
                const char *action,
                const struct fsm_actor *actor,
                const char *k,
                ...)
{
    struct yh_buf b = YH_BUF_INIT;
    const char *keys[32], *vals[32];
    msgpack_unpacked u;
    msgpack_packer pk;
    unsigned n = 0;
    size_t off = 0;
    va_list ap;
    int rc;

    va_start(ap, k);
    while (k != NULL) {
        assert_true(n < 32);
        keys[n] = k;
        vals[n++] = va_arg(ap, const char *);
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        yh_mp_pack_str(&pk, keys[i]);
        yh_mp_pack_str(&pk, vals[i]);
    }
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    rc = call_obj(x, action, actor, &u.data);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
    return rc;
}

/* Tick the leader at @now and apply whatever it proposes; returns the
 * number of envelopes. */
struct tick_ctx
{
    struct fx *x;  /* fixture */
    unsigned n;    /* proposals */
    int codes[64]; /* their RetCodes */
};

static int tick_cb(void *arg, const uint8_t *env, size_t len)
{
    struct tick_ctx *t = arg;

    if (t->n < 64) {
        t->codes[t->n] = apply_raw(t->x, env, len);
    }
    t->n++;
    return 0;
}

static __attribute__((unused)) unsigned tick(struct fx *x, struct tick_ctx *t)
{
    memset(t, 0, sizeof *t);
    t->x = x;
    assert_int_equal(fsm_leader_tick(x->f, x->time, tick_cb, t), 0);
    return t->n;
}

static void bootstrap(struct fx *x)
{
    struct fsm_key key;
    struct yh_buf b = YH_BUF_INIT;

    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, x->time, &b), 0);
    assert_int_equal(apply_raw(x, b.data, b.len), 0);
    yh_buf_release(&b);
    assert_int_equal(fsm_key_get(x->f, "adminpub", &key), 0);
    x->admin = key.actor;
}

/* Actor of a new API key of @uid, created by @by. */
static void key_for(struct fx *x,
                    const struct fsm_actor *by,
                    const char *uid,
                    struct fsm_actor *a)
{
    struct fsm_key key;

    assert_int_equal(call(x, "CreateAPIKey", by, "UserID", uid, NULL), 0);
    assert_int_equal(fsm_key_get(x->f, res_str(x, "PublicKey"), &key), 0);
    *a = key.actor;
}

static void make_tenant(struct fx *x,
                        const char *email,
                        struct fsm_actor *a,
                        char *uid_out)
{
    char uid[FSM_ID_SIZE];

    assert_int_equal(call(x, "CreateUser", &x->admin, "UserEmail", email,
                          "PassWord", "secret-pass", NULL),
                     0);
    snprintf(uid, sizeof uid, "%s", res_str(x, "UserID"));
    key_for(x, &x->admin, uid, a);
    if (uid_out != NULL) {
        snprintf(uid_out, FSM_ID_SIZE, "%s", uid);
    }
}

static char *dump_str(struct fsm *f)
{
    char *p = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&p, &n);

    assert_non_null(m);
    assert_int_equal(fsm_dump(f, m), 0);
    fclose(m);
    return p;
}

/* Create a zone, return its ID. */
static void zone(struct fx *x, const char *name, const char *oc, char *id)
{
    assert_int_equal(call(x, "CreateZone", &x->admin, "Name", name,
                          "CPUOvercommit", oc, NULL),
                     0);
    snprintf(id, FSM_ID_SIZE, "%s", res_str(x, "ZoneID"));
}

/* Register a host; its agent actor in @agent. */
static void host(struct fx *x,
                 const char *zone_id,
                 const char *cpu,
                 const char *mem,
                 const char *arch,
                 const char *gpu,
                 char *id,
                 struct fsm_actor *agent)
{
    struct fsm_key k;

    assert_int_equal(call(x, "RegisterHost", &x->admin, "ZoneID", zone_id,
                          "CPU", cpu, "Memory", mem, "Arch", arch, "GPU", gpu,
                          "GPUModel", "T4", "StorageSetTypes.0", "SSD", NULL),
                     0);
    snprintf(id, FSM_ID_SIZE, "%s", res_str(x, "HostID"));
    assert_int_equal(fsm_key_get(x->f, res_str(x, "PublicKey"), &k), 0);
    assert_string_equal(k.actor.user_id, id);
    assert_string_equal(k.actor.tenant_id, "");
    assert_false(k.actor.admin);
    *agent = k.actor;
    assert_int_equal(call(x, "HostHeartbeat", agent, NULL), 0);
}

static void image(struct fx *x, const char *arch, char *id)
{
    assert_int_equal(call(x, "CreateImage", &x->admin, "Name", "debian", "Arch",
                          arch, "Size", "10", NULL),
                     0);
    snprintf(id, FSM_ID_SIZE, "%s", res_str(x, "ImageID"));
}

static void infra(void **state)
{
    struct fx *x = *state;
    struct fsm_actor t, agent;
    char z[FSM_ID_SIZE], h[FSM_ID_SIZE], img[FSM_ID_SIZE];
    struct tick_ctx tc;

    make_tenant(x, "t@x.io", &t, NULL);
    assert_int_equal(call(x, "CreateZone", &t, "Name", "z1", NULL), YH_EPERM);
    assert_int_equal(call(x, "CreateZone", &x->admin, NULL), YH_EMISSING);
    assert_int_equal(call(x, "CreateZone", &x->admin, "Name", "z1",
                          "CPUOvercommit", "50", NULL),
                     YH_EINVAL);
    zone(x, "z1", "200", z);
    assert_string_equal(z, "zone-00000001");
    assert_int_equal(call(x, "CreateZone", &x->admin, "Name", "z1", NULL),
                     YH_EEXIST);
    assert_int_equal(call(x, "DescribeZone", &t, NULL), 0); /* public */
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_int_equal(info_int(x, 0, "CPUOvercommit"), 200);

    /* hosts: validation */
    assert_int_equal(call(x, "RegisterHost", &x->admin, "ZoneID", "zone-9",
                          "CPU", "8", "Memory", "8192", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(call(x, "RegisterHost", &x->admin, "ZoneID", z, "CPU", "8",
                          "Memory", "8192", "Arch", "mips", NULL),
                     YH_EINVAL);
    assert_int_equal(call(x, "RegisterHost", &x->admin, "ZoneID", z, "CPU", "8",
                          "Memory", "8192", "GPU", "2", NULL),
                     YH_EINVAL); /* GPUs need a model */
    assert_int_equal(
        call(x, "RegisterHost", &x->admin, "ZoneID", z, "Memory", "8192", NULL),
        YH_EMISSING);
    assert_int_equal(call(x, "RegisterHost", &t, "ZoneID", z, "CPU", "8",
                          "Memory", "8192", NULL),
                     YH_EPERM);
    host(x, z, "8", "16384", "x86_64", "0", h, &agent);
    assert_int_equal(call(x, "DescribeHost", &x->admin, NULL), 0);
    assert_string_equal(info_str(x, 0, "State"), "Online");
    assert_int_equal(info_int(x, 0, "Epoch"), 1);
    assert_int_equal(call(x, "DescribeHost", &t, NULL), YH_EPERM);
    /* host credentials: agent actions only; agent actions: hosts only */
    assert_int_equal(call(x, "DescribeUser", &agent, NULL), YH_EPERM);
    assert_int_equal(call(x, "CreateDisk", &agent, "Size", "1", NULL),
                     YH_EPERM);
    assert_int_equal(call(x, "HostHeartbeat", &t, NULL), YH_EPERM);
    assert_int_equal(call(x, "HostHeartbeat", &x->admin, NULL), YH_EPERM);
    /* the lease: 30 s by default; expiry is proposed by the leader */
    assert_int_equal(tick(x, &tc), 0);
    x->time += 31 * SEC;
    assert_int_equal(tick(x, &tc), 1);
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(tick(x, &tc), 0);
    assert_int_equal(call(x, "DescribeHost", &x->admin, "HostIDs.0", h, NULL),
                     0);
    assert_string_equal(info_str(x, 0, "State"), "Unknown");
    assert_int_equal(info_int(x, 0, "Epoch"), 2);
    assert_int_equal(call(x, "HostHeartbeat", &agent, NULL), 0);
    assert_string_equal(res_str(x, "State"), "Online");
    assert_int_equal(res_int(x, "Epoch"), 2);
    /* a shorter lease from the configuration */
    assert_int_equal(
        call(x, "ModifyBillingConfig", &x->admin, "HostLease", "5", NULL), 0);
    assert_int_equal(call(x, "HostHeartbeat", &agent, NULL), 0);
    x->time += 6 * SEC;
    assert_int_equal(tick(x, &tc), 1);
    /* disable / enable */
    assert_int_equal(
        call(x, "DisableHost", &x->admin, "HostID", "host-9", NULL),
        YH_ENOTFOUND);
    assert_int_equal(call(x, "DisableHost", &x->admin, "HostID", h, NULL), 0);
    assert_int_equal(call(x, "DescribeHost", &x->admin, NULL), 0);
    assert_int_equal(info_int(x, 0, "Disabled"), 1);
    assert_int_equal(call(x, "EnableHost", &x->admin, "HostID", h, NULL), 0);
    /* images */
    assert_int_equal(
        call(x, "CreateImage", &x->admin, "Name", "i", "OsType", "BeOS", NULL),
        YH_EINVAL);
    assert_int_equal(call(x, "CreateImage", &t, "Name", "i", NULL), YH_EPERM);
    image(x, "x86_64", img);
    assert_string_equal(img, "image-00000001");
    assert_int_equal(call(x, "DescribeImage", &t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_string_equal(info_str(x, 0, "Arch"), "x86_64");
    /* anti-affinity groups are tenant-owned */
    assert_int_equal(
        call(x, "CreateAntiAffinityGroup", &t, "Name", "web", NULL), 0);
    assert_int_equal(
        call(x, "CreateAntiAffinityGroup", &t, "Name", "web", NULL), YH_EEXIST);
    assert_int_equal(call(x, "DescribeAntiAffinityGroup", &t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_int_equal(call(x, "DescribeAntiAffinityGroup", &x->admin, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
}

struct world
{
    struct fsm_actor t, t2;    /* tenants */
    char tid[FSM_ID_SIZE];     /* t's ID */
    char z[FSM_ID_SIZE];       /* zone (overcommit 150%) */
    char h[3][FSM_ID_SIZE];    /* hosts: 4 cpu, 8 cpu, 8 cpu arm+gpu */
    struct fsm_actor agent[3]; /* their agents */
    char img[FSM_ID_SIZE], arm[FSM_ID_SIZE]; /* images */
};

static void world(struct fx *x, struct world *w)
{
    make_tenant(x, "t@x.io", &w->t, w->tid);
    make_tenant(x, "u@x.io", &w->t2, NULL);
    zone(x, "z1", "150", w->z);
    host(x, w->z, "4", "8192", "x86_64", "0", w->h[0], &w->agent[0]);
    host(x, w->z, "8", "16384", "x86_64", "0", w->h[1], &w->agent[1]);
    host(x, w->z, "8", "16384", "aarch64", "2", w->h[2], &w->agent[2]);
    image(x, "x86_64", w->img);
    image(x, "aarch64", w->arm);
}

static int create_vm(struct fx *x,
                     const struct fsm_actor *a,
                     const char *zone_id,
                     const char *img,
                     const char *cpu,
                     const char *mem)
{
    return call(x, "CreateVMInstance", a, "ZoneID", zone_id, "ImageID", img,
                "CPU", cpu, "Memory", mem, NULL);
}

static void scheduler(void **state)
{
    struct fx *x = *state;
    struct world w;
    char aag[FSM_ID_SIZE], vm[FSM_ID_SIZE];

    world(x, &w);
    /* validation */
    assert_int_equal(create_vm(x, &w.t, "zone-9", w.img, "1", "1024"),
                     YH_ENOTFOUND);
    assert_int_equal(create_vm(x, &w.t, w.z, "image-9", "1", "1024"),
                     YH_ENOTFOUND);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "0", "1024"), YH_EINVAL);
    assert_int_equal(call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                          w.img, "CPU", "1", NULL),
                     YH_EMISSING);
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", w.img,
             "CPU", "1", "Memory", "1024", "Password", "short", NULL),
        YH_EINVAL);
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", w.img,
             "CPU", "1", "Memory", "1024", "BootDiskSpace", "5", NULL),
        YH_EINVAL); /* the image needs 10 GB */
    /* least loaded: the 8-CPU x86 host first (1/12 < 1/6) */
    assert_int_equal(call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                          w.img, "CPU", "2", "Memory", "2048", "Password",
                          "secret-pass", "Name", "web1", NULL),
                     0);
    assert_string_equal(res_str(x, "HostID"), w.h[1]);
    snprintf(vm, sizeof vm, "%s", res_str(x, "VMID"));
    assert_string_equal(vm, "uhost-00000001");
    assert_true(strlen(res_str(x, "JobID")) > 0);
    /* the password is neither in the log nor in the state */
    assert_null(strstr((const char *)x->env.data, "secret-pass"));
    {
        char *d = dump_str(x->f);
        assert_null(strstr(d, "secret-pass"));
        assert_non_null(strstr(d, "\"_PwHash\""));
        free(d);
    }
    assert_int_equal(call(x, "DescribeVMInstance", &w.t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_string_equal(info_str(x, 0, "State"), "Creating");
    assert_string_equal(info_str(x, 0, "DesiredState"), "Running");
    assert_null(yh_mp_get(info(x, 0), "_PwHash"));
    assert_int_equal(call(x, "DescribeVMInstance", &w.t2, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 0);
    /* then the lighter one; architecture: arm images go to the arm host */
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), 0);
    assert_string_equal(res_str(x, "HostID"), w.h[0]);
    assert_int_equal(create_vm(x, &w.t, w.z, w.arm, "1", "1024"), 0);
    assert_string_equal(res_str(x, "HostID"), w.h[2]);
    /* GPUs: only the arm host has them (model T4) */
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", w.img,
             "CPU", "1", "Memory", "1024", "GPU", "1", NULL),
        YH_ECAPACITY);
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", w.arm,
             "CPU", "1", "Memory", "1024", "GPU", "1", "GPUType", "A100", NULL),
        YH_ECAPACITY);
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", w.arm,
             "CPU", "1", "Memory", "1024", "GPU", "2", "GPUType", "T4", NULL),
        0);
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", w.arm,
             "CPU", "1", "Memory", "1024", "GPU", "1", NULL),
        YH_ECAPACITY);
    /* overcommit: 8 CPU * 150% = 12 on h1 (2 used), 6 on h0 (2 used) */
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "10", "1024"), 0);
    assert_string_equal(res_str(x, "HostID"), w.h[1]);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "5", "1024"), YH_ECAPACITY);
    assert_non_null(strstr(res_str(x, "Message"), "insufficient capacity"));
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "4", "1024"), 0);
    assert_string_equal(res_str(x, "HostID"), w.h[0]);
    /* memory is not overcommitted */
    assert_int_equal(call(x, "DisableHost", &x->admin, "HostID", w.h[2], NULL),
                     0);
    assert_int_equal(create_vm(x, &w.t, w.z, w.arm, "1", "1024"),
                     YH_ECAPACITY); /* disabled */
    assert_int_equal(call(x, "EnableHost", &x->admin, "HostID", w.h[2], NULL),
                     0);
    assert_int_equal(create_vm(x, &w.t, w.z, w.arm, "1", "16384"),
                     YH_ECAPACITY);
    /* anti-affinity: two machines of a group never share a host */
    assert_int_equal(
        call(x, "CreateAntiAffinityGroup", &w.t2, "Name", "g", NULL), 0);
    snprintf(aag, sizeof aag, "%s", res_str(x, "AntiAffinityGroupID"));
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID", w.arm,
             "CPU", "1", "Memory", "512", "AntiAffinityGroupID", aag, NULL),
        YH_ENOTFOUND); /* another tenant's group */
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t2, "ZoneID", w.z, "ImageID", w.arm,
             "CPU", "1", "Memory", "512", "AntiAffinityGroupID", aag, NULL),
        0);
    assert_int_equal(
        call(x, "CreateVMInstance", &w.t2, "ZoneID", w.z, "ImageID", w.arm,
             "CPU", "1", "Memory", "512", "AntiAffinityGroupID", aag, NULL),
        YH_ECAPACITY); /* the only arm host holds one */
    /* paging */
    assert_int_equal(
        call(x, "DescribeVMInstance", &w.t, "Limit", "2", "Offset", "1", NULL),
        0);
    assert_int_equal(res_int(x, "TotalCount"), 6);
    assert_int_equal(n_infos(x), 2);
    assert_string_equal(info_str(x, 0, "VMID"), "uhost-00000002");
    assert_int_equal(call(x, "DescribeVMInstance", &w.t, "VMIDs.0",
                          "uhost-00000003", "VMIDs.1", "uhost-00000007", NULL),
                     0);
    assert_int_equal(res_int(x, "TotalCount"), 1); /* 7 is t2's */
    /* host usage is in the host records */
    assert_int_equal(
        call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL), 0);
    assert_int_equal(info_int(x, 0, "UsedCPU"), 12);
    assert_int_equal(info_int(x, 0, "VMCount"), 2);
}

static void stale_placement(void **state)
{
    struct fx *x = *state;
    struct world w;
    struct yh_buf e1 = YH_BUF_INIT, e2 = YH_BUF_INIT, res = YH_BUF_INIT;
    struct yh_buf req = YH_BUF_INIT;
    msgpack_packer pk;
    msgpack_unpacked u;
    size_t off = 0;
    struct tick_ctx tc;

    world(x, &w);
    /* two creates placed on the same state both pick h1 (6 CPUs each fit
     * 12); the second no longer fits at apply */
    msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_kv_str(&pk, "ZoneID", w.z);
    yh_mp_pack_kv_str(&pk, "ImageID", w.img);
    yh_mp_pack_kv_str(&pk, "CPU", "7");
    yh_mp_pack_kv_str(&pk, "Memory", "1024");
    msgpack_unpacked_init(&u);
    msgpack_unpack_next(&u, (const char *)req.data, req.len, &off);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 1, &e1, &res),
                     0);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 2, &e2, &res),
                     0);
    assert_true(e1.len > 0 && e2.len > 0);
    assert_int_equal(apply_raw(x, e1.data, e1.len), 0);
    assert_int_equal(apply_raw(x, e2.data, e2.len), YH_ECAPACITY);
    assert_non_null(strstr(res_str(x, "Message"), "stale placement"));
    /* a placement on a host whose lease ended meanwhile is stale too */
    yh_buf_reset(&e1);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 3, &e1, &res),
                     0);
    assert_true(e1.len == 0); /* nothing fits 7 more: h1 has 5 left */
    yh_buf_reset(&req);
    msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_kv_str(&pk, "ZoneID", w.z);
    yh_mp_pack_kv_str(&pk, "ImageID", w.img);
    yh_mp_pack_kv_str(&pk, "CPU", "1");
    yh_mp_pack_kv_str(&pk, "Memory", "1024");
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    off = 0;
    msgpack_unpack_next(&u, (const char *)req.data, req.len, &off);
    yh_buf_reset(&res);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 4, &e1, &res),
                     0);
    assert_true(e1.len > 0);
    x->time += 31 * SEC;
    assert_int_equal(tick(x, &tc), 3); /* every lease ended */
    assert_int_equal(apply_raw(x, e1.data, e1.len), YH_ECAPACITY);
    assert_non_null(strstr(res_str(x, "Message"), "not healthy"));
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&e1);
    yh_buf_release(&e2);
    yh_buf_release(&res);
    yh_buf_release(&req);
}

static int report(struct fx *x,
                  const struct fsm_actor *agent,
                  const char *vm,
                  const char *st,
                  int64_t gen)
{
    char g[32];

    snprintf(g, sizeof g, "%lld", (long long)gen);
    return call(x, "ReportState", agent, "ResourceID", vm, "State", st,
                "Generation", g, NULL);
}

static int64_t vm_int(struct fx *x,
                      const struct fsm_actor *a,
                      const char *vm,
                      const char *key)
{
    assert_int_equal(call(x, "DescribeVMInstance", a, "VMIDs.0", vm, NULL), 0);
    return info_int(x, 0, key);
}

static const char *vm_str(struct fx *x,
                          const struct fsm_actor *a,
                          const char *vm,
                          const char *key)
{
    assert_int_equal(call(x, "DescribeVMInstance", a, "VMIDs.0", vm, NULL), 0);
    return info_str(x, 0, key);
}

static const char *job_state(struct fx *x,
                             const struct fsm_actor *a,
                             const char *job)
{
    if (call(x, "DescribeJob", a, "JobIDs.0", job, NULL) != 0) {
        fprintf(stderr, "job [%s]: %s\n", job, res_str(x, "Message"));
        fail();
    }
    assert_int_equal(res_int(x, "TotalCount"), 1);
    return info_str(x, 0, "State");
}

static void lifecycle(void **state)
{
    struct fx *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], job[FSM_ID_SIZE], job2[FSM_ID_SIZE];
    const struct fsm_actor *ag;
    int64_t g1, g2;

    world(x, &w);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), 0);
    snprintf(vm, sizeof vm, "%s", res_str(x, "VMID"));
    snprintf(job, sizeof job, "%s", res_str(x, "JobID"));
    ag = &w.agent[1];
    assert_string_equal(res_str(x, "HostID"), w.h[1]);
    g1 = vm_int(x, &w.t, vm, "Generation");
    assert_string_equal(job_state(x, &w.t, job), "Running");
    assert_int_equal(call(x, "DescribeJob", &w.t2, "JobIDs.0", job, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 0);

    /* reports: only the VM's host, valid states, issued generations */
    assert_int_equal(report(x, &w.agent[0], vm, "Running", g1), YH_EPERM);
    assert_int_equal(report(x, &w.t, vm, "Running", g1), YH_EPERM);
    assert_int_equal(report(x, ag, vm, "Flying", g1), YH_EINVAL);
    assert_int_equal(report(x, ag, vm, "Running", g1 + 1000), YH_EINVAL);
    assert_int_equal(report(x, ag, "uhost-99999999", "Running", g1),
                     YH_ENOTFOUND);
    assert_int_equal(report(x, ag, vm, "Running", g1), 0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Running");
    assert_string_equal(job_state(x, &w.t, job), "Success");

    /* stop: transitional until the executor reports the new generation */
    assert_int_equal(call(x, "StopVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_string_equal(res_str(x, "State"), "Stopping");
    snprintf(job2, sizeof job2, "%s", res_str(x, "JobID"));
    g2 = vm_int(x, &w.t, vm, "Generation");
    assert_true(g2 > g1);
    /* a late report of the old generation is observed, not settled */
    assert_int_equal(report(x, ag, vm, "Running", g1), 0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopping");
    assert_int_equal(report(x, ag, vm, "Stopped", g2), 0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopped");
    assert_int_equal(vm_int(x, &w.t, vm, "ObservedGeneration"), g2);
    assert_string_equal(job_state(x, &w.t, job2), "Success");
    /* an older generation never overwrites a newer one */
    assert_int_equal(report(x, ag, vm, "Running", g1), YH_ECONFLICT);
    assert_string_equal(vm_str(x, &w.t, vm, "ObservedState"), "Stopped");
    /* stopping again is a no-op success */
    assert_int_equal(call(x, "StopVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_int_equal(vm_int(x, &w.t, vm, "Generation"), g2);
    /* restart needs a running machine */
    assert_int_equal(call(x, "RestartVMInstance", &w.t, "VMID", vm, NULL),
                     YH_ESTATE);
    assert_int_equal(call(x, "StopVMInstance", &w.t2, "VMID", vm, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(call(x, "StopVMInstance", &w.t, NULL), YH_EMISSING);

    /* resize while stopped: capacity, quota, then an executor job */
    assert_int_equal(call(x, "ResizeVMConfig", &w.t, "VMID", vm, NULL),
                     YH_EMISSING);
    assert_int_equal(
        call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "13", NULL),
        YH_ECAPACITY); /* 2 + 11 more > 12 */
    assert_int_equal(call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                          "ResourceType", "CPU", "Limit", "3", NULL),
                     0);
    assert_int_equal(
        call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "4", NULL),
        YH_EQUOTA);
    assert_int_equal(call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "3",
                          "Memory", "4096", NULL),
                     0);
    assert_string_equal(res_str(x, "State"), "Resizing");
    g2 = vm_int(x, &w.t, vm, "Generation");
    assert_int_equal(vm_int(x, &w.t, vm, "CPU"), 3);
    assert_int_equal(report(x, ag, vm, "Stopped", g2), 0);
    assert_int_equal(
        call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL), 0);
    assert_int_equal(info_int(x, 0, "UsedCPU"), 3);
    assert_int_equal(info_int(x, 0, "UsedMemory"), 4096);
    /* resizing a running machine is refused */
    assert_int_equal(call(x, "StartVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_string_equal(res_str(x, "State"), "Starting");
    snprintf(job, sizeof job, "%s", res_str(x, "JobID"));
    assert_int_equal(
        call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "2", NULL),
        YH_ESTATE);
    /* restart supersedes the start's job if it is still running */
    assert_int_equal(call(x, "RestartVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_string_equal(res_str(x, "State"), "Restarting");
    assert_string_equal(job_state(x, &w.t, job), "Superseded");
    g2 = vm_int(x, &w.t, vm, "Generation");
    /* an executor failure fails the job */
    snprintf(job, sizeof job, "%s", vm_str(x, &w.t, vm, "JobID"));
    assert_int_equal(report(x, ag, vm, "Error", g2), 0);
    assert_string_equal(job_state(x, &w.t, job), "Failed");
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Error");

    /* delete: recycle bin (capacity kept), purge releases it */
    assert_int_equal(call(x, "DeleteVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_int_equal(call(x, "DescribeVMInstance", &w.t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 0);
    assert_int_equal(call(x, "StartVMInstance", &w.t, "VMID", vm, NULL),
                     YH_ESTATE);
    assert_int_equal(call(x, "DescribeRecycledResource", &w.t, NULL), 0);
    assert_int_equal(res_int(x, "TotalCount"), 1);
    assert_string_equal(info_str(x, 0, "DesiredState"), "Stopped");
    assert_int_equal(
        call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL), 0);
    assert_int_equal(info_int(x, 0, "UsedCPU"), 3);
    /* recovered as its executor last saw it; deleted again */
    assert_int_equal(call(x, "RecoverResource", &w.t, "ResourceID", vm, NULL),
                     0);
    assert_string_equal(res_str(x, "State"), "Error");
    assert_string_equal(vm_str(x, &w.t, vm, "DesiredState"), "Stopped");
    assert_int_equal(call(x, "DeleteVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_int_equal(call(x, "PurgeResource", &w.t, "ResourceID", vm, NULL), 0);
    assert_int_equal(
        call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL), 0);
    assert_int_equal(info_int(x, 0, "UsedCPU"), 0);
    assert_int_equal(info_int(x, 0, "VMCount"), 0);
    assert_int_equal(call(x, "DescribeQuota", &w.t, NULL), 0);
    for (unsigned i = 0; i < n_infos(x); i++) {
        if (strcmp(info_str(x, i, "ResourceType"), "CPU") == 0 ||
            strcmp(info_str(x, i, "ResourceType"), "VM") == 0) {
            assert_int_equal(info_int(x, i, "Used"), 0);
        }
    }
}

static void vm_billing(void **state)
{
    struct fx *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE];
    struct tick_ctx tc;

    world(x, &w);
    assert_int_equal(call(x, "ModifyBillingConfig", &x->admin, "Period", "10",
                          "GracePeriod", "10", "HostLease", "100000", NULL),
                     0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(call(x, "HostHeartbeat", &w.agent[i], NULL), 0);
    }
    assert_int_equal(call(x, "ModifyPrice", &x->admin, "Spec", "CPU",
                          "ChargeType", "Dynamic", "Price", "100", NULL),
                     0);
    assert_int_equal(call(x, "ModifyPrice", &x->admin, "Spec", "Memory",
                          "ChargeType", "Dynamic", "Price", "50", NULL),
                     0);
    /* 2 CPU + 2 GB = 300 per period: needs the balance */
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), YH_EBALANCE);
    assert_int_equal(call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount",
                          "500", "FromType", "Bank", "SerialNo", "s1", NULL),
                     0);
    assert_int_equal(call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                          "ResourceType", "VM", "Limit", "1", NULL),
                     0);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), 0);
    snprintf(vm, sizeof vm, "%s", res_str(x, "VMID"));
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "1", "512"), YH_EQUOTA);
    assert_int_equal(report(x, &w.agent[1], vm, "Running",
                            vm_int(x, &w.t, vm, "Generation")),
                     0);
    /* two periods: 500 - 600 < 0, then the grace, then the stop */
    x->time += 20 * SEC;
    assert_int_equal(tick(x, &tc), 2);
    x->time += 11 * SEC;
    assert_true(tick(x, &tc) >= 1);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopping");
    assert_string_equal(vm_str(x, &w.t, vm, "DesiredState"), "Stopped");
    assert_string_equal(vm_str(x, &w.t, vm, "SuspendReason"), "Arrears");
    assert_int_equal(call(x, "StartVMInstance", &w.t, "VMID", vm, NULL),
                     YH_ESTATE);
    assert_int_equal(report(x, &w.agent[1], vm, "Stopped",
                            vm_int(x, &w.t, vm, "Generation")),
                     0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopped");
}

/* ---- determinism: a random stream of compute commands ---- */

struct entry
{
    uint64_t index; /* log index */
    uint8_t *cmd;   /* bytes */
    size_t len;     /* size */
};

static struct entry *ents;
static unsigned n_ents;

static void rec_add(struct fx *x, const void *cmd, size_t len)
{
    assert_true(n_ents < 4000);
    ents[n_ents].index = x->index;
    ents[n_ents].cmd = malloc(len);
    memcpy(ents[n_ents].cmd, cmd, len);
    ents[n_ents++].len = len;
}

static int rec_tick_cb(void *arg, const uint8_t *env, size_t len)
{
    struct fx *x = arg;

    apply_raw(x, env, len);
    rec_add(x, env, len);
    return 0;
}

#define CALL(...)                                \
    do {                                         \
        uint64_t before_ = x->index;             \
        call(__VA_ARGS__, NULL);                 \
        if (x->index != before_) {               \
            rec_add(x, x->env.data, x->env.len); \
        }                                        \
    } while (0)

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void determinism(void **state)
{
    struct fx *x = *state;
    struct fx *y = fx_new();
    struct fsm_actor t[2], agent[3];
    char tid[2][FSM_ID_SIZE], z[FSM_ID_SIZE], h[3][FSM_ID_SIZE];
    char img[FSM_ID_SIZE], vm[FSM_ID_SIZE], a[32], b[32];
    uint64_t s = 0x13198a2e03707344ull;
    unsigned long long n_vm = 0;
    struct yh_buf res = YH_BUF_INIT, bb = YH_BUF_INIT;
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    char *dump1, *dump2;
    int skipped;
    uint64_t tag;

    ents = calloc(4000, sizeof *ents);
    n_ents = 0;
    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, T0, &bb), 0);
    assert_int_equal(
        fsm_apply(y->f, 1, bb.data, bb.len, &res, NULL, &tag, &skipped), 0);
    yh_buf_release(&bb);
    CALL(x, "ModifyBillingConfig", &x->admin, "Period", "5", "GracePeriod",
         "30", "RecycleAfter", "30", "Retention", "30", "HostLease", "20");
    CALL(x, "ModifyPrice", &x->admin, "Spec", "CPU", "ChargeType", "Dynamic",
         "Price", "2");
    CALL(x, "CreateZone", &x->admin, "Name", "z", "CPUOvercommit", "200");
    snprintf(z, sizeof z, "%s", res_str(x, "ZoneID"));
    CALL(x, "CreateImage", &x->admin, "Name", "i", "Size", "5");
    snprintf(img, sizeof img, "%s", res_str(x, "ImageID"));
    for (int i = 0; i < 3; i++) {
        struct fsm_key k;
        CALL(x, "RegisterHost", &x->admin, "ZoneID", z, "CPU", "4", "Memory",
             "8192");
        snprintf(h[i], FSM_ID_SIZE, "%s", res_str(x, "HostID"));
        assert_int_equal(fsm_key_get(x->f, res_str(x, "PublicKey"), &k), 0);
        agent[i] = k.actor;
    }
    for (int i = 0; i < 2; i++) {
        struct fsm_key k;
        snprintf(a, sizeof a, "t%d@x.io", i);
        CALL(x, "CreateUser", &x->admin, "UserEmail", a, "PassWord",
             "secret-pass");
        snprintf(tid[i], FSM_ID_SIZE, "%s", res_str(x, "UserID"));
        CALL(x, "CreateAPIKey", &x->admin, "UserID", tid[i]);
        assert_int_equal(fsm_key_get(x->f, res_str(x, "PublicKey"), &k), 0);
        t[i] = k.actor;
        CALL(x, "Recharge", &x->admin, "UserID", tid[i], "Amount", "200",
             "FromType", "Bank", "SerialNo", a);
    }
    for (unsigned i = 0; i < 500; i++) {
        unsigned u = (unsigned)(rnd(&s) % 2);
        unsigned hh = (unsigned)(rnd(&s) % 3);
        snprintf(vm, sizeof vm, "uhost-%08llu",
                 (unsigned long long)(n_vm > 5 ? n_vm - rnd(&s) % 6
                                               : 1 + rnd(&s) % 6));
        switch (rnd(&s) % 12) {
        case 0:
        case 1:
            snprintf(a, sizeof a, "%llu",
                     (unsigned long long)(1 + rnd(&s) % 4));
            CALL(x, "CreateVMInstance", &t[u], "ZoneID", z, "ImageID", img,
                 "CPU", a, "Memory", "1024");
            if (strncmp(res_str(x, "VMID"), "uhost-", 6) == 0) {
                n_vm = strtoull(res_str(x, "VMID") + 6, NULL, 10);
            }
            break;
        case 2:
            CALL(x, rnd(&s) % 2 ? "StartVMInstance" : "StopVMInstance", &t[u],
                 "VMID", vm);
            break;
        case 3:
            CALL(x, rnd(&s) % 2 ? "RestartVMInstance" : "DeleteVMInstance",
                 &t[u], "VMID", vm);
            break;
        case 4:
            CALL(x, rnd(&s) % 2 ? "PurgeResource" : "RecoverResource", &t[u],
                 "ResourceID", vm);
            break;
        case 5:
            snprintf(a, sizeof a, "%llu",
                     (unsigned long long)(1 + rnd(&s) % 4));
            CALL(x, "ResizeVMConfig", &t[u], "VMID", vm, "CPU", a);
            break;
        case 6:
        case 7:
            snprintf(b, sizeof b, "%llu",
                     (unsigned long long)(x->index - rnd(&s) % 20));
            if (call(x, "DescribeVMInstance", &x->admin, "VMIDs.0", vm, NULL) ==
                    0 &&
                n_infos(x) == 1) {
                /* its host; a well-behaved executor also reports the
                 * current generation and the desired state */
                for (int k = 0; k < 3; k++) {
                    if (strcmp(h[k], info_str(x, 0, "HostID")) == 0) {
                        hh = (unsigned)k;
                    }
                }
                if (rnd(&s) % 2) {
                    snprintf(b, sizeof b, "%lld",
                             (long long)info_int(x, 0, "Generation"));
                    snprintf(a, sizeof a, "%s", info_str(x, 0, "DesiredState"));
                    CALL(x, "ReportState", &agent[hh], "ResourceID", vm,
                         "State", a, "Generation", b);
                    break;
                }
                /* a late report of an older generation */
                snprintf(b, sizeof b, "%lld",
                         (long long)info_int(x, 0, "ObservedGeneration") -
                             (long long)(rnd(&s) % 2));
            }
            CALL(x, "ReportState", &agent[hh], "ResourceID", vm, "State",
                 rnd(&s) % 2 ? "Running" : "Stopped", "Generation", b);
            break;
        case 8:
            CALL(x, "HostHeartbeat", &agent[hh]);
            break;
        case 9:
            snprintf(a, sizeof a, "sn-%llu",
                     (unsigned long long)(rnd(&s) % 30));
            CALL(x, "Recharge", &x->admin, "UserID", tid[u], "Amount", "50",
                 "FromType", "Bank", "SerialNo", a);
            break;
        default:
            x->time += (1 + rnd(&s) % 6) * SEC;
            assert_int_equal(fsm_leader_tick(x->f, x->time, rec_tick_cb, x), 0);
            break;
        }
        if (rnd(&s) % 11 == 0) {
            assert_int_equal(fsm_flush(x->f), 0);
        }
    }
    assert_true(n_ents > 250);
    for (unsigned i = 0; i < n_ents; i++) {
        assert_int_equal(fsm_apply(y->f, ents[i].index, ents[i].cmd,
                                   ents[i].len, &res, NULL, &tag, &skipped),
                         0);
        if (i % 13 == 0) {
            assert_int_equal(fsm_flush(y->f), 0);
        }
    }
    fsm_digest(x->f, d1);
    fsm_digest(y->f, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump1 = dump_str(x->f);
    dump2 = dump_str(y->f);
    assert_string_equal(dump1, dump2);
    assert_non_null(strstr(dump1, "\"Action\": \"_HostExpire\""));
    assert_non_null(strstr(dump1, "\"Action\": \"_BillCharge\""));
    assert_non_null(strstr(dump1, "\"State\": \"Success\""));
    assert_non_null(strstr(dump1, "\"RetCode\": 160"));
    assert_non_null(strstr(dump1, "\"RetCode\": 171"));
    free(dump1);
    free(dump2);
    for (unsigned i = 0; i < n_ents; i++) {
        free(ents[i].cmd);
    }
    free(ents);
    yh_buf_release(&res);
    fx_free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(infra, setup, teardown),
        cmocka_unit_test_setup_teardown(scheduler, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_placement, setup, teardown),
        cmocka_unit_test_setup_teardown(lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(vm_billing, setup, teardown),
        cmocka_unit_test_setup_teardown(determinism, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
