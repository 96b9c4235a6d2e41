/* bench_scale: the state-size and per-operation figures of issues #4 and #5,
 * measured in-process on one state machine (the fsm API, a real LMDB store
 * in a temporary directory, no raft, no network).
 *
 *   bench_scale [--only state|ipam|sg] [--vms N] [--tenants N] [--hosts N]
 *               [--ips N] [--rules N]
 *
 * Every write goes the way a leader and its followers run it: the request
 * map through fsm_cmd_prepare() (authorization, validation, the scheduler,
 * stamps) and the envelope through fsm_apply(); the open batch is committed
 * every FLUSH_EVERY entries (yunhand commits once per loop iteration, which
 * under load holds a few hundred entries). The leader clock advances
 * STEP_NS per command, i.e. the log is written at 20,000 commands/s, so
 * every RequestToken is still retained (24 h) at the end.
 *
 * One shortcut: CreateUser's stamp is a PBKDF2 hash of the password
 * (10,000 iterations, ~4 ms); the first CreateUser is prepared for real
 * and the others reuse its envelope with their own UserEmail and time, so
 * 100,000 tenants take seconds, not minutes. The applied state is the same
 * as with distinct passwords (same sizes, same records).
 *
 * state: --tenants tenants (CreateUser + Recharge each), --hosts hosts of
 *   4096 CPU / 64 TiB in a zone with 1000 % overcommit, then --vms
 *   CreateVMInstance (1 CPU, 512 MB, Dynamic, priced, cluster-default
 *   quotas set) by the tenants in turn, each with a RequestToken. Then:
 *   RSS, LMDB file size, snapshot encode time and size, the leader tick,
 *   DescribeVMInstance for one tenant and for the admin at several offsets.
 * ipam: --ips CreateNIC in one /16 subnet; time per allocation by block,
 *   then 1,000 holes punched and refilled, then the subnet filled.
 * sg: one security group grown to --rules rules (100 per call);
 *   DescribeSecurityGroup page 1 and the last page; unrelated writes of
 *   the same tenant timed before and after. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h" /* per-table sizes (mdb_stat) */

#define STEP_NS 50000ull /* leader clock per command: 20,000/s */
#define FLUSH_EVERY 256  /* entries per committed batch */
#define T0_NS (1700000000ull * 1000000000ull)
#define MAX_KV 128

/* ---- the driver: one store, writes prepared and applied in turn ---- */

struct drv
{
    char dir[64];           /* the store's directory */
    struct fsm *f;          /* the store */
    uint64_t index;         /* last log index applied */
    uint64_t time;          /* leader clock (ns) */
    unsigned since_flush;   /* entries in the open batch */
    struct fsm_actor admin; /* bootstrap administrator */
    struct yh_buf req;      /* request map bytes */
    struct yh_buf env;      /* envelope */
    struct yh_buf res;      /* result bytes */
    struct yh_buf ev;       /* operation-log event */
    msgpack_unpacked rq;    /* request decoded */
    msgpack_unpacked rs;    /* result decoded (borrows res) */
    uint64_t tokens;        /* RequestTokens issued */
    double prep_cpu;        /* CPU seconds in fsm_cmd_prepare (leader) */
    double apply_cpu;       /* CPU seconds in fsm_apply (every node) */
};

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "bench_scale: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process: the figures that do not depend on what else
 * the machine runs (wall times are printed too). */
static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static void drv_open(struct drv *d)
{
    struct fsm_config cfg;
    struct fsm_key key;
    char err[YH_ERRMSG_SIZE];
    const char *tmp = getenv("TMPDIR");

    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s/yh-bench-scale-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(d->dir) == NULL) {
        die("mkdtemp: %s", strerror(errno));
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.nosync = 1; /* as yunhand: the raft log is the durable copy */
    if (fsm_open(&d->f, d->dir, &cfg, err) != 0) {
        die("fsm_open: %s", err);
    }
    d->time = T0_NS;
    msgpack_unpacked_init(&d->rq);
    msgpack_unpacked_init(&d->rs);
    if (fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, d->time, &d->env) !=
        0) {
        die("bootstrap");
    }
    {
        uint64_t tag;
        int skipped;
        d->index++;
        if (fsm_apply(d->f, d->index, d->env.data, d->env.len, &d->res, NULL,
                      &tag, &skipped) != 0) {
            die("apply bootstrap");
        }
    }
    if (fsm_key_get(d->f, "adminpub", &key) != 0) {
        die("no admin after bootstrap");
    }
    d->admin = key.actor;
}

static void drv_close(struct drv *d)
{
    fsm_close(d->f);
    nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    yh_buf_release(&d->req);
    yh_buf_release(&d->env);
    yh_buf_release(&d->res);
    yh_buf_release(&d->ev);
    msgpack_unpacked_destroy(&d->rq);
    msgpack_unpacked_destroy(&d->rs);
}

/* Decode d->res into d->rs; its RetCode. */
static int drv_result(struct drv *d)
{
    size_t off = 0;
    int64_t rc;

    msgpack_unpacked_destroy(&d->rs);
    msgpack_unpacked_init(&d->rs);
    if (msgpack_unpack_next(&d->rs, (const char *)d->res.data, d->res.len,
                            &off) != MSGPACK_UNPACK_SUCCESS ||
        yh_mp_int(&d->rs.data, "RetCode", &rc) != 0) {
        die("undecodable result");
    }
    return (int)rc;
}

/* A string field of the last result ("" if absent). */
static const char *res_str(struct drv *d, const char *key)
{
    static char buf[4][256];
    static int i;
    char *out = buf[i++ & 3];

    if (yh_mp_strcpy(&d->rs.data, key, out, 256) != 0) {
        out[0] = '\0';
    }
    return out;
}

static int64_t res_int(struct drv *d, const char *key)
{
    int64_t v = -1;

    yh_mp_int(&d->rs.data, key, &v);
    return v;
}

/* Apply an envelope at the next index. */
static void drv_apply(struct drv *d, const void *env, size_t len)
{
    uint64_t tag;
    int skipped;

    double c0 = cpu_s();

    d->index++;
    yh_buf_reset(&d->ev);
    if (fsm_apply(d->f, d->index, env, len, &d->res, &d->ev, &tag, &skipped) !=
            0 ||
        skipped) {
        die("apply at %" PRIu64 " failed", d->index);
    }
    d->apply_cpu += cpu_s() - c0;
    if (++d->since_flush >= FLUSH_EVERY) {
        if (fsm_flush(d->f) != 0) {
            die("flush failed");
        }
        d->since_flush = 0;
    }
}

/* Request map of @n string pairs into d->rq. */
static const msgpack_object *mkreq_kv(struct drv *d,
                                      unsigned n,
                                      const char *const *k,
                                      const char *const *v)
{
    msgpack_packer pk;
    size_t off = 0;

    yh_buf_reset(&d->req);
    msgpack_packer_init(&pk, &d->req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        yh_mp_pack_kv_str(&pk, k[i], v[i]);
    }
    msgpack_unpacked_destroy(&d->rq);
    msgpack_unpacked_init(&d->rq);
    if (msgpack_unpack_next(&d->rq, (const char *)d->req.data, d->req.len,
                            &off) != MSGPACK_UNPACK_SUCCESS) {
        die("request encoding");
    }
    return &d->rq.data;
}

/* Request map from "Key", "value", ..., NULL pairs; with @token set, a
 * fresh RequestToken is added (as every API client does for writes). */
static const msgpack_object *vreq(struct drv *d,
                                  int token,
                                  const char *k,
                                  va_list ap)
{
    const char *keys[MAX_KV], *vals[MAX_KV];
    char tok[40];
    unsigned n = 0;

    while (k != NULL) {
        if (n + 1 >= MAX_KV) {
            die("too many parameters");
        }
        keys[n] = k;
        vals[n] = va_arg(ap, const char *);
        n++;
        k = va_arg(ap, const char *);
    }
    if (token) {
        snprintf(tok, sizeof tok, "bench-scale-%016" PRIx64, ++d->tokens);
        keys[n] = "RequestToken";
        vals[n] = tok;
        n++;
    }
    return mkreq_kv(d, n, keys, vals);
}

/* Prepare + apply a write (or query a read); returns its RetCode. */
static int drv_obj(struct drv *d,
                   const char *action,
                   const struct fsm_actor *a,
                   const msgpack_object *req)
{
    double c0;

    if (fsm_action_kind(action, NULL) == FSM_ACT_READ) {
        yh_buf_reset(&d->res);
        if (fsm_query(d->f, action, req, a, &d->res) != 0) {
            die("query %s failed", action);
        }
        return drv_result(d);
    }
    d->time += STEP_NS;
    c0 = cpu_s();
    if (fsm_cmd_prepare(d->f, action, req, a, "127.0.0.1:40000", d->time, 1,
                        &d->env, &d->res) != 0) {
        die("prepare %s failed", action);
    }
    d->prep_cpu += cpu_s() - c0;
    if (d->env.len > 0) {
        drv_apply(d, d->env.data, d->env.len);
    }
    return drv_result(d);
}

/* drv_obj with "Key", "value", ..., NULL; @token as in vreq. */
static int call(struct drv *d,
                const char *action,
                const struct fsm_actor *a,
                int token,
                const char *k,
                ...)
{
    const msgpack_object *req;
    va_list ap;

    va_start(ap, k);
    req = vreq(d, token, k, ap);
    va_end(ap);
    return drv_obj(d, action, a, req);
}

/* The same; any RetCode but 0 ends the benchmark. */
static void must(int rc, struct drv *d, const char *what)
{
    if (rc != 0) {
        die("%s: RetCode %d: %s", what, rc, res_str(d, "Message"));
    }
}

static struct fsm_actor tenant_actor(const char *uid)
{
    struct fsm_actor a;

    memset(&a, 0, sizeof a);
    snprintf(a.user_id, sizeof a.user_id, "%s", uid);
    snprintf(a.tenant_id, sizeof a.tenant_id, "%s", uid);
    return a;
}

/* A new tenant (CreateUser prepared for real: one PBKDF2) with a large
 * balance. */
static void make_tenant(struct drv *d, const char *email, char uid[48])
{
    char serial[64];

    must(call(d, "CreateUser", &d->admin, 1, "UserEmail", email, "PassWord",
              "Bench-Scale-Pw1", NULL),
         d, "CreateUser");
    snprintf(uid, 48, "%s", res_str(d, "UserID"));
    snprintf(serial, sizeof serial, "serial-%s", uid);
    must(call(d, "Recharge", &d->admin, 1, "UserID", uid, "Amount",
              "1000000000000", "FromType", "Bank", "SerialNo", serial, NULL),
         d, "Recharge");
}

/* ---- process figures ---- */

struct mem
{
    long rss, anon, file, hwm; /* kB */
};

static void mem_now(struct mem *m)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");

    memset(m, 0, sizeof *m);
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        sscanf(line, "VmRSS: %ld", &m->rss);
        sscanf(line, "RssAnon: %ld", &m->anon);
        sscanf(line, "RssFile: %ld", &m->file);
        sscanf(line, "VmHWM: %ld", &m->hwm);
    }
    fclose(f);
}

static void mem_print(const char *when)
{
    struct mem m;

    mem_now(&m);
    printf(
        "RSS %s: VmRSS %.0f MB (RssAnon %.0f MB, RssFile %.0f MB), "
        "VmHWM %.0f MB\n",
        when, m.rss / 1024.0, m.anon / 1024.0, m.file / 1024.0, m.hwm / 1024.0);
}

static void loadavg_print(void)
{
    char buf[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");

    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) == NULL) {
            snprintf(buf, sizeof buf, "?");
        }
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    printf("load average: %s\n", buf);
}

static void lmdb_print(struct drv *d)
{
    char path[128];
    struct stat st;

    if (fsm_flush(d->f) != 0) {
        die("flush failed");
    }
    d->since_flush = 0;
    snprintf(path, sizeof path, "%s/data.mdb", d->dir);
    if (stat(path, &st) != 0) {
        printf("LMDB file: %s: %s\n", path, strerror(errno));
        return;
    }
    printf(
        "LMDB data.mdb: %.0f MB on disk (%.0f MB allocated), applied "
        "index %" PRIu64 "\n",
        (double)st.st_size / (1 << 20), (double)st.st_blocks * 512 / (1 << 20),
        d->index);
}

/* Entries and bytes of every table holding at least 1 MB. */
static void tables_print(struct drv *d)
{
    MDB_txn *txn;
    MDB_envinfo info;
    MDB_stat st;
    unsigned psize;

    if (fsm_flush(d->f) != 0 || fsm__rtxn_begin(d->f, &txn) != 0) {
        die("read transaction");
    }
    mdb_env_info(d->f->env, &info);
    mdb_env_stat(d->f->env, &st);
    psize = st.ms_psize;
    printf("LMDB pages in use: %.0f MB; tables of 1 MB or more:\n",
           (double)(info.me_last_pgno + 1) * psize / (1 << 20));
    for (int i = 0; i < FSM_N_TBL; i++) {
        size_t pages;
        if (mdb_stat(txn, d->f->dbis[i], &st) != 0) {
            continue;
        }
        pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
        if (pages * psize < (1u << 20)) {
            continue;
        }
        printf("  %-10s %9zu entries %7.0f MB (%.0f B per entry)\n",
               fsm__tbls[i].name, (size_t)st.ms_entries,
               (double)pages * psize / (1 << 20),
               st.ms_entries ? (double)pages * psize / (double)st.ms_entries
                             : 0.0);
    }
    fsm__rtxn_end(d->f, txn);
}

/* ---- reads timed ---- */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define READ_RUNS 5
#define READ_BUDGET_S 3.0

/* Run a read up to READ_RUNS times (fewer once READ_BUDGET_S is spent);
 * print its median and the result's counts. */
static void timed_read(struct drv *d,
                       const char *label,
                       const char *action,
                       const struct fsm_actor *a,
                       const char *k,
                       ...)
{
    double t[READ_RUNS], cpu[READ_RUNS], spent = 0;
    const msgpack_object *req;
    const msgpack_object *infos;
    va_list ap;
    int rc = 0;
    int n = 0;

    va_start(ap, k);
    req = vreq(d, 0, k, ap);
    va_end(ap);
    while (n < READ_RUNS && spent < READ_BUDGET_S) {
        double t0 = now_s(), c0 = cpu_s();
        rc = drv_obj(d, action, a, req);
        cpu[n] = cpu_s() - c0;
        t[n] = now_s() - t0;
        spent += t[n++];
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_dbl);
    qsort(cpu, (size_t)n, sizeof cpu[0], cmp_dbl);
    infos = yh_mp_get(&d->rs.data, "Infos");
    printf(
        "%s\n    CPU %.3f ms, wall %.3f ms (medians of %d runs; wall min "
        "%.3f max %.3f); RetCode %d, %u Infos, TotalCount %" PRId64
        ", %zu bytes\n",
        label, cpu[n / 2] * 1e3, t[n / 2] * 1e3, n, t[0] * 1e3, t[n - 1] * 1e3,
        rc,
        infos != NULL && infos->type == MSGPACK_OBJECT_ARRAY
            ? infos->via.array.size
            : 0,
        res_int(d, "TotalCount"), d->res.len);
}

/* ---- state: tenants, hosts, VMs ---- */

/* The CreateUser envelope @tmpl (decoded) again, with its own UserEmail
 * and the current leader time. */
static void user_env(struct drv *d,
                     const msgpack_object *tmpl,
                     const char *email,
                     struct yh_buf *out)
{
    msgpack_packer pk;

    yh_buf_reset(out);
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, tmpl->via.map.size);
    for (uint32_t i = 0; i < tmpl->via.map.size; i++) {
        const msgpack_object_kv *kv = &tmpl->via.map.ptr[i];
        msgpack_pack_object(&pk, kv->key);
        if (yh_mp_eq(&kv->key, "time")) {
            msgpack_pack_uint64(&pk, d->time);
        } else if (yh_mp_eq(&kv->key, "args") &&
                   kv->val.type == MSGPACK_OBJECT_MAP) {
            const msgpack_object *args = &kv->val;
            msgpack_pack_map(&pk, args->via.map.size);
            for (uint32_t j = 0; j < args->via.map.size; j++) {
                msgpack_pack_object(&pk, args->via.map.ptr[j].key);
                if (yh_mp_eq(&args->via.map.ptr[j].key, "UserEmail")) {
                    yh_mp_pack_str(&pk, email);
                } else {
                    msgpack_pack_object(&pk, args->via.map.ptr[j].val);
                }
            }
        } else {
            msgpack_pack_object(&pk, kv->val);
        }
    }
}

/* A start point: wall and CPU clocks. */
struct clk
{
    double wall, cpu;
};

static struct clk clk_now(void)
{
    struct clk c = {now_s(), cpu_s()};
    return c;
}

/* A phase's figures: @n operations since @t0. */
static void phase_rate(const char *what, uint64_t n, struct clk t0)
{
    double cpu = cpu_s() - t0.cpu, wall = now_s() - t0.wall;

    printf("%-38s %8" PRIu64
           ": CPU %7.1f us each (%6.0f /s per core); "
           "wall %.2f s\n",
           what, n, cpu * 1e6 / (double)n, (double)n / cpu, wall);
}

/* Every tenant: CreateUser (template envelope) + Recharge. The tenants'
 * numbers (UserID "uid-%08u") in @num. */
static void make_tenants(struct drv *d, unsigned n, uint32_t *num)
{
    struct yh_buf tmpl_bytes = YH_BUF_INIT, env = YH_BUF_INIT;
    msgpack_unpacked tmpl;
    char email[96], uid[48], serial[64], check[48];
    size_t off = 0;
    struct clk t0;

    /* the template: a CreateUser prepared for real */
    d->time += STEP_NS;
    if (fsm_cmd_prepare(
            d->f, "CreateUser",
            mkreq_kv(
                d, 2, (const char *[]){"UserEmail", "PassWord"},
                (const char *[]){"t0000000@scale.example", "Bench-Scale-Pw1"}),
            &d->admin, "127.0.0.1:40000", d->time, 1, &d->env, &d->res) != 0 ||
        d->env.len == 0) {
        die("prepare CreateUser template");
    }
    if (yh_buf_append(&tmpl_bytes, d->env.data, d->env.len) != 0) {
        die("out of memory");
    }
    msgpack_unpacked_init(&tmpl);
    if (msgpack_unpack_next(&tmpl, (const char *)tmpl_bytes.data,
                            tmpl_bytes.len, &off) != MSGPACK_UNPACK_SUCCESS ||
        tmpl.data.type != MSGPACK_OBJECT_MAP) {
        die("decode CreateUser template");
    }
    t0 = clk_now();
    for (unsigned i = 0; i < n; i++) {
        snprintf(email, sizeof email, "t%07u@scale.example", i);
        d->time += STEP_NS;
        user_env(d, &tmpl.data, email, &env);
        drv_apply(d, env.data, env.len);
        must(drv_result(d), d, "CreateUser");
        snprintf(uid, sizeof uid, "%s", res_str(d, "UserID"));
        if (sscanf(uid, "uid-%" SCNu32, &num[i]) != 1) {
            die("unexpected UserID '%s'", uid);
        }
        snprintf(check, sizeof check, "uid-%08" PRIu32, num[i]);
        if (strcmp(check, uid) != 0) {
            die("unexpected UserID '%s'", uid);
        }
    }
    phase_rate("CreateUser (stamp reused, apply only)", n, t0);
    t0 = clk_now();
    for (unsigned i = 0; i < n; i++) {
        snprintf(uid, sizeof uid, "uid-%08" PRIu32, num[i]);
        snprintf(serial, sizeof serial, "serial-%s", uid);
        must(
            call(d, "Recharge", &d->admin, 1, "UserID", uid, "Amount",
                 "1000000000000", "FromType", "Bank", "SerialNo", serial, NULL),
            d, "Recharge");
    }
    phase_rate("Recharge", n, t0);
    msgpack_unpacked_destroy(&tmpl);
    yh_buf_release(&tmpl_bytes);
    yh_buf_release(&env);
}

/* A zone, @n hosts (registered, heartbeating), an image, prices and
 * cluster-default quotas. Zone and image IDs out. */
static void make_infra(struct drv *d, unsigned n, char zone[48], char img[48])
{
    char name[32];

    /* the bench has no agents: a lease that outlives the run */
    must(call(d, "ModifyBillingConfig", &d->admin, 1, "HostLease", "864000",
              NULL),
         d, "ModifyBillingConfig");
    must(call(d, "CreateZone", &d->admin, 1, "Name", "scale", "CPUOvercommit",
              "1000", NULL),
         d, "CreateZone");
    snprintf(zone, 48, "%s", res_str(d, "ZoneID"));
    /* where the boot disks go (Standard, the default set type) */
    must(call(d, "CreateStoragePool", &d->admin, 1, "ZoneID", zone, "SetType",
              "Standard", "Backend", "local", "Capacity", "1000000000", NULL),
         d, "CreateStoragePool");
    for (unsigned i = 0; i < n; i++) {
        struct fsm_key key;
        snprintf(name, sizeof name, "host%u", i);
        must(call(d, "RegisterHost", &d->admin, 1, "ZoneID", zone, "CPU",
                  "4096", "Memory", "67108864", "Name", name, NULL),
             d, "RegisterHost");
        if (fsm_key_get(d->f, res_str(d, "PublicKey"), &key) != 0) {
            die("no key for host %s", res_str(d, "HostID"));
        }
        must(call(d, "HostHeartbeat", &key.actor, 1, NULL), d, "HostHeartbeat");
    }
    must(call(d, "CreateImage", &d->admin, 1, "Name", "scale-linux", "Size",
              "20", NULL),
         d, "CreateImage");
    snprintf(img, 48, "%s", res_str(d, "ImageID"));
    must(call(d, "ModifyPrice", &d->admin, 1, "Spec", "CPU", "ChargeType",
              "Dynamic", "Price", "10", NULL),
         d, "ModifyPrice");
    must(call(d, "ModifyPrice", &d->admin, 1, "Spec", "Memory", "ChargeType",
              "Dynamic", "Price", "5", NULL),
         d, "ModifyPrice");
    must(call(d, "ModifyQuota", &d->admin, 1, "ResourceType", "VM", "Limit",
              "1000", NULL),
         d, "ModifyQuota");
    must(call(d, "ModifyQuota", &d->admin, 1, "ResourceType", "CPU", "Limit",
              "4000", NULL),
         d, "ModifyQuota");
    must(call(d, "ModifyQuota", &d->admin, 1, "ResourceType", "Memory", "Limit",
              "2048000", NULL),
         d, "ModifyQuota");
}

static int tick_count(void *arg, const uint8_t *env, size_t len)
{
    (void)env;
    (void)len;
    (*(unsigned *)arg)++;
    return 0;
}

static void run_state(unsigned n_vms, unsigned n_tenants, unsigned n_hosts)
{
    struct drv d;
    uint32_t *num = calloc(n_tenants ? n_tenants : 1, sizeof *num);
    char zone[48], img[48], uid[48], first_vm[48] = "", off[32];
    struct fsm_snap *snap;
    struct yh_buf sbuf = YH_BUF_INIT;
    struct fsm_actor ta;
    unsigned block = n_vms >= 100000 ? 10000 : 1000;
    double t_first = 0, t_last = 0, secs;
    struct clk t0, tb;

    if (num == NULL || n_tenants == 0) {
        die("bad tenant count");
    }
    printf("\n## state: %u VMs, %u tenants, %u hosts (in-process)\n\n", n_vms,
           n_tenants, n_hosts);
    loadavg_print();
    drv_open(&d);
    printf(
        "store: %s (LMDB, MDB_NOSYNC as yunhand; batch commit every %d "
        "entries)\n",
        d.dir, FLUSH_EVERY);
    mem_print("at start");
    make_infra(&d, n_hosts, zone, img);
    make_tenants(&d, n_tenants, num);
    mem_print("after the tenants");
    t0 = tb = clk_now();
    d.prep_cpu = d.apply_cpu = 0;
    for (unsigned i = 0; i < n_vms; i++) {
        snprintf(uid, sizeof uid, "uid-%08" PRIu32, num[i % n_tenants]);
        ta = tenant_actor(uid);
        must(
            call(&d, "CreateVMInstance", &ta, 1, "ZoneID", zone, "ImageID", img,
                 "CPU", "1", "Memory", "512", "ChargeType", "Dynamic", NULL),
            &d, "CreateVMInstance");
        if (i == 0) {
            snprintf(first_vm, sizeof first_vm, "%s", res_str(&d, "VMID"));
        }
        if ((i + 1) % block == 0) {
            struct clk t = clk_now();
            if (i + 1 == block) {
                t_first = t.cpu - tb.cpu;
            }
            t_last = t.cpu - tb.cpu;
            if ((i + 1) % (n_vms / 10) == 0 || i + 1 == n_vms) {
                printf(
                    "  after %7u VMs: the last %u took %.1f us CPU "
                    "each\n",
                    i + 1, block, t_last * 1e6 / block);
            }
            tb = t;
        }
    }
    phase_rate("CreateVMInstance (prepare + apply)", n_vms, t0);
    printf(
        "  of which fsm_cmd_prepare (leader only: checks, scheduler over "
        "%u hosts) %.1f us, fsm_apply (every node) %.1f us\n",
        n_hosts, d.prep_cpu * 1e6 / n_vms, d.apply_cpu * 1e6 / n_vms);
    if (n_vms >= 2 * block) {
        printf("  first %u: %.1f us CPU each; last %u: %.1f us CPU each\n",
               block, t_first * 1e6 / block, block, t_last * 1e6 / block);
    }
    lmdb_print(&d);
    tables_print(&d);
    mem_print("after the VMs");

    /* leader tick (billing, leases, timers) over this state */
    for (int i = 0, spent = 0; i < 3 && spent < 3000; i++) {
        unsigned props = 0;
        t0 = clk_now();
        if (fsm_leader_tick(d.f, d.time, tick_count, &props) != 0) {
            die("leader tick");
        }
        secs = now_s() - t0.wall;
        spent += (int)(secs * 1e3);
        printf(
            "fsm_leader_tick (runs every ~100 ms on the leader): CPU %.1f "
            "ms, wall %.1f ms, %u proposals\n",
            (cpu_s() - t0.cpu) * 1e3, secs * 1e3, props);
    }

    /* reads */
    snprintf(uid, sizeof uid, "uid-%08" PRIu32, num[n_tenants / 2]);
    ta = tenant_actor(uid);
    timed_read(&d, "DescribeVMInstance, one tenant (its ~10 VMs), Limit 100",
               "DescribeVMInstance", &ta, "Limit", "100", NULL);
    timed_read(&d, "DescribeVMInstance, admin, VMIDs.0 = one VM",
               "DescribeVMInstance", &d.admin, "VMIDs.0", first_vm, NULL);
    timed_read(&d, "DescribeVMInstance, admin, Offset 0 Limit 100",
               "DescribeVMInstance", &d.admin, "Offset", "0", "Limit", "100",
               NULL);
    snprintf(off, sizeof off, "%u", n_vms / 2);
    timed_read(&d, "DescribeVMInstance, admin, Offset N/2 Limit 100",
               "DescribeVMInstance", &d.admin, "Offset", off, "Limit", "100",
               NULL);
    snprintf(off, sizeof off, "%u", n_vms > 1000 ? n_vms - 1000 : 0);
    timed_read(&d, "DescribeVMInstance, admin, Offset N-1000 Limit 100",
               "DescribeVMInstance", &d.admin, "Offset", off, "Limit", "100",
               NULL);
    timed_read(&d, "DescribeUser, one tenant", "DescribeUser", &ta, NULL);
    mem_print("after the reads");

    /* snapshot of this state (what a node sends a lagging follower) */
    t0 = clk_now();
    if (fsm_snapshot_begin(d.f, &snap) != 0 ||
        fsm_snapshot_encode(snap, &sbuf) != 0) {
        die("snapshot");
    }
    fsm_snapshot_end(snap);
    printf("snapshot encode: CPU %.2f s, wall %.2f s, %.0f MB\n",
           cpu_s() - t0.cpu, now_s() - t0.wall, (double)sbuf.len / (1 << 20));
    mem_print("holding the snapshot buffer");
    yh_buf_release(&sbuf);
    drv_close(&d);
    free(num);
}

/* ---- IPAM ---- */

static void run_ipam(unsigned n_ips)
{
    struct drv d;
    char uid[48], vpc[48], subnet[48], ip[64] = "", nic[48];
    char(*nics)[24] = calloc(n_ips ? n_ips : 1, sizeof *nics);
    struct fsm_actor ta;
    unsigned block = 1000;
    struct clk t0, tb;
    double *blk;
    unsigned n_blk = (n_ips + block - 1) / block;
    unsigned holes = 0;
    int rc;

    blk = calloc(n_blk ? n_blk : 1, sizeof *blk);
    if (nics == NULL || blk == NULL) {
        die("out of memory");
    }
    printf("\n## IPAM: %u CreateNIC in one /16 subnet (in-process)\n\n", n_ips);
    loadavg_print();
    drv_open(&d);
    make_tenant(&d, "ipam@scale.example", uid);
    ta = tenant_actor(uid);
    must(call(&d, "CreateVPC", &ta, 1, "Name", "v", "Network", "10.0.0.0/8",
              NULL),
         &d, "CreateVPC");
    snprintf(vpc, sizeof vpc, "%s", res_str(&d, "VPCID"));
    must(call(&d, "CreateSubnet", &ta, 1, "VPCID", vpc, "Network",
              "10.1.0.0/16", "Name", "s", NULL),
         &d, "CreateSubnet");
    snprintf(subnet, sizeof subnet, "%s", res_str(&d, "SubnetID"));
    t0 = tb = clk_now();
    for (unsigned i = 0; i < n_ips; i++) {
        must(call(&d, "CreateNIC", &ta, 1, "SubnetID", subnet, NULL), &d,
             "CreateNIC");
        snprintf(nics[i], sizeof nics[i], "%s", res_str(&d, "NICID"));
        if ((i + 1) % block == 0 || i + 1 == n_ips) {
            struct clk t = clk_now();
            blk[i / block] = (t.cpu - tb.cpu) * 1e6 / (i % block + 1);
            tb = t;
        }
        if (i + 1 == n_ips) {
            snprintf(ip, sizeof ip, "%s", res_str(&d, "IP"));
        }
    }
    phase_rate("CreateNIC (prepare + apply)", n_ips, t0);
    printf("  last address handed out: %s\n", ip);
    printf("  us CPU per allocation by block of %u:", block);
    for (unsigned b = 0; b < n_blk; b++) {
        if (b < 3 || b + 3 >= n_blk || b % 10 == 0) {
            printf(" [%u] %.1f", b, blk[b]);
        }
    }
    printf("\n  first %u: %.1f us CPU each; last %u: %.1f us CPU each\n", block,
           blk[0], block, blk[n_blk - 1]);

    /* holes: every 65th NIC deleted, then as many allocations (each takes
     * the lowest free address: the free ranges are now ~1,000) */
    t0 = clk_now();
    for (unsigned i = 32; i < n_ips; i += 65) {
        must(call(&d, "DeleteNIC", &ta, 1, "NICID", nics[i], NULL), &d,
             "DeleteNIC");
        holes++;
    }
    phase_rate("DeleteNIC (punching holes)", holes, t0);
    t0 = clk_now();
    for (unsigned i = 0; i < holes; i++) {
        must(call(&d, "CreateNIC", &ta, 1, "SubnetID", subnet, NULL), &d,
             "CreateNIC");
    }
    phase_rate("CreateNIC into the holes", holes, t0);
    /* fill what is left, then one more */
    t0 = clk_now();
    {
        unsigned n = 0;
        for (;;) {
            rc = call(&d, "CreateNIC", &ta, 1, "SubnetID", subnet, NULL);
            if (rc != 0) {
                break;
            }
            snprintf(nic, sizeof nic, "%s", res_str(&d, "IP"));
            n++;
        }
        if (n > 0) {
            phase_rate("CreateNIC filling the subnet", n, t0);
            printf("  last address: %s\n", nic);
        }
        printf("  next CreateNIC: RetCode %d (%s)\n", rc,
               res_str(&d, "Message"));
    }
    lmdb_print(&d);
    drv_close(&d);
    free(nics);
    free(blk);
}

/* ---- security groups ---- */

/* @n ModifyNameAndRemark of the tenant itself; their rate per second of
 * CPU. */
static double remark_writes(struct drv *d,
                            const struct fsm_actor *ta,
                            unsigned n)
{
    char remark[64];
    double t0 = cpu_s();

    for (unsigned i = 0; i < n; i++) {
        snprintf(remark, sizeof remark, "remark %u", i);
        must(call(d, "ModifyNameAndRemark", ta, 1, "ResourceID", ta->user_id,
                  "Remark", remark, NULL),
             d, "ModifyNameAndRemark");
    }
    return (double)n / (cpu_s() - t0);
}

/* @calls CreateSecurityGroupRule of @per rules each into @sg, rules
 * numbered from *next; returns the mean CPU time per call in us, and the
 * first and last call's in @first/@last. */
static double add_rules(struct drv *d,
                        const struct fsm_actor *ta,
                        const char *sg,
                        unsigned calls,
                        unsigned per,
                        unsigned *next,
                        double *first,
                        double *last)
{
    const char *keys[MAX_KV], *vals[MAX_KV];
    char kb[101][16], vb[101][64], tok[40];
    double sum = 0;

    if (per > 100) {
        die("at most 100 rules per call");
    }
    for (unsigned c = 0; c < calls; c++) {
        unsigned n = 0;
        double t0;
        keys[n] = "SecurityGroupID";
        vals[n++] = sg;
        for (unsigned i = 0; i < per; i++) {
            unsigned r = (*next)++;
            snprintf(kb[i], sizeof kb[i], "Rules.%u", i);
            /* distinct rules: a port and a /24 per rule */
            snprintf(vb[i], sizeof vb[i], "TCP|%u|10.%u.%u.0/24|ACCEPT|HIGH",
                     r % 60000 + 1, (r / 256) % 256, r % 256);
            keys[n] = kb[i];
            vals[n++] = vb[i];
        }
        snprintf(tok, sizeof tok, "bench-scale-%016" PRIx64, ++d->tokens);
        keys[n] = "RequestToken";
        vals[n++] = tok;
        t0 = cpu_s();
        must(drv_obj(d, "CreateSecurityGroupRule", ta,
                     mkreq_kv(d, n, keys, vals)),
             d, "CreateSecurityGroupRule");
        t0 = cpu_s() - t0;
        sum += t0;
        if (c == 0) {
            *first = t0 * 1e6;
        }
        *last = t0 * 1e6;
    }
    return sum * 1e6 / calls;
}

static void run_sg(unsigned n_rules)
{
    struct drv d;
    char uid[48], big[48], small[48], off[32];
    struct fsm_actor ta;
    unsigned next = 0, calls = (n_rules + 99) / 100;
    double w0, w1, r0, r1, first, last, mean;
    const unsigned n_writes = 20000;

    printf("\n## security groups: one group of %u rules (in-process)\n\n",
           n_rules);
    loadavg_print();
    drv_open(&d);
    make_tenant(&d, "sg@scale.example", uid);
    ta = tenant_actor(uid);
    must(call(&d, "CreateSecurityGroup", &ta, 1, "Name", "small", NULL), &d,
         "CreateSecurityGroup");
    snprintf(small, sizeof small, "%s", res_str(&d, "SecurityGroupID"));

    /* before: unrelated writes of the same tenant */
    w0 = remark_writes(&d, &ta, n_writes);
    r0 = add_rules(&d, &ta, small, 1000, 1, &next, &first, &last);
    printf(
        "without the big group: ModifyNameAndRemark %.0f writes per CPU "
        "second; CreateSecurityGroupRule (1 rule, small group) %.1f us "
        "CPU\n",
        w0, r0);

    must(call(&d, "CreateSecurityGroup", &ta, 1, "Name", "big", NULL), &d,
         "CreateSecurityGroup");
    snprintf(big, sizeof big, "%s", res_str(&d, "SecurityGroupID"));
    next = 100000;
    {
        double t0 = now_s();
        mean = add_rules(&d, &ta, big, calls, 100, &next, &first, &last);
        printf(
            "CreateSecurityGroupRule x%u (100 rules each): wall %.2f s; "
            "CPU per call mean %.0f us, first %.0f us, last %.0f us\n",
            calls, now_s() - t0, mean, first, last);
    }
    must(call(&d, "DescribeSecurityGroup", &ta, 0, "SecurityGroupIDs.0", big,
              "RuleLimit", "0", NULL),
         &d, "DescribeSecurityGroup");
    {
        const msgpack_object *infos = yh_mp_get(&d.rs.data, "Infos");
        int64_t rc = -1;
        if (infos != NULL && infos->type == MSGPACK_OBJECT_ARRAY &&
            infos->via.array.size == 1) {
            yh_mp_int(&infos->via.array.ptr[0], "RuleCount", &rc);
        }
        printf("big group RuleCount: %" PRId64 "\n", rc);
    }
    {
        /* one more is refused */
        char rule[64];
        snprintf(rule, sizeof rule, "UDP|53|10.255.255.0/24|ACCEPT|LOW");
        int rc = call(&d, "CreateSecurityGroupRule", &ta, 1, "SecurityGroupID",
                      big, "Rules.0", rule, NULL);
        printf("rule %u: RetCode %d (%s)\n", n_rules + 1, rc,
               res_str(&d, "Message"));
    }
    timed_read(&d, "DescribeSecurityGroup big, RuleOffset 0 RuleLimit 100",
               "DescribeSecurityGroup", &ta, "SecurityGroupIDs.0", big,
               "RuleOffset", "0", "RuleLimit", "100", NULL);
    snprintf(off, sizeof off, "%u", n_rules > 100 ? n_rules - 100 : 0);
    timed_read(&d, "DescribeSecurityGroup big, last page (RuleLimit 100)",
               "DescribeSecurityGroup", &ta, "SecurityGroupIDs.0", big,
               "RuleOffset", off, "RuleLimit", "100", NULL);
    timed_read(&d, "DescribeSecurityGroup, all groups (RuleLimit 20)",
               "DescribeSecurityGroup", &ta, NULL);

    /* after */
    next = 1000;
    w1 = remark_writes(&d, &ta, n_writes);
    r1 = add_rules(&d, &ta, small, 1000, 1, &next, &first, &last);
    printf(
        "with the big group:    ModifyNameAndRemark %.0f writes per CPU "
        "second; CreateSecurityGroupRule (1 rule, small group) %.1f us "
        "CPU\n",
        w1, r1);
    lmdb_print(&d);
    drv_close(&d);
}

/* ---- main ---- */

static unsigned num_arg(const char *s)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > 100000000ul) {
        die("bad number '%s'", s);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    unsigned vms = 1000000, tenants = 100000, hosts = 32, ips = 65000;
    unsigned rules = 10000;
    const char *only = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            die("usage: bench_scale [--only state|ipam|sg] [--vms N] "
                "[--tenants N] [--hosts N] [--ips N] [--rules N]");
        }
        i++;
        if (strcmp(a, "--only") == 0) {
            only = v;
        } else if (strcmp(a, "--vms") == 0) {
            vms = num_arg(v);
        } else if (strcmp(a, "--tenants") == 0) {
            tenants = num_arg(v);
        } else if (strcmp(a, "--hosts") == 0) {
            hosts = num_arg(v);
        } else if (strcmp(a, "--ips") == 0) {
            ips = num_arg(v);
        } else if (strcmp(a, "--rules") == 0) {
            rules = num_arg(v);
        } else {
            die("unknown option '%s'", a);
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (only == NULL || strcmp(only, "state") == 0) {
        run_state(vms, tenants, hosts);
    }
    if (only == NULL || strcmp(only, "ipam") == 0) {
        run_ipam(ips);
    }
    if (only == NULL || strcmp(only, "sg") == 0) {
        run_sg(rules);
    }
    return 0;
}
