/* fsmtest: the fixture the fsm unit tests share.
 *
 * A fixture is one store in a temp directory driven the way the cluster
 * layer drives it: writes are prepared (fsm_cmd_prepare) and applied at the
 * next log index, reads are queried; the result of the last call is kept
 * decoded in x->res. Every helper fails the running cmocka test on an
 * unexpected local error, so tests only assert on RetCodes and fields.
 *
 * A fixture may also record every entry it applies (x->log), so that a
 * second store can be fed the same log and compared byte for byte
 * (determinism tests). */
#ifndef YH_TESTS_FSMTEST_H
#define YH_TESTS_FSMTEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "fsm/base/buf.h"
#include "fsm/fsm.h"

#define FSMTEST_SEC 1000000000ull
#define FSMTEST_T0 (1700000000ull * FSMTEST_SEC)

/* Applied entries, in order. */
struct fsmtest_entry
{
    uint64_t index; /* log index */
    uint8_t *cmd;   /* command bytes (owned) */
    size_t len;     /* size */
};
struct fsmtest_log
{
    struct fsmtest_entry *e; /* entries */
    unsigned n;              /* count */
    unsigned cap;            /* capacity (fixed: a test fails beyond) */
};

struct fsmtest
{
    char dir[64];            /* temp dir holding the store */
    struct fsm *f;           /* store under test */
    struct fsm_config cfg;   /* its config */
    uint64_t index;          /* last log index fed */
    uint64_t time;           /* leader clock (ns) */
    struct fsm_actor admin;  /* bootstrap administrator */
    msgpack_unpacked res;    /* last result */
    struct yh_buf env;       /* last envelope */
    struct yh_buf out;       /* last result bytes */
    struct yh_buf event;     /* last oplog event */
    struct yh_buf resbuf;    /* bytes x->res points into */
    int proposed;            /* last call produced an entry */
    uint64_t tag;            /* tag returned by the last apply */
    struct fsmtest_log *log; /* if set, every applied entry is added */
};

/* ---- lifecycle ---- */

/* New empty store (not bootstrapped) at time FSMTEST_T0. */
struct fsmtest *fsmtest_new(void);
/* (Re)open x->f on x->dir. */
void fsmtest_open(struct fsmtest *x);
void fsmtest_free(struct fsmtest *x);
void fsmtest_rm_rf(const char *dir);
/* cmocka setup: a new store, bootstrapped (no nodes). */
int fsmtest_setup(void **state);
/* cmocka setup: a new empty store. */
int fsmtest_setup_bare(void **state);
int fsmtest_teardown(void **state);

/* ---- results ---- */

/* Decode @b into x->res (copied into x->resbuf). */
void fsmtest_set_result(struct fsmtest *x, const struct yh_buf *b);
/* Integer field of the result (the test fails if absent). */
int64_t fsmtest_res_int(struct fsmtest *x, const char *key);
/* String field of the result, "" if absent (4 rotating buffers). */
const char *fsmtest_res_str(struct fsmtest *x, const char *key);
/* Infos[i] of the last result. */
const msgpack_object *fsmtest_info(struct fsmtest *x, unsigned i);
unsigned fsmtest_n_infos(struct fsmtest *x);
const char *fsmtest_info_str(struct fsmtest *x, unsigned i, const char *key);
/* Integer or boolean field of Infos[i]. */
int64_t fsmtest_info_int(struct fsmtest *x, unsigned i, const char *key);

/* ---- driving the store ---- */

/* Apply raw command bytes at the next index; returns the RetCode. */
int fsmtest_apply_raw(struct fsmtest *x, const void *cmd, size_t len);
/* Request map from "Key", "value" string pairs ending with NULL. */
void fsmtest_req_vbuild(struct yh_buf *b, const char *k, va_list ap);
/* Prepare + apply a write, or query a read, one second after the last
 * call. Returns the RetCode. */
int fsmtest_call_obj(struct fsmtest *x,
                     const char *action,
                     const struct fsm_actor *actor,
                     const msgpack_object *req);
/* fsmtest_call(x, action, actor, "Key", "value", ..., NULL) */
int fsmtest_call(struct fsmtest *x,
                 const char *action,
                 const struct fsm_actor *actor,
                 const char *k,
                 ...);

/* Tick the leader at x->time and apply whatever it proposes. */
struct fsmtest_tick
{
    struct fsmtest *x; /* fixture */
    unsigned n;        /* proposals */
    int codes[64];     /* their RetCodes */
};
unsigned fsmtest_tick(struct fsmtest *x, struct fsmtest_tick *t);

/* ---- identities ---- */

/* Bootstrap the administrator "adminpub"/"adminpriv" with @nodes; sets
 * x->admin. */
void fsmtest_bootstrap_nodes(struct fsmtest *x,
                             const struct fsm_node *nodes,
                             unsigned n_nodes);
void fsmtest_bootstrap(struct fsmtest *x);
/* Actor of a new API key of @uid, created by @by. */
void fsmtest_key_for(struct fsmtest *x,
                     const struct fsm_actor *by,
                     const char *uid,
                     struct fsm_actor *a);
/* A new tenant (CreateUser by the admin) and its actor; its UserID in
 * @uid_out (may be NULL). */
void fsmtest_make_tenant(struct fsmtest *x,
                         const char *email,
                         struct fsm_actor *a,
                         char *uid_out);

/* ---- infrastructure ---- */

/* A zone (its ID in @zone) with a large Ceph storage pool for each of the
 * set types "Standard", "SSD" and "Free", for tests that make disks. */
void fsmtest_storage(struct fsmtest *x, char *zone);

/* A large Ceph storage pool of set type @set in zone @zone (machines'
 * boot disks are placed in a pool of their BootDiskSetType). */
void fsmtest_pool(struct fsmtest *x, const char *zone, const char *set);

/* ---- comparing stores ---- */

/* fsm_dump() as a string (free it). */
char *fsmtest_dump_str(struct fsm *f);
/* xorshift64 */
uint64_t fsmtest_rnd(uint64_t *s);
struct fsmtest_log *fsmtest_log_new(unsigned cap);
void fsmtest_log_add(struct fsmtest_log *l,
                     uint64_t index,
                     const void *cmd,
                     size_t len);
void fsmtest_log_free(struct fsmtest_log *l);
/* Apply @l to @f (flushing every @flush_every entries, 0 = never); each
 * apply must be skipped iff @want_skipped. */
void fsmtest_replay(struct fsm *f,
                    const struct fsmtest_log *l,
                    unsigned flush_every,
                    int want_skipped);
/* The leader tick callback of a fixture (arg = the fixture): applies (and
 * so records, with x->log set) each proposal. */
int fsmtest_tick_apply_cb(void *arg, const uint8_t *env, size_t len);
/* A snapshot of @f restores into a new store that dumps @dump. */
void fsmtest_assert_restores(struct fsm *f, const char *dump);
/* Same digest and same dump; returns the dump (free it). */
char *fsmtest_assert_same(struct fsm *a, struct fsm *b);

/* Apply to @y the bootstrap entry every fixture starts from (index 1), so
 * that a second store can replay another's commands. */
void fsmtest_bootstrap_copy(struct fsmtest *y);
/* A self-signed EC P-256 certificate for @cn and its key, PEM (free both). */
void fsmtest_make_cert(const char *cn, char **cert, char **key);

#endif
