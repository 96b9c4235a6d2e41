/* The state machine: open/close, apply, flush, queries, key lookup, dump.
 *
 * Apply, the happy path: skip entries already held; open the batch; decode
 * and validate the envelope; answer a reused RequestToken from the tokens
 * table, else run the action; purge a few expired tokens; remember the
 * token's result; write the oplog record; chain the digest. Business
 * rejections (including a malformed envelope) are results. Only a local
 * failure (LMDB, memory) returns non-zero, after rolling back the whole
 * batch. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fsm/base/log.h"
#include "base/crypto.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

int fsm_open(struct fsm **out,
             const char *dir,
             const struct fsm_config *cfg,
             char *errmsg)
{
    struct fsm *f;
    int rc;

    *out = NULL;
    errmsg[0] = '\0';
    f = calloc(1, sizeof *f);
    if (f == NULL) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
        return YH_ENOMEM;
    }
    f->token_ttl_ns = cfg != NULL && cfg->token_ttl_ns != 0
                          ? cfg->token_ttl_ns
                          : FSM_DEFAULT_TOKEN_TTL_NS;
    f->oplog_keep =
        cfg != NULL && cfg->oplog_keep != 0 ? cfg->oplog_keep : FSM_OPLOG_KEEP;
    rc = fsm__store_open(f, dir, cfg, errmsg);
    if (rc != 0) {
        free(f);
        return rc;
    }
    f->place_cache = fsm__place_cache_new(); /* NULL: picks decode hosts */
    YH_INFO("opened '%s' at index %llu", dir, (unsigned long long)f->applied);
    *out = f;
    return 0;
}

void fsm_close(struct fsm *f)
{
    if (f == NULL) {
        return;
    }
    if (fsm_flush(f) != 0) {
        YH_ERR("close: last batch lost: %s", f->errmsg);
    }
    fsm__store_close(f);
    fsm__place_cache_free(f->place_cache);
    free(f);
}

uint64_t fsm_applied_index(const struct fsm *f)
{
    return f->applied;
}

void fsm_digest(const struct fsm *f, uint8_t out[FSM_DIGEST_SIZE])
{
    memcpy(out, f->digest, FSM_DIGEST_SIZE);
}

void fsm_digest_hex(const struct fsm *f, char out[2 * FSM_DIGEST_SIZE + 1])
{
    yh_hex(f->digest, FSM_DIGEST_SIZE, out);
}

int fsm_flush(struct fsm *f)
{
    int rc;

    if (f->wtxn == NULL) {
        return 0;
    }
    rc = fsm__meta_write(f, f->wtxn, f->applied, f->digest);
    if (rc != 0) {
        fsm__batch_abort(f);
        return rc == YH_ENOMEM ? rc : YH_EIO;
    }
    rc = mdb_txn_commit(f->wtxn);
    f->wtxn = NULL; /* freed by commit, even on failure */
    fsm__wcursors_forget(f);
    if (rc != 0) {
        rc = fsm__mdb_err(f, rc, "commit batch");
        fsm__batch_abort(f);
        return rc == YH_ENOMEM ? rc : YH_EIO;
    }
    return 0;
}

/* ---- apply ---- */

static int digest_chain(struct fsm *f,
                        uint64_t index,
                        const void *cmd,
                        size_t len,
                        const struct yh_buf *result)
{
    uint8_t be[8];
    struct yh_part parts[4] = {{f->digest, FSM_DIGEST_SIZE},
                               {be, 8},
                               {cmd, len},
                               {result->data, result->len}};

    fsm__be64_put(be, index);
    if (yh_sha256_parts(parts, 4, f->digest) != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "sha-256 failed");
        return YH_EINTERNAL;
    }
    return 0;
}

/* tokens key: UserID NUL token. */
static size_t token_key(const struct fsm_env *env, uint8_t *out)
{
    size_t u = strlen(env->actor.user_id);
    size_t t = strlen(env->token);

    memcpy(out, env->actor.user_id, u);
    out[u] = '\0';
    memcpy(out + u + 1, env->token, t);
    return u + 1 + t;
}

/* tokens value: the msgpack array [Expire (u64 ns), BodyHash (bin, the
 * first FSM_TOKEN_HASH_SIZE bytes of the body's SHA-256), ResourceID (str),
 * Result (bin)]. An array, not a map: a token is stored per write for a day
 * and field names would be a third of it. */
#define FSM_TOKEN_HASH_SIZE 16

struct token_rec
{
    uint64_t expire;           /* end of retention (log time, ns) */
    const uint8_t *hash;       /* FSM_TOKEN_HASH_SIZE bytes */
    const msgpack_object *rid; /* ResourceID (str) */
    const msgpack_object *res; /* first result (bin) */
};

/* Decode @v into @u and @r; non-zero if it is not a token record. */
static int token_rec_decode(const MDB_val *v,
                            msgpack_unpacked *u,
                            struct token_rec *r)
{
    const msgpack_object *a;

    if (fsm__mp_decode(v->mv_data, v->mv_size, u) != 0) {
        return -1;
    }
    a = u->data.via.array.ptr;
    if (u->data.type != MSGPACK_OBJECT_ARRAY || u->data.via.array.size != 4 ||
        a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a[1].type != MSGPACK_OBJECT_BIN ||
        a[1].via.bin.size != FSM_TOKEN_HASH_SIZE ||
        a[2].type != MSGPACK_OBJECT_STR || a[3].type != MSGPACK_OBJECT_BIN) {
        return -1;
    }
    r->expire = a[0].via.u64;
    r->hash = (const uint8_t *)a[1].via.bin.ptr;
    r->rid = &a[2];
    r->res = &a[3];
    return 0;
}

/* Remove up to two tokens whose retention ended by @now (log time). Two per
 * apply outpaces the at most one token each apply adds. */
static int token_purge(struct fsm *f, MDB_txn *txn, uint64_t now)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int owned;
    int rc;

    rc = fsm__wcursor(f, txn, FSM_TBL_TOKEN_EXP, &cur, &owned);
    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        msgpack_unpacked u;
        uint64_t expire;
        MDB_val tv;
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0) {
            rc = fsm__mdb_err(f, rc, "read 'token_exp'");
            break;
        }
        if (k.mv_size < 9) {
            snprintf(f->errmsg, sizeof f->errmsg, "'token_exp' is corrupt");
            rc = YH_ECORRUPT;
            break;
        }
        expire = fsm__be64_get(k.mv_data);
        if (expire > now) {
            break;
        }
        /* Delete the token only if this entry is still its expiry: a token
         * reused after expiring got a new entry and deleted this one, so a
         * mismatch means corrupt state; tolerate it rather than loop. */
        rc = fsm__get(f, txn, FSM_TBL_TOKENS, (uint8_t *)k.mv_data + 8,
                      k.mv_size - 8, &tv);
        if (rc == 0) {
            struct token_rec r;
            msgpack_unpacked_init(&u);
            if (token_rec_decode(&tv, &u, &r) == 0 && r.expire == expire) {
                rc = fsm__del(f, txn, FSM_TBL_TOKENS, (uint8_t *)k.mv_data + 8,
                              k.mv_size - 8);
            }
            msgpack_unpacked_destroy(&u);
        } else if (rc == YH_ENOTFOUND) {
            rc = 0;
        }
        if (rc != 0) {
            break;
        }
        rc = fsm__cursor_del(f, FSM_TBL_TOKEN_EXP, cur);
        if (rc != 0) {
            break;
        }
    }
    if (owned) {
        mdb_cursor_close(cur);
    }
    return rc;
}

static int token_store(struct fsm_ctx *c,
                       const struct fsm_env *env,
                       const uint8_t *tkey,
                       size_t tklen,
                       uint64_t old_expire,
                       const struct yh_buf *result)
{
    struct fsm *f = c->f;
    uint64_t expire = env->time_ns + env->ttl_ns;
    uint8_t ekey[8 + FSM_ID_SIZE + 65];
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    int rc;

    if (expire < env->time_ns) {
        expire = UINT64_MAX;
    }
    if (old_expire != 0) {
        fsm__be64_put(ekey, old_expire);
        memcpy(ekey + 8, tkey, tklen);
        rc = fsm__del(f, c->txn, FSM_TBL_TOKEN_EXP, ekey, 8 + tklen);
        if (rc != 0 && rc != YH_ENOTFOUND) {
            return rc;
        }
    }
    fsm__out_init(&o, &b);
    msgpack_pack_array(&o.pk, 4);
    msgpack_pack_uint64(&o.pk, expire);
    msgpack_pack_bin(&o.pk, FSM_TOKEN_HASH_SIZE);
    msgpack_pack_bin_body(&o.pk, env->bodyhash, FSM_TOKEN_HASH_SIZE);
    yh_mp_pack_str(&o.pk, c->resource_id);
    msgpack_pack_bin(&o.pk, result->len);
    msgpack_pack_bin_body(&o.pk, result->data, result->len);
    rc = o.oom ? YH_ENOMEM : 0;
    if (rc == 0) {
        rc = fsm__put(f, c->txn, FSM_TBL_TOKENS, tkey, tklen, b.data, b.len);
    }
    if (rc == 0) {
        fsm__be64_put(ekey, expire);
        memcpy(ekey + 8, tkey, tklen);
        rc = fsm__put(f, c->txn, FSM_TBL_TOKEN_EXP, ekey, 8 + tklen, "", 0);
    }
    /* The result may hold a fresh private key. */
    if (b.data != NULL) {
        OPENSSL_cleanse(b.data, b.cap);
    }
    yh_buf_release(&b);
    return rc;
}

/* Look the token up. Sets *replayed (result copied from the first
 * request), or rejects with YH_ETOKEN, or leaves both for a fresh run;
 * *old_expire gets the expiry of an expired record to replace. */
static int token_check(struct fsm_ctx *c,
                       const struct fsm_env *env,
                       const uint8_t *tkey,
                       size_t tklen,
                       struct yh_buf *result,
                       int *replayed,
                       uint64_t *old_expire)
{
    msgpack_unpacked u;
    struct token_rec r;
    MDB_val tv;
    int rc;

    *replayed = 0;
    *old_expire = 0;
    rc = fsm__get(c->f, c->txn, FSM_TBL_TOKENS, tkey, tklen, &tv);
    if (rc == YH_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    msgpack_unpacked_init(&u);
    if (token_rec_decode(&tv, &u, &r) != 0) {
        rc = YH_ECORRUPT;
        goto out;
    }
    if (r.expire <= env->time_ns) {
        *old_expire = r.expire;
        goto out;
    }
    if (memcmp(r.hash, env->bodyhash, FSM_TOKEN_HASH_SIZE) != 0) {
        fsm__reject(c, YH_ETOKEN,
                    "RequestToken '%s' was already used with another "
                    "request body",
                    env->token);
        goto out;
    }
#ifdef YH_UNSAFE_NO_DEDUP
    /* Positive control for jepsen; never build production with it: a
     * retry with a known token and the same body is applied again instead
     * of being answered with the stored result (the record is replaced as
     * if it had expired). A reuse with another body is still rejected. */
    *old_expire = r.expire;
    goto out;
#endif
    rc = yh_buf_append(result, r.res->via.bin.ptr, r.res->via.bin.size);
    if (rc != 0) {
        goto out;
    }
    if (r.rid->via.str.size < sizeof c->resource_id) {
        memcpy(c->resource_id, r.rid->via.str.ptr, r.rid->via.str.size);
        c->resource_id[r.rid->via.str.size] = '\0';
    }
    /* The first result's RetCode and Message, for the oplog record. */
    {
        msgpack_unpacked res;
        msgpack_unpacked_init(&res);
        if (fsm__mp_decode(r.res->via.bin.ptr, r.res->via.bin.size, &res) ==
            0) {
            c->code = (int)fsm__rec_u64(&res.data, "RetCode");
            fsm__rec_str(&res.data, "Message", c->msg, sizeof c->msg);
        }
        msgpack_unpacked_destroy(&res);
    }
    *replayed = 1;
out:
    if (rc == YH_ECORRUPT) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "'tokens' record is corrupt");
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* Run the action of a valid envelope and produce @result. Returns only
 * local failures. */
static int apply_env(struct fsm_ctx *c,
                     const struct fsm_env *env,
                     struct yh_buf *result)
{
    const struct fsm_action *a = fsm__action_find(env->type);
    uint8_t tkey[FSM_ID_SIZE + 65];
    size_t tklen = 0;
    uint64_t old_expire = 0;
    int replayed = 0;
    int rc;

    if (env->token[0] != '\0') {
        tklen = token_key(env, tkey);
        rc = token_check(c, env, tkey, tklen, result, &replayed, &old_expire);
        if (rc != 0) {
            return rc;
        }
    }
    if (!replayed && c->code == 0) {
        if (a == NULL || a->kind != FSM_ACT_WRITE || a->apply == NULL) {
            fsm__reject(c, YH_EACTION, "unknown action '%s'", env->type);
        } else if ((a->flags & FSM_ACT_F_ADMIN) && !env->actor.admin) {
            fsm__reject(c, YH_EPERM, "permission denied: %s requires admin",
                        env->type);
        } else if (!(a->flags & FSM_ACT_F_ANON) && !env->actor.admin &&
                   env->actor.user_id[0] == '\0') {
            fsm__reject(c, YH_EAUTH, "authentication required");
        } else if ((rc = fsm__authorize(c, a)) != 0) {
            if (rc >= 500) {
                return rc;
            }
        } else {
            rc = a->apply(c);
            if (rc >= 500) {
                return rc;
            }
            if (rc != 0 && c->code == 0) {
                fsm__reject(c, rc, "%s", yh_strerror(rc));
            }
            if (c->code != 0 && c->wrote) {
                YH_ERR("%s rejected after writing at index %llu: a bug",
                       env->type, (unsigned long long)c->index);
                snprintf(c->f->errmsg, sizeof c->f->errmsg,
                         "%s rejected after writing", env->type);
                return YH_EINTERNAL;
            }
        }
    }
    if (!replayed) {
        rc = fsm__result_pack(c, result);
        if (rc != 0) {
            return rc;
        }
    }
    rc = token_purge(c->f, c->txn, env->time_ns);
    if (rc != 0) {
        return rc;
    }
    if (tklen > 0 && !replayed && c->code != YH_ETOKEN) {
        rc = token_store(c, env, tkey, tklen, old_expire, result);
    }
    return rc;
}

int fsm_apply(struct fsm *f,
              uint64_t index,
              const void *cmd,
              size_t len,
              struct yh_buf *result,
              struct yh_buf *event,
              uint64_t *tag,
              int *skipped)
{
    static const struct fsm_actor nobody;
    struct yh_buf rec = YH_BUF_INIT;
    msgpack_unpacked u;
    struct fsm_env env;
    struct fsm_ctx c;
    char why[128];
    MDB_txn *txn;
    int bad;
    size_t obj_len = 0;
    int rc;

    *skipped = 0;
    if (tag != NULL) {
        *tag = 0;
    }
    yh_buf_reset(result);
    if (event != NULL) {
        yh_buf_reset(event);
    }
    if (index <= f->applied) {
        *skipped = 1;
        return 0;
    }
    if (f->errored) {
        /* Entries between the committed index and this one were lost in a
         * rollback; applying this one would skip them. */
        snprintf(f->errmsg, sizeof f->errmsg,
                 "entries after %llu were rolled back: restart to replay",
                 (unsigned long long)f->applied);
        return YH_EIO;
    }
    rc = fsm__batch(f, &txn);
    if (rc != 0) {
        return rc == YH_ENOMEM ? rc : YH_EIO;
    }
    msgpack_unpacked_init(&u);
    bad = fsm__mp_decode_entry(cmd, len, &u, &obj_len);
    if (bad != 0) {
        memset(&env, 0, sizeof env);
        snprintf(why, sizeof why, "not a bounded msgpack object");
    } else {
        len = obj_len; /* the digest covers the envelope, not the padding */
        bad = fsm__env_decode(&u.data, &env, why, sizeof why);
    }
    if (tag != NULL) {
        *tag = env.tag;
    }
    fsm__ctx_init(&c, f, txn, env.type, bad ? &nobody : &env.actor, env.args);
    c.index = index;
    c.time_ns = env.time_ns;
    c.stamp = env.stamp;
    if (bad) {
        fsm__reject(&c, YH_EPROTO, "bad command: %s", why);
        rc = fsm__result_pack(&c, result);
    } else {
        rc = apply_env(&c, &env, result);
    }
    if (rc == 0) {
        rc = fsm__oplog_put(&c, &env, env.type, index, c.code, c.msg,
                            c.resource_id, &rec);
    }
    if (rc == 0) {
        rc = digest_chain(f, index, cmd, len, result);
    }
    if (rc == 0 && event != NULL) {
        rc = yh_buf_append(event, rec.data, rec.len);
    }
    fsm__ctx_release(&c);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&rec);
    if (rc != 0) {
        YH_ERR("apply %llu failed, batch rolled back: %s",
               (unsigned long long)index, yh_strerror(rc));
        fsm__batch_abort(f);
        yh_buf_reset(result);
        if (event != NULL) {
            yh_buf_reset(event);
        }
        return rc == YH_ENOMEM ? rc : YH_EIO;
    }
    f->applied = index;
    return 0;
}

/* ---- reads ---- */

int fsm_query(struct fsm *f,
              const char *action,
              const msgpack_object *request,
              const struct fsm_actor *actor,
              struct yh_buf *result)
{
    static const struct fsm_actor anonymous;
    const struct fsm_action *a = NULL;
    struct fsm_ctx c;
    MDB_txn *txn;
    int rc;

    yh_buf_reset(result);
    if (actor == NULL) {
        actor = &anonymous;
    }
    if (action != NULL && action[0] != '_') {
        a = fsm__action_find(action);
    }
    if (a == NULL || a->kind != FSM_ACT_READ) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown action '%.64s'",
                 action ? action : "");
        return fsm__result_error(action && a ? action : "", YH_EACTION, msg,
                                 result);
    }
    if (request == NULL || request->type != MSGPACK_OBJECT_MAP) {
        return fsm__result_error(action, YH_EPROTO,
                                 "bad message: request is not a map", result);
    }
    if (!(a->flags & FSM_ACT_F_ANON) && !actor->admin &&
        actor->user_id[0] == '\0') {
        return fsm__result_error(action, YH_EAUTH, "authentication required",
                                 result);
    }
    if ((a->flags & FSM_ACT_F_ADMIN) && !actor->admin) {
        char msg[160];
        snprintf(msg, sizeof msg, "permission denied: %s requires admin",
                 action);
        return fsm__result_error(action, YH_EPERM, msg, result);
    }
    rc = fsm_flush(f);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__rtxn_begin(f, &txn);
    if (rc != 0) {
        return rc;
    }
    fsm__ctx_init(&c, f, txn, action, actor, request);
    rc = fsm__authorize(&c, a);
    if (rc == 0) {
        rc = a->query(&c);
    }
    fsm__rtxn_end(f, txn);
    if (rc < 500) {
        if (rc != 0 && c.code == 0) {
            fsm__reject(&c, rc, "%s", yh_strerror(rc));
        }
        rc = fsm__result_pack(&c, result);
    }
    fsm__ctx_release(&c);
    return rc;
}

int fsm_key_get(struct fsm *f, const char *public_key, struct fsm_key *out)
{
    MDB_txn *txn;
    size_t n = public_key ? strlen(public_key) : 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (n == 0 || n >= FSM_KEY_SIZE) {
        return YH_ENOTFOUND;
    }
    rc = fsm__rtxn_begin(f, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__key_lookup(f, txn, public_key, out);
    fsm__rtxn_end(f, txn);
    return rc;
}

static int nodes_read(struct fsm *f,
                      struct fsm_node *nodes,
                      unsigned max,
                      unsigned *n)
{
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    int rc;

    *n = 0;
    rc = fsm__rtxn_begin(f, &txn);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_NODES], &cur);
    if (rc != 0) {
        rc = fsm__mdb_err(f, rc, "open cursor on 'nodes'");
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && *n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct fsm_node *node = &nodes[*n];
        msgpack_unpacked u;
        int bad;
        msgpack_unpacked_init(&u);
        bad = k.mv_size != 8 || fsm__mp_decode(v.mv_data, v.mv_size, &u) ||
              fsm__rec_str(&u.data, "RaftAddress", node->raft_addr,
                           sizeof node->raft_addr) ||
              fsm__rec_str(&u.data, "APIAddress", node->api_addr,
                           sizeof node->api_addr);
        node->id = k.mv_size == 8 ? fsm__be64_get(k.mv_data) : 0;
        msgpack_unpacked_destroy(&u);
        if (bad) {
            snprintf(f->errmsg, sizeof f->errmsg, "'nodes' is corrupt");
            rc = YH_ECORRUPT;
            break;
        }
        (*n)++;
    }
    if (rc == MDB_NOTFOUND || (rc == 0 && *n == max)) {
        rc = 0;
    } else if (rc != 0 && rc != YH_ECORRUPT) {
        rc = fsm__mdb_err(f, rc, "read 'nodes'");
    }
    mdb_cursor_close(cur);
out:
    fsm__rtxn_end(f, txn);
    return rc;
}

/* A follower forwarding writes looks the leader's API address up for
 * every request (cluster_leader_api): the rows are kept decoded until the
 * table may have changed (f->nodes_gen: a write to 'nodes', a commit, a
 * rollback or a restore). */
int fsm_nodes(struct fsm *f, struct fsm_node *nodes, unsigned max, unsigned *n)
{
    unsigned cn = 0;
    int rc;

    if (!f->nodes_cached || f->nodes_cache_gen != f->nodes_gen) {
        rc = nodes_read(f, f->nodes_cache, FSM_NODES_CACHE, &cn);
        if (rc != 0) {
            f->nodes_cached = 0;
            return nodes_read(f, nodes, max, n);
        }
        f->nodes_cache_n = cn;
        f->nodes_cache_gen = f->nodes_gen;
        f->nodes_cached = 1;
    }
    if (f->nodes_cache_n == FSM_NODES_CACHE && max > FSM_NODES_CACHE) {
        return nodes_read(f, nodes, max, n); /* there may be more rows */
    }
    *n = f->nodes_cache_n < max ? f->nodes_cache_n : max;
    memcpy(nodes, f->nodes_cache, *n * sizeof *nodes);
    return 0;
}

/* ---- dump ---- */

static void dump_text(FILE *out, const uint8_t *p, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            fprintf(out, "\\%c", p[i]);
        } else if (p[i] < 0x20 || p[i] >= 0x7f) {
            fprintf(out, "\\x%02x", p[i]);
        } else {
            fputc(p[i], out);
        }
    }
    fputc('"', out);
}

static void dump_hex(FILE *out, const uint8_t *p, size_t n)
{
    fputs("0x", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%02x", p[i]);
    }
}

static void dump_mp(FILE *out, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("nil", out);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", out);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(out, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(out, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        fprintf(out, "%.17g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        dump_text(out, (const uint8_t *)o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        dump_hex(out, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        fprintf(out, "ext%d:", o->via.ext.type);
        dump_hex(out, (const uint8_t *)o->via.ext.ptr, o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', out);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0) {
                fputs(", ", out);
            }
            dump_mp(out, &o->via.array.ptr[i]);
        }
        fputc(']', out);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', out);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i > 0) {
                fputs(", ", out);
            }
            dump_mp(out, &o->via.map.ptr[i].key);
            fputs(": ", out);
            dump_mp(out, &o->via.map.ptr[i].val);
        }
        fputc('}', out);
        break;
    }
}

/* A record of a table with numbered names: its keys as the names. */
static void dump_rec(FILE *out, const msgpack_object *o)
{
    fputc('{', out);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        const char *name = k->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                               ? fsm__rec_name(k->via.u64)
                               : NULL;
        if (i > 0) {
            fputs(", ", out);
        }
        if (name != NULL) {
            dump_text(out, (const uint8_t *)name, strlen(name));
        } else {
            dump_mp(out, k);
        }
        fputs(": ", out);
        dump_mp(out, &o->via.map.ptr[i].val);
    }
    fputc('}', out);
}

static void dump_field(FILE *out,
                       enum fsm_tbl_fmt fmt,
                       int names,
                       const MDB_val *v)
{
    const uint8_t *p = v->mv_data;
    msgpack_unpacked u;

    switch (fmt) {
    case FSM_FMT_STR:
        dump_text(out, p, v->mv_size);
        return;
    case FSM_FMT_U64:
    case FSM_FMT_U64_STR:
        if (v->mv_size < 8) {
            dump_hex(out, p, v->mv_size);
            return;
        }
        fprintf(out, "%llu", (unsigned long long)fsm__be64_get(p));
        if (fmt == FSM_FMT_U64_STR) {
            fputc(' ', out);
            dump_text(out, p + 8, v->mv_size - 8);
        } else if (v->mv_size > 8) {
            fputc(' ', out);
            dump_hex(out, p + 8, v->mv_size - 8);
        }
        return;
    case FSM_FMT_MP:
        msgpack_unpacked_init(&u);
        if (fsm__mp_decode(p, v->mv_size, &u) == 0) {
            if (names && u.data.type == MSGPACK_OBJECT_MAP) {
                dump_rec(out, &u.data);
            } else {
                dump_mp(out, &u.data);
            }
        } else {
            fputs("!corrupt ", out);
            dump_hex(out, p, v->mv_size);
        }
        msgpack_unpacked_destroy(&u);
        return;
    case FSM_FMT_RAW:
        dump_hex(out, p, v->mv_size);
        return;
    }
}

int fsm_dump(struct fsm *f, FILE *out)
{
    MDB_txn *txn;
    int rc;

    /* Committed state only, so meta holds the applied index and digest
     * whatever the batching was. */
    rc = fsm_flush(f);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__rtxn_begin(f, &txn);
    if (rc != 0) {
        return rc;
    }
    for (int t = 0; t < FSM_N_TBL && rc == 0; t++) {
        MDB_cursor *cur;
        MDB_stat st;
        MDB_val k, v;
        rc = mdb_stat(txn, f->dbis[t], &st);
        if (rc == 0) {
            rc = mdb_cursor_open(txn, f->dbis[t], &cur);
        }
        if (rc != 0) {
            rc = fsm__mdb_err(f, rc, "dump '%s'", fsm__tbls[t].name);
            break;
        }
        fprintf(out, "[%s] %zu\n", fsm__tbls[t].name, (size_t)st.ms_entries);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            dump_field(out, fsm__tbls[t].key_fmt, 0, &k);
            fputs(" = ", out);
            dump_field(out, fsm__tbls[t].val_fmt, fsm__rec_compact_tbl(t), &v);
            fputc('\n', out);
        }
        mdb_cursor_close(cur);
        rc = rc == MDB_NOTFOUND ? 0 : fsm__mdb_err(f, rc, "dump");
    }
    fsm__rtxn_end(f, txn);
    if (rc == 0 && ferror(out)) {
        rc = YH_EIO;
    }
    return rc;
}
