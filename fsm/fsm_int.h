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
    FSM_TBL_META,      /* str key -> raw value (applied, digest, counters) */
    FSM_TBL_USERS,     /* UserID -> user record (msgpack map) */
    FSM_TBL_EMAILS,    /* lower-cased UserEmail -> UserID */
    FSM_TBL_KEYS,      /* PublicKey -> key record (msgpack map) */
    FSM_TBL_USERKEYS,  /* UserID "\0" PublicKey -> "" */
    FSM_TBL_TOKENS,    /* UserID "\0" RequestToken -> token record */
    FSM_TBL_TOKEN_EXP, /* be64(expire ns) UserID "\0" token -> "" */
    FSM_TBL_OPLOG,     /* be64(index) -> oplog record (msgpack map) */
    FSM_TBL_NODES,     /* be64(node id) -> node record (msgpack map) */
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

#define FSM_FORMAT_VERSION 1
#define FSM_DEFAULT_MAP_SIZE ((size_t)8 << 30)
#define FSM_DEFAULT_TOKEN_TTL_NS (24ull * 3600 * 1000000000ull)
#define FSM_PBKDF2_ITERATIONS 10000
#define FSM_MAX_DEPTH 20 /* envelope nesting: request depth 16 + ours */

struct fsm
{
    MDB_env *env;                    /* the one environment */
    MDB_dbi dbis[FSM_N_TBL];         /* handles, valid for the env's life */
    MDB_txn *wtxn;                   /* open batch, NULL if none */
    uint64_t applied;                /* last applied index (incl. batch) */
    uint8_t digest[FSM_DIGEST_SIZE]; /* state digest at @applied */
    uint64_t token_ttl_ns;           /* stamped into envelopes by prepare */
    EVP_MD_CTX *md;                  /* reused for the digest chain */
    int errored;                     /* a rollback lost applied entries */
    char errmsg[YH_ERRMSG_SIZE];     /* last local failure */
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
    struct yh_buf fields_buf;       /* result fields, packed k/v pairs */
    struct fsm_out fields;          /* packer over fields_buf */
    uint32_t n_fields;              /* pairs in fields_buf */
    /* prepare only */
    struct yh_buf stamp_buf;     /* stamp k/v pairs */
    struct fsm_out stamp_out;    /* packer over stamp_buf */
    uint32_t n_stamp;            /* pairs in stamp_buf */
    struct fsm_actor prep_actor; /* actor to record (may be changed) */
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

#endif
