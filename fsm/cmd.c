/* The command envelope: built on the leader (fsm_cmd_prepare,
 * fsm_cmd_bootstrap, fsm_cmd_node), decoded and validated at apply.
 *
 *   {"v": 1, "type": s, "actor": {"UserID": s, "TenantID": s, "Admin": b},
 *    "time": unix-ns, "token": s|nil, "bodyhash": bin32|nil, "ttl": ns,
 *    "src": s, "tag": uint, "args": {...}, "stamp": {...}}
 *
 * Everything an apply needs that is not a pure function of the state (time,
 * random key material, password hashes, the token retention) is in the
 * envelope. Secrets the client sent (PassWord) never are: the leader turns
 * them into stamps (a salted PBKDF2 hash) and drops them from args. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "base/crypto.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define ENV_VERSION 1

/* Request parameters that never enter the log or the body digest: the
 * per-request ones, and secrets. Keeping passwords out of the body digest
 * matters because the digest is stored (tokens table, snapshots): an
 * unsalted SHA-256 over a password would undo the PBKDF2 of its stamp. */
static const char *const excluded[] = {"RequestToken", "Consistency",
                                       "PassWord", "Password"};

static const uint8_t excluded_len[] = {12, 11, 8, 8};

static int is_excluded(const msgpack_object *k)
{
    if (k->type != MSGPACK_OBJECT_STR) {
        return 0;
    }
    for (size_t i = 0; i < sizeof excluded / sizeof excluded[0]; i++) {
        if (k->via.str.size == excluded_len[i] &&
            memcmp(k->via.str.ptr, excluded[i], excluded_len[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void pack_actor(msgpack_packer *pk, const struct fsm_actor *a)
{
    msgpack_pack_map(pk, 3);
    yh_mp_pack_kv_str(pk, "UserID", a->user_id);
    yh_mp_pack_kv_str(pk, "TenantID", a->tenant_id);
    yh_mp_pack_str(pk, "Admin");
    if (a->admin) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
}

/* Everything up to and including the "args" key; the caller packs args
 * and then "stamp" with its value. */
static void pack_head(msgpack_packer *pk,
                      const char *type,
                      const struct fsm_actor *actor,
                      uint64_t time_ns,
                      const char *token,
                      const uint8_t *bodyhash,
                      uint64_t ttl_ns,
                      const char *src,
                      uint64_t tag)
{
    msgpack_pack_map(pk, 11);
    yh_mp_pack_str(pk, "v");
    msgpack_pack_uint64(pk, ENV_VERSION);
    yh_mp_pack_kv_str(pk, "type", type);
    yh_mp_pack_str(pk, "actor");
    pack_actor(pk, actor);
    yh_mp_pack_str(pk, "time");
    msgpack_pack_uint64(pk, time_ns);
    yh_mp_pack_str(pk, "token");
    if (token != NULL && token[0] != '\0') {
        yh_mp_pack_str(pk, token);
    } else {
        msgpack_pack_nil(pk);
    }
    yh_mp_pack_str(pk, "bodyhash");
    if (bodyhash != NULL) {
        msgpack_pack_bin(pk, FSM_DIGEST_SIZE);
        msgpack_pack_bin_body(pk, bodyhash, FSM_DIGEST_SIZE);
    } else {
        msgpack_pack_nil(pk);
    }
    yh_mp_pack_str(pk, "ttl");
    msgpack_pack_uint64(pk, ttl_ns);
    /* src is informational: cut it to what apply accepts. */
    yh_mp_pack_str(pk, "src");
    yh_mp_pack_strn(pk, src != NULL ? src : "",
                    src != NULL ? strnlen(src, 63) : 0);
    yh_mp_pack_str(pk, "tag");
    msgpack_pack_uint64(pk, tag);
    yh_mp_pack_str(pk, "args");
}

/* The msgpack header msgpack_pack_str writes for a string of @n bytes
 * (fixstr, str8, str16, str32) into @h; returns its length. */
static size_t str_header(size_t n, uint8_t h[5])
{
    if (n < 32) {
        h[0] = (uint8_t)(0xa0 | n);
        return 1;
    }
    if (n < 256) {
        h[0] = 0xd9;
        h[1] = (uint8_t)n;
        return 2;
    }
    if (n < 65536) {
        h[0] = 0xda;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
        return 3;
    }
    h[0] = 0xdb;
    h[1] = (uint8_t)(n >> 24);
    h[2] = (uint8_t)(n >> 16);
    h[3] = (uint8_t)(n >> 8);
    h[4] = (uint8_t)n;
    return 5;
}

/* Order of two string keys by their msgpack encodings (header then
 * bytes) compared as byte strings, a prefix first: the order
 * yh_mp_pack_canonical sorts a map's keys in. */
static int str_key_cmp(const msgpack_object *a, const msgpack_object *b)
{
    uint8_t ha[5], hb[5];
    size_t na = str_header(a->via.str.size, ha);
    size_t nb = str_header(b->via.str.size, hb);
    size_t la = na + a->via.str.size;
    size_t lb = nb + b->via.str.size;
    size_t n = la < lb ? la : lb;

    for (size_t i = 0; i < n; i++) {
        uint8_t x = i < na ? ha[i] : (uint8_t)a->via.str.ptr[i - na];
        uint8_t y = i < nb ? hb[i] : (uint8_t)b->via.str.ptr[i - nb];
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return la < lb ? -1 : la > lb;
}

#define BODY_HASH_FAST_KEYS 32 /* string keys sorted in place up to this */

/* SHA-256 over the action name, a NUL and the canonical encoding of
 * @request without the excluded keys. The name is included so that one
 * token reused for another action with an equal body is still caught.
 * A request of at most BODY_HASH_FAST_KEYS string keys (every request the
 * API sends) is sorted here without encoding its keys separately; the
 * bytes hashed are the same as yh_mp_pack_canonical's. */
static int body_hash(const char *action,
                     const msgpack_object *request,
                     uint8_t out[FSM_DIGEST_SIZE])
{
    uint32_t n = request->via.map.size;
    msgpack_object_kv small[BODY_HASH_FAST_KEYS];
    msgpack_object_kv *kv = small;
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    msgpack_object m;
    uint32_t k = 0;
    int all_str = 1;
    int rc = 0;

    if (n > BODY_HASH_FAST_KEYS) {
        kv = calloc(n, sizeof *kv);
        if (kv == NULL) {
            return YH_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!is_excluded(&request->via.map.ptr[i].key)) {
            kv[k] = request->via.map.ptr[i];
            all_str &= kv[k].key.type == MSGPACK_OBJECT_STR;
            k++;
        }
    }
    fsm__out_init(&o, &b);
    if (yh_buf_append(&b, action, strlen(action) + 1) != 0) {
        o.oom = 1;
    }
    if (all_str && k <= BODY_HASH_FAST_KEYS) {
        /* insertion sort: requests have a handful of keys */
        for (uint32_t i = 1; i < k; i++) {
            msgpack_object_kv x = kv[i];
            uint32_t j = i;
            while (j > 0 && str_key_cmp(&kv[j - 1].key, &x.key) > 0) {
                kv[j] = kv[j - 1];
                j--;
            }
            kv[j] = x;
        }
        msgpack_pack_map(&o.pk, k);
        for (uint32_t i = 0; i < k; i++) {
            yh_mp_pack_strn(&o.pk, kv[i].key.via.str.ptr,
                            kv[i].key.via.str.size);
            yh_mp_pack_canonical(&o.pk, &kv[i].val);
        }
    } else {
        m.type = MSGPACK_OBJECT_MAP;
        m.via.map.size = k;
        m.via.map.ptr = kv;
        yh_mp_pack_canonical(&o.pk, &m);
    }
    if (o.oom) {
        rc = YH_ENOMEM;
    } else if (yh_sha256(b.data, b.len, out) != 0) {
        rc = YH_EINTERNAL;
    }
    yh_buf_release(&b);
    if (kv != small) {
        free(kv);
    }
    return rc;
}

/* The request's RequestToken: "" if none. */
static int request_token(const msgpack_object *request, char out[65])
{
    const msgpack_object *v = yh_mp_get(request, "RequestToken");

    out[0] = '\0';
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        return 0;
    }
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > 64) {
        return YH_EINVAL;
    }
    if (yh_has_ctl(v->via.str.ptr, v->via.str.size)) {
        return YH_EINVAL;
    }
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return 0;
}

static int prepare(struct fsm *f,
                   const char *action,
                   const msgpack_object *request,
                   const struct fsm_actor *actor,
                   const char *src,
                   uint64_t time_ns,
                   uint64_t tag,
                   struct yh_buf *envelope,
                   struct yh_buf *result,
                   int off_loop);

int fsm_cmd_prepare(struct fsm *f,
                    const char *action,
                    const msgpack_object *request,
                    const struct fsm_actor *actor,
                    const char *src,
                    uint64_t time_ns,
                    uint64_t tag,
                    struct yh_buf *envelope,
                    struct yh_buf *result)
{
    return prepare(f, action, request, actor, src, time_ns, tag, envelope,
                   result, 0);
}

int fsm_cmd_prepare_off_loop(struct fsm *f,
                             const char *action,
                             const msgpack_object *request,
                             const struct fsm_actor *actor,
                             const char *src,
                             uint64_t time_ns,
                             uint64_t tag,
                             struct yh_buf *envelope,
                             struct yh_buf *result)
{
    return prepare(f, action, request, actor, src, time_ns, tag, envelope,
                   result, 1);
}

int fsm_cmd_uses_kdf(const msgpack_object *request)
{
    static const char *const keys[] = {"PassWord", "Password"};

    for (unsigned i = 0; i < 2; i++) {
        const msgpack_object *v =
            request != NULL && request->type == MSGPACK_OBJECT_MAP
                ? yh_mp_get(request, keys[i])
                : NULL;
        if (v != NULL && v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0) {
            return 1;
        }
    }
    return 0;
}

static int prepare(struct fsm *f,
                   const char *action,
                   const msgpack_object *request,
                   const struct fsm_actor *actor,
                   const char *src,
                   uint64_t time_ns,
                   uint64_t tag,
                   struct yh_buf *envelope,
                   struct yh_buf *result,
                   int off_loop)
{
    static const struct fsm_actor anonymous;
    const struct fsm_action *a = NULL;
    uint8_t bodyhash[FSM_DIGEST_SIZE];
    char token[65];
    struct fsm_ctx c;
    struct fsm_out o;
    MDB_txn *txn;
    int rc;

    yh_buf_reset(envelope);
    yh_buf_reset(result);
    if (actor == NULL) {
        actor = &anonymous;
    }
    if (action != NULL && action[0] != '_') {
        a = fsm__action_find(action);
    }
    if (a == NULL || a->kind != FSM_ACT_WRITE) {
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
    if (!(a->flags & FSM_ACT_F_ANON) && actor->user_id[0] == '\0') {
        return fsm__result_error(action, YH_EAUTH, "authentication required",
                                 result);
    }
    if ((a->flags & FSM_ACT_F_ADMIN) && !actor->admin) {
        char msg[160];
        snprintf(msg, sizeof msg, "permission denied: %s requires admin",
                 action);
        return fsm__result_error(action, YH_EPERM, msg, result);
    }
    if (request_token(request, token) != 0) {
        return fsm__result_error(
            action, YH_EINVAL,
            "invalid parameter 'RequestToken': at most 64 printable bytes",
            result);
    }

    if (off_loop) {
        /* A thread of its own: a private read transaction on committed
         * state (the loop thread owns f's cached one and its write
         * batch). Every check is repeated at apply. */
        rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn);
        if (rc != 0) {
            return rc == ENOMEM ? YH_ENOMEM : YH_EIO;
        }
    } else {
        rc = fsm__rtxn_begin(f, &txn);
        if (rc != 0) {
            return rc;
        }
    }
    fsm__ctx_init(&c, f, txn, action, actor, request);
    c.time_ns = time_ns;
    c.prep_actor = *actor;
    rc = fsm__authorize(&c, a);
    if (rc == 0 && a->check != NULL) {
        rc = a->check(&c);
    }
    if (rc == 0 && a->stamp != NULL) {
        rc = a->stamp(&c);
    }
    if (off_loop) {
        mdb_txn_abort(txn);
    } else {
        fsm__rtxn_end(f, txn);
    }
    if (rc >= 500) {
        goto out;
    }
    if (rc != 0) {
        if (c.code == 0) {
            fsm__reject(&c, rc, "%s", yh_strerror(rc));
        }
        rc = fsm__result_pack(&c, result);
        goto out;
    }
    if (c.stamp_out.oom) {
        rc = YH_ENOMEM;
        goto out;
    }
    if (token[0] != '\0') {
        rc = body_hash(action, request, bodyhash);
        if (rc != 0) {
            goto out;
        }
    }

    fsm__out_init(&o, envelope);
    pack_head(&o.pk, action, &c.prep_actor, time_ns, token,
              token[0] ? bodyhash : NULL, token[0] ? f->token_ttl_ns : 0, src,
              tag);
    {
        uint32_t n = 0;
        for (uint32_t i = 0; i < request->via.map.size; i++) {
            n += !is_excluded(&request->via.map.ptr[i].key);
        }
        msgpack_pack_map(&o.pk, n);
        for (uint32_t i = 0; i < request->via.map.size; i++) {
            const msgpack_object_kv *kv = &request->via.map.ptr[i];
            if (!is_excluded(&kv->key)) {
                msgpack_pack_object(&o.pk, kv->key);
                msgpack_pack_object(&o.pk, kv->val);
            }
        }
    }
    yh_mp_pack_str(&o.pk, "stamp");
    msgpack_pack_map(&o.pk, c.n_stamp);
    if (c.stamp_buf.len > 0 &&
        yh_buf_append(envelope, c.stamp_buf.data, c.stamp_buf.len) != 0) {
        o.oom = 1;
    }
    rc = o.oom ? YH_ENOMEM : 0;
    if (rc != 0) {
        yh_buf_reset(envelope);
    }
out:
    /* Stamps may hold fresh private keys: do not leave them in freed
     * memory. */
    if (c.stamp_buf.data != NULL) {
        OPENSSL_cleanse(c.stamp_buf.data, c.stamp_buf.cap);
    }
    fsm__ctx_release(&c);
    return rc;
}

static int check_key_str(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n >= FSM_KEY_SIZE) {
        return YH_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) {
            return YH_EINVAL;
        }
    }
    return 0;
}

static int check_node(const struct fsm_node *n)
{
    if (n->id == 0 || n->raft_addr[0] == '\0' || n->api_addr[0] == '\0' ||
        memchr(n->raft_addr, '\0', sizeof n->raft_addr) == NULL ||
        memchr(n->api_addr, '\0', sizeof n->api_addr) == NULL) {
        return YH_EINVAL;
    }
    return 0;
}

static void pack_node(msgpack_packer *pk, const struct fsm_node *n)
{
    msgpack_pack_map(pk, 3);
    yh_mp_pack_str(pk, "NodeID");
    msgpack_pack_uint64(pk, n->id);
    yh_mp_pack_kv_str(pk, "RaftAddress", n->raft_addr);
    yh_mp_pack_kv_str(pk, "APIAddress", n->api_addr);
}

/* Internal commands act as the system: no user, administrator. */
static const struct fsm_actor system_actor = {"", "", 1};

int fsm_cmd_bootstrap(const char *admin_public_key,
                      const char *admin_private_key,
                      const struct fsm_node *nodes,
                      unsigned n_nodes,
                      uint64_t time_ns,
                      struct yh_buf *envelope)
{
    struct fsm_out o;

    if (check_key_str(admin_public_key) != 0 ||
        check_key_str(admin_private_key) != 0 ||
        (n_nodes > 0 && nodes == NULL)) {
        return YH_EINVAL;
    }
    for (unsigned i = 0; i < n_nodes; i++) {
        if (check_node(&nodes[i]) != 0) {
            return YH_EINVAL;
        }
    }
    yh_buf_reset(envelope);
    fsm__out_init(&o, envelope);
    pack_head(&o.pk, "_Bootstrap", &system_actor, time_ns, NULL, NULL, 0, "",
              0);
    msgpack_pack_map(&o.pk, 1);
    yh_mp_pack_str(&o.pk, "Nodes");
    msgpack_pack_array(&o.pk, n_nodes);
    for (unsigned i = 0; i < n_nodes; i++) {
        pack_node(&o.pk, &nodes[i]);
    }
    yh_mp_pack_str(&o.pk, "stamp");
    msgpack_pack_map(&o.pk, 2);
    yh_mp_pack_kv_str(&o.pk, "PublicKey", admin_public_key);
    yh_mp_pack_kv_str(&o.pk, "PrivateKey", admin_private_key);
    return o.oom ? YH_ENOMEM : 0;
}

int fsm_cmd_node(const struct fsm_node *node,
                 int remove,
                 uint64_t time_ns,
                 uint64_t tag,
                 struct yh_buf *envelope)
{
    struct fsm_out o;

    if (node == NULL || node->id == 0 || (!remove && check_node(node) != 0)) {
        return YH_EINVAL;
    }
    yh_buf_reset(envelope);
    fsm__out_init(&o, envelope);
    pack_head(&o.pk, "_Node", &system_actor, time_ns, NULL, NULL, 0, "", tag);
    msgpack_pack_map(&o.pk, remove ? 2 : 4);
    yh_mp_pack_str(&o.pk, "NodeID");
    msgpack_pack_uint64(&o.pk, node->id);
    if (!remove) {
        yh_mp_pack_kv_str(&o.pk, "RaftAddress", node->raft_addr);
        yh_mp_pack_kv_str(&o.pk, "APIAddress", node->api_addr);
    }
    yh_mp_pack_str(&o.pk, "Remove");
    if (remove) {
        msgpack_pack_true(&o.pk);
    } else {
        msgpack_pack_false(&o.pk);
    }
    yh_mp_pack_str(&o.pk, "stamp");
    msgpack_pack_map(&o.pk, 0);
    return o.oom ? YH_ENOMEM : 0;
}

/* ---- decoding ---- */

static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

/* @v (NULL if absent) as a string of fewer than @size bytes without NUL. */
static int val_str(const msgpack_object *v,
                   char *out,
                   size_t size,
                   int required)
{
    out[0] = '\0';
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        return required ? YH_EPROTO : 0;
    }
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= size ||
        memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL) {
        return YH_EPROTO;
    }
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return 0;
}

/* The values of @names in map @m (the first of duplicate keys, as
 * yh_mp_get), in one pass over the map; NULL for an absent name. */
static void map_pick(const msgpack_object *m,
                     const char *const *names,
                     const uint8_t *lens,
                     unsigned n,
                     const msgpack_object **out)
{
    for (unsigned j = 0; j < n; j++) {
        out[j] = NULL;
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            continue;
        }
        for (unsigned j = 0; j < n; j++) {
            if (out[j] == NULL && k->via.str.size == lens[j] &&
                k->via.str.ptr[0] == names[j][0] &&
                memcmp(k->via.str.ptr, names[j], lens[j]) == 0) {
                out[j] = &m->via.map.ptr[i].val;
                break;
            }
        }
    }
}

enum {
    E_TAG,
    E_TYPE,
    E_V,
    E_ACTOR,
    E_TIME,
    E_TOKEN,
    E_BODYHASH,
    E_TTL,
    E_SRC,
    E_ARGS,
    E_STAMP,
    E_N
};
static const char *const env_names[E_N] = {"tag",  "type",  "v",        "actor",
                                           "time", "token", "bodyhash", "ttl",
                                           "src",  "args",  "stamp"};
static const uint8_t env_lens[E_N] = {3, 4, 1, 5, 4, 5, 8, 3, 3, 4, 5};
static const char *const actor_names[3] = {"UserID", "TenantID", "Admin"};
static const uint8_t actor_lens[3] = {6, 8, 5};

int fsm__env_decode(const msgpack_object *o,
                    struct fsm_env *env,
                    char *why,
                    size_t why_size)
{
    const msgpack_object *e[E_N];
    const msgpack_object *a[3];
    const msgpack_object *v;
    const msgpack_object *actor;

    memset(env, 0, sizeof *env);
#define BAD(...)                              \
    do {                                      \
        snprintf(why, why_size, __VA_ARGS__); \
        return YH_EPROTO;                     \
    } while (0)
    if (o->type != MSGPACK_OBJECT_MAP) {
        BAD("not a map");
    }
    map_pick(o, env_names, env_lens, E_N, e);
    /* tag and type first, so that even a rejection reaches its proposer
     * and names its action */
    v = e[E_TAG];
    if (v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        env->tag = v->via.u64;
    } else if (v != NULL && v->type != MSGPACK_OBJECT_NIL) {
        BAD("bad 'tag'");
    }

    if (val_str(e[E_TYPE], env->type, sizeof env->type, 1) != 0 ||
        env->type[0] == '\0') {
        env->type[0] = '\0';
        BAD("bad 'type'");
    }
    v = e[E_V];
    if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        v->via.u64 != ENV_VERSION) {
        BAD("unsupported version");
    }
    actor = e[E_ACTOR];
    if (actor == NULL || actor->type != MSGPACK_OBJECT_MAP) {
        BAD("bad 'actor'");
    }
    map_pick(actor, actor_names, actor_lens, 3, a);
    if (val_str(a[0], env->actor.user_id, FSM_ID_SIZE, 1) != 0 ||
        val_str(a[1], env->actor.tenant_id, FSM_ID_SIZE, 1) != 0) {
        BAD("bad 'actor'");
    }
    v = a[2];
    if (v == NULL || v->type != MSGPACK_OBJECT_BOOLEAN) {
        BAD("bad 'actor'");
    }
    env->actor.admin = v->via.boolean;
    v = e[E_TIME];
    if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        BAD("bad 'time'");
    }
    env->time_ns = v->via.u64;
    if (val_str(e[E_TOKEN], env->token, sizeof env->token, 0) != 0) {
        BAD("bad 'token'");
    }
    if (env->token[0] != '\0') {
        v = e[E_BODYHASH];
        if (v == NULL || v->type != MSGPACK_OBJECT_BIN ||
            v->via.bin.size != FSM_DIGEST_SIZE) {
            BAD("bad 'bodyhash'");
        }
        memcpy(env->bodyhash, v->via.bin.ptr, FSM_DIGEST_SIZE);
        v = e[E_TTL];
        if (v == NULL || v->type == MSGPACK_OBJECT_NIL ||
            (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 == 0)) {
            env->ttl_ns = FSM_DEFAULT_TOKEN_TTL_NS;
        } else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            env->ttl_ns = v->via.u64;
        } else {
            BAD("bad 'ttl'");
        }
    }
    if (val_str(e[E_SRC], env->src, sizeof env->src, 0) != 0) {
        BAD("bad 'src'");
    }
    v = e[E_ARGS];
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        env->args = &empty_map;
    } else if (v->type == MSGPACK_OBJECT_MAP) {
        env->args = v;
    } else {
        BAD("bad 'args'");
    }
    v = e[E_STAMP];
    if (v != NULL && v->type == MSGPACK_OBJECT_MAP) {
        env->stamp = v;
    } else if (v != NULL && v->type != MSGPACK_OBJECT_NIL) {
        BAD("bad 'stamp'");
    }
#undef BAD
    return 0;
}

int fsm__cmd_internal(const char *type,
                      const struct fsm_actor *actor,
                      uint64_t time_ns,
                      const struct yh_buf *args,
                      struct yh_buf *envelope)
{
    struct fsm_out o;

    yh_buf_reset(envelope);
    fsm__out_init(&o, envelope);
    pack_head(&o.pk, type, actor, time_ns, NULL, NULL, 0, "", 0);
    if (args->len == 0 || yh_buf_append(envelope, args->data, args->len) != 0) {
        o.oom = 1;
    }
    yh_mp_pack_str(&o.pk, "stamp");
    msgpack_pack_map(&o.pk, 0);
    return o.oom ? YH_ENOMEM : 0;
}

int fsm_cmd_time(const void *cmd, size_t len, uint64_t *time_ns)
{
    msgpack_unpacked u;
    struct fsm_env env;
    char why[128];
    size_t obj_len = 0;
    int rc = YH_EPROTO;

    msgpack_unpacked_init(&u);
    if (fsm__mp_decode_entry(cmd, len, &u, &obj_len) == 0 &&
        fsm__env_decode(&u.data, &env, why, sizeof why) == 0) {
        *time_ns = env.time_ns;
        rc = 0;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}
