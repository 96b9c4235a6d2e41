/* fsm internals shared by the files of fsm/ (never included from outside).
 *
 *   store.c     LMDB environment, tables, batch transaction, MDB code
 *               translation, small get/put helpers, meta
 *   cmd.c       envelope codec (prepare on the leader, decode at apply)
 *   action.c    the action table and the result/parameter helpers
 *   fsm.c       open/close, apply, flush, query, key lookup, nodes, dump
 *   tbl_user.c  identity: users, emails, API keys, bootstrap, nodes
 *   tbl_oplog.c operation log: records, walk, DescribeOperationLog
 *   mpcheck.c   bounds pre-scan of msgpack bytes before msgpack-c
 *   snapshot.c  snapshot encode/restore
 *   rec.c       generic records, generic Describe, IDs, internal commands
 *   tbl_iam.c   authorization (the one check every action passes), roles
 *   tbl_quota.c quotas, usage, prices
 *   tbl_bill.c  balance, recharge, orders, transactions, billing ticks,
 *               recycle bin
 *   tbl_disk.c  disks (the first billable resource), per-type usage
 *   tbl_infra.c zones, hosts (credentials, leases), images, anti-affinity
 *   tbl_vm.c    VM instances, scheduler, jobs, executor reports
 *   tbl_storage.c storage pools, disk attachments, snapshots, clones,
 *               custom images
 *   bootdisk.c  machines' boot disks as disk resources
 *   tick.c      fsm_leader_tick: periodic commands
 *   ipam.c      CIDR math, address allocation (free ranges in "net")
 *   tbl_net.c   VPCs, subnets, NICs
 *   sg.c        security groups, rules, bindings
 *   eip.c       EIP pools, elastic IPs
 *   auto.c      automation shared parts: acting for an owner, stored
 *               parameter maps, bounded event lists, leader tick
 *   tbl_timer.c timers (CreateTimer...), fired by the leader
 *   tbl_alarm.c metrics (bounded rings), alarm templates and bindings
 *   tbl_scale.c scaling groups and policies
 *   gw.c nic.c natgw.c lb.c cert.c vpn.c  gateways and NIC attachments
 *               (their block at the end)
 */
#ifndef YH_FSM_INT_H
#define YH_FSM_INT_H

#include <lmdb.h>
#include <openssl/evp.h>

#include "fsm/base/mp.h"
#include "fsm/fsm.h"

/* Tables: one named LMDB database each. The order is the snapshot and dump
 * order; append new tables at the end (docs/disk-format.md). */
enum fsm_tbl {
    FSM_TBL_META,       /* str key -> raw value (applied, digest, counters) */
    FSM_TBL_USERS,      /* UserID -> user record (msgpack map) */
    FSM_TBL_EMAILS,     /* lower-cased UserEmail -> UserID */
    FSM_TBL_KEYS,       /* PublicKey -> key record (msgpack map) */
    FSM_TBL_USERKEYS,   /* UserID "\0" PublicKey -> "" */
    FSM_TBL_TOKENS,     /* UserID "\0" RequestToken -> token record */
    FSM_TBL_TOKEN_EXP,  /* be64(expire ns) UserID "\0" token -> "" */
    FSM_TBL_OPLOG,      /* be64(index) -> oplog record (msgpack map) */
    FSM_TBL_NODES,      /* be64(node id) -> node record (msgpack map) */
    FSM_TBL_ROLES,      /* RoleID -> role record */
    FSM_TBL_ROLEBIND,   /* SubAccountID "\0" RoleID -> "" */
    FSM_TBL_QUOTAS,     /* scope ("*" or UserID) -> {type: Limit} */
    FSM_TBL_USAGE,      /* TenantID -> {type: Used} (tbl_quota.c) */
    FSM_TBL_PRICES,     /* spec "\0" ChargeType -> {Price} */
    FSM_TBL_ACCOUNTS,   /* TenantID -> account record (balance) */
    FSM_TBL_SERIALS,    /* recharge SerialNo -> {TxnID} */
    FSM_TBL_ORDERS,     /* OrderID -> order record */
    FSM_TBL_TXNS,       /* TxnID -> transaction record */
    FSM_TBL_RES,        /* tenant resources by ID (prefix = type) */
    FSM_TBL_INFRA,      /* zones, hosts, images, anti-affinity groups */
    FSM_TBL_JOBS,       /* JobID -> job record */
    FSM_TBL_NET,        /* network rows: address allocations, free ranges,
                           security group rules and bindings (ipam.c) */
    FSM_TBL_AUTO,       /* automation: timers, metric rings, alarm
                           templates and bindings, scaling groups (auto.c) */
    FSM_TBL_TENANT_RES, /* TenantID "\0" resource ID -> "": which
                           resources of 'resources' a tenant owns (kept by
                           fsm__rec_save/fsm__cdel; Describe of a tenant
                           walks it instead of every resource) */
    FSM_TBL_RES_LIST,   /* "L" resource ID -> "": the record is listed (its
                           State is not "Recycled"); "C" block -> be64: how
                           many listed records the block holds; "A" group
                           NUL VMID: machines by anti-affinity group; "D"
                           VMID NUL DiskID: disks by machine; "H" HostID
                           NUL VMID: machines by host; "S" DiskID NUL
                           SnapshotID: snapshots by disk (kept by
                           fsm__rec_save/fsm__cdel; rec.c) */
    FSM_N_TBL,
};

/* How fsm_dump and the snapshot validator read a table's keys/values. */
enum fsm_tbl_fmt {
    FSM_FMT_STR,     /* text */
    FSM_FMT_U64,     /* 8-byte big-endian integer (keys) */
    FSM_FMT_U64_STR, /* be64 then text (keys) */
    FSM_FMT_MP,      /* one msgpack object (values) */
    FSM_FMT_RAW,     /* opaque bytes, dumped as hex (values) */
};

struct fsm_tbl_info
{
    const char *name;         /* LMDB database name */
    enum fsm_tbl_fmt key_fmt; /* key encoding */
    enum fsm_tbl_fmt val_fmt; /* value encoding */
};
extern const struct fsm_tbl_info fsm__tbls[FSM_N_TBL];

#define FSM_FORMAT_VERSION 13

/* Leader: the billing scan runs at most this often (fsm_leader_tick). */
#define FSM_BILL_TICK_NS 500000000ull
#define FSM_DEFAULT_MAP_SIZE ((size_t)8 << 30)
#define FSM_DEFAULT_TOKEN_TTL_NS (24ull * 3600 * 1000000000ull)
#define FSM_PBKDF2_ITERATIONS 10000
#define FSM_NODES_CACHE 16 /* fsm_nodes rows kept decoded */
#define FSM_MAX_DEPTH 20   /* envelope nesting: request depth 16 + ours */

struct fsm
{
    MDB_env *env;            /* the one environment */
    MDB_dbi dbis[FSM_N_TBL]; /* handles, valid for the env's life */
    MDB_txn *wtxn;           /* open batch, NULL if none */
    uint8_t content[32];     /* additive hash of every record but meta's,
                                open batch included (corruption check) */
    MDB_txn *rtxn;           /* reusable read transaction (reset when idle) */
    int rtxn_busy;           /* rtxn is in use: nested readers get their own */
    uint64_t applied;        /* last applied index (incl. batch) */
    uint8_t digest[FSM_DIGEST_SIZE]; /* state digest at @applied */
    uint64_t token_ttl_ns;           /* stamped into envelopes by prepare */
    uint64_t oplog_keep;             /* oplog records kept (fsm_config) */
    uint64_t bill_tick_ns;           /* leader: time of the last billing scan */
    char bill_scan_next[FSM_ID_SIZE]; /* leader tick: resume the billing
                                         scan at this resource ("" = from
                                         the first); not state */
    void *map_addr;                   /* LMDB's map of the state file */
    size_t map_len;                   /* (see fsm__map_release) */
    int errored;                      /* a rollback lost applied entries */
    char errmsg[YH_ERRMSG_SIZE];      /* last local failure */
    /* leader: the scheduler's decoded hosts (tbl_vm.c); not state, never
     * read by apply; NULL if it could not be allocated */
    struct fsm_place_cache *place_cache;
    /* Test hook, statistics only (not state, never read by apply): how
     * many machine records the Unknown marking of hosts (_HostExpire and
     * the heartbeat after it, tbl_vmops.c) has read since open. Unit
     * tests read it to check the cost follows the host's machines. */
    uint64_t stat_host_vm_reads;
    /* Test hook, statistics only (not state, never read by apply): how
     * many snapshots the per-disk lookups (CreateSnapshot's limit,
     * DeleteDisk's check, a disk's purge; tbl_storage.c) have visited
     * since open. */
    uint64_t stat_disk_snap_reads;
    /* One cursor per table in the open batch, opened on first use
     * (fsm__wcursor) and freed by LMDB when the batch ends: a put or
     * delete positions it with one B-tree search instead of a get and a
     * put (or del) searching twice. */
    MDB_cursor *wcur[FSM_N_TBL];
    /* fsm_nodes' decoded rows (not state): valid while nodes_cache_gen
     * equals nodes_gen, which every write to 'nodes', every commit or
     * rollback of a batch and every restore (fsm__meta_write) bumps */
    uint64_t nodes_gen;
    uint64_t nodes_cache_gen;
    int nodes_cached;
    unsigned nodes_cache_n;
    struct fsm_node nodes_cache[FSM_NODES_CACHE];
};

/* ---- store.c ---- */

/* The only place MDB_* codes are seen: logs the native text with context
 * and returns YH_EIO / YH_ENOMEM / YH_ECORRUPT (YH_ENOTFOUND for
 * MDB_NOTFOUND, which callers usually test first). */
int fsm__mdb_err(struct fsm *f, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int fsm__store_open(struct fsm *f,
                    const char *dir,
                    const struct fsm_config *cfg,
                    char *errmsg);
void fsm__store_close(struct fsm *f);

/* The batch transaction, opened on first use. */
int fsm__batch(struct fsm *f, MDB_txn **txn);
/* Abort the batch and reload applied index and digest from committed
 * meta. If the batch held entries applied before the failing one, the
 * caller (libraft) already counts them as applied and will not feed them
 * again: the fsm becomes errored (sticky) until a restart or a restore
 * replays them. */
void fsm__batch_abort(struct fsm *f);

/* A transaction to read from: the batch when one is open (it holds the
 * newest state), else a new read-only one. Release with fsm__rtxn_end. */
int fsm__rtxn_begin(struct fsm *f, MDB_txn **txn);
void fsm__rtxn_end(struct fsm *f, MDB_txn *txn);

/* 0, YH_ENOTFOUND, or a local error. @out borrows from the txn. */
int fsm__get(struct fsm *f,
             MDB_txn *txn,
             enum fsm_tbl t,
             const void *key,
             size_t klen,
             MDB_val *out);
int fsm__put(struct fsm *f,
             MDB_txn *txn,
             enum fsm_tbl t,
             const void *key,
             size_t klen,
             const void *val,
             size_t vlen);
/* 0, YH_ENOTFOUND, or a local error. */
int fsm__del(struct fsm *f,
             MDB_txn *txn,
             enum fsm_tbl t,
             const void *key,
             size_t klen);

/* Applied index and digest as committed in meta (0 / zeros if none). */
/* Return the first failure: `TRY(fsm__arg_str(...));`. Used in every
 * check/apply function; rejections are results set on the context, so a
 * non-zero code just unwinds. */
#define TRY(expr)         \
    do {                  \
        int rc_ = (expr); \
        if (rc_ != 0) {   \
            return rc_;   \
        }                 \
    } while (0)

/* Content hash: the sum (mod 2^256) of one XXH3-128 hash per record
 * (docs/disk-format.md, meta `content`) over every record but meta's own
 * bookkeeping (applied, digest, content, format; fsm__content_covers):
 * meta's counters and settings are covered. fsm__put/fsm__del/fsm__cursor_del
 * keep f->content current; meta stores it with the applied index; opening
 * the state and encoding a snapshot recompute it from the records and
 * refuse state that does not match (a flipped bit on disk). Additive, so
 * it is updated in O(1) per write and independent of write order. */
void fsm__content_mix(uint8_t acc[32],
                      int tbl,
                      const void *key,
                      size_t klen,
                      const void *val,
                      size_t vlen,
                      int add);
/* Release the map's pages from the resident set after a full scan. */
void fsm__map_release(struct fsm *f);
/* 1 if this process has more than @budget bytes of file pages mapped
 * (/proc/self/statm); any thread. */
int fsm__map_over(size_t budget);
int fsm__content_scan(struct fsm *f, MDB_txn *txn, uint8_t out[32]);
/* 1 if record @key of table @t counts in the content hash. */
int fsm__content_covers(int t, const void *key, size_t klen);
int fsm__content_read(struct fsm *f, MDB_txn *txn, uint8_t out[32]);
/* snapshot.c: the size a compressed snapshot's read window starts at
 * (4 MiB). A seam for tests only: they shrink it so that records straddle
 * refills and the window has to grow. */
extern size_t fsm__snap_window;
/* Delete the record under @cur (in table @t), keeping the content hash. */
int fsm__cursor_del(struct fsm *f, enum fsm_tbl t, MDB_cursor *cur);
/* A cursor on @t in @txn: the batch's cached one when @txn is the open
 * batch (*owned = 0: never close it), else a new one (*owned = 1: the
 * caller closes it). Returns 0 or a local error. */
int fsm__wcursor(struct fsm *f,
                 MDB_txn *txn,
                 enum fsm_tbl t,
                 MDB_cursor **cur,
                 int *owned);
/* The open batch ended (committed or aborted): LMDB freed its cursors. */
void fsm__wcursors_forget(struct fsm *f);
int fsm__meta_read(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t *applied,
                   uint8_t digest[FSM_DIGEST_SIZE]);
int fsm__meta_write(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t applied,
                    const uint8_t digest[FSM_DIGEST_SIZE]);
/* Increment counter @name in meta and return its new value. */
int fsm__counter_next(struct fsm *f,
                      MDB_txn *txn,
                      const char *name,
                      uint64_t *value);

void fsm__be64_put(uint8_t out[8], uint64_t v);
uint64_t fsm__be64_get(const uint8_t in[8]);

/* ---- mpcheck.c ---- */

/* 0 if @p[0..len) is exactly one msgpack object whose every declared
 * length/count fits the bytes that follow, nesting <= @max_depth and no
 * 0xc1 byte; YH_EPROTO otherwise. Makes msgpack-c safe to call. */
int fsm__mp_check(const void *p, size_t len, unsigned max_depth);
/* Check then unpack into @u (msgpack_unpacked_init'ed by the caller).
 * Errors: YH_EPROTO. */
int fsm__mp_decode(const void *p, size_t len, msgpack_unpacked *u);
/* A raft log entry: one object followed by at most 7 zero bytes (libraft
 * 0.15 needs entry lengths that are multiples of 8; the cluster pads).
 * *obj_len gets the object's own length. Errors: YH_EPROTO. */
int fsm__mp_decode_entry(const void *p,
                         size_t len,
                         msgpack_unpacked *u,
                         size_t *obj_len);

/* ---- packing into a yh_buf with allocation failure tracking ---- */
struct fsm_out
{
    msgpack_packer pk;  /* packs into @buf */
    struct yh_buf *buf; /* borrowed */
    int oom;            /* an append failed */
};
void fsm__out_init(struct fsm_out *o, struct yh_buf *buf);

/* ---- cmd.c: decoded envelope ---- */
struct fsm_env
{
    char type[64];                     /* action name */
    struct fsm_actor actor;            /* who */
    uint64_t time_ns;                  /* leader time */
    char token[65];                    /* RequestToken, "" if none */
    uint8_t bodyhash[FSM_DIGEST_SIZE]; /* with a token only */
    uint64_t ttl_ns;                   /* token retention */
    char src[64];                      /* client address */
    uint64_t tag;                      /* proposer's tag */
    const msgpack_object *args;        /* a map (may be empty) */
    const msgpack_object *stamp;       /* a map or NULL */
};

/* Decode and validate an envelope. On YH_EPROTO @why says what is wrong
 * and env->type holds the type if it could be read. */
int fsm__env_decode(const msgpack_object *o,
                    struct fsm_env *env,
                    char *why,
                    size_t why_size);

/* ---- action.c: the action table and helpers ---- */

/* Context of one action run: at apply (index > 0, txn = batch), at
 * prepare (index 0, stamp_out set) or at query (index 0). */
struct fsm_ctx
{
    struct fsm *f;
    MDB_txn *txn;                   /* batch or read txn */
    uint64_t index;                 /* log index, 0 outside apply */
    uint64_t time_ns;               /* envelope (or leader) time */
    const struct fsm_actor *actor;  /* who acts */
    const char *type;               /* action name */
    const msgpack_object *args;     /* parameters (a map) */
    const msgpack_object *stamp;    /* apply: leader stamp (map or NULL) */
    int wrote;                      /* state was changed (apply) */
    int code;                       /* RetCode of the result */
    char msg[YH_ERRMSG_SIZE];       /* Message of the result */
    char resource_id[FSM_KEY_SIZE]; /* oplog ResourceID */
    /* A purged machine's hosts (oplog "Gone"): its record is deleted, so
     * WatchCommands cannot derive them from state any more. */
    char gone_host[FSM_ID_SIZE];
    char gone_host2[FSM_ID_SIZE];
    struct yh_buf fields_buf; /* result fields, packed k/v pairs */
    struct fsm_out fields;    /* packer over fields_buf */
    uint32_t n_fields;        /* pairs in fields_buf */
    /* prepare only */
    struct yh_buf stamp_buf;     /* stamp k/v pairs */
    struct fsm_out stamp_out;    /* packer over stamp_buf */
    uint32_t n_stamp;            /* pairs in stamp_buf */
    struct fsm_actor prep_actor; /* actor to record (may be changed) */
    /* apply only: other resources whose agents' spec this change alters
     * (machines whose network changed, gw.c fsm__concern), packed msgpack
     * strings; the oplog record lists them as "Concerns" */
    struct yh_buf concerns_buf; /* packed IDs */
    struct fsm_out concerns;    /* packer over concerns_buf */
    uint32_t n_concerns;        /* IDs in concerns_buf */
    /* apply only: records deleted with the one this change purges (a
     * disk's snapshots, a machine's boot disk), packed msgpack strings;
     * the oplog record lists them as "Purged" and the hosts in "Gone" get
     * a tombstone for each (fsm__purged_add) */
    struct yh_buf purged_buf; /* packed IDs */
    struct fsm_out purged;    /* packer over purged_buf */
    uint32_t n_purged;        /* IDs in purged_buf */
};

void fsm__ctx_init(struct fsm_ctx *c,
                   struct fsm *f,
                   MDB_txn *txn,
                   const char *type,
                   const struct fsm_actor *actor,
                   const msgpack_object *args);
void fsm__ctx_release(struct fsm_ctx *c);

/* Record a business rejection; returns @code so actions can
 * `return fsm__reject(...)`. */
int fsm__reject(struct fsm_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Start a result field: packs the key and returns the packer for its
 * value. */
msgpack_packer *fsm__field(struct fsm_ctx *c, const char *key);
/* The same for the stamp (prepare only). */
msgpack_packer *fsm__stamp_field(struct fsm_ctx *c, const char *key);

/* Pack the result map {RetCode, Action, Message, fields...} of @c into
 * @out (fields only when RetCode is 0). */
int fsm__result_pack(const struct fsm_ctx *c, struct yh_buf *out);
/* A bare error result map. */
int fsm__result_error(const char *type,
                      int code,
                      const char *msg,
                      struct yh_buf *out);

/* Parameter readers: 0, or a rejection recorded in @c (YH_EMISSING /
 * YH_EINVAL naming the parameter) returned as the code.
 * fsm__arg_str: string of at most @max bytes without NUL or control
 * characters; @out has room for max+1; *present (may be NULL) tells whether
 * it was given when @required is 0. */
int fsm__arg_str(struct fsm_ctx *c,
                 const char *key,
                 int required,
                 size_t max,
                 char *out,
                 int *present);
int fsm__arg_int(struct fsm_ctx *c,
                 const char *key,
                 int required,
                 int64_t min,
                 int64_t max,
                 int64_t *out,
                 int *present);
/* Optional parameters with a default: @def when absent. */
int fsm__arg_int_or(struct fsm_ctx *c,
                    const char *key,
                    int64_t min,
                    int64_t max,
                    int64_t def,
                    int64_t *out);
int fsm__arg_str_or(struct fsm_ctx *c,
                    const char *key,
                    size_t max,
                    const char *def,
                    char *out);
/* A list parameter given as an array under @key or as keys "@key.N".
 * At most @max entries of at most FSM_ID_SIZE-1 bytes each. */
int fsm__arg_list(struct fsm_ctx *c,
                  const char *key,
                  unsigned max,
                  char (*out)[FSM_ID_SIZE],
                  unsigned *n);
/* Offset (default 0) and Limit (default 20, 0..100). */
int fsm__arg_page(struct fsm_ctx *c, uint64_t *offset, uint64_t *limit);

/* Stamp readers (apply): YH_EPROTO rejection when absent or malformed. */
int fsm__stamp_str(struct fsm_ctx *c, const char *key, size_t max, char *out);
int fsm__stamp_bin(struct fsm_ctx *c,
                   const char *key,
                   size_t min,
                   size_t max,
                   uint8_t *out,
                   size_t *len);

/* Record readers for stored msgpack maps (borrowed fields). */
int fsm__rec_str(const msgpack_object *m,
                 const char *key,
                 char *out,
                 size_t size);
uint64_t fsm__rec_u64(const msgpack_object *m, const char *key);

typedef int fsm_action_fn(struct fsm_ctx *c);

struct fsm_action
{
    const char *name;          /* action name */
    enum fsm_action_kind kind; /* how it is served */
    unsigned flags;            /* enum fsm_action_flags */
    fsm_action_fn *check;      /* prepare: validate the request (NULL =
                                  nothing to check) */
    fsm_action_fn *stamp;      /* prepare: leader-side stamp (may change
                                  c->prep_actor) */
    fsm_action_fn *apply;      /* apply: the state change */
    fsm_action_fn *query;      /* READ: build the result */
};

/* Row for @name, internal "_" rows included; NULL if none. */
const struct fsm_action *fsm__action_find(const char *name);

/* ---- tbl_user.c ---- */
int fsm__user_create_check(struct fsm_ctx *c);
int fsm__user_create_stamp(struct fsm_ctx *c);
int fsm__user_create_apply(struct fsm_ctx *c);
int fsm__key_create_check(struct fsm_ctx *c);
int fsm__key_create_stamp(struct fsm_ctx *c);
int fsm__key_create_apply(struct fsm_ctx *c);
int fsm__key_delete_check(struct fsm_ctx *c);
int fsm__key_delete_apply(struct fsm_ctx *c);
int fsm__login_check(struct fsm_ctx *c);
int fsm__login_stamp(struct fsm_ctx *c);
int fsm__login_apply(struct fsm_ctx *c);
int fsm__user_modify_check(struct fsm_ctx *c);
int fsm__user_modify_apply(struct fsm_ctx *c);
int fsm__user_describe(struct fsm_ctx *c);
int fsm__bootstrap_apply(struct fsm_ctx *c);
int fsm__node_apply(struct fsm_ctx *c);

/* Key lookup in @txn (see fsm_key_get). */
int fsm__key_lookup(struct fsm *f,
                    MDB_txn *txn,
                    const char *public_key,
                    struct fsm_key *out);

/* ---- tbl_oplog.c ---- */
/* Write the oplog record of the entry just applied into @rec and the
 * oplog table. */
int fsm__oplog_put(struct fsm_ctx *c,
                   const struct fsm_env *env,
                   const char *type,
                   uint64_t index,
                   int code,
                   const char *msg,
                   const char *resource_id,
                   struct yh_buf *rec);
int fsm__oplog_describe(struct fsm_ctx *c);

/* ---- rec.c: generic records ----
 *
 * A record is a msgpack map of scalar fields (int, str, bool) and string
 * lists, kept in insertion order so that equal operations give equal bytes.
 * Fields whose name starts with '_' are internal: never shown by
 * fsm__rec_pack (prices, billing cursors). At most FSM_REC_MAX fields (a
 * machine carrying everything it can has 47). */
#define FSM_REC_MAX 64
enum fsm_rf_type {
    FSM_RF_NIL,
    FSM_RF_INT,
    FSM_RF_STR,
    FSM_RF_BOOL,
    FSM_RF_LIST, /* strings joined by '\n' in s */
    FSM_RF_BIN,  /* bytes: s, length in i (never shown by fsm__rec_pack) */
};
struct fsm_rf
{
    char k[32];         /* field name */
    uint8_t kl;         /* strlen(k) */
    int16_t kid;        /* its number in the dictionary of names (rec.c), -1 */
    uint8_t own;        /* s was malloc'd (else it is in the record's arena) */
    enum fsm_rf_type t; /* type */
    int64_t i;          /* INT, BOOL */
    char *s;            /* STR, LIST, BIN (the record's) */
};
#define FSM_REC_ARENA 1024 /* bytes of values kept inside a record */
struct fsm_rec
{
    unsigned n;                   /* fields in use */
    int oom;                      /* an allocation failed */
    unsigned used;                /* bytes of @arena handed out */
    struct fsm_rf f[FSM_REC_MAX]; /* fields */
    char arena[FSM_REC_ARENA];    /* values first go here (never moved: a
                                     record is not copied by value) */
};

void fsm__rec_init(struct fsm_rec *r);
void fsm__rec_free(struct fsm_rec *r);
/* The name numbered @id in records (NULL if none; rec.c). */
const char *fsm__rec_name(uint64_t id);
/* Whether records of table @t are stored with numbered names (resources,
 * jobs, orders, transactions: tables only read through fsm__rec_decode). */
int fsm__rec_compact_tbl(enum fsm_tbl t);
/* Decode a stored map. YH_ECORRUPT if it is not a map of such fields. */
int fsm__rec_decode(const void *p, size_t n, struct fsm_rec *r);
/* 0, YH_ENOTFOUND or a local error (YH_ECORRUPT with f->errmsg). @r is
 * (re)initialized. */
int fsm__rec_load(struct fsm *f,
                  MDB_txn *txn,
                  enum fsm_tbl t,
                  const void *k,
                  size_t kl,
                  struct fsm_rec *r);
/* Store (sets c->wrote). */
int fsm__rec_save(struct fsm_ctx *c,
                  enum fsm_tbl t,
                  const void *k,
                  size_t kl,
                  const struct fsm_rec *r);
void fsm__rec_pack_all(msgpack_packer *pk, const struct fsm_rec *r);
/* Public fields only. */
void fsm__rec_pack(msgpack_packer *pk, const struct fsm_rec *r);
void fsm__rec_set_s(struct fsm_rec *r, const char *k, const char *v);
void fsm__rec_set_i(struct fsm_rec *r, const char *k, int64_t v);
void fsm__rec_set_b(struct fsm_rec *r, const char *k, int v);
/* List from @n strings. */
void fsm__rec_set_l(struct fsm_rec *r,
                    const char *k,
                    char (*v)[FSM_ID_SIZE],
                    unsigned n);
void fsm__rec_del(struct fsm_rec *r, const char *k);
/* Bytes (FSM_RF_BIN: stored, never shown by fsm__rec_pack). */
void fsm__rec_set_bin(struct fsm_rec *r,
                      const char *k,
                      const void *p,
                      size_t n);
/* The bytes of a BIN field (NULL, *n = 0 when absent or another type). */
const char *fsm__rec_bin(const struct fsm_rec *r, const char *k, size_t *n);
/* "" / 0 when absent or of another type. */
const char *fsm__rec_s(const struct fsm_rec *r, const char *k);
int64_t fsm__rec_i(const struct fsm_rec *r, const char *k);
int fsm__rec_has(const struct fsm_rec *r, const char *k);

/* Put/del on the batch, setting c->wrote. */
int fsm__cput(struct fsm_ctx *c,
              enum fsm_tbl t,
              const void *k,
              size_t kl,
              const void *v,
              size_t vl);
int fsm__cdel(struct fsm_ctx *c, enum fsm_tbl t, const void *k, size_t kl);

/* "a" "\0" "b" into @out (size >= strlen(a)+strlen(b)+2); returns length. */
size_t fsm__key2(char *out, const char *a, const char *b);

/* Next ID "<prefix>-<8 digits>" from counter "ctr.<prefix>" (apply only:
 * writes meta, sets c->wrote). */
int fsm__new_id(struct fsm_ctx *c, const char *prefix, char out[FSM_ID_SIZE]);

/* Whether the actor may act on a resource of @tenant: the administrator
 * always, others within their own tenant. */
int fsm__owns(const struct fsm_ctx *c, const char *tenant);

/* The tenant a create acts for: the actor's own tenant; the administrator
 * must name one with "TenantID" (checked to be an existing tenant). */
int fsm__owner_arg(struct fsm_ctx *c, char tenant[FSM_ID_SIZE]);

/* Generic Describe: records of @tbl whose key starts with @prefix (or the
 * IDs listed in parameter @ids_key), visible to the actor (their
 * "TenantID" field, unless @no_tenant), kept by @keep (may be NULL),
 * paged by Offset/Limit; packs Infos (public fields, or @pack) and
 * TotalCount. */
struct fsm_desc
{
    enum fsm_tbl tbl;    /* table */
    const char *prefix;  /* key prefix ("" = all) */
    const char *ids_key; /* list parameter of IDs (NULL = none) */
    int no_tenant;       /* records without a TenantID (visible to all) */
    int (*keep)(struct fsm_ctx *c, const struct fsm_rec *r, void *arg);
    void (*pack)(struct fsm_ctx *c,
                 msgpack_packer *pk,
                 const struct fsm_rec *r,
                 void *arg);
    void *arg; /* for keep and pack */
};
int fsm__describe(struct fsm_ctx *c, const struct fsm_desc *d);
/* The same, where @list, when no IDs are given, may name the candidate IDs
 * from an index instead of a scan: it sets *@used when it applies (then
 * only those @n, at most @max, are visited). */
typedef int fsm_desc_list_fn(struct fsm_ctx *c,
                             void *arg,
                             char (*ids)[FSM_ID_SIZE],
                             unsigned max,
                             unsigned *n,
                             int *used);
int fsm__describe_from(struct fsm_ctx *c,
                       const struct fsm_desc *d,
                       fsm_desc_list_fn *list);
/* The keep of a Describe that lists every record not Recycled. With it,
 * FSM_TBL_RES and a type prefix ("uhost-"), an administrator's page
 * without IDs is read through 'res_list' (block counts, then the listed
 * IDs) instead of a scan of every record of the type. */
int fsm__keep_live(struct fsm_ctx *c, const struct fsm_rec *r, void *arg);
/* Add (@add) or drop the row @tenant NUL @id of 'tenant_res' (rec.c): the
 * tenant's resources, and (tbl_user.c) its sub-accounts. */
int fsm__tenant_index(struct fsm_ctx *c,
                      const char *tenant,
                      const void *id,
                      size_t idl,
                      int add);
/* The disks bound to machine @vm (its VMID set), in DiskID order, from
 * 'res_list' "D" rows (rec.c, kept by every save and delete of a disk
 * record): @fn gets each DiskID (it must not write) and returns 0 to go
 * on, > 0 to stop, < 0 to stop with that error. */
int fsm__vm_disk_walk(struct fsm *f,
                      MDB_txn *txn,
                      const char *vm,
                      int (*fn)(void *arg, const char *disk),
                      void *arg);
/* The machines of anti-affinity group @aag, in VMID order, from
 * 'res_list' (rec.c; recycled ones included): @fn gets each VMID (it
 * must not write) and returns 0 to go on, > 0 to stop, < 0 to stop with
 * that error. */
int fsm__aag_walk(struct fsm_ctx *c,
                  const char *aag,
                  int (*fn)(void *arg, const char *vm),
                  void *arg);

/* Internal command envelope (tick.c): type, actor, leader time, args map
 * packed in @args (a whole msgpack map). */
int fsm__cmd_internal(const char *type,
                      const struct fsm_actor *actor,
                      uint64_t time_ns,
                      const struct yh_buf *args,
                      struct yh_buf *envelope);

/* Overflow-checked int64 arithmetic: 0 or YH_EINVAL. */
int fsm__mul(int64_t a, int64_t b, int64_t *out);
int fsm__add(int64_t a, int64_t b, int64_t *out);

/* ---- tbl_iam.c ---- */
/* The one permission check: run by prepare, apply and query for every
 * action after the flag checks (admin-only, anonymous). Reads the actor's
 * user, its tenant and its roles from the state of @c (so at apply, the
 * state at that log index). 0 or a rejection recorded in @c. */
int fsm__authorize(struct fsm_ctx *c, const struct fsm_action *a);
/* 1 if @pattern ("*", "Describe*", "*Disk", "CreateDisk") matches
 * @action. */
int fsm__pattern_match(const char *pattern, const char *action);
/* Whether the actor is a main account (tenant itself) or the admin. */
int fsm__is_main(const struct fsm_ctx *c);
/* Delete every role binding of @sub (DeleteSubAccount). */
int fsm__rolebind_drop(struct fsm_ctx *c, const char *sub);
int fsm__role_create_check(struct fsm_ctx *c);
int fsm__role_create_apply(struct fsm_ctx *c);
int fsm__role_describe(struct fsm_ctx *c);
int fsm__role_delete_check(struct fsm_ctx *c);
int fsm__role_delete_apply(struct fsm_ctx *c);
int fsm__role_attach_check(struct fsm_ctx *c);
int fsm__role_attach_apply(struct fsm_ctx *c);
int fsm__role_detach_apply(struct fsm_ctx *c);
/* Roles bound to @sub as a list (for DescribeSubAccount). */
int fsm__rolebind_list(struct fsm *f,
                       MDB_txn *txn,
                       const char *sub,
                       char (*out)[FSM_ID_SIZE],
                       unsigned max,
                       unsigned *n);

/* ---- tbl_user.c (stage 1 additions) ---- */
int fsm__user_freeze_check(struct fsm_ctx *c);
int fsm__user_freeze_apply(struct fsm_ctx *c);
int fsm__user_unfreeze_apply(struct fsm_ctx *c);
int fsm__sub_create_check(struct fsm_ctx *c);
int fsm__sub_create_apply(struct fsm_ctx *c);
int fsm__sub_describe(struct fsm_ctx *c);
int fsm__sub_delete_check(struct fsm_ctx *c);
int fsm__sub_delete_apply(struct fsm_ctx *c);

/* Host credentials (tbl_user.c): a key pair in the stamp, stored for
 * @owner (fields UserID, PublicKey, PrivateKey in the result). */
int fsm__key_stamp(struct fsm_ctx *c);
int fsm__key_store(struct fsm_ctx *c, const char *owner);

/* ---- tbl_quota.c ---- */
/* Resource kinds counted against quotas. */
int fsm__quota_modify_check(struct fsm_ctx *c);
int fsm__quota_modify_apply(struct fsm_ctx *c);
int fsm__quota_describe(struct fsm_ctx *c);
/* Check that adding @delta[i] of @types[i] for @tenant stays within the
 * limits (YH_EQUOTA rejection otherwise); no writes. */
int fsm__quota_check(struct fsm_ctx *c,
                     const char *tenant,
                     unsigned n,
                     const char *const *types,
                     const int64_t *delta);
/* Add to the usage counters (after the check; may be negative). */
int fsm__usage_add(struct fsm_ctx *c,
                   const char *tenant,
                   unsigned n,
                   const char *const *types,
                   const int64_t *delta);
int fsm__price_modify_check(struct fsm_ctx *c);
int fsm__price_modify_apply(struct fsm_ctx *c);
int fsm__price_describe(struct fsm_ctx *c);
int fsm__price_vm(struct fsm_ctx *c);
int fsm__price_disk(struct fsm_ctx *c);
int fsm__price_eip(struct fsm_ctx *c);
/* Price of @units of @spec (with "Base:Sub" falling back to "Base") for
 * one period of @charge_type (Dynamic: per hour; Month; Year). */
int fsm__price_of(struct fsm_ctx *c,
                  const char *spec,
                  const char *charge_type,
                  int64_t units,
                  int64_t *out);
/* ChargeType and Quantity parameters: Dynamic (Quantity ignored, 1),
 * Month 1..11, Year 1..5. */
int fsm__charge_args(struct fsm_ctx *c, char ct[16], int64_t *quantity);
/* Disk price per period: @gb of set type @set. */
int fsm__disk_price(struct fsm_ctx *c,
                    const char *set,
                    int64_t gb,
                    const char *ct,
                    int64_t *out);

/* ---- tbl_bill.c ---- */
struct fsm_bill_cfg
{
    int64_t period;     /* billing period, s (one "hour") */
    int64_t month;      /* length of a Month, s */
    int64_t year;       /* length of a Year, s */
    int64_t grace;      /* arrears/expiry grace before stopping, s */
    int64_t recycle;    /* stopped this long -> recycle bin, s */
    int64_t retention;  /* recycle bin retention before purge, s */
    int64_t host_lease; /* a heartbeat's lease, s */
};
int fsm__bill_cfg(struct fsm *f, MDB_txn *txn, struct fsm_bill_cfg *cfg);
int fsm__bill_cfg_modify_check(struct fsm_ctx *c);
int fsm__bill_cfg_modify_apply(struct fsm_ctx *c);
int fsm__bill_cfg_describe(struct fsm_ctx *c);
int fsm__recharge_check(struct fsm_ctx *c);
int fsm__recharge_apply(struct fsm_ctx *c);
int fsm__balance_describe(struct fsm_ctx *c);
int fsm__order_describe(struct fsm_ctx *c);
int fsm__txn_describe(struct fsm_ctx *c);
int fsm__renew_check(struct fsm_ctx *c);
int fsm__renew_apply(struct fsm_ctx *c);
int fsm__recycled_describe(struct fsm_ctx *c);
int fsm__recover_check(struct fsm_ctx *c);
int fsm__recover_apply(struct fsm_ctx *c);
int fsm__purge_apply(struct fsm_ctx *c);
/* internal, proposed by fsm_leader_tick */
int fsm__bill_charge_apply(struct fsm_ctx *c);
int fsm__bill_stop_apply(struct fsm_ctx *c);
int fsm__bill_recycle_apply(struct fsm_ctx *c);
int fsm__bill_purge_apply(struct fsm_ctx *c);
/* A billable create: checks the balance can pay (YH_EBALANCE) before any
 * write when @check_only, else charges prepaid amounts, writes the order
 * and transaction and fills the billing fields of @res (ChargeType,
 * ExpireTime, _Price, _BillStart...). @amount = price per period
 * (Dynamic: per billing period; Month/Year: per unit). */
int fsm__bill_create(struct fsm_ctx *c,
                     const char *tenant,
                     struct fsm_rec *res,
                     const char *ct,
                     int64_t quantity,
                     int64_t price,
                     int check_only);
/* A resize: charges the prepaid difference for the remaining time and
 * switches the price. */
int fsm__bill_resize(struct fsm_ctx *c,
                     const char *tenant,
                     struct fsm_rec *res,
                     int64_t new_price,
                     int check_only);
/* Delete action of a resource: to the recycle bin (saves @r). */
int fsm__res_delete(struct fsm_ctx *c, const char *id, struct fsm_rec *r);
/* Leader side: envelopes due at @now. */
int fsm__bill_tick(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t now_ns,
                   fsm_propose_cb *cb,
                   void *arg);

/* ---- tbl_disk.c ---- */
/* A new disk: where, what, how it is paid. */
struct fsm_disk_spec
{
    char name[65];          /* Name */
    char zone[FSM_ID_SIZE]; /* ZoneID */
    char set[33];           /* SetType */
    int64_t size;           /* GB */
    char ct[16];            /* ChargeType */
    int64_t quantity;       /* Quantity */
};
/* Create disk @a for @tenant (@source: the disk or snapshot it is cloned
 * from, "" for none): zone, quota, balance and pool room are checked
 * before any write; answers DiskID, PoolID, OrderID. */
int fsm__disk_insert(struct fsm_ctx *c,
                     const char *tenant,
                     const struct fsm_disk_spec *a,
                     const char *source);
/* A live (not recycled) disk of the actor's tenant; 150/162 rejections. */
int fsm__disk_get(struct fsm_ctx *c, const char *id, struct fsm_rec *r);
int fsm__disk_create_check(struct fsm_ctx *c);
int fsm__disk_create_apply(struct fsm_ctx *c);
int fsm__disk_describe(struct fsm_ctx *c);
int fsm__disk_resize_check(struct fsm_ctx *c);
int fsm__disk_resize_apply(struct fsm_ctx *c);
int fsm__disk_delete_check(struct fsm_ctx *c);
int fsm__disk_delete_apply(struct fsm_ctx *c);
/* Usage deltas of a resource record (for quota accounting when it is
 * created, purged, recovered): types and counts. */
unsigned fsm__res_usage(const struct fsm_rec *r,
                        const char **types,
                        int64_t *delta,
                        char (*buf)[48]);

/* ---- tbl_storage.c: storage pools, attachments, snapshots, clones,
 * custom images ---- */
int fsm__pool_create_check(struct fsm_ctx *c);
int fsm__pool_create_apply(struct fsm_ctx *c);
int fsm__pool_describe(struct fsm_ctx *c);
/* The pool of set type @set in @zone with the most free room that holds
 * @gb more (172 rejection if none). */
int fsm__pool_pick(struct fsm_ctx *c,
                   const char *zone,
                   const char *set,
                   int64_t gb,
                   char pool[FSM_ID_SIZE]);
/* Whether pool @pool has @gb more free (172 rejection if not). */
int fsm__pool_room(struct fsm_ctx *c, const char *pool, int64_t gb);
/* Add @gb and @disks to the pool's usage (negative to release). */
int fsm__pool_use(struct fsm_ctx *c,
                  const char *pool,
                  int64_t gb,
                  int64_t disks);
/* 162 rejection if disk @disk has snapshots. */
int fsm__disk_snapshots_none(struct fsm_ctx *c, const char *disk);
int fsm__disk_attach_check(struct fsm_ctx *c);
int fsm__disk_attach_apply(struct fsm_ctx *c);
int fsm__disk_detach_apply(struct fsm_ctx *c);
/* ReportState of a disk: the host its VM runs on; the settled state of
 * a report of the current generation (*ok: it is the desired one). */
int fsm__disk_host(struct fsm_ctx *c,
                   const struct fsm_rec *disk,
                   char host[FSM_ID_SIZE]);
void fsm__disk_settle(struct fsm_rec *disk, const char *observed, int *ok);
/* Purge of a VM: its disks become detached. */
int fsm__vm_disks_release(struct fsm_ctx *c, const char *vm);
int fsm__snap_create_check(struct fsm_ctx *c);
int fsm__snap_create_apply(struct fsm_ctx *c);
int fsm__snap_describe(struct fsm_ctx *c);
int fsm__snap_op_check(struct fsm_ctx *c);
int fsm__snap_rollback_apply(struct fsm_ctx *c);
int fsm__snap_delete_apply(struct fsm_ctx *c);
int fsm__disk_clone_check(struct fsm_ctx *c);
int fsm__disk_clone_apply(struct fsm_ctx *c);
int fsm__image_custom_check(struct fsm_ctx *c);
int fsm__image_custom_apply(struct fsm_ctx *c);

/* ---- tbl_infra.c: zones, hosts, images, anti-affinity groups ---- */
/* 150 rejection unless zone @id exists. */
int fsm__zone_get(struct fsm_ctx *c, const char *id);
/* Actions only an executor's host credentials may call. */
#define FSM_ACT_F_AGENT (1u << 8)
/* Whether @id names a host ("host-..."). */
int fsm__is_host_id(const char *id);
int fsm__zone_create_check(struct fsm_ctx *c);
int fsm__zone_create_apply(struct fsm_ctx *c);
int fsm__zone_describe(struct fsm_ctx *c);
int fsm__host_register_check(struct fsm_ctx *c);
int fsm__host_register_apply(struct fsm_ctx *c);
int fsm__host_heartbeat_apply(struct fsm_ctx *c);
int fsm__host_describe(struct fsm_ctx *c);
int fsm__host_disable_check(struct fsm_ctx *c);
int fsm__host_disable_apply(struct fsm_ctx *c);
int fsm__host_enable_apply(struct fsm_ctx *c);
int fsm__host_expire_apply(struct fsm_ctx *c);
int fsm__image_create_check(struct fsm_ctx *c);
int fsm__image_create_apply(struct fsm_ctx *c);
int fsm__image_describe(struct fsm_ctx *c);
/* DeleteImage (base: admin; custom: its tenant); 162 while a machine's
 * "I" row (net table: "I" \0 ImageID \0 VMID, kept by create, reinstall
 * and purge) names it. */
int fsm__image_delete_check(struct fsm_ctx *c);
int fsm__image_delete_apply(struct fsm_ctx *c);
int fsm__aag_create_check(struct fsm_ctx *c);
int fsm__aag_create_apply(struct fsm_ctx *c);
int fsm__aag_describe(struct fsm_ctx *c);
/* Leader side: _HostExpire for every Online host whose lease ended. */
int fsm__host_tick(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t now_ns,
                   fsm_propose_cb *cb,
                   void *arg);
/* Add (or with @sign -1 release) a VM's CPU, Memory, GPU on its host. */
int fsm__host_use(struct fsm_ctx *c,
                  const char *host,
                  int64_t cpu,
                  int64_t mem,
                  int64_t gpu,
                  int64_t vms);
/* The same on host record @r as loaded at this index (saved here). */
int fsm__host_use_rec(struct fsm_ctx *c,
                      const char *host,
                      struct fsm_rec *r,
                      int64_t cpu,
                      int64_t mem,
                      int64_t gpu,
                      int64_t vms);

/* ---- tbl_vm.c: VM instances, jobs, executor reports ---- */
int fsm__vm_create_check(struct fsm_ctx *c);
int fsm__vm_create_stamp(struct fsm_ctx *c);
int fsm__vm_create_apply(struct fsm_ctx *c);
int fsm__vm_describe(struct fsm_ctx *c);
int fsm__vm_op_check(struct fsm_ctx *c);
int fsm__vm_start_apply(struct fsm_ctx *c);
int fsm__vm_stop_apply(struct fsm_ctx *c);
int fsm__vm_restart_apply(struct fsm_ctx *c);
int fsm__vm_delete_apply(struct fsm_ctx *c);
int fsm__vm_resize_check(struct fsm_ctx *c);
int fsm__vm_resize_apply(struct fsm_ctx *c);
int fsm__report_state_check(struct fsm_ctx *c);
int fsm__report_state_apply(struct fsm_ctx *c);
int fsm__job_describe(struct fsm_ctx *c);
/* A live (not recycled) machine @id of the actor's tenant; 150/162
 * rejections. */
int fsm__vm_load(struct fsm_ctx *c, const char *id, struct fsm_rec *r);
/* Open a job for resource @id (record @r, saved by the caller) at this
 * index, making it the record's Generation; supersedes a running one. */
int fsm__job_open(struct fsm_ctx *c,
                  const char *id,
                  struct fsm_rec *r,
                  const char *action);
/* Price per period of a VM configuration (GetVMInstancePrice, creates). */
struct fsm_vm_spec
{
    int64_t cpu, mem, gpu; /* cores, MB, cards */
    char gpu_type[33];     /* GPU model ("" = any) */
    char boot_set[33];     /* boot disk set type */
    int64_t boot_gb;       /* boot disk size */
    char data_set[33];     /* data disk set type */
    int64_t data_gb;       /* data disk size */
};
int fsm__vm_price(struct fsm_ctx *c,
                  const struct fsm_vm_spec *s,
                  const char *ct,
                  int64_t *out);
/* Purge hook: release what a resource holds outside its record (a VM's
 * host capacity). */
int fsm__res_release(struct fsm_ctx *c, const struct fsm_rec *r);

/* ---- bootdisk.c: a machine's boot disk as a disk resource ("bsi-",
 * Boot true, bound to its machine, billed with it) ---- */
/* Append the boot disk's quota types of @s ("Disk" 1, "DiskGB:<set>" its
 * size) at @n of @types/@delta (@buf: room for the type name); the new
 * count. */
int fsm__boot_quota(const struct fsm_vm_spec *s,
                    const char **types,
                    int64_t *delta,
                    char (*buf)[48],
                    unsigned n);
/* Create the boot disk of machine @vm (record @m: TenantID, Name, ZoneID,
 * ImageID set; gets BootDiskID) in @pool (picked before the first write),
 * with the pool's usage. Usage counters are the caller's. */
int fsm__boot_create(struct fsm_ctx *c,
                     const char *vm,
                     struct fsm_rec *m,
                     const char *pool,
                     const struct fsm_vm_spec *s);
/* 162 "disk '@id' is the boot disk of ...: it cannot be @what on its own
 * (@verb its machine)" if disk @d is a boot disk. */
int fsm__boot_alone(struct fsm_ctx *c,
                    const char *id,
                    const struct fsm_rec *d,
                    const char *what,
                    const char *verb);
/* Machine @m went to the recycle bin or came back: its boot disk too. */
int fsm__boot_follow(struct fsm_ctx *c, const struct fsm_rec *m);
/* Machine @m is purged: its boot disk goes (usage, pool room, record). */
int fsm__boot_purge(struct fsm_ctx *c, const struct fsm_rec *m);
/* Machine @m was reinstalled: its boot disk's ImageID follows. */
int fsm__boot_image(struct fsm_ctx *c, const struct fsm_rec *m);
/* ResizeDisk of boot disk @d to @size: the machine (loaded into @m when
 * @check_only) is re-priced; with !@check_only its BootDiskSpace and
 * price change and it is saved. */
int fsm__boot_resize(struct fsm_ctx *c,
                     const struct fsm_rec *d,
                     int64_t size,
                     struct fsm_rec *m,
                     int check_only);

/* ---- pwseal.c: a machine's password sealed to its host for its
 * executor (stamp fields PwSeal*, record fields _PwSeal*, spec
 * CredentialSealed) ---- */
struct fsm_pw_seal
{
    int set;                /* a sealed password was stamped */
    char host[FSM_ID_SIZE]; /* the host it is sealed to */
    char key[FSM_KEY_SIZE]; /* that host's PublicKey */
    char nonce[33];         /* hex */
    char ct[257];           /* hex ciphertext */
    char mac[65];           /* hex MAC */
};
/* Leader: seal the Password parameter (if given) to @host in the stamp
 * (nothing if the host has no key). */
int fsm__pw_seal_stamp(struct fsm_ctx *c, const char *host);
/* Stamp of ReinstallVMInstance / ResetVMInstancePassword: the hash
 * (fsm__vm_pw_stamp) and the seal to the machine's current host. */
int fsm__pw_seal_stamp_vm(struct fsm_ctx *c);
/* Apply: the stamped seal (s->set = 0 if none); 160 if it is not sealed
 * to @host (the machine's host at this index). */
int fsm__pw_seal_get(struct fsm_ctx *c,
                     const char *host,
                     struct fsm_pw_seal *s);
/* Into the machine's record, with _PwSealGen = this index. */
void fsm__pw_seal_put(struct fsm_ctx *c,
                      struct fsm_rec *r,
                      const struct fsm_pw_seal *s);
/* "CredentialSealed": nil or {HostID, PublicKey, Nonce, Ciphertext, MAC,
 * Generation} (agent.c). */
void fsm__pw_seal_pack(msgpack_packer *pk, const struct fsm_rec *r);

/* ---- ipam.c: CIDR math and address allocation ---- */
typedef unsigned __int128 fsm_u128;
#define FSM_SG_RULE_MAX 128 /* a rule string incl. NUL */
#define FSM_IP_STR 48       /* an address as text incl. NUL */
#define FSM_CIDR_STR 56     /* address/prefix as text incl. NUL */
/* A network: family 4 or 6, network address (IPv4 in the low 32 bits),
 * prefix length. */
struct fsm_cidr
{
    int fam;
    fsm_u128 net;
    unsigned plen;
};
/* "10.0.0.0/16", "fd00:1::/48": host bits must be zero. YH_EINVAL with
 * the reason in @why. */
int fsm__cidr_parse(const char *s,
                    struct fsm_cidr *out,
                    char *why,
                    size_t why_size);
void fsm__cidr_format(const struct fsm_cidr *c, char out[FSM_CIDR_STR]);
/* An address (family from its form). YH_EINVAL if not numeric. */
int fsm__ip_parse(const char *s, int *fam, fsm_u128 *out);
void fsm__ip_format(int fam, fsm_u128 a, char out[FSM_IP_STR]);
int fsm__cidr_has_ip(const struct fsm_cidr *c, int fam, fsm_u128 a);
int fsm__cidr_contains(const struct fsm_cidr *outer,
                       const struct fsm_cidr *inner);
int fsm__cidr_overlap(const struct fsm_cidr *a, const struct fsm_cidr *b);
fsm_u128 fsm__cidr_last(const struct fsm_cidr *c);
/* Address space @space (a subnet or EIP pool ID) over @net: network
 * address, gateway (first host) and, for IPv4, broadcast reserved. */
int fsm__ipam_init(struct fsm_ctx *c,
                   const char *space,
                   const struct fsm_cidr *net);
/* Choose an address (no writes): @want if given and free (121 not in
 * @net or reserved, 161 in use), else the lowest free one (172 full). */
int fsm__ipam_pick(struct fsm_ctx *c,
                   const char *space,
                   const struct fsm_cidr *net,
                   const char *want,
                   fsm_u128 *out);
/* Allocate a picked address to @owner. */
int fsm__ipam_take(struct fsm_ctx *c,
                   const char *space,
                   int fam,
                   fsm_u128 a,
                   const char *owner);
/* Give an address back (no-op if not allocated). */
int fsm__ipam_release(struct fsm_ctx *c,
                      const char *space,
                      int fam,
                      fsm_u128 a);
/* Whether any address of @space is allocated. */
int fsm__ipam_in_use(struct fsm_ctx *c, const char *space, int *any);
/* Remove the free ranges of @space (nothing allocated). */
int fsm__ipam_drop(struct fsm_ctx *c, const char *space);
/* Owner of an allocated address (YH_ENOTFOUND if free). */
int fsm__ipam_owner(struct fsm_ctx *c,
                    const char *space,
                    int fam,
                    fsm_u128 a,
                    char owner[FSM_ID_SIZE]);

/* ---- tbl_net.c: VPCs, subnets, NICs ---- */
int fsm__vpc_create_check(struct fsm_ctx *c);
int fsm__vpc_create_apply(struct fsm_ctx *c);
int fsm__vpc_describe(struct fsm_ctx *c);
int fsm__vpc_delete_check(struct fsm_ctx *c);
int fsm__vpc_delete_apply(struct fsm_ctx *c);
int fsm__subnet_create_check(struct fsm_ctx *c);
int fsm__subnet_create_apply(struct fsm_ctx *c);
int fsm__subnet_describe(struct fsm_ctx *c);
int fsm__subnet_delete_check(struct fsm_ctx *c);
int fsm__subnet_delete_apply(struct fsm_ctx *c);
int fsm__nic_create_check(struct fsm_ctx *c);
int fsm__nic_create_apply(struct fsm_ctx *c);
int fsm__nic_describe(struct fsm_ctx *c);
int fsm__nic_delete_check(struct fsm_ctx *c);
int fsm__nic_delete_apply(struct fsm_ctx *c);
/* A network record of the actor's tenant with ID prefix @prefix
 * ("uvnet", "sg", ...): 150 "@what '@id' not found" otherwise. */
int fsm__net_load(struct fsm_ctx *c,
                  const char *prefix,
                  const char *what,
                  const char *id,
                  struct fsm_rec *r);
/* Save resource @r with Revision = this index; it is the oplog
 * ResourceID. */
int fsm__net_save(struct fsm_ctx *c, const char *id, struct fsm_rec *r);
/* Whether a "net" row starts with @prefix. */
int fsm__net_any(struct fsm_ctx *c, const void *prefix, size_t pl, int *any);
/* Put an index row (an empty map) into "net". */
int fsm__net_mark(struct fsm_ctx *c, const void *key, size_t kl);
/* kind \0 a \0 b into @out (room for strlen(a)+strlen(b)+4). */
size_t fsm__net_key(char *out, char kind, const char *a, const char *b);
/* Whether VM @vm still exists (bindings to a purged machine are dead). */
int fsm__net_vm_exists(struct fsm_ctx *c, const char *vm, int *exists);
/* A string list parameter whose entries may be up to @size - 1 bytes
 * (rules): an array under @key or "@key.N" keys. */
int fsm__arg_list_long(struct fsm_ctx *c,
                       const char *key,
                       unsigned max,
                       size_t size,
                       char *out,
                       unsigned *n);

/* A machine's primary address, for CreateVMInstance: pick reads the optional
 * SubnetID, VPCID (checked) and InternalIP parameters and chooses the addresses
 * (IPv4, and IPv6 in a dual-stack subnet) without writing (121/150/161/172
 * rejections); take allocates them to @vm and sets VPCID, SubnetID, InternalIP,
 * InternalIPv6 in its record; release (at purge) gives them back. */
struct fsm_vm_ip
{
    int set;                  /* a subnet was asked for */
    int v6;                   /* dual stack: a6 is valid */
    char vpc[FSM_ID_SIZE];    /* its VPC */
    char subnet[FSM_ID_SIZE]; /* SubnetID */
    fsm_u128 a4, a6;          /* the picked addresses */
};
int fsm__vm_ip_pick(struct fsm_ctx *c,
                    const char *tenant,
                    struct fsm_vm_ip *out);
int fsm__vm_ip_take(struct fsm_ctx *c,
                    const struct fsm_vm_ip *ip,
                    const char *vm,
                    struct fsm_rec *r);
int fsm__vm_ip_release(struct fsm_ctx *c, const struct fsm_rec *r);

/* ---- sg.c: security groups ---- */
/* A parsed rule. */
struct fsm_sg_rule
{
    char proto[8];               /* TCP, UDP, ICMP, ALL */
    unsigned lo, hi;             /* ports (0 = none) */
    struct fsm_cidr cidr;        /* peer network */
    char action[8];              /* ACCEPT, DROP */
    char priority[8];            /* HIGH, MEDIUM, LOW */
    char direction[8];           /* INGRESS, EGRESS */
    char canon[FSM_SG_RULE_MAX]; /* canonical string */
};
/* Parse "PROTO|PORTS|CIDR|ACTION|PRIORITY[|DIRECTION]"; YH_EINVAL with
 * the offending field named in @why. */
int fsm__sg_rule_parse(const char *s,
                       struct fsm_sg_rule *out,
                       char *why,
                       size_t why_size);
int fsm__sg_create_check(struct fsm_ctx *c);
int fsm__sg_create_apply(struct fsm_ctx *c);
int fsm__sg_describe(struct fsm_ctx *c);
int fsm__sg_delete_check(struct fsm_ctx *c);
int fsm__sg_delete_apply(struct fsm_ctx *c);
int fsm__sg_rule_create_check(struct fsm_ctx *c);
int fsm__sg_rule_create_apply(struct fsm_ctx *c);
int fsm__sg_rule_delete_check(struct fsm_ctx *c);
int fsm__sg_rule_delete_apply(struct fsm_ctx *c);
int fsm__sg_bind_check(struct fsm_ctx *c);
int fsm__sg_bind_apply(struct fsm_ctx *c);
int fsm__sg_unbind_apply(struct fsm_ctx *c);

/* ---- eip.c: EIP pools and elastic IPs ---- */
int fsm__eip_pool_create_check(struct fsm_ctx *c);
int fsm__eip_pool_create_apply(struct fsm_ctx *c);
int fsm__eip_pool_describe(struct fsm_ctx *c);
int fsm__eip_alloc_check(struct fsm_ctx *c);
int fsm__eip_alloc_apply(struct fsm_ctx *c);
int fsm__eip_describe(struct fsm_ctx *c);
int fsm__eip_bind_check(struct fsm_ctx *c);
int fsm__eip_bind_apply(struct fsm_ctx *c);
int fsm__eip_unbind_check(struct fsm_ctx *c);
int fsm__eip_unbind_apply(struct fsm_ctx *c);
int fsm__eip_bw_check(struct fsm_ctx *c);
int fsm__eip_bw_apply(struct fsm_ctx *c);
int fsm__eip_release_check(struct fsm_ctx *c);
int fsm__eip_release_apply(struct fsm_ctx *c);
/* For the purge path (tbl_bill.c res_purge, via fsm__res_usage and
 * fsm__res_release): quota usage of an EIP record and the release of what
 * it holds outside its record (its address). */
unsigned fsm__eip_usage(const struct fsm_rec *r,
                        const char **types,
                        int64_t *delta);
int fsm__eip_purge_release(struct fsm_ctx *c, const struct fsm_rec *r);

/* ---- tbl_vmops.c: machine operations beyond the lifecycle
 * (ReinstallVMInstance, ResetVMInstancePassword, MigrateVMInstance) and
 * machines of hosts that went Unknown; with what they share with
 * tbl_vm.c (the scheduler, passwords, executor reports) ---- */
int fsm__vm_reinstall_check(struct fsm_ctx *c);
int fsm__vm_reinstall_apply(struct fsm_ctx *c);
int fsm__vm_pwreset_check(struct fsm_ctx *c);
int fsm__vm_pwreset_apply(struct fsm_ctx *c);
int fsm__vm_migrate_check(struct fsm_ctx *c);
int fsm__vm_migrate_stamp(struct fsm_ctx *c);
int fsm__vm_migrate_apply(struct fsm_ctx *c);
/* A placement question for the scheduler (tbl_vm.c): where a machine of
 * @spec may run. A gateway (gwhost.c) asks with @spec NULL (it takes no
 * CPU, memory or GPU from the machines' pool), @arch "" (any) and @zone
 * "" when no zone was named (any). */
struct fsm_place
{
    const char *zone;               /* ZoneID ("" = any) */
    int64_t overcommit;             /* the zone's CPUOvercommit, percent */
    const char *arch;               /* architecture ("" = any) */
    const struct fsm_vm_spec *spec; /* CPU, Memory, GPU, GPUType (NULL: a
                                       gateway, no capacity asked) */
    const char *aag;                /* AntiAffinityGroupID ("" = none) */
    const char *vm;                 /* the machine moved ("" = a new one) */
    const char *exclude;            /* a host not to use ("" = none) */
};
/* The leader's scheduler cache (struct fsm place_cache). */
struct fsm_place_cache *fsm__place_cache_new(void);
void fsm__place_cache_free(struct fsm_place_cache *pc);
/* Leader side: the least loaded host that fits @p (172 if none). For a
 * machine the load is its CPU share after placing (memory share breaking
 * ties); for a gateway the host's GatewayCount first, then its CPU share.
 * Ties go to the lowest HostID. */
int fsm__place_pick(struct fsm_ctx *c,
                    const struct fsm_place *p,
                    char host[FSM_ID_SIZE]);
/* Apply side: why @host cannot take @p at this index: *why is NULL if it
 * can, FSM_PLACE_GONE if there is no such host, else the reason ("without
 * CPU room", ...). */
#define FSM_PLACE_GONE "gone"
int fsm__place_why(struct fsm_ctx *c,
                   const struct fsm_place *p,
                   const char *host,
                   const char **why);
/* The same, leaving the host's record (as read at this index) in @h when
 * it exists. */
int fsm__place_why_rec(struct fsm_ctx *c,
                       const struct fsm_place *p,
                       const char *host,
                       const char **why,
                       struct fsm_rec *h);
/* A machine's Password parameter (8..128 bytes): the check (@required: it
 * must be given), the leader's stamp of a salted PBKDF2 hash {PwHash,
 * Salt} when it is given (the clear text never enters the log), the
 * stamped hash read at apply (EPROTO when @required and absent) and put
 * into a record (_PwHash, _PwSalt, hex; nothing when not set). */
struct fsm_vm_pw
{
    int set;       /* a hash was stamped */
    char hash[65]; /* hex PBKDF2-HMAC-SHA256 */
    char salt[33]; /* hex salt */
};
int fsm__vm_pw_check(struct fsm_ctx *c, int required);
int fsm__vm_pw_stamp(struct fsm_ctx *c);
int fsm__vm_pw_get(struct fsm_ctx *c, int required, struct fsm_vm_pw *pw);
void fsm__vm_pw_put(struct fsm_rec *r, const struct fsm_vm_pw *pw);
/* Complete job @r's JobID if it is the one of generation @gen and still
 * Running (Success if @ok, else Failed). */
int fsm__job_finish(struct fsm_ctx *c,
                    const struct fsm_rec *r,
                    int64_t gen,
                    int ok);
/* End job @r's JobID as Failed with Message @why if it is still Running
 * (a leader command took the machine elsewhere: _BillStop). */
int fsm__job_fail(struct fsm_ctx *c, const struct fsm_rec *r, const char *why);
/* Save machine @r with Revision = this index; answers its State. */
int fsm__vm_save(struct fsm_ctx *c, const char *id, struct fsm_rec *r);
/* 162 if machine @r is being migrated (no other change meanwhile). */
int fsm__vm_not_migrating(struct fsm_ctx *c,
                          const char *id,
                          const struct fsm_rec *r);
/* ReportState of a machine: whether @host may report on it (its HostID;
 * during a migration its source host too). */
int fsm__vm_reporter_ok(const struct fsm_rec *r, const char *host);
/* ReportState of a machine, after every check: resolves the migration the
 * report decides (completed when the target reports Running or Stopped of
 * a generation from the migration on, rolled back when the source reports
 * or the target reports Error; the migration's job completes), and drops
 * the Unknown marks (the report is newer). Writes host capacity and the
 * job; @r is saved by the caller. */
int fsm__vm_report_effects(struct fsm_ctx *c,
                           struct fsm_rec *r,
                           const char *state,
                           int64_t gen);
/* _HostExpire of @host: its machines (placed on it or migrating from it,
 * not recycled) show State and ObservedState Unknown, never Stopped; the
 * values before are kept. */
int fsm__vm_host_unknown(struct fsm_ctx *c, const char *host);
/* The first heartbeat of @host after it was Unknown: its machines still
 * marked get their State and ObservedState back, until their executor
 * reports. */
int fsm__vm_host_back(struct fsm_ctx *c, const char *host);
/* The marks of one record (a machine or a gateway): @unknown saves State
 * and ObservedState in _UnknownState/_UnknownObserved and shows Unknown;
 * else the values before come back and the marks go. */
void fsm__unknown_mark(struct fsm_rec *r, int unknown);
/* A report ends the marks: @settles (the caller sets State from it) or
 * the previous State comes back. */
void fsm__unknown_drop(struct fsm_rec *r, int settles);

/* ---- automation: timers, metrics, alarms, autoscaling ----
 *
 * auto.c holds what the three share: running an action for the owner of
 * a timer or scaling group inside the apply of an internal command (the
 * owner's permissions at that log index apply), the leader-side stamp of
 * such an action, stored parameter maps, bounded event lists and the
 * leader tick. Every object lives in the "auto" table:
 *   timer-N / alarmtpl-N / asg-N / asp-N   records
 *   "d" \0 due(20 digits) \0 TimerID       due index of active timers
 *   "m" \0 ResourceID \0 MetricName        metric ring (FSM_METRIC_RING)
 *   "b" \0 ResourceID \0 AlarmTemplateID   alarm binding, state, events */
#define FSM_METRIC_RING 60     /* samples kept per (resource, metric) */
#define FSM_AUTO_EVENTS 16     /* events kept per timer, binding, group */
#define FSM_ALARM_BINDS_MAX 16 /* alarm templates bound to one resource */

/* The outcome of an action run for an owner. */
struct fsm_run
{
    int code;                       /* its RetCode */
    char msg[YH_ERRMSG_SIZE];       /* its Message */
    char resource_id[FSM_KEY_SIZE]; /* what it created or changed */
};
/* Apply side: run write action @action with @args (and leader @stamp, may
 * be NULL) as @as for tenant @tenant: a frozen tenant runs nothing (also
 * when @as is the administrator), then the permission check, the action's
 * check, its apply. A rejection is reported in @out (it wrote nothing);
 * writes count as @c's. Returns only local failures. */
int fsm__auto_run(struct fsm_ctx *c,
                  const char *action,
                  const struct fsm_actor *as,
                  const char *tenant,
                  const msgpack_object *args,
                  const msgpack_object *stamp,
                  struct fsm_run *out);
/* Leader side: the stamp of @action for @args as @as at @now_ns, packed
 * as a whole map into @stamp, or the rejection in @out (code != 0). */
int fsm__auto_stamp(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t now_ns,
                    const char *action,
                    const struct fsm_actor *as,
                    const msgpack_object *args,
                    struct yh_buf *stamp,
                    struct fsm_run *out);
/* At create: whether @as may run @action with @args (permission and the
 * action's own check); a rejection is recorded in @c, its message
 * prefixed with @what. No writes. */
int fsm__auto_validate(struct fsm_ctx *c,
                       const char *what,
                       const char *action,
                       const struct fsm_actor *as,
                       const msgpack_object *args);
/* Parameter map @key: a map under @key and/or flat "@key.Name" keys,
 * packed into @out as one msgpack map (string keys; string, integer,
 * boolean or string-array values). Secrets and per-request keys are
 * refused (they would be stored). */
int fsm__auto_params(struct fsm_ctx *c, const char *key, struct yh_buf *out);
/* Stored map @p (@n bytes) with @k1 = @v1 and @k2 = @v2 set (a NULL key
 * is skipped), decoded into @u (initialised by the caller) via @tmp. */
int fsm__auto_args(const char *p,
                   size_t n,
                   const char *k1,
                   const char *v1,
                   const char *k2,
                   const char *v2,
                   struct yh_buf *tmp,
                   msgpack_unpacked *u);
/* The creator of an automation object, as the actor it acts as. */
void fsm__auto_owner_set(struct fsm_rec *r,
                         const struct fsm_actor *a,
                         const char *tenant);
void fsm__auto_owner_get(const struct fsm_rec *r, struct fsm_actor *a);
/* Bounded event list in BIN field @field of @r: append @ev (one packed
 * map), dropping the oldest beyond FSM_AUTO_EVENTS. */
int fsm__auto_event_push(struct fsm_rec *r,
                         const char *field,
                         const struct yh_buf *ev);
/* Pack a BIN field holding one msgpack object as that object (@empty_map:
 * {} when absent, else []). */
void fsm__auto_bin_pack(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        const char *field,
                        int empty_map);
/* Leader side: propose internal command @type (args: one packed map)
 * acting for @tenant. 0, 1 (the callback asked to stop) or a failure. */
int fsm__auto_propose(const char *type,
                      const char *tenant,
                      uint64_t now_ns,
                      const struct yh_buf *args,
                      fsm_propose_cb *cb,
                      void *arg);
/* Leader side: due timer firings and scaling steps. */
int fsm__auto_tick(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t now_ns,
                   fsm_propose_cb *cb,
                   void *arg);
/* Purge of resource @id: its metric rings and alarm bindings go too. */
int fsm__auto_purge(struct fsm_ctx *c, const char *id);
/* GT, GE, LT, LE -> 0..3 (-1 if none); @a compared with @b. */
int fsm__cmp_parse(const char *s);
const char *fsm__cmp_name(int cmp);
int fsm__cmp_eval(int cmp, __int128 a, __int128 b);

/* tbl_timer.c */
int fsm__timer_create_check(struct fsm_ctx *c);
int fsm__timer_create_apply(struct fsm_ctx *c);
int fsm__timer_describe(struct fsm_ctx *c);
int fsm__timer_delete_check(struct fsm_ctx *c);
int fsm__timer_delete_apply(struct fsm_ctx *c);
int fsm__timer_fire_apply(struct fsm_ctx *c); /* _TimerFire */
int fsm__timer_tick(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t now_ns,
                    fsm_propose_cb *cb,
                    void *arg);

/* tbl_alarm.c */
/* Known metric name (1) or not (0). */
int fsm__metric_known(const char *name);
/* Newest sample of @metric of resource @res (*found = 0 if none). */
int fsm__metric_last(struct fsm *f,
                     MDB_txn *txn,
                     const char *res,
                     const char *metric,
                     int64_t *time,
                     int64_t *value,
                     int *found);
int fsm__metric_report_check(struct fsm_ctx *c);
int fsm__metric_report_apply(struct fsm_ctx *c);
int fsm__metric_describe(struct fsm_ctx *c);
int fsm__alarmtpl_create_check(struct fsm_ctx *c);
int fsm__alarmtpl_create_apply(struct fsm_ctx *c);
int fsm__alarmtpl_describe(struct fsm_ctx *c);
int fsm__alarmtpl_delete_check(struct fsm_ctx *c);
int fsm__alarmtpl_delete_apply(struct fsm_ctx *c);
int fsm__alarm_bind_check(struct fsm_ctx *c);
int fsm__alarm_bind_apply(struct fsm_ctx *c);
int fsm__alarm_unbind_apply(struct fsm_ctx *c);
int fsm__alarm_describe(struct fsm_ctx *c);

/* tbl_scale.c */
int fsm__asg_create_check(struct fsm_ctx *c);
int fsm__asg_create_apply(struct fsm_ctx *c);
int fsm__asg_describe(struct fsm_ctx *c);
int fsm__asg_delete_check(struct fsm_ctx *c);
int fsm__asg_delete_apply(struct fsm_ctx *c);
int fsm__asp_create_check(struct fsm_ctx *c);
int fsm__asp_create_apply(struct fsm_ctx *c);
int fsm__scale_policy_apply(struct fsm_ctx *c);    /* _ScalePolicy */
int fsm__scale_reconcile_apply(struct fsm_ctx *c); /* _ScaleReconcile */
int fsm__scale_tick(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t now_ns,
                    fsm_propose_cb *cb,
                    void *arg);
/* ---- network gateways and NIC attachments (issue 5, part 2) ----
 *
 *   gw.c     index rows, the machines a change concerns (NetGeneration,
 *            oplog Concerns), common parameters, the life cycle of a
 *            gateway resource (create, usage, delete, purge)
 *   nic.c    AttachNIC/DetachNIC, a machine's network in its agent spec
 *   natgw.c  NAT gateways and DNAT rules
 *   lb.c     load balancers, vservers, backends
 *   cert.c   SSL certificates (OpenSSL-validated PEM)
 *   vpn.c    VPN gateways, remote gateways, IPsec connections */
#define FSM_NAME_SIZE 65 /* a Name parameter incl. NUL */

/* Public fields of @r as a map with room for @extra more pairs (the
 * caller packs them). (rec.c) */
void fsm__rec_pack_more(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        uint32_t extra);
/* A LIST field split into @out (at most @max); the count. */
unsigned fsm__rec_list(const struct fsm_rec *r,
                       const char *k,
                       char (*out)[FSM_ID_SIZE],
                       unsigned max);

/* Walk the "net" rows @kind \0 @a \0 ...: @fn gets the rest of each key
 * (an ID); non-zero from it stops the walk and is returned. */
typedef int fsm_net_row_fn(void *arg, const char *rest);
int fsm__net_walk(struct fsm *f,
                  MDB_txn *txn,
                  char kind,
                  const char *a,
                  fsm_net_row_fn *fn,
                  void *arg);
/* A growing list of IDs (free with fsm__ids_free). */
struct fsm_ids
{
    char (*v)[FSM_ID_SIZE]; /* IDs */
    size_t n, cap;          /* count, room */
};
int fsm__ids_add(void *arg, const char *id); /* an fsm_net_row_fn */
void fsm__ids_free(struct fsm_ids *l);
/* The IDs of the rows @kind \0 @a \0 ... */
int fsm__net_ids(struct fsm_ctx *c,
                 char kind,
                 const char *a,
                 struct fsm_ids *out);
/* Put / delete (absent is fine) the row @kind \0 @a \0 @b. */
int fsm__net_link(struct fsm_ctx *c, char kind, const char *a, const char *b);
int fsm__net_unlink(struct fsm_ctx *c, char kind, const char *a, const char *b);
/* 162 "@what '@id' is used by ..." if rows @kind \0 @id \0 ... exist. */
int fsm__net_users(struct fsm_ctx *c,
                   char kind,
                   const char *id,
                   const char *what);

/* Machine @vm's network changed (NICs, security groups or their rules,
 * EIPs): its NetGeneration and Revision become this index and it is listed
 * in the oplog record's Concerns, so WatchCommands sends its spec to its
 * host. For a gateway ID (NAT gateway, load balancer, VPN gateway) what
 * its spec holds changed: fsm__gw_touch (gwhost.c). A no-op for an ID that
 * is neither an existing machine nor gateway. _rec: @r is the machine's
 * record, loaded by the caller (saved here). */
int fsm__concern(struct fsm_ctx *c, const char *vm);
int fsm__concern_rec(struct fsm_ctx *c, const char *vm, struct fsm_rec *r);

/* Optional IfRevision parameter: 160 unless it is @r's Revision. */
int fsm__if_revision(struct fsm_ctx *c, const struct fsm_rec *r);
/* Optional Name (<= 64 bytes). */
int fsm__name_arg(struct fsm_ctx *c, char name[FSM_NAME_SIZE]);
/* A word of @words (any case; stored as listed); @def when absent, or
 * required when @def is NULL. */
int fsm__word_arg(struct fsm_ctx *c,
                  const char *key,
                  const char *const *words,
                  const char *def,
                  char *out,
                  size_t size);
/* "80" or "1000-2000" (1..65535, no sign or leading zero, low <= high):
 * 0 or YH_EINVAL (no rejection recorded). */
int fsm__port_range(const char *s, unsigned *lo, unsigned *hi);
/* VPC @vpc of the actor (150), of @tenant unless NULL (121). */
int fsm__vpc_of(struct fsm_ctx *c,
                const char *vpc,
                const char *tenant,
                struct fsm_rec *r);
/* Subnet @subnet of the actor (150) in VPC @vpc (121 naming @key). */
int fsm__subnet_in(struct fsm_ctx *c,
                   const char *key,
                   const char *subnet,
                   const char *vpc,
                   struct fsm_rec *r);
/* A record of the actor's tenant with prefix @prefix (150), not in the
 * recycle bin (162). */
int fsm__gw_load(struct fsm_ctx *c,
                 const char *prefix,
                 const char *what,
                 const char *id,
                 struct fsm_rec *r);
/* fsm_desc.keep: not in the recycle bin. */
int fsm__gw_live(struct fsm_ctx *c, const struct fsm_rec *r, void *arg);
/* Add @delta to integer field @field of resource @id (absent: no-op). */
int fsm__count_add(struct fsm_ctx *c,
                   const char *id,
                   const char *field,
                   int64_t delta);
/* Delete resource record @id (absent is fine). */
int fsm__res_drop(struct fsm_ctx *c, const char *id);
/* Delete the record named by parameter @param (prefix @prefix, called
 * @what in messages): IfRevision, refused (162) while an index row of kind
 * 'C' names it as used, then fsm__res_drop. Certificates and remote VPN
 * gateways. */
int fsm__net_delete_unused(struct fsm_ctx *c,
                           const char *param,
                           const char *prefix,
                           const char *what);
/* "@key": [children of @parent from @offset, at most @limit] ("C" rows):
 * @fn packs one (NULL: its public fields). */
typedef int fsm_child_pack_fn(struct fsm_ctx *c,
                              msgpack_packer *pk,
                              const struct fsm_rec *r,
                              void *arg);
int fsm__children_pack(struct fsm_ctx *c,
                       msgpack_packer *pk,
                       const char *key,
                       const char *parent,
                       uint64_t offset,
                       uint64_t limit,
                       fsm_child_pack_fn *fn,
                       void *arg);

/* Gateway resources: NATGW, LB, VPNGateway. */
struct fsm_gw_type
{
    const char *prefix;   /* ID prefix */
    const char *type;     /* ResourceType, price spec, quota type */
    const char *id_field; /* its ID field */
    const char *what;     /* for messages */
};
const struct fsm_gw_type *fsm__gw_type(const char *resource_type);
/* A gateway about to be created: tenant, payment, placement. */
struct fsm_gw_new
{
    char tenant[FSM_ID_SIZE]; /* owner */
    char ct[16];              /* ChargeType */
    int64_t quantity;         /* Quantity */
    int64_t price;            /* per period */
    char zone[FSM_ID_SIZE];   /* ZoneID (named, or its host's) */
    char host[FSM_ID_SIZE];   /* HostID (the leader's stamp, re-checked) */
};
/* Owner, ChargeType/Quantity, quota, price, balance and placement
 * (gwhost.c): every rejection, no write. */
int fsm__gw_prepare(struct fsm_ctx *c,
                    const struct fsm_gw_type *t,
                    struct fsm_gw_new *g);
/* First writes of a create: ID, identity and billing fields of @r, usage,
 * the VPC row, its host (gwhost.c). The caller fills the rest of @r and
 * saves it. */
int fsm__gw_begin(struct fsm_ctx *c,
                  const struct fsm_gw_type *t,
                  const struct fsm_gw_new *g,
                  const char *vpc,
                  char id[FSM_ID_SIZE],
                  struct fsm_rec *r);
/* Quota usage of a gateway record (fsm__res_usage). */
unsigned fsm__gw_usage(const struct fsm_rec *r,
                       const char **types,
                       int64_t *delta);
/* What a gateway holds outside its record (children, EIP binding, rows,
 * address): released at delete and purge (fsm__res_release). */
int fsm__gw_release(struct fsm_ctx *c, const struct fsm_rec *r);
/* Delete gateway @id now: release, usage, record. */
int fsm__gw_delete(struct fsm_ctx *c, const char *id, const struct fsm_rec *r);
/* The EIP bound to gateway @id ("" if none). */
int fsm__gw_eip(struct fsm_ctx *c, const char *id, char eip[FSM_ID_SIZE]);
/* Pack "EIPID" and "EIPAddr" of gateway @id (two pairs, "" if none). */
int fsm__gw_eip_pack(struct fsm_ctx *c, msgpack_packer *pk, const char *id);
/* What BindEIP binds to: a machine, a NAT gateway or an external load
 * balancer without an EIP; its ResourceType (@type) and TenantID. */
int fsm__eip_target(struct fsm_ctx *c,
                    const char *target,
                    char type[16],
                    char tenant[FSM_ID_SIZE]);

/* eip.c: binding an EIP to a gateway. usable: the actor's EIP, live, not
 * suspended; free_for: of @tenant (121 naming @key) and not bound (162,
 * or 161 if to @target already); write: bind it (saves @r). unbind_from:
 * clear EIP @id's binding to @target and its row. */
int fsm__eip_usable(struct fsm_ctx *c, const char *id, struct fsm_rec *r);
int fsm__eip_free_for(struct fsm_ctx *c,
                      const char *key,
                      const char *id,
                      const struct fsm_rec *r,
                      const char *tenant,
                      const char *target);
int fsm__eip_bind_write(struct fsm_ctx *c,
                        const char *id,
                        struct fsm_rec *r,
                        const char *target,
                        const char *type);
int fsm__eip_unbind_from(struct fsm_ctx *c, const char *id, const char *target);

/* nic.c */
/* The live machine NIC record @nic is attached to ("" if none). */
int fsm__nic_vm(struct fsm_ctx *c,
                const struct fsm_rec *nic,
                char vm[FSM_ID_SIZE]);
int fsm__nic_attach_check(struct fsm_ctx *c);
int fsm__nic_attach_apply(struct fsm_ctx *c);
int fsm__nic_detach_check(struct fsm_ctx *c);
int fsm__nic_detach_apply(struct fsm_ctx *c);
/* Purge of machine @vm: its NICs are detached, its backends deleted. */
int fsm__vm_net_release(struct fsm_ctx *c, const char *vm);
/* "NICs", "SecurityGroups", "EIPs" of machine @vm (three pairs) for its
 * agent spec (agent.c). */
int fsm__vm_net_pack(struct fsm *f,
                     MDB_txn *txn,
                     msgpack_packer *pk,
                     const char *vm);

/* natgw.c */
int fsm__natgw_create_check(struct fsm_ctx *c);
int fsm__natgw_create_apply(struct fsm_ctx *c);
int fsm__natgw_describe(struct fsm_ctx *c);
int fsm__natgw_id_check(struct fsm_ctx *c);
int fsm__natgw_delete_apply(struct fsm_ctx *c);
int fsm__natgw_release(struct fsm_ctx *c, const struct fsm_rec *r);
int fsm__natrule_create_check(struct fsm_ctx *c);
int fsm__natrule_create_apply(struct fsm_ctx *c);
int fsm__natrule_delete_check(struct fsm_ctx *c);
int fsm__natrule_delete_apply(struct fsm_ctx *c);

/* cert.c */
int fsm__cert_create_check(struct fsm_ctx *c);
int fsm__cert_create_apply(struct fsm_ctx *c);
int fsm__cert_describe(struct fsm_ctx *c);
int fsm__cert_delete_check(struct fsm_ctx *c);
int fsm__cert_delete_apply(struct fsm_ctx *c);

/* lb.c */
int fsm__lb_create_check(struct fsm_ctx *c);
int fsm__lb_create_apply(struct fsm_ctx *c);
int fsm__lb_describe(struct fsm_ctx *c);
int fsm__lb_delete_check(struct fsm_ctx *c);
int fsm__lb_delete_apply(struct fsm_ctx *c);
int fsm__lb_release(struct fsm_ctx *c, const struct fsm_rec *r);
int fsm__vs_create_check(struct fsm_ctx *c);
int fsm__vs_create_apply(struct fsm_ctx *c);
int fsm__vs_delete_check(struct fsm_ctx *c);
int fsm__vs_delete_apply(struct fsm_ctx *c);
int fsm__rs_create_check(struct fsm_ctx *c);
int fsm__rs_create_apply(struct fsm_ctx *c);
int fsm__rs_delete_check(struct fsm_ctx *c);
int fsm__rs_delete_apply(struct fsm_ctx *c);
/* Purge of machine @vm: the backends it is behind are deleted. */
int fsm__rs_vm_release(struct fsm_ctx *c, const char *vm);

/* vpn.c */
int fsm__vpngw_create_check(struct fsm_ctx *c);
int fsm__vpngw_create_apply(struct fsm_ctx *c);
int fsm__vpngw_describe(struct fsm_ctx *c);
int fsm__vpngw_delete_check(struct fsm_ctx *c);
int fsm__vpngw_delete_apply(struct fsm_ctx *c);
int fsm__vpngw_release(struct fsm_ctx *c, const struct fsm_rec *r);
int fsm__remote_create_check(struct fsm_ctx *c);
int fsm__remote_create_apply(struct fsm_ctx *c);
int fsm__remote_describe(struct fsm_ctx *c);
int fsm__remote_delete_check(struct fsm_ctx *c);
int fsm__remote_delete_apply(struct fsm_ctx *c);
int fsm__conn_create_check(struct fsm_ctx *c);
int fsm__conn_create_apply(struct fsm_ctx *c);
int fsm__conn_describe(struct fsm_ctx *c);
int fsm__conn_delete_check(struct fsm_ctx *c);
int fsm__conn_delete_apply(struct fsm_ctx *c);

/* ---- gateways on hosts (gwhost.c): placement, the state the host
 * reports, Unknown hosts, the agents' spec of a gateway ---- */
/* Stamp of CreateNATGW/CreateLB/CreateVPNGateway: the optional ZoneID
 * (150) and the scheduler's host for a gateway (172 if none) as HostID. */
int fsm__gw_place_stamp(struct fsm_ctx *c);
/* Apply side (no writes): ZoneID (150) and the stamped HostID re-checked
 * at this index (172 stale placement); @zone is the host's when none was
 * named. */
int fsm__gw_place_get(struct fsm_ctx *c,
                      char zone[FSM_ID_SIZE],
                      char host[FSM_ID_SIZE]);
/* A new gateway @id (record @r, saved by the caller) on @host: ZoneID,
 * HostID, DesiredState Available, State Creating, Generation = this
 * index, the "H" row, the host's GatewayCount. */
int fsm__gw_host_begin(struct fsm_ctx *c,
                       const char *id,
                       struct fsm_rec *r,
                       const char *zone,
                       const char *host);
/* Gateway @id (record @r) leaves its host (delete, purge): the "H" row,
 * GatewayCount, and the host named in the oplog's Gone. */
int fsm__gw_host_release(struct fsm_ctx *c,
                         const char *id,
                         const struct fsm_rec *r);
/* What gateway @id's spec holds changed: its Generation and Revision
 * become this index, its State transitional, and it is listed in the
 * oplog's Concerns (once per entry; a no-op for a missing or never placed
 * gateway). Called through gw.c fsm__concern. */
int fsm__gw_touch(struct fsm_ctx *c, const char *id);
/* RecoverResource of a suspended gateway @r: DesiredState Available again
 * at a new Generation (a no-op for anything else). */
void fsm__gw_resume(struct fsm_ctx *c, struct fsm_rec *r);
/* _HostExpire / the heartbeat after it: the host's gateways show Unknown,
 * or get their State and ObservedState back. */
int fsm__gw_host_unknown(struct fsm_ctx *c, const char *host);
int fsm__gw_host_back(struct fsm_ctx *c, const char *host);
/* The spec of gateway @id (record @r) on @host after its record fields:
 * fsm__gw_spec_pairs(@r) pairs (agent.c). */
unsigned fsm__gw_spec_pairs(const struct fsm_rec *r);
int fsm__gw_spec_pack(struct fsm *f,
                      MDB_txn *txn,
                      msgpack_packer *pk,
                      const char *id,
                      const struct fsm_rec *r,
                      const char *host);
/* The key a host's secrets are sealed with: its lowest PublicKey and that
 * key's PrivateKey (*have = 0 if the host has none). */
int fsm__host_key(struct fsm *f,
                  MDB_txn *txn,
                  const char *host,
                  char pub[FSM_KEY_SIZE],
                  char priv[FSM_KEY_SIZE],
                  int *have);
/* Seal @n (<= 32768) bytes of @text for connection (or certificate)
 * @conn with a host's @private_key (see gwhost.c): hex ciphertext (2n+1)
 * and hex MAC. */
int fsm__gw_seal(const char *private_key,
                 const char *conn,
                 const char *text,
                 size_t n,
                 char *ct_hex,
                 char mac_hex[65]);

/* ---- issue 5 gaps: NAT whitelist, autoscaling behind a load balancer,
 * policy/group/timer changes, sealed certificate keys ----
 *
 *   natwl.c      the SNAT whitelist of a NAT gateway
 *   tbl_scale.c  DeleteScalingPolicy, DescribeScalingPolicy,
 *                ModifyScalingPolicy, ModifyScalingGroup; a group's
 *                machines registered with its vserver (lb.c helpers)
 *   tbl_timer.c  ModifyTimer
 *   gwhost.c     a HTTPS vserver's certificate and sealed key in the LB's
 *                spec */
int fsm__natwl_check(struct fsm_ctx *c);
int fsm__natwl_add_apply(struct fsm_ctx *c);  /* AddWhiteListResource */
int fsm__natwl_del_apply(struct fsm_ctx *c);  /* DeleteWhiteListResource */
int fsm__natwl_describe(struct fsm_ctx *c);   /* DescribeWhiteListResource */
int fsm__natwl_mode_check(struct fsm_ctx *c); /* EnableWhiteList */
int fsm__natwl_mode_apply(struct fsm_ctx *c);
/* NAT gateway @gw goes: its whitelist rows. */
int fsm__natwl_gw_release(struct fsm_ctx *c, const char *gw);
/* Machine @vm is purged: it leaves every whitelist (the gateways'
 * specs change). */
int fsm__natwl_vm_release(struct fsm_ctx *c, const char *vm);
/* Machine @vm's NICs changed: the gateways listing it get a new spec. */
int fsm__natwl_vm_touch(struct fsm_ctx *c, const char *vm);
/* "WhiteList": [{ResourceID, IPs}] of NAT gateway @gw (record @r), one
 * pair (gwhost.c). */
int fsm__natwl_spec_pack(struct fsm *f,
                         MDB_txn *txn,
                         msgpack_packer *pk,
                         const char *gw,
                         const struct fsm_rec *r);

/* lb.c, for scaling groups: 0 and @lb/@vpc/@tenant of vserver @vs if it
 * is the actor's and its load balancer is live (150/162 otherwise). */
int fsm__vs_owner(struct fsm_ctx *c,
                  const char *vs,
                  char lb[FSM_ID_SIZE],
                  char vpc[FSM_ID_SIZE],
                  char tenant[FSM_ID_SIZE]);
/* Delete machine @vm's backends of vserver @vs on @port (0: any port);
 * the load balancer's spec changes. No rejection. */
int fsm__rs_vm_vs_release(struct fsm_ctx *c,
                          const char *vm,
                          const char *vs,
                          int64_t port);

int fsm__asp_delete_check(struct fsm_ctx *c);
int fsm__asp_delete_apply(struct fsm_ctx *c); /* DeleteScalingPolicy */
int fsm__asp_describe(struct fsm_ctx *c);     /* DescribeScalingPolicy */
int fsm__asp_modify_check(struct fsm_ctx *c);
int fsm__asp_modify_apply(struct fsm_ctx *c); /* ModifyScalingPolicy */
int fsm__asg_modify_check(struct fsm_ctx *c);
int fsm__asg_modify_apply(struct fsm_ctx *c); /* ModifyScalingGroup */
int fsm__timer_modify_check(struct fsm_ctx *c);
int fsm__timer_modify_apply(struct fsm_ctx *c); /* ModifyTimer */

/* ---- issue 4 gaps: a purged disk's snapshots ----
 *
 *   tbl_storage.c  a disk purged for good (PurgeResource, _Purge, its
 *                  machine's purge for a boot disk) takes its snapshots
 *                  with it, recycled ones included: usage, metric rows,
 *                  records, listed in the oplog's "Purged"
 *   action.c       the "Purged" list of an apply */
/* Record @id as deleted with this change's resource (oplog "Purged"). */
int fsm__purged_add(struct fsm_ctx *c, const char *id);
/* Disk @disk (record @d) is purged: its snapshots are deleted (their
 * "Snapshot" usage released, their metric rows and alarm bindings
 * dropped) and listed in "Purged", and if it is bound to a machine that
 * machine's hosts are named in the oplog's "Gone". No rejection. */
int fsm__disk_purge_release(struct fsm_ctx *c,
                            const char *disk,
                            const struct fsm_rec *d);

/* ---- issue 4 gaps: a machine's password re-sealed when it migrates ----
 *
 *   pwseal.c   MigrateVMInstance re-seals the machine's password to the
 *              target (leader stamp), a rollback gives the source's seal
 *              back
 *   gwhost.c   fsm__gw_unseal, the inverse of fsm__gw_seal */
/* Open what fsm__gw_seal sealed: the text (NUL-terminated, < @size) in
 * @text; YH_EINVAL if the MAC does not match (another key or altered). */
int fsm__gw_unseal(const char *private_key,
                   const char *conn,
                   const char *ct_hex,
                   const char *mac_hex,
                   char *text,
                   size_t size);
/* Leader, stamp of MigrateVMInstance: machine @vm's sealed password (if
 * any) opened and sealed to @host (PwSeal* stamp fields) and which seal
 * that was (PwSealFrom). */
int fsm__pw_reseal_stamp(struct fsm_ctx *c, const char *vm, const char *host);
/* Apply, no write: the stamped re-seal to @host in @s (s->set = 0 if the
 * machine has no password to carry, or it cannot go to @host); 160 if the
 * machine's password was set since the stamp. */
int fsm__pw_reseal_get(struct fsm_ctx *c,
                       const char *vm,
                       const struct fsm_rec *r,
                       const char *host,
                       struct fsm_pw_seal *s);
/* Record @r (a machine with a seal) is sealed per @s from now on; its
 * current seal is kept in _PwSealPrev until the migration ends. */
void fsm__pw_reseal_put(struct fsm_rec *r, const struct fsm_pw_seal *s);
/* The migration of @r ended: on the target (@done) its seal stays, back
 * on the source the source's seal is restored. */
void fsm__pw_reseal_end(struct fsm_rec *r, int done);

/* ---- issue 4 gaps: machines by host ----
 *
 *   rec.c       "H" HostID NUL VMID rows of 'res_list', kept by every save
 *               and delete of a machine record (format 10)
 *   tbl_vmops.c _HostExpire and the heartbeat after it walk them */
/* Call @fn with the ID of every machine record whose HostID or
 * MigrateFromHostID is @host (recycled ones too), in VMID order;
 * non-zero from @fn stops (a negative value is returned). */
int fsm__host_vm_walk(struct fsm *f,
                      MDB_txn *txn,
                      const char *host,
                      int (*fn)(void *arg, const char *vm),
                      void *arg);

/* ---- issue 4 gaps: billing never recycles an attached data disk ----
 *
 *   tbl_bill.c    the tick proposes _BillDetach instead of _Recycle for a
 *                 suspended data disk due for the bin that is bound to a
 *                 machine; _Recycle refuses one (162)
 *   tbl_storage.c the detach itself, shared with DetachDisk */
/* _BillDetach {ResourceID}: a suspended data disk due for the recycle bin
 * and still bound to a machine is detached (a job, like DetachDisk); its
 * executor's Detached report unbinds it and the next tick recycles it. */
int fsm__bill_detach_apply(struct fsm_ctx *c);
/* Ask the executor to detach bound disk @id (record @d, saved here with a
 * new job of c->type): 162 while it is rolled back or its machine is
 * migrating (nothing written then). */
int fsm__disk_detach(struct fsm_ctx *c, const char *id, struct fsm_rec *d);
/* 1 if @r is a data disk (not a boot disk) bound to a machine. */
int fsm__disk_bound_data(const struct fsm_rec *r);
/* Leader tick: 1 if bound data disk @r should be asked to detach now (not
 * asked already, not being rolled back, its machine not migrating). */
int fsm__disk_detach_wanted(struct fsm *f,
                            MDB_txn *txn,
                            const struct fsm_rec *r);

/* ---- issue 4 gaps: snapshots by disk ----
 *
 *   rec.c       "S" DiskID NUL SnapshotID rows of 'res_list', kept by every
 *               save and delete of a snapshot record (format 12)
 *   tbl_storage.c CreateSnapshot's per-disk limit, DeleteDisk's check and a
 *               disk's purge walk them */
/* Call @fn with the ID of every snapshot record of disk @disk (recycled
 * ones too), in SnapshotID order; non-zero from @fn stops (a negative
 * value is returned). */
int fsm__disk_snap_walk(struct fsm *f,
                        MDB_txn *txn,
                        const char *disk,
                        int (*fn)(void *arg, const char *snap),
                        void *arg);

#endif
