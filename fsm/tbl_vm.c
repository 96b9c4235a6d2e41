/* VM instances ("uhost-"), their jobs ("job-") and executor reports.
 *
 * Placement is computed on the leader when the create (or a migration,
 * tbl_vmops.c) is prepared (the scheduler below: a healthy host of the zone
 * with the image's architecture, the GPUs asked for, room for the CPUs
 * after the zone's overcommit ratio and for the memory, not holding another
 * machine of the same anti-affinity group, not the machine's current host;
 * the least loaded wins, ties by HostID) and carried in the stamp. Apply
 * re-validates the stamped host against the state at its index and refuses
 * a stale placement with 172, like an optimistic plan applier. The same
 * scheduler places gateways (gwhost.c): a healthy host of the zone (or of
 * any zone), any architecture, no capacity taken, the fewest gateways.
 *
 * Each machine has a desired state (Running/Stopped, set by actions), an
 * observed state (ObservedState/ObservedGeneration, reported by the host's
 * executor) and a shown State that is transitional (Creating, Starting,
 * Stopping, Restarting, Resizing) until the executor reports the current
 * Generation (the log index of the last change it must act on). A report
 * of an older generation never overwrites a newer one. Every action that
 * needs the executor opens a job that the matching report completes.
 * ReportState also takes gateways (gwhost.c): the same rules, their own
 * observed states (Available, Stopped, Error), no migration, no job. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define VM_PREFIX "uhost"
#define NAME_MAX_LEN 64
#define PW_MIN 8
#define PW_MAX 128
#define MAX_AAG_HOSTS 256

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

/* ---- arguments ---- */

struct vm_args
{
    char zone[FSM_ID_SIZE];      /* ZoneID */
    char image[FSM_ID_SIZE];     /* ImageID */
    char aag[FSM_ID_SIZE];       /* AntiAffinityGroupID ("" = none) */
    char name[NAME_MAX_LEN + 1]; /* Name */
    struct fsm_vm_spec spec;     /* CPU, Memory, GPU, disks */
    int boot_given;              /* BootDiskSpace given */
    char ct[16];                 /* ChargeType */
    int64_t quantity;            /* Quantity */
};

static int set_arg(struct fsm_ctx *c, const char *key, char out[33], int def)
{
    int given;

    TRY(fsm__arg_str(c, key, 0, 32, out, &given));
    if (!given && def) {
        snprintf(out, 33, "Standard");
    }
    for (const char *p = out; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
            return fsm__reject(c, YH_EINVAL, "invalid parameter '%s'", key);
        }
    }
    return 0;
}

static int vm_args(struct fsm_ctx *c, struct vm_args *a)
{
    int given;

    memset(a, 0, sizeof *a);
    TRY(fsm__arg_str(c, "ZoneID", 1, FSM_ID_SIZE - 1, a->zone, NULL));
    TRY(fsm__arg_str(c, "ImageID", 1, FSM_ID_SIZE - 1, a->image, NULL));
    TRY(fsm__arg_str(c, "AntiAffinityGroupID", 0, FSM_ID_SIZE - 1, a->aag,
                     NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL));
    TRY(fsm__arg_int(c, "CPU", 1, 1, 256, &a->spec.cpu, NULL));
    TRY(fsm__arg_int(c, "Memory", 1, 512, 1 << 20, &a->spec.mem, NULL));
    TRY(fsm__arg_int(c, "GPU", 0, 0, 16, &a->spec.gpu, &given));
    if (!given) {
        a->spec.gpu = 0;
    }
    TRY(set_arg(c, "GPUType", a->spec.gpu_type, 0));
    TRY(set_arg(c, "BootDiskSetType", a->spec.boot_set, 1));
    TRY(fsm__arg_int(c, "BootDiskSpace", 0, 1, 2048, &a->spec.boot_gb,
                     &a->boot_given));
    snprintf(a->spec.data_set, sizeof a->spec.data_set, "Standard");
    return fsm__charge_args(c, a->ct, &a->quantity);
}

/* ---- the scheduler ---- */

/* Hosts holding a machine of group @aag other than @self (recycled ones
 * too: they keep their place; a machine being migrated holds both its
 * hosts), in VMID order: the group's rows of 'res_list', each machine's
 * record checked. */
struct aag_walk
{
    struct fsm_ctx *c;
    const char *aag, *self;
    char (*hosts)[FSM_ID_SIZE];
    unsigned *n;
    struct fsm_rec r;
};

static int aag_one(void *arg, const char *vm)
{
    struct aag_walk *w = arg;
    int rc;

    if (strcmp(vm, w->self) == 0) {
        return 0;
    }
    rc = fsm__rec_load(w->c->f, w->c->txn, FSM_TBL_RES, vm, strlen(vm), &w->r);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return -rc;
    }
    if (strcmp(fsm__rec_s(&w->r, "AntiAffinityGroupID"), w->aag) != 0) {
        return 0;
    }
    snprintf(w->hosts[(*w->n)++], FSM_ID_SIZE, "%s",
             fsm__rec_s(&w->r, "HostID"));
    if (fsm__rec_s(&w->r, "MigrateFromHostID")[0] != '\0' &&
        *w->n < MAX_AAG_HOSTS) {
        snprintf(w->hosts[(*w->n)++], FSM_ID_SIZE, "%s",
                 fsm__rec_s(&w->r, "MigrateFromHostID"));
    }
    return *w->n >= MAX_AAG_HOSTS;
}

static int aag_hosts(struct fsm_ctx *c,
                     const char *aag,
                     const char *self,
                     char (*hosts)[FSM_ID_SIZE],
                     unsigned *n)
{
    struct aag_walk w;
    int rc;

    *n = 0;
    if (aag[0] == '\0') {
        return 0;
    }
    w.c = c;
    w.aag = aag;
    w.self = self;
    w.hosts = hosts;
    w.n = n;
    fsm__rec_init(&w.r);
    rc = fsm__aag_walk(c, aag, aag_one, &w);
    fsm__rec_free(&w.r);
    return rc < 0 ? -rc : rc;
}

/* What the scheduler reads of a host record: the same values whether they
 * come from a record decoded at apply or from the leader's cache. */
struct host_cap
{
    const char *id, *zone, *state, *arch, *gpu_model;
    int64_t disabled, cpu, mem, gpu, used_cpu, used_mem, used_gpu, gw;
};

/* @hc points into @h's strings. */
static void host_cap_of(const struct fsm_rec *h, struct host_cap *hc)
{
    hc->id = fsm__rec_s(h, "HostID");
    hc->zone = fsm__rec_s(h, "ZoneID");
    hc->state = fsm__rec_s(h, "State");
    hc->arch = fsm__rec_s(h, "Arch");
    hc->gpu_model = fsm__rec_s(h, "GPUModel");
    hc->disabled = fsm__rec_i(h, "Disabled");
    hc->cpu = fsm__rec_i(h, "CPU");
    hc->mem = fsm__rec_i(h, "Memory");
    hc->gpu = fsm__rec_i(h, "GPU");
    hc->used_cpu = fsm__rec_i(h, "UsedCPU");
    hc->used_mem = fsm__rec_i(h, "UsedMemory");
    hc->used_gpu = fsm__rec_i(h, "UsedGPU");
    hc->gw = fsm__rec_i(h, "GatewayCount");
}

/* Why host @h cannot take the machine of @p (NULL if it can). */
static const char *host_unfit(const struct host_cap *h,
                              const struct fsm_place *p,
                              char (*avoid)[FSM_ID_SIZE],
                              unsigned n_avoid)
{
    const struct fsm_vm_spec *s = p->spec;
    int64_t cpu_cap = h->cpu * p->overcommit / 100;

    if (strcmp(h->id, p->exclude) == 0) {
        return "the machine's current host";
    }
    if (p->zone[0] != '\0' && strcmp(h->zone, p->zone) != 0) {
        return "in another zone";
    }
    if (strcmp(h->state, "Online") != 0 || h->disabled) {
        return "not healthy";
    }
    if (p->arch[0] != '\0' && strcmp(h->arch, p->arch) != 0) {
        return "of another architecture";
    }
    if (s == NULL) {
        return NULL; /* a gateway: no room asked from the machines' pool */
    }
    if (s->gpu > 0 &&
        ((s->gpu_type[0] != '\0' && strcmp(h->gpu_model, s->gpu_type) != 0) ||
         h->used_gpu + s->gpu > h->gpu)) {
        return "without the GPUs";
    }
    if (h->used_cpu + s->cpu > cpu_cap) {
        return "without CPU room";
    }
    if (h->used_mem + s->mem > h->mem) {
        return "without memory room";
    }
    for (unsigned i = 0; i < n_avoid; i++) {
        if (strcmp(avoid[i], h->id) == 0) {
            return "holding a machine of the anti-affinity group";
        }
    }
    return NULL;
}

/* Zone's overcommit, the image's architecture and size (150 if unknown),
 * the anti-affinity group (150 if unknown or not the actor's). */
static int placement_inputs(struct fsm_ctx *c,
                            const struct vm_args *a,
                            int64_t *overcommit,
                            char arch[16],
                            int64_t *image_gb)
{
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = strncmp(a->zone, "zone-", 5) == 0
             ? fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, a->zone,
                             strlen(a->zone), &r)
             : YH_ENOTFOUND;
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "zone '%s' not found", a->zone);
    }
    TRY(rc);
    *overcommit = fsm__rec_i(&r, "CPUOvercommit");
    rc = strncmp(a->image, "image-", 6) == 0
             ? fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, a->image,
                             strlen(a->image), &r)
             : YH_ENOTFOUND;
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "image '%s' not found", a->image);
    }
    TRY(rc);
    if (!fsm__owns(c, fsm__rec_s(&r, "TenantID")) &&
        fsm__rec_s(&r, "TenantID")[0] != '\0') {
        fsm__rec_free(&r);
        return fsm__reject(c, YH_ENOTFOUND, "image '%s' not found", a->image);
    }
    snprintf(arch, 16, "%s", fsm__rec_s(&r, "Arch"));
    *image_gb = fsm__rec_i(&r, "Size");
    fsm__rec_free(&r);
    if (a->aag[0] != '\0') {
        rc = strncmp(a->aag, "aag-", 4) == 0
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, a->aag,
                                 strlen(a->aag), &r)
                 : YH_ENOTFOUND;
        if (rc == 0 && !fsm__owns(c, fsm__rec_s(&r, "TenantID"))) {
            rc = YH_ENOTFOUND;
        }
        fsm__rec_free(&r);
        if (rc == YH_ENOTFOUND) {
            return fsm__reject(c, YH_ENOTFOUND,
                               "anti-affinity group '%s' not found", a->aag);
        }
        TRY(rc);
    }
    return 0;
}

/* The load of host @h after placing @p: lower is better. */
static int64_t place_load(const struct host_cap *h, const struct fsm_place *p)
{
    int64_t cap = h->cpu * p->overcommit / 100;
    int64_t mem = h->mem;

    if (cap <= 0 || mem <= 0) {
        return INT64_MAX - 1;
    }
    if (p->spec == NULL) {
        /* a gateway: the fewest gateways, then the smallest CPU share */
        return h->gw * 1000000 + h->used_cpu * 1000 / cap;
    }
    /* CPU share first (per mille of the overcommitted capacity), memory
     * share to break ties */
    return (h->used_cpu + p->spec->cpu) * 1000 / cap * 1000 +
           (h->used_mem + p->spec->mem) * 999 / mem;
}

/* The leader's scheduler cache: every host record as last decoded, kept
 * with the exact bytes (key and value) it was decoded from. A pick still
 * walks the host rows of its own transaction and reuses an entry only
 * when the row's bytes are identical, so the cache can never answer for
 * a state other than the one read; only the decoding (a msgpack unpack,
 * an allocation per string and a name search per field, ~5 us a host)
 * is saved. Apply never reads it: fsm__place_why decodes the record. The
 * mutex is for prepares on the thread pool (password stamps). */
struct place_ent
{
    struct host_cap cap; /* strings point into @strs */
    int ok;              /* the record decoded */
    uint64_t memo_gen;   /* the answer below is for question memo_gen of
                            the cache (0: none) */
    int memo_fit;        /* host_unfit() == NULL */
    int64_t memo_load;   /* place_load() */
    char *strs;          /* the five strings, NUL-separated */
    size_t strs_cap;
    uint8_t *raw; /* key bytes, then value bytes */
    size_t key_len, val_len, raw_cap;
};

struct fsm_place_cache
{
    pthread_mutex_t mu;
    struct place_ent *e;
    unsigned n, cap; /* entries valid / allocated */
    /* The last placement question asked without an anti-affinity group
     * (place_question) and its number: an entry whose bytes did not change
     * keeps its answer to that question (fit, load) until another is
     * asked; both are functions of the host's bytes and the question. */
    uint8_t q[4 * sizeof(int64_t) + 4 * FSM_ID_SIZE];
    size_t ql;
    uint64_t gen;
};

struct fsm_place_cache *fsm__place_cache_new(void)
{
    struct fsm_place_cache *pc = calloc(1, sizeof *pc);

    if (pc != NULL && pthread_mutex_init(&pc->mu, NULL) != 0) {
        free(pc);
        pc = NULL;
    }
    return pc;
}

void fsm__place_cache_free(struct fsm_place_cache *pc)
{
    if (pc == NULL) {
        return;
    }
    for (unsigned i = 0; i < pc->cap; i++) {
        free(pc->e[i].strs);
        free(pc->e[i].raw);
    }
    free(pc->e);
    pthread_mutex_destroy(&pc->mu);
    free(pc);
}

static int grow(void *pp, size_t *cap, size_t need)
{
    void **p = pp;
    void *np;
    size_t nc = *cap > 0 ? *cap : 64;

    if (need <= *cap) {
        return 0;
    }
    while (nc < need) {
        nc *= 2;
    }
    np = realloc(*p, nc);
    if (np == NULL) {
        return -1;
    }
    *p = np;
    *cap = nc;
    return 0;
}

/* Entry @i of @pc for host row @k/@v: reused when its bytes are the same,
 * else (re)decoded. NULL when out of memory (the caller decodes itself). */
static const struct place_ent *place_ent_get(struct fsm_place_cache *pc,
                                             unsigned i,
                                             const MDB_val *k,
                                             const MDB_val *v,
                                             struct fsm_rec *h)
{
    const char *src[5];
    struct place_ent *e;
    size_t len = 0;

    if (i < pc->n) {
        e = &pc->e[i];
        if (e->key_len == k->mv_size && e->val_len == v->mv_size &&
            memcmp(e->raw, k->mv_data, k->mv_size) == 0 &&
            memcmp(e->raw + k->mv_size, v->mv_data, v->mv_size) == 0) {
            return e;
        }
    }
    if (i >= pc->cap) {
        unsigned nc = pc->cap > 0 ? pc->cap * 2 : 64;
        struct place_ent *ne = realloc(pc->e, nc * sizeof *ne);
        if (ne == NULL) {
            return NULL;
        }
        memset(ne + pc->cap, 0, (nc - pc->cap) * sizeof *ne);
        pc->e = ne;
        pc->cap = nc;
    }
    e = &pc->e[i];
    if (i >= pc->n || e->key_len != k->mv_size ||
        memcmp(e->raw, k->mv_data, k->mv_size) != 0) {
        /* another host at this position (one was added): the entries
         * after it belong to other rows now, drop them */
        pc->n = i;
    }
    e->key_len = SIZE_MAX; /* matches no row until rewritten whole */
    e->memo_gen = 0;
    if (grow(&e->raw, &e->raw_cap, k->mv_size + v->mv_size) != 0) {
        return NULL;
    }
    memcpy(e->raw, k->mv_data, k->mv_size);
    memcpy(e->raw + k->mv_size, v->mv_data, v->mv_size);
    e->ok = fsm__rec_decode(v->mv_data, v->mv_size, h) == 0;
    if (e->ok) {
        struct host_cap hc;
        const char **dst[5] = {&e->cap.id, &e->cap.zone, &e->cap.state,
                               &e->cap.arch, &e->cap.gpu_model};
        size_t off = 0;
        host_cap_of(h, &hc);
        src[0] = hc.id;
        src[1] = hc.zone;
        src[2] = hc.state;
        src[3] = hc.arch;
        src[4] = hc.gpu_model;
        for (unsigned j = 0; j < 5; j++) {
            len += strlen(src[j]) + 1;
        }
        if (grow(&e->strs, &e->strs_cap, len) != 0) {
            return NULL;
        }
        e->cap = hc;
        for (unsigned j = 0; j < 5; j++) {
            size_t l = strlen(src[j]) + 1;
            memcpy(e->strs + off, src[j], l);
            *dst[j] = e->strs + off;
            off += l;
        }
    }
    e->key_len = k->mv_size;
    e->val_len = v->mv_size;
    if (pc->n < i + 1) {
        pc->n = i + 1;
    }
    return e;
}

/* @s and its NUL at @o; NULL (no memo) when longer than an ID. */
static uint8_t *q_str(uint8_t *o, const char *s)
{
    size_t l;

    if (o == NULL || (l = strlen(s)) >= FSM_ID_SIZE) {
        return NULL;
    }
    memcpy(o, s, l + 1);
    return o + l + 1;
}

/* Make @p the cache's current question (a new number if it differs from
 * the last). 0 if it cannot be (then no answer is kept or reused). */
static int place_question(struct fsm_place_cache *pc, const struct fsm_place *p)
{
    uint8_t q[sizeof pc->q], *o = q;
    int64_t n[4] = {p->overcommit, -1, 0, 0};

    if (p->spec != NULL) {
        n[1] = p->spec->cpu;
        n[2] = p->spec->mem;
        n[3] = p->spec->gpu;
    }
    memcpy(o, n, sizeof n);
    o += sizeof n;
    o = q_str(o, p->zone);
    o = q_str(o, p->arch);
    o = q_str(o, p->exclude);
    o = q_str(o, p->spec != NULL ? p->spec->gpu_type : "");
    if (o == NULL) {
        return 0;
    }
    if (pc->gen == 0 || (size_t)(o - q) != pc->ql ||
        memcmp(q, pc->q, pc->ql) != 0) {
        pc->ql = (size_t)(o - q);
        memcpy(pc->q, q, pc->ql);
        pc->gen++;
    }
    return 1;
}

/* Copy the ID @s into @out (at most FSM_ID_SIZE - 1 bytes). */
static void id_copy(char out[FSM_ID_SIZE], const char *s)
{
    size_t l = strlen(s);

    if (l > FSM_ID_SIZE - 1) {
        l = FSM_ID_SIZE - 1;
    }
    memcpy(out, s, l);
    out[l] = '\0';
}

/* Leader side: pick the least loaded host that fits. */
int fsm__place_pick(struct fsm_ctx *c,
                    const struct fsm_place *p,
                    char host[FSM_ID_SIZE])
{
    char avoid[MAX_AAG_HOSTS][FSM_ID_SIZE];
    struct fsm_place_cache *pc = c->f->place_cache;
    int64_t best_load = INT64_MAX;
    unsigned n_avoid, i = 0;
    int memo = 0; /* answers kept in the cache's entries */
    struct fsm_rec h;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    TRY(aag_hosts(c, p->aag, p->vm, avoid, &n_avoid));
    host[0] = '\0';
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_INFRA], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'infra'");
    }
    fsm__rec_init(&h);
    if (pc != NULL) {
        pthread_mutex_lock(&pc->mu);
        memo = n_avoid == 0 && place_question(pc, p);
    }
    k.mv_data = "host-";
    k.mv_size = 5;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        const struct place_ent *e = NULL;
        const struct host_cap *hc;
        struct host_cap own;
        int64_t load;
        int fit;
        if (k.mv_size < 5 || memcmp(k.mv_data, "host-", 5) != 0) {
            break;
        }
        if (pc != NULL) {
            e = place_ent_get(pc, i, &k, &v, &h);
        }
        if (e != NULL) {
            if (!e->ok) {
                continue;
            }
            if (memo && e->memo_gen == pc->gen) {
                /* same bytes, same question: the same answer */
                if (e->memo_fit && e->memo_load < best_load) {
                    best_load = e->memo_load;
                    id_copy(host, e->cap.id);
                }
                continue;
            }
            hc = &e->cap;
        } else {
            if (fsm__rec_decode(v.mv_data, v.mv_size, &h) != 0) {
                continue;
            }
            host_cap_of(&h, &own);
            hc = &own;
        }
        fit = host_unfit(hc, p, avoid, n_avoid) == NULL;
        load = fit ? place_load(hc, p) : 0;
        if (memo && e != NULL) {
            struct place_ent *me = &pc->e[i];
            me->memo_gen = pc->gen;
            me->memo_fit = fit;
            me->memo_load = load;
        }
        if (fit && load < best_load) {
            best_load = load;
            id_copy(host, hc->id);
        }
    }
    if (pc != NULL) {
        pthread_mutex_unlock(&pc->mu);
    }
    fsm__rec_free(&h);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'infra'");
    }
    if (host[0] == '\0' && p->spec == NULL) {
        return fsm__reject(c, YH_ECAPACITY,
                           "insufficient capacity: no healthy host%s%s%s for "
                           "a gateway",
                           p->zone[0] != '\0' ? " in zone '" : "", p->zone,
                           p->zone[0] != '\0' ? "'" : "");
    }
    if (host[0] == '\0') {
        return fsm__reject(
            c, YH_ECAPACITY,
            "insufficient capacity: no healthy %s host in "
            "zone '%s' fits %" PRId64 " CPU, %" PRId64 " MB, %" PRId64 " GPU",
            p->arch, p->zone, p->spec->cpu, p->spec->mem, p->spec->gpu);
    }
    return 0;
}

/* Why @host cannot take @p against the state at this index. */
int fsm__place_why_rec(struct fsm_ctx *c,
                       const struct fsm_place *p,
                       const char *host,
                       const char **why,
                       struct fsm_rec *h)
{
    char avoid[MAX_AAG_HOSTS][FSM_ID_SIZE];
    unsigned n_avoid;
    struct host_cap hc;
    int rc;

    *why = NULL;
    TRY(aag_hosts(c, p->aag, p->vm, avoid, &n_avoid));
    rc = fsm__is_host_id(host)
             ? fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, host, strlen(host), h)
             : YH_ENOTFOUND;
    if (rc == YH_ENOTFOUND) {
        *why = FSM_PLACE_GONE;
        return 0;
    }
    TRY(rc);
    host_cap_of(h, &hc);
    *why = host_unfit(&hc, p, avoid, n_avoid);
    return 0;
}

int fsm__place_why(struct fsm_ctx *c,
                   const struct fsm_place *p,
                   const char *host,
                   const char **why)
{
    struct fsm_rec h;
    int rc;

    fsm__rec_init(&h);
    rc = fsm__place_why_rec(c, p, host, why, &h);
    fsm__rec_free(&h);
    return rc;
}

/* A create's placement question (after placement_inputs). */
static void create_place(const struct vm_args *a,
                         int64_t overcommit,
                         const char *arch,
                         struct fsm_place *p)
{
    p->zone = a->zone;
    p->overcommit = overcommit;
    p->arch = arch;
    p->spec = &a->spec;
    p->aag = a->aag;
    p->vm = "";
    p->exclude = "";
}

/* ---- jobs ---- */

/* Open a job for @vm (record @r, saved by the caller) at this index and
 * make this index the machine's Generation; a running job of the machine
 * is superseded. */
int fsm__job_open(struct fsm_ctx *c,
                  const char *vm,
                  struct fsm_rec *r,
                  const char *action)
{
    char old[FSM_ID_SIZE];
    char id[FSM_ID_SIZE];
    struct fsm_rec j;
    int rc = 0;

    snprintf(old, sizeof old, "%s", fsm__rec_s(r, "JobID"));
    fsm__rec_init(&j);
    if (old[0] != '\0') {
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_JOBS, old, strlen(old), &j);
        if (rc == 0 && strcmp(fsm__rec_s(&j, "State"), "Running") == 0) {
            fsm__rec_set_s(&j, "State", "Superseded");
            fsm__rec_set_i(&j, "FinishTime", now_s(c));
            rc = fsm__rec_save(c, FSM_TBL_JOBS, old, strlen(old), &j);
        } else if (rc == YH_ENOTFOUND) {
            rc = 0;
        }
    }
    if (rc == 0) {
        rc = fsm__new_id(c, "job", id);
    }
    if (rc == 0) {
        fsm__rec_free(&j);
        fsm__rec_set_s(&j, "JobID", id);
        fsm__rec_set_s(&j, "TenantID", fsm__rec_s(r, "TenantID"));
        fsm__rec_set_s(&j, "ResourceID", vm);
        fsm__rec_set_s(&j, "Action", action);
        fsm__rec_set_s(&j, "State", "Running");
        fsm__rec_set_i(&j, "Generation", (int64_t)c->index);
        fsm__rec_set_i(&j, "CreateTime", now_s(c));
        fsm__rec_set_i(&j, "FinishTime", 0);
        rc = fsm__rec_save(c, FSM_TBL_JOBS, id, strlen(id), &j);
    }
    fsm__rec_free(&j);
    if (rc == 0) {
        fsm__rec_set_s(r, "JobID", id);
        fsm__rec_set_i(r, "Generation", (int64_t)c->index);
        yh_mp_pack_str(fsm__field(c, "JobID"), id);
    }
    return rc;
}

int fsm__job_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_JOBS, "job-", "JobIDs", 0, NULL, NULL, NULL};

    return fsm__describe(c, &d);
}

/* ---- machine passwords ---- */

int fsm__vm_pw_check(struct fsm_ctx *c, int required)
{
    char pw[PW_MAX + 1];
    int given;
    int rc;

    rc = fsm__arg_str(c, "Password", required, PW_MAX, pw, &given);
    if (rc == 0 && given && strlen(pw) < PW_MIN) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'Password': at least %d "
                         "characters",
                         PW_MIN);
    }
    OPENSSL_cleanse(pw, sizeof pw);
    return rc;
}

int fsm__vm_pw_stamp(struct fsm_ctx *c)
{
    char pw[PW_MAX + 1];
    uint8_t salt[16], hash[32];
    msgpack_packer *pk;
    int given;
    int rc;

    /* The password never enters the log: a salted PBKDF2 hash does. */
    TRY(fsm__arg_str(c, "Password", 0, PW_MAX, pw, &given));
    if (!given) {
        return 0;
    }
    rc = RAND_bytes(salt, sizeof salt) == 1 &&
                 PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sizeof salt,
                                   FSM_PBKDF2_ITERATIONS, EVP_sha256(),
                                   sizeof hash, hash) == 1
             ? 0
             : YH_EINTERNAL;
    OPENSSL_cleanse(pw, sizeof pw);
    TRY(rc);
    pk = fsm__stamp_field(c, "PwHash");
    msgpack_pack_bin(pk, sizeof hash);
    msgpack_pack_bin_body(pk, hash, sizeof hash);
    pk = fsm__stamp_field(c, "Salt");
    msgpack_pack_bin(pk, sizeof salt);
    msgpack_pack_bin_body(pk, salt, sizeof salt);
    return 0;
}

int fsm__vm_pw_get(struct fsm_ctx *c, int required, struct fsm_vm_pw *pw)
{
    uint8_t hash[32], salt[16];
    size_t hl, sl;

    memset(pw, 0, sizeof *pw);
    if (yh_mp_get(c->stamp, "PwHash") == NULL) {
        if (required) {
            return fsm__reject(c, YH_EPROTO, "bad command: stamp 'PwHash'");
        }
        return 0;
    }
    TRY(fsm__stamp_bin(c, "PwHash", 32, 32, hash, &hl));
    TRY(fsm__stamp_bin(c, "Salt", 16, 16, salt, &sl));
    yh_hex(hash, hl, pw->hash);
    yh_hex(salt, sl, pw->salt);
    pw->set = 1;
    return 0;
}

void fsm__vm_pw_put(struct fsm_rec *r, const struct fsm_vm_pw *pw)
{
    if (pw->set) {
        fsm__rec_set_s(r, "_PwHash", pw->hash);
        fsm__rec_set_s(r, "_PwSalt", pw->salt);
    }
}

/* ---- CreateVMInstance ---- */

int fsm__vm_create_check(struct fsm_ctx *c)
{
    struct vm_args a;
    char tenant[FSM_ID_SIZE];

    TRY(vm_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    return fsm__vm_pw_check(c, 0);
}

int fsm__vm_create_stamp(struct fsm_ctx *c)
{
    struct vm_args a;
    struct fsm_place p;
    char host[FSM_ID_SIZE], arch[16];
    int64_t overcommit, image_gb;

    TRY(vm_args(c, &a));
    TRY(placement_inputs(c, &a, &overcommit, arch, &image_gb));
    create_place(&a, overcommit, arch, &p);
    TRY(fsm__place_pick(c, &p, host));
    yh_mp_pack_str(fsm__stamp_field(c, "HostID"), host);
    TRY(fsm__vm_pw_stamp(c));
    return fsm__pw_seal_stamp(c, host); /* pwseal.c */
}

int fsm__vm_create_apply(struct fsm_ctx *c)
{
    struct vm_args a;
    char tenant[FSM_ID_SIZE], host[FSM_ID_SIZE], id[FSM_ID_SIZE];
    char arch[16], pool[FSM_ID_SIZE];
    struct fsm_pw_seal seal;
    struct fsm_vm_pw pw;
    struct fsm_place p;
    const char *why;
    const char *types[8];
    int64_t delta[8], price, overcommit, image_gb;
    char buf[8][48];
    struct fsm_rec r, h; /* the machine, its host as read here */
    struct fsm_vm_ip ip;
    unsigned n;
    int rc;

    TRY(vm_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    TRY(fsm__stamp_str(c, "HostID", FSM_ID_SIZE - 1, host));
    TRY(fsm__vm_pw_get(c, 0, &pw));
    TRY(fsm__pw_seal_get(c, host, &seal));
    TRY(placement_inputs(c, &a, &overcommit, arch, &image_gb));
    if (!a.boot_given) {
        a.spec.boot_gb = image_gb;
    } else if (a.spec.boot_gb < image_gb) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'BootDiskSpace': the image "
                           "needs %" PRId64 " GB",
                           image_gb);
    }
    create_place(&a, overcommit, arch, &p);
    fsm__rec_init(&r);
    fsm__rec_init(&h);
    /* the host record read here is the one updated below: nothing in
     * between writes it */
    rc = fsm__place_why_rec(c, &p, host, &why, &h);
    if (rc == 0 && why != NULL && strcmp(why, FSM_PLACE_GONE) == 0) {
        rc = fsm__reject(c, YH_ECAPACITY, "stale placement: host '%s' is gone",
                         host);
    } else if (rc == 0 && why != NULL) {
        rc = fsm__reject(c, YH_ECAPACITY,
                         "stale placement: host '%s' is now %s", host, why);
    }
    /* the optional SubnetID/VPCID/InternalIP: chosen (and any rejection
     * made) before the first write */
    if (rc == 0) {
        rc = fsm__vm_ip_pick(c, tenant, &ip);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "ResourceType", "VM");
    fsm__rec_set_i(&r, "CPU", a.spec.cpu);
    fsm__rec_set_i(&r, "Memory", a.spec.mem);
    fsm__rec_set_i(&r, "GPU", a.spec.gpu);
    n = fsm__res_usage(&r, types, delta, buf);
    /* the boot disk: a disk of the tenant's quotas, in a pool (bootdisk.c) */
    n = (unsigned)fsm__boot_quota(&a.spec, types, delta, buf, n);
    rc = fsm__quota_check(c, tenant, n, types, delta);
    if (rc == 0) {
        rc = fsm__pool_pick(c, a.zone, a.spec.boot_set, a.spec.boot_gb, pool);
    }
    if (rc == 0) {
        rc = fsm__vm_price(c, &a.spec, a.ct, &price);
    }
    if (rc == 0) {
        rc = fsm__bill_create(c, tenant, &r, a.ct, a.quantity, price, 1);
    }
    if (rc == 0) {
        rc = fsm__new_id(c, VM_PREFIX, id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_free(&r);
    fsm__rec_set_s(&r, "VMID", id);
    fsm__rec_set_s(&r, "_IDField", "VMID");
    fsm__rec_set_s(&r, "ResourceType", "VM");
    fsm__rec_set_s(&r, "TenantID", tenant);
    fsm__rec_set_s(&r, "Name", a.name);
    fsm__rec_set_s(&r, "ZoneID", a.zone);
    fsm__rec_set_s(&r, "HostID", host);
    fsm__rec_set_s(&r, "ImageID", a.image);
    fsm__rec_set_s(&r, "Arch", arch);
    fsm__rec_set_i(&r, "CPU", a.spec.cpu);
    fsm__rec_set_i(&r, "Memory", a.spec.mem);
    fsm__rec_set_i(&r, "GPU", a.spec.gpu);
    fsm__rec_set_s(&r, "GPUType", a.spec.gpu_type);
    fsm__rec_set_s(&r, "BootDiskSetType", a.spec.boot_set);
    fsm__rec_set_i(&r, "BootDiskSpace", a.spec.boot_gb);
    fsm__rec_set_s(&r, "AntiAffinityGroupID", a.aag);
    fsm__rec_set_s(&r, "State", "Creating");
    fsm__rec_set_s(&r, "DesiredState", "Running");
    fsm__rec_set_s(&r, "ObservedState", "");
    fsm__rec_set_i(&r, "ObservedGeneration", 0);
    fsm__rec_set_s(&r, "JobID", "");
    fsm__rec_set_i(&r, "CreateTime", now_s(c));
    fsm__vm_pw_put(&r, &pw);
    fsm__pw_seal_put(c, &r, &seal);
    rc = fsm__bill_create(c, tenant, &r, a.ct, a.quantity, price, 0);
    if (rc == 0 && ip.set) {
        rc = fsm__vm_ip_take(c, &ip, id, &r);
    }
    if (rc == 0) {
        rc = fsm__net_link(c, 'I', a.image, id); /* DeleteImage: in use */
    }
    if (rc == 0) {
        rc = fsm__usage_add(c, tenant, n, types, delta);
    }
    if (rc == 0) {
        rc = fsm__host_use_rec(c, host, &h, a.spec.cpu, a.spec.mem, a.spec.gpu,
                               1);
    }
    if (rc == 0) {
        rc = fsm__job_open(c, id, &r, "CreateVMInstance");
    }
    if (rc == 0) {
        rc = fsm__boot_create(c, id, &r, pool, &a.spec);
    }
    if (rc == 0) {
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "VMID"), id);
        yh_mp_pack_str(fsm__field(c, "HostID"), host);
    }
out:
    fsm__rec_free(&h);
    fsm__rec_free(&r);
    return rc;
}

/* ---- DescribeVMInstance ---- */

int fsm__vm_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_RES,    VM_PREFIX "-", "VMIDs", 0,
                         fsm__keep_live, NULL,          NULL};

    return fsm__describe(c, &d);
}

/* ---- Start / Stop / Restart / Delete ---- */

int fsm__vm_op_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__vm_load(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = strncmp(id, VM_PREFIX "-", sizeof VM_PREFIX) == 0
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), r)
                 : YH_ENOTFOUND;
    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "VM '%s' not found", id);
    }
    TRY(rc);
    if (strcmp(fsm__rec_s(r, "State"), "Recycled") == 0) {
        return fsm__reject(c, YH_ESTATE, "VM '%s' is in the recycle bin", id);
    }
    return 0;
}

/* The same, named by parameter VMID. */
static int vm_get(struct fsm_ctx *c, char id[FSM_ID_SIZE], struct fsm_rec *r)
{
    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__vm_load(c, id, r);
}

int fsm__vm_save(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    fsm__rec_set_i(r, "Revision", (int64_t)c->index);
    TRY(fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), r));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    yh_mp_pack_str(fsm__field(c, "State"), fsm__rec_s(r, "State"));
    return 0;
}

int fsm__vm_not_migrating(struct fsm_ctx *c,
                          const char *id,
                          const struct fsm_rec *r)
{
    if (fsm__rec_s(r, "MigrateFromHostID")[0] != '\0') {
        return fsm__reject(
            c, YH_ESTATE, "VM '%s' is migrating from '%s' to '%s'", id,
            fsm__rec_s(r, "MigrateFromHostID"), fsm__rec_s(r, "HostID"));
    }
    return 0;
}

/* Set the desired state; @shown is the transitional state. */
static int vm_set(struct fsm_ctx *c,
                  const char *desired,
                  const char *shown,
                  int restart)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = vm_get(c, id, &r);
    if (rc == 0) {
        rc = fsm__vm_not_migrating(c, id, &r);
    }
    if (rc != 0) {
        goto out;
    }
    if (strcmp(desired, "Running") == 0 && fsm__rec_i(&r, "Suspended")) {
        rc = fsm__reject(c, YH_ESTATE, "VM '%s' is suspended (%s)", id,
                         fsm__rec_s(&r, "SuspendReason"));
        goto out;
    }
    if (restart && strcmp(fsm__rec_s(&r, "DesiredState"), "Running") != 0) {
        rc = fsm__reject(c, YH_ESTATE, "VM '%s' is not running", id);
        goto out;
    }
    if (!restart && strcmp(fsm__rec_s(&r, "DesiredState"), desired) == 0) {
        /* already asked for: setting the desired state is idempotent */
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "State"), fsm__rec_s(&r, "State"));
        goto out;
    }
    fsm__rec_set_s(&r, "DesiredState", desired);
    fsm__rec_set_s(&r, "State", shown);
    rc = fsm__job_open(c, id, &r, c->type);
    if (rc == 0) {
        rc = fsm__vm_save(c, id, &r);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

int fsm__vm_start_apply(struct fsm_ctx *c)
{
    return vm_set(c, "Running", "Starting", 0);
}

int fsm__vm_stop_apply(struct fsm_ctx *c)
{
    return vm_set(c, "Stopped", "Stopping", 0);
}

int fsm__vm_restart_apply(struct fsm_ctx *c)
{
    return vm_set(c, "Running", "Restarting", 1);
}

int fsm__vm_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = vm_get(c, id, &r);
    if (rc == 0) {
        rc = fsm__vm_not_migrating(c, id, &r);
    }
    if (rc == 0) {
        /* to the recycle bin, stopped; the host keeps its place until the
         * purge */
        fsm__rec_set_s(&r, "DesiredState", "Stopped");
        rc = fsm__job_open(c, id, &r, c->type);
    }
    if (rc == 0) {
        rc = fsm__res_delete(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__boot_follow(c, &r); /* its boot disk too */
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__res_release(struct fsm_ctx *c, const struct fsm_rec *r)
{
    const char *type = fsm__rec_s(r, "ResourceType");

    if (strcmp(type, "Disk") == 0) {
        /* its snapshots go with it (tbl_storage.c) */
        TRY(fsm__disk_purge_release(c, fsm__rec_s(r, "DiskID"), r));
        return fsm__pool_use(c, fsm__rec_s(r, "PoolID"), -fsm__rec_i(r, "Size"),
                             -1);
    }
    if (strcmp(type, "EIP") == 0) {
        return fsm__eip_purge_release(c, r); /* address back to its pool */
    }
    if (fsm__gw_type(type) != NULL) {
        return fsm__gw_release(c, r); /* children, EIP, address, rows */
    }
    if (strcmp(type, "VM") != 0) {
        return 0;
    }
    TRY(fsm__net_unlink(c, 'I', fsm__rec_s(r, "ImageID"),
                        fsm__rec_s(r, "VMID")));
    TRY(fsm__boot_purge(c, r)); /* before the attachments are released */
    TRY(fsm__vm_disks_release(c, fsm__rec_s(r, "VMID")));
    TRY(fsm__vm_net_release(c, fsm__rec_s(r, "VMID")));
    TRY(fsm__vm_ip_release(c, r));
    if (fsm__rec_s(r, "MigrateFromHostID")[0] != '\0') {
        /* purged during a migration: it held room on both hosts */
        TRY(fsm__host_use(c, fsm__rec_s(r, "MigrateFromHostID"),
                          -fsm__rec_i(r, "CPU"), -fsm__rec_i(r, "Memory"),
                          -fsm__rec_i(r, "GPU"), -1));
    }
    return fsm__host_use(c, fsm__rec_s(r, "HostID"), -fsm__rec_i(r, "CPU"),
                         -fsm__rec_i(r, "Memory"), -fsm__rec_i(r, "GPU"), -1);
}

/* ---- ResizeVMConfig ---- */

int fsm__vm_resize_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    int64_t v;
    int has_cpu, has_mem;

    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(fsm__arg_int(c, "CPU", 0, 1, 256, &v, &has_cpu));
    TRY(fsm__arg_int(c, "Memory", 0, 512, 1 << 20, &v, &has_mem));
    if (!has_cpu && !has_mem) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter 'CPU' or 'Memory'");
    }
    return 0;
}

int fsm__vm_resize_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], tenant[FSM_ID_SIZE], host[FSM_ID_SIZE];
    const char *types[2] = {"CPU", "Memory"};
    int64_t cpu, mem, delta[2], overcommit = 100, price;
    struct fsm_vm_spec spec;
    struct fsm_rec r, h, z;
    int has_cpu, has_mem;
    int rc;

    TRY(fsm__vm_resize_check(c));
    fsm__rec_init(&r);
    fsm__rec_init(&h);
    fsm__rec_init(&z);
    rc = vm_get(c, id, &r);
    if (rc != 0) {
        goto out;
    }
    fsm__arg_int(c, "CPU", 0, 1, 256, &cpu, &has_cpu);
    fsm__arg_int(c, "Memory", 0, 512, 1 << 20, &mem, &has_mem);
    if (!has_cpu) {
        cpu = fsm__rec_i(&r, "CPU");
    }
    if (!has_mem) {
        mem = fsm__rec_i(&r, "Memory");
    }
    rc = fsm__vm_not_migrating(c, id, &r);
    if (rc != 0) {
        goto out;
    }
    if (strcmp(fsm__rec_s(&r, "State"), "Stopped") != 0) {
        rc = fsm__reject(c, YH_ESTATE, "VM '%s' must be stopped (it is %s)", id,
                         fsm__rec_s(&r, "State"));
        goto out;
    }
    snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&r, "TenantID"));
    snprintf(host, sizeof host, "%s", fsm__rec_s(&r, "HostID"));
    delta[0] = cpu - fsm__rec_i(&r, "CPU");
    delta[1] = mem - fsm__rec_i(&r, "Memory");
    /* room on its own host (a resize does not migrate) */
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, host, strlen(host), &h);
    if (rc != 0) {
        goto out;
    }
    {
        char zone[FSM_ID_SIZE];
        snprintf(zone, sizeof zone, "%s", fsm__rec_s(&h, "ZoneID"));
        if (fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, zone, strlen(zone),
                          &z) == 0) {
            overcommit = fsm__rec_i(&z, "CPUOvercommit");
        }
    }
    if (fsm__rec_i(&h, "UsedCPU") + delta[0] >
            fsm__rec_i(&h, "CPU") * overcommit / 100 ||
        fsm__rec_i(&h, "UsedMemory") + delta[1] > fsm__rec_i(&h, "Memory")) {
        rc = fsm__reject(c, YH_ECAPACITY, "insufficient capacity on host '%s'",
                         host);
        goto out;
    }
    rc = fsm__quota_check(c, tenant, 2, types, delta);
    if (rc != 0) {
        goto out;
    }
    memset(&spec, 0, sizeof spec);
    spec.cpu = cpu;
    spec.mem = mem;
    spec.gpu = fsm__rec_i(&r, "GPU");
    snprintf(spec.gpu_type, sizeof spec.gpu_type, "%s",
             fsm__rec_s(&r, "GPUType"));
    snprintf(spec.boot_set, sizeof spec.boot_set, "%s",
             fsm__rec_s(&r, "BootDiskSetType"));
    spec.boot_gb = fsm__rec_i(&r, "BootDiskSpace");
    snprintf(spec.data_set, sizeof spec.data_set, "Standard");
    rc = fsm__vm_price(c, &spec, fsm__rec_s(&r, "ChargeType"), &price);
    if (rc == 0) {
        rc = fsm__bill_resize(c, tenant, &r, price, 1);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_i(&r, "CPU", cpu);
    fsm__rec_set_i(&r, "Memory", mem);
    fsm__rec_set_s(&r, "State", "Resizing");
    rc = fsm__bill_resize(c, tenant, &r, price, 0);
    if (rc == 0) {
        rc = fsm__usage_add(c, tenant, 2, types, delta);
    }
    if (rc == 0) {
        rc = fsm__host_use(c, host, delta[0], delta[1], 0, 0);
    }
    if (rc == 0) {
        rc = fsm__job_open(c, id, &r, c->type);
    }
    if (rc == 0) {
        rc = fsm__vm_save(c, id, &r);
    }
out:
    fsm__rec_free(&r);
    fsm__rec_free(&h);
    fsm__rec_free(&z);
    return rc;
}

/* ---- ReportState (executor) ---- */

/* What ReportState reports on. */
enum report_kind {
    REPORT_VM,   /* a machine's power state */
    REPORT_DISK, /* a disk's attachment */
    REPORT_GW,   /* a gateway's data plane (gwhost.c) */
};

/* Observed states of each kind. */
static int observed_ok(const char *s, enum report_kind kind)
{
    if (strcmp(s, "Error") == 0) {
        return 1;
    }
    switch (kind) {
    case REPORT_DISK:
        return strcmp(s, "Attached") == 0 || strcmp(s, "Detached") == 0;
    case REPORT_GW:
        return strcmp(s, "Available") == 0 || strcmp(s, "Stopped") == 0;
    case REPORT_VM:
        break;
    }
    return strcmp(s, "Running") == 0 || strcmp(s, "Stopped") == 0;
}

int fsm__report_state_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], state[16];
    int64_t gen;

    TRY(fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(fsm__arg_str(c, "State", 1, sizeof state - 1, state, NULL));
    if (!observed_ok(state, REPORT_VM) && !observed_ok(state, REPORT_DISK) &&
        !observed_ok(state, REPORT_GW)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'State': Running, Stopped, "
                           "Attached, Detached, Available or Error");
    }
    return fsm__arg_int(c, "Generation", 1, 0, INT64_MAX, &gen, NULL);
}

/* Complete the machine's last job if it is the one of generation @gen. */
int fsm__job_finish(struct fsm_ctx *c,
                    const struct fsm_rec *r,
                    int64_t gen,
                    int ok)
{
    char job[FSM_ID_SIZE];
    struct fsm_rec j;
    int rc;

    snprintf(job, sizeof job, "%s", fsm__rec_s(r, "JobID"));
    if (job[0] == '\0') {
        return 0;
    }
    fsm__rec_init(&j);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_JOBS, job, strlen(job), &j);
    if (rc == 0 && strcmp(fsm__rec_s(&j, "State"), "Running") == 0 &&
        fsm__rec_i(&j, "Generation") == gen) {
        fsm__rec_set_s(&j, "State", ok ? "Success" : "Failed");
        fsm__rec_set_i(&j, "FinishTime", now_s(c));
        rc = fsm__rec_save(c, FSM_TBL_JOBS, job, strlen(job), &j);
    } else if (rc == YH_ENOTFOUND) {
        rc = 0;
    }
    fsm__rec_free(&j);
    return rc;
}

int fsm__job_fail(struct fsm_ctx *c, const struct fsm_rec *r, const char *why)
{
    char job[FSM_ID_SIZE];
    struct fsm_rec j;
    int rc;

    snprintf(job, sizeof job, "%s", fsm__rec_s(r, "JobID"));
    if (job[0] == '\0') {
        return 0;
    }
    fsm__rec_init(&j);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_JOBS, job, strlen(job), &j);
    if (rc == 0 && strcmp(fsm__rec_s(&j, "State"), "Running") == 0) {
        fsm__rec_set_s(&j, "State", "Failed");
        fsm__rec_set_i(&j, "FinishTime", now_s(c));
        fsm__rec_set_s(&j, "Message", why);
        rc = fsm__rec_save(c, FSM_TBL_JOBS, job, strlen(job), &j);
    } else if (rc == YH_ENOTFOUND) {
        rc = 0;
    }
    fsm__rec_free(&j);
    return rc;
}

int fsm__report_state_apply(struct fsm_ctx *c)
{
    static const char *const kinds[][2] = {
        {"Running, Stopped or Error", "machine"},
        {"Attached, Detached or Error", "disk"},
        {"Available, Stopped or Error", "gateway"},
    };
    char id[FSM_ID_SIZE], state[16], host[FSM_ID_SIZE];
    enum report_kind kind = REPORT_VM;
    int64_t gen;
    struct fsm_rec r;
    int disk = 0;
    int rc;

    TRY(fsm__report_state_check(c));
    fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__arg_str(c, "State", 1, sizeof state - 1, state, NULL);
    fsm__arg_int(c, "Generation", 1, 0, INT64_MAX, &gen, NULL);
    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &r);
    if (rc == 0) {
        const char *type = fsm__rec_s(&r, "ResourceType");
        disk = strcmp(type, "Disk") == 0;
        if (disk) {
            kind = REPORT_DISK;
        } else if (fsm__gw_type(type) != NULL &&
                   fsm__rec_has(&r, "DesiredState")) {
            /* a gateway placed on a host: reported like a machine (no
             * migration, no job) */
            kind = REPORT_GW;
        } else if (strcmp(type, "VM") != 0) {
            rc = YH_ENOTFOUND;
        }
    }
    if (rc == YH_ENOTFOUND) {
        rc = fsm__reject(c, YH_ENOTFOUND, "resource '%s' not found", id);
    }
    if (rc != 0) {
        goto out;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    if (!observed_ok(state, kind)) {
        rc = fsm__reject(c, YH_EINVAL, "invalid parameter 'State': %s for a %s",
                         kinds[kind][0], kinds[kind][1]);
        goto out;
    }
    if (disk && fsm__rec_i(&r, "Boot") && strcmp(state, "Detached") == 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'State': a boot disk is never "
                         "detached (Attached or Error)");
        goto out;
    }
    /* a disk is reported by the host of the machine it is (being)
     * attached to */
    if (disk) {
        rc = fsm__disk_host(c, &r, host);
        if (rc != 0) {
            goto out;
        }
    } else {
        snprintf(host, sizeof host, "%s", fsm__rec_s(&r, "HostID"));
    }
    if (disk ? strcmp(host, c->actor->user_id) != 0
             : !fsm__vm_reporter_ok(&r, c->actor->user_id)) {
        rc = fsm__reject(c, YH_EPERM,
                         "permission denied: '%s' is not placed on '%s'", id,
                         c->actor->user_id);
        goto out;
    }
    if (gen < fsm__rec_i(&r, "ObservedGeneration")) {
        rc = fsm__reject(c, YH_ECONFLICT,
                         "stale report: generation %" PRId64
                         " is older than the observed %" PRId64,
                         gen, fsm__rec_i(&r, "ObservedGeneration"));
        goto out;
    }
    if (gen > fsm__rec_i(&r, "Generation")) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'Generation': %" PRId64
                         " was never issued (current %" PRId64 ")",
                         gen, fsm__rec_i(&r, "Generation"));
        goto out;
    }
    if (!disk) {
        /* a migration the report decides, the Unknown marks it ends */
        rc = fsm__vm_report_effects(c, &r, state, gen);
        if (rc != 0) {
            goto out;
        }
    }
    fsm__rec_set_s(&r, disk ? "ObservedAttach" : "ObservedState", state);
    fsm__rec_set_i(&r, "ObservedGeneration", gen);
    if (disk && gen == fsm__rec_i(&r, "Generation")) {
        int ok;
        fsm__disk_settle(&r, state, &ok);
        rc = fsm__job_finish(c, &r, gen, ok);
    } else if (gen == fsm__rec_i(&r, "Generation")) {
        /* the executor caught up with the last change: the shown state
         * settles (unless recycled) and that change's job completes */
        int ok = strcmp(state, fsm__rec_s(&r, "DesiredState")) == 0;
        if (strcmp(fsm__rec_s(&r, "State"), "Recycled") != 0) {
            fsm__rec_set_s(&r, "State", state);
        }
        rc = fsm__job_finish(c, &r, gen, ok);
    }
    if (rc == 0) {
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "State"), fsm__rec_s(&r, "State"));
    }
out:
    fsm__rec_free(&r);
    return rc;
}
