/* Identity: users, the email index, API keys, the bootstrap command and the
 * nodes table.
 *
 * Users are tenants for now (TenantID = own UserID); the administrator
 * created by _Bootstrap is "uid-admin" with TenantID "". UserIDs come from
 * the replicated counter meta["ctr.user"], so every replica names a user the
 * same way. Passwords are stored as PBKDF2-HMAC-SHA256 (hash, salt,
 * iterations) computed on the leader; API key pairs are generated on the
 * leader; both travel in the envelope's stamp. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define ADMIN_ID "uid-admin"
#define USER_COUNTER "ctr.user"
#define STATE_NORMAL "Normal"
#define STATE_FROZEN "Frozen"
#define SUB_PREFIX "sub"
#define EMAIL_MAX 128
#define NAME_MAX_LEN 64
#define REMARK_MAX 1024
#define PASSWORD_MIN 8
#define PASSWORD_MAX 128
#define SALT_SIZE 16
#define HASH_SIZE 32

struct user
{
    char id[FSM_ID_SIZE];        /* UserID */
    char email[EMAIL_MAX + 1];   /* UserEmail as given ("" for admin) */
    char name[NAME_MAX_LEN + 1]; /* Name */
    char remark[REMARK_MAX + 1]; /* Remark */
    char state[16];              /* State */
    uint64_t revision;           /* log index of the last change */
    uint64_t create_time;        /* unix seconds */
    char tenant[FSM_ID_SIZE];    /* owning tenant */
    int admin;                   /* administrator */
    uint8_t pwhash[64];          /* PBKDF2 output (none for admin) */
    size_t pwhash_len;           /* bytes in pwhash */
    uint8_t salt[64];            /* PBKDF2 salt */
    size_t salt_len;             /* bytes in salt */
    uint64_t iterations;         /* PBKDF2 iterations */
};

/* ---- records ---- */

static int user_get(struct fsm *f, MDB_txn *txn, const char *id, struct user *u)
{
    msgpack_unpacked m;
    const msgpack_object *v;
    MDB_val val;
    int rc;

    memset(u, 0, sizeof *u);
    rc = fsm__get(f, txn, FSM_TBL_USERS, id, strlen(id), &val);
    if (rc != 0) {
        return rc;
    }
    msgpack_unpacked_init(&m);
    rc = fsm__mp_decode(val.mv_data, val.mv_size, &m);
    if (rc == 0) {
        rc = fsm__rec_str(&m.data, "UserID", u->id, sizeof u->id) ||
             fsm__rec_str(&m.data, "UserEmail", u->email, sizeof u->email) ||
             fsm__rec_str(&m.data, "Name", u->name, sizeof u->name) ||
             fsm__rec_str(&m.data, "Remark", u->remark, sizeof u->remark) ||
             fsm__rec_str(&m.data, "State", u->state, sizeof u->state) ||
             fsm__rec_str(&m.data, "TenantID", u->tenant, sizeof u->tenant);
    }
    if (rc == 0) {
        u->revision = fsm__rec_u64(&m.data, "Revision");
        u->create_time = fsm__rec_u64(&m.data, "CreateTime");
        u->admin = fsm__rec_u64(&m.data, "Admin") != 0;
        u->iterations = fsm__rec_u64(&m.data, "Iterations");
        v = yh_mp_get(&m.data, "PwHash");
        if (v != NULL && v->type == MSGPACK_OBJECT_BIN &&
            v->via.bin.size <= sizeof u->pwhash) {
            memcpy(u->pwhash, v->via.bin.ptr, v->via.bin.size);
            u->pwhash_len = v->via.bin.size;
        }
        v = yh_mp_get(&m.data, "Salt");
        if (v != NULL && v->type == MSGPACK_OBJECT_BIN &&
            v->via.bin.size <= sizeof u->salt) {
            memcpy(u->salt, v->via.bin.ptr, v->via.bin.size);
            u->salt_len = v->via.bin.size;
        }
    }
    msgpack_unpacked_destroy(&m);
    if (rc != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "user '%s' is corrupt", id);
        return YH_ECORRUPT;
    }
    return 0;
}

static int put(struct fsm_ctx *c,
               enum fsm_tbl t,
               const void *k,
               size_t kl,
               const void *v,
               size_t vl)
{
    c->wrote = 1;
    return fsm__put(c->f, c->txn, t, k, kl, v, vl);
}

static int del(struct fsm_ctx *c, enum fsm_tbl t, const void *k, size_t kl)
{
    c->wrote = 1;
    return fsm__del(c->f, c->txn, t, k, kl);
}

static int user_put(struct fsm_ctx *c, const struct user *u)
{
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    int rc;

    fsm__out_init(&o, &b);
    msgpack_pack_map(&o.pk, 12);
    yh_mp_pack_kv_str(&o.pk, "UserID", u->id);
    yh_mp_pack_kv_str(&o.pk, "UserEmail", u->email);
    yh_mp_pack_kv_str(&o.pk, "Name", u->name);
    yh_mp_pack_kv_str(&o.pk, "Remark", u->remark);
    yh_mp_pack_kv_str(&o.pk, "State", u->state);
    yh_mp_pack_str(&o.pk, "Revision");
    msgpack_pack_uint64(&o.pk, u->revision);
    yh_mp_pack_str(&o.pk, "CreateTime");
    msgpack_pack_uint64(&o.pk, u->create_time);
    yh_mp_pack_kv_str(&o.pk, "TenantID", u->tenant);
    yh_mp_pack_str(&o.pk, "Admin");
    if (u->admin) {
        msgpack_pack_true(&o.pk);
    } else {
        msgpack_pack_false(&o.pk);
    }
    yh_mp_pack_str(&o.pk, "PwHash");
    msgpack_pack_bin(&o.pk, u->pwhash_len);
    msgpack_pack_bin_body(&o.pk, u->pwhash, u->pwhash_len);
    yh_mp_pack_str(&o.pk, "Salt");
    msgpack_pack_bin(&o.pk, u->salt_len);
    msgpack_pack_bin_body(&o.pk, u->salt, u->salt_len);
    yh_mp_pack_str(&o.pk, "Iterations");
    msgpack_pack_uint64(&o.pk, u->iterations);
    rc = o.oom ? YH_ENOMEM
               : put(c, FSM_TBL_USERS, u->id, strlen(u->id), b.data, b.len);
    yh_buf_release(&b);
    if (rc == 0 && u->tenant[0] != '\0' && strcmp(u->tenant, u->id) != 0) {
        /* a sub-account: its tenant's row, for DescribeUser (a user's
         * tenant never changes, so the row is only ever added) */
        rc = fsm__tenant_index(c, u->tenant, u->id, strlen(u->id), 1);
    }
    return rc;
}

/* The user record as DescribeUser shows it (no secrets). */
static void user_pack_info(msgpack_packer *pk, const struct user *u)
{
    msgpack_pack_map(pk, 7);
    yh_mp_pack_kv_str(pk, "UserID", u->id);
    yh_mp_pack_kv_str(pk, "UserEmail", u->email);
    yh_mp_pack_kv_str(pk, "Name", u->name);
    yh_mp_pack_kv_str(pk, "Remark", u->remark);
    yh_mp_pack_kv_str(pk, "State", u->state);
    yh_mp_pack_str(pk, "Revision");
    msgpack_pack_uint64(pk, u->revision);
    yh_mp_pack_str(pk, "CreateTime");
    msgpack_pack_uint64(pk, u->create_time);
}

/* Email index key: the address lower-cased, so uniqueness and login ignore
 * case. */
static void email_key(const char *email, char *out)
{
    size_t i;

    for (i = 0; email[i] != '\0'; i++) {
        out[i] = (char)tolower((unsigned char)email[i]);
    }
    out[i] = '\0';
}

/* "Valid-looking": local@domain.tld, printable, no spaces. */
static int email_ok(const char *e)
{
    const char *at = strchr(e, '@');
    const char *dot;

    if (at == NULL || at == e || strchr(at + 1, '@') != NULL) {
        return 0;
    }
    for (const char *p = e; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    dot = strrchr(at + 1, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0';
}

/* Whether the actor may manage the credentials of user @uid (@u NULL if
 * it does not exist): itself, the administrator, or the main account of
 * the user's tenant (for its sub-accounts). */
static int may_manage(const struct fsm_ctx *c,
                      const char *uid,
                      const struct user *u)
{
    const struct fsm_actor *a = c->actor;

    if (a->admin || strcmp(uid, a->user_id) == 0) {
        return 1;
    }
    return u != NULL && !u->admin && a->user_id[0] != '\0' &&
           strcmp(a->user_id, a->tenant_id) == 0 &&
           strcmp(u->tenant, a->tenant_id) == 0;
}

/* Whether a user may authenticate: Normal or Frozen (a frozen account
 * keeps read access; fsm__authorize refuses its writes). */
static int user_active(const struct user *u)
{
    return strcmp(u->state, STATE_NORMAL) == 0 ||
           strcmp(u->state, STATE_FROZEN) == 0;
}

static int user_visible(const struct fsm_actor *a, const struct user *u)
{
    if (a->admin) {
        return 1;
    }
    if (strcmp(a->user_id, u->id) == 0) {
        return 1;
    }
    return a->tenant_id[0] != '\0' && strcmp(a->tenant_id, u->tenant) == 0;
}

/* ---- CreateUser ---- */

struct create_user_args
{
    char email[EMAIL_MAX + 1];   /* UserEmail */
    char name[NAME_MAX_LEN + 1]; /* Name */
};

static int create_user_args(struct fsm_ctx *c, struct create_user_args *a)
{
    TRY(fsm__arg_str(c, "UserEmail", 1, EMAIL_MAX, a->email, NULL));
    if (!email_ok(a->email)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'UserEmail': not an email "
                           "address");
    }
    return fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, NULL);
}

int fsm__user_create_check(struct fsm_ctx *c)
{
    struct create_user_args a;

    return create_user_args(c, &a);
}

int fsm__user_create_stamp(struct fsm_ctx *c)
{
    char pw[PASSWORD_MAX + 1];
    uint8_t salt[SALT_SIZE];
    uint8_t hash[HASH_SIZE];
    msgpack_packer *pk;
    int rc;

    rc = fsm__arg_str(c, "PassWord", 1, PASSWORD_MAX, pw, NULL);
    if (rc == 0 && strlen(pw) < PASSWORD_MIN) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'PassWord': at least %d "
                         "characters",
                         PASSWORD_MIN);
    }
    if (rc == 0 && RAND_bytes(salt, sizeof salt) != 1) {
        rc = YH_EINTERNAL;
    }
    if (rc == 0 && PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sizeof salt,
                                     FSM_PBKDF2_ITERATIONS, EVP_sha256(),
                                     sizeof hash, hash) != 1) {
        rc = YH_EINTERNAL;
    }
    OPENSSL_cleanse(pw, sizeof pw);
    if (rc != 0) {
        return rc;
    }
    pk = fsm__stamp_field(c, "PwHash");
    msgpack_pack_bin(pk, sizeof hash);
    msgpack_pack_bin_body(pk, hash, sizeof hash);
    pk = fsm__stamp_field(c, "Salt");
    msgpack_pack_bin(pk, sizeof salt);
    msgpack_pack_bin_body(pk, salt, sizeof salt);
    pk = fsm__stamp_field(c, "Iterations");
    msgpack_pack_uint64(pk, FSM_PBKDF2_ITERATIONS);
    return 0;
}

int fsm__user_create_apply(struct fsm_ctx *c)
{
    struct create_user_args a;
    const msgpack_object *it;
    char ekey[EMAIL_MAX + 1];
    uint64_t n;
    struct user u;
    MDB_val v;
    int rc;

    memset(&u, 0, sizeof u);
    TRY(create_user_args(c, &a));
    TRY(fsm__stamp_bin(c, "PwHash", HASH_SIZE, HASH_SIZE, u.pwhash,
                       &u.pwhash_len));
    TRY(fsm__stamp_bin(c, "Salt", 8, sizeof u.salt, u.salt, &u.salt_len));
    it = yh_mp_get(c->stamp, "Iterations");
    if (it == NULL || it->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        it->via.u64 == 0 || it->via.u64 > 10000000) {
        return fsm__reject(c, YH_EPROTO, "bad command: stamp 'Iterations'");
    }
    u.iterations = it->via.u64;
    email_key(a.email, ekey);
    rc = fsm__get(c->f, c->txn, FSM_TBL_EMAILS, ekey, strlen(ekey), &v);
    if (rc == 0) {
        return fsm__reject(c, YH_EEXIST, "UserEmail '%s' is already in use",
                           a.email);
    }
    if (rc != YH_ENOTFOUND) {
        return rc;
    }

    c->wrote = 1;
    TRY(fsm__counter_next(c->f, c->txn, USER_COUNTER, &n));
    snprintf(u.id, sizeof u.id, "uid-%08" PRIu64, n);
    memcpy(u.email, a.email, sizeof u.email);
    memcpy(u.name, a.name, sizeof u.name);
    snprintf(u.state, sizeof u.state, "%s", STATE_NORMAL);
    u.revision = c->index;
    u.create_time = c->time_ns / 1000000000u;
    memcpy(u.tenant, u.id, sizeof u.tenant);
    TRY(user_put(c, &u));
    TRY(put(c, FSM_TBL_EMAILS, ekey, strlen(ekey), u.id, strlen(u.id)));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", u.id);
    yh_mp_pack_str(fsm__field(c, "UserID"), u.id);
    return 0;
}

/* ---- API keys ---- */

static int gen_key_pair(struct fsm_ctx *c)
{
    uint8_t pub[20];
    uint8_t priv[32];
    char pub_hex[2 * sizeof pub + 1];
    char priv_hex[2 * sizeof priv + 1];

    if (RAND_bytes(pub, sizeof pub) != 1 ||
        RAND_bytes(priv, sizeof priv) != 1) {
        return YH_EINTERNAL;
    }
    yh_hex(pub, sizeof pub, pub_hex);
    yh_hex(priv, sizeof priv, priv_hex);
    yh_mp_pack_str(fsm__stamp_field(c, "PublicKey"), pub_hex);
    yh_mp_pack_str(fsm__stamp_field(c, "PrivateKey"), priv_hex);
    OPENSSL_cleanse(priv, sizeof priv);
    OPENSSL_cleanse(priv_hex, sizeof priv_hex);
    return 0;
}

static size_t userkey_key(const char *uid, const char *pub, char *out)
{
    size_t u = strlen(uid);
    size_t p = strlen(pub);

    memcpy(out, uid, u);
    out[u] = '\0';
    memcpy(out + u + 1, pub, p);
    return u + 1 + p;
}

/* Store the key pair of the stamp for user @uid (already checked to
 * exist). */
static int key_create(struct fsm_ctx *c, const char *uid)
{
    char pub[FSM_KEY_SIZE];
    char priv[FSM_KEY_SIZE];
    char uk[FSM_ID_SIZE + FSM_KEY_SIZE];
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    MDB_val v;
    int rc;

    TRY(fsm__stamp_str(c, "PublicKey", FSM_KEY_SIZE - 1, pub));
    TRY(fsm__stamp_str(c, "PrivateKey", FSM_KEY_SIZE - 1, priv));
    rc = fsm__get(c->f, c->txn, FSM_TBL_KEYS, pub, strlen(pub), &v);
    if (rc == 0) {
        return fsm__reject(c, YH_EEXIST, "API key '%s' already exists", pub);
    }
    if (rc != YH_ENOTFOUND) {
        return rc;
    }
    fsm__out_init(&o, &b);
    msgpack_pack_map(&o.pk, 5);
    yh_mp_pack_kv_str(&o.pk, "PublicKey", pub);
    yh_mp_pack_kv_str(&o.pk, "PrivateKey", priv);
    yh_mp_pack_kv_str(&o.pk, "UserID", uid);
    yh_mp_pack_str(&o.pk, "CreateTime");
    msgpack_pack_uint64(&o.pk, c->time_ns / 1000000000u);
    yh_mp_pack_str(&o.pk, "Revision");
    msgpack_pack_uint64(&o.pk, c->index);
    rc = o.oom ? YH_ENOMEM
               : put(c, FSM_TBL_KEYS, pub, strlen(pub), b.data, b.len);
    if (b.data != NULL) {
        OPENSSL_cleanse(b.data, b.cap);
    }
    yh_buf_release(&b);
    if (rc == 0) {
        rc = put(c, FSM_TBL_USERKEYS, uk, userkey_key(uid, pub, uk), "", 0);
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", pub);
    yh_mp_pack_str(fsm__field(c, "UserID"), uid);
    yh_mp_pack_str(fsm__field(c, "PublicKey"), pub);
    yh_mp_pack_str(fsm__field(c, "PrivateKey"), priv);
    OPENSSL_cleanse(priv, sizeof priv);
    return 0;
}

int fsm__key_create_check(struct fsm_ctx *c)
{
    char uid[FSM_ID_SIZE];

    return fsm__arg_str(c, "UserID", 0, FSM_ID_SIZE - 1, uid, NULL);
}

int fsm__key_create_stamp(struct fsm_ctx *c)
{
    return gen_key_pair(c);
}

int fsm__key_create_apply(struct fsm_ctx *c)
{
    char uid[FSM_ID_SIZE];
    struct user u;
    int given;
    int rc;

    TRY(fsm__arg_str(c, "UserID", 0, FSM_ID_SIZE - 1, uid, &given));
    if (!given) {
        snprintf(uid, sizeof uid, "%s", c->actor->user_id);
    }
    if (uid[0] == '\0') {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'UserID'");
    }
    rc = user_get(c->f, c->txn, uid, &u);
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    if (!may_manage(c, uid, rc == 0 ? &u : NULL)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: cannot create API keys for "
                           "another user");
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "user '%s' not found", uid);
    }
    if (strcmp(u.state, STATE_NORMAL) != 0) {
        return fsm__reject(c, YH_ESTATE, "user '%s' is %s", uid, u.state);
    }
    return key_create(c, uid);
}

int fsm__key_delete_check(struct fsm_ctx *c)
{
    char pub[FSM_KEY_SIZE];

    return fsm__arg_str(c, "PublicKey", 1, FSM_KEY_SIZE - 1, pub, NULL);
}

/* Number of keys of @uid, counting at most 2. */
static int count_keys(struct fsm_ctx *c, const char *uid, unsigned *n)
{
    size_t ulen = strlen(uid);
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *n = 0;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_USERKEYS], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'userkeys'");
    }
    k.mv_data = (void *)uid;
    k.mv_size = ulen + 1; /* uid NUL: the start of its range */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && *n < 2;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= ulen || memcmp(k.mv_data, uid, ulen) != 0 ||
            ((char *)k.mv_data)[ulen] != '\0') {
            break;
        }
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'userkeys'");
    }
    return 0;
}

int fsm__key_delete_apply(struct fsm_ctx *c)
{
    char pub[FSM_KEY_SIZE];
    char uid[FSM_ID_SIZE];
    char uk[FSM_ID_SIZE + FSM_KEY_SIZE];
    msgpack_unpacked m;
    struct user u;
    unsigned n;
    MDB_val v;
    int rc;

    TRY(fsm__arg_str(c, "PublicKey", 1, FSM_KEY_SIZE - 1, pub, NULL));
    rc = fsm__get(c->f, c->txn, FSM_TBL_KEYS, pub, strlen(pub), &v);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "API key '%s' not found", pub);
    }
    if (rc != 0) {
        return rc;
    }
    msgpack_unpacked_init(&m);
    rc = fsm__mp_decode(v.mv_data, v.mv_size, &m) != 0 ||
         fsm__rec_str(&m.data, "UserID", uid, sizeof uid) != 0;
    msgpack_unpacked_destroy(&m);
    if (rc != 0) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg, "key '%s' is corrupt", pub);
        return YH_ECORRUPT;
    }
    /* Never lock the administrator out. */
    rc = user_get(c->f, c->txn, uid, &u);
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    if (!may_manage(c, uid, rc == 0 ? &u : NULL)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: API key '%s' belongs to "
                           "another user",
                           pub);
    }
    if (rc == 0 && u.admin) {
        TRY(count_keys(c, uid, &n));
        if (n < 2) {
            return fsm__reject(c, YH_ESTATE,
                               "cannot delete the last API key of an "
                               "administrator");
        }
    }
    TRY(del(c, FSM_TBL_KEYS, pub, strlen(pub)));
    rc = del(c, FSM_TBL_USERKEYS, uk, userkey_key(uid, pub, uk));
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", pub);
    return 0;
}

int fsm__key_lookup(struct fsm *f,
                    MDB_txn *txn,
                    const char *public_key,
                    struct fsm_key *out)
{
    char uid[FSM_ID_SIZE];
    msgpack_unpacked m;
    struct user u;
    MDB_val v;
    int rc;

    rc = fsm__get(f, txn, FSM_TBL_KEYS, public_key, strlen(public_key), &v);
    if (rc != 0) {
        return rc;
    }
    msgpack_unpacked_init(&m);
    rc = fsm__mp_decode(v.mv_data, v.mv_size, &m) != 0 ||
         fsm__rec_str(&m.data, "UserID", uid, sizeof uid) != 0 ||
         fsm__rec_str(&m.data, "PrivateKey", out->private_key,
                      sizeof out->private_key) != 0;
    msgpack_unpacked_destroy(&m);
    if (rc != 0) {
        OPENSSL_cleanse(out->private_key, sizeof out->private_key);
        snprintf(f->errmsg, sizeof f->errmsg, "key '%s' is corrupt",
                 public_key);
        return YH_ECORRUPT;
    }
    if (fsm__is_host_id(uid)) {
        /* an executor's credentials: the host actor (no tenant) */
        struct fsm_rec h;
        fsm__rec_init(&h);
        rc = fsm__rec_load(f, txn, FSM_TBL_INFRA, uid, strlen(uid), &h);
        fsm__rec_free(&h);
        if (rc != 0) {
            OPENSSL_cleanse(out->private_key, sizeof out->private_key);
            return rc;
        }
        snprintf(out->actor.user_id, sizeof out->actor.user_id, "%s", uid);
        out->actor.tenant_id[0] = '\0';
        out->actor.admin = 0;
        return 0;
    }
    rc = user_get(f, txn, uid, &u);
    if (rc == 0 && !user_active(&u)) {
        rc = YH_ENOTFOUND;
    }
    if (rc != 0) {
        OPENSSL_cleanse(out->private_key, sizeof out->private_key);
        return rc;
    }
    memcpy(out->actor.user_id, u.id, sizeof out->actor.user_id);
    memcpy(out->actor.tenant_id, u.tenant, sizeof out->actor.tenant_id);
    out->actor.admin = u.admin;
    return 0;
}

/* ---- LoginByPassword ---- */

int fsm__login_check(struct fsm_ctx *c)
{
    char email[EMAIL_MAX + 1];

    TRY(fsm__arg_str(c, "UserEmail", 1, EMAIL_MAX, email, NULL));
    if (!email_ok(email)) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'UserEmail': not an email "
                           "address");
    }
    return 0;
}

/* Leader side: verify the password against the state and turn the login
 * into a key creation by that user. */
int fsm__login_stamp(struct fsm_ctx *c)
{
    static const uint8_t dummy_salt[SALT_SIZE];
    char email[EMAIL_MAX + 1];
    char ekey[EMAIL_MAX + 1];
    char pw[PASSWORD_MAX + 1];
    char uid[FSM_ID_SIZE];
    uint8_t hash[HASH_SIZE];
    struct user u;
    int found = 0;
    MDB_val v;
    int rc;

    TRY(fsm__arg_str(c, "UserEmail", 1, EMAIL_MAX, email, NULL));
    TRY(fsm__arg_str(c, "PassWord", 1, PASSWORD_MAX, pw, NULL));
    email_key(email, ekey);
    rc = fsm__get(c->f, c->txn, FSM_TBL_EMAILS, ekey, strlen(ekey), &v);
    if (rc == 0 && v.mv_size > 0 && v.mv_size < sizeof uid) {
        memcpy(uid, v.mv_data, v.mv_size);
        uid[v.mv_size] = '\0';
        rc = user_get(c->f, c->txn, uid, &u);
        found = rc == 0 && u.pwhash_len == HASH_SIZE && u.salt_len > 0 &&
                u.iterations > 0 && u.iterations <= 10000000 && user_active(&u);
    }
    if (rc != 0 && rc != YH_ENOTFOUND) {
        OPENSSL_cleanse(pw, sizeof pw);
        return rc;
    }
    /* Hash even for an unknown email, so timing does not tell which
     * addresses exist. */
    if (PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), found ? u.salt : dummy_salt,
                          found ? (int)u.salt_len : (int)sizeof dummy_salt,
                          found ? (int)u.iterations : FSM_PBKDF2_ITERATIONS,
                          EVP_sha256(), sizeof hash, hash) != 1) {
        OPENSSL_cleanse(pw, sizeof pw);
        return YH_EINTERNAL;
    }
    OPENSSL_cleanse(pw, sizeof pw);
    if (!found || CRYPTO_memcmp(hash, u.pwhash, HASH_SIZE) != 0) {
        return fsm__reject(c, YH_EAUTH, "wrong email or password");
    }
    memcpy(c->prep_actor.user_id, u.id, sizeof c->prep_actor.user_id);
    memcpy(c->prep_actor.tenant_id, u.tenant, sizeof c->prep_actor.tenant_id);
    c->prep_actor.admin = u.admin;
    return gen_key_pair(c);
}

int fsm__login_apply(struct fsm_ctx *c)
{
    char email[EMAIL_MAX + 1];
    char a[EMAIL_MAX + 1];
    char b[EMAIL_MAX + 1];
    struct user u;
    int rc;

    TRY(fsm__login_check(c));
    TRY(fsm__arg_str(c, "UserEmail", 1, EMAIL_MAX, email, NULL));
    if (c->actor->user_id[0] == '\0') {
        return fsm__reject(c, YH_EAUTH, "wrong email or password");
    }
    rc = user_get(c->f, c->txn, c->actor->user_id, &u);
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    /* The leader checked the password; the user may have changed since
     * (entries between prepare and this one). */
    email_key(email, a);
    email_key(u.email, b);
    if (rc == YH_ENOTFOUND || strcmp(a, b) != 0 || !user_active(&u)) {
        return fsm__reject(c, YH_EAUTH, "wrong email or password");
    }
    return key_create(c, u.id);
}

/* ---- ModifyNameAndRemark ---- */

struct modify_args
{
    char id[FSM_ID_SIZE];              /* ResourceID */
    char name[NAME_MAX_LEN + 1];       /* Name */
    char remark[REMARK_MAX + 1];       /* Remark */
    int has_name, has_remark, has_rev; /* which were given */
    int64_t if_revision;               /* IfRevision */
};

static int modify_args(struct fsm_ctx *c, struct modify_args *a)
{
    TRY(fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, a->id, NULL));
    TRY(fsm__arg_str(c, "Name", 0, NAME_MAX_LEN, a->name, &a->has_name));
    TRY(fsm__arg_str(c, "Remark", 0, REMARK_MAX, a->remark, &a->has_remark));
    TRY(fsm__arg_int(c, "IfRevision", 0, 0, INT64_MAX, &a->if_revision,
                     &a->has_rev));
    if (!a->has_name && !a->has_remark) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter 'Name' or 'Remark'");
    }
    return 0;
}

int fsm__user_modify_check(struct fsm_ctx *c)
{
    struct modify_args a;

    return modify_args(c, &a);
}

int fsm__user_modify_apply(struct fsm_ctx *c)
{
    struct modify_args a;
    struct user u;
    int rc;

    TRY(modify_args(c, &a));
    rc = user_get(c->f, c->txn, a.id, &u);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "resource '%s' not found", a.id);
    }
    if (rc != 0) {
        return rc;
    }
    if (!user_visible(c->actor, &u)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: '%s' belongs to another "
                           "tenant",
                           a.id);
    }
    if (a.has_rev && (uint64_t)a.if_revision != u.revision) {
        return fsm__reject(c, YH_ECONFLICT, "revision mismatch: have %" PRIu64,
                           u.revision);
    }
    if (a.has_name) {
        memcpy(u.name, a.name, sizeof u.name);
    }
    if (a.has_remark) {
        memcpy(u.remark, a.remark, sizeof u.remark);
    }
    u.revision = c->index;
    TRY(user_put(c, &u));
    yh_strlcpy(c->resource_id, u.id, sizeof c->resource_id);
    msgpack_pack_uint64(fsm__field(c, "Revision"), u.revision);
    return 0;
}

/* ---- DescribeUser ---- */

static int id_cmp(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* DescribeUser of a non-administrator without UserIDs: the users it may
 * see (itself, its tenant and the tenant's sub-accounts), in UserID order,
 * through the tenant's 'tenant_res' rows of sub-accounts. */
static int tenant_users(struct fsm_ctx *c,
                        MDB_cursor **cur,
                        struct fsm_out *o,
                        uint64_t offset,
                        uint64_t limit,
                        uint64_t *total,
                        uint64_t *n_items)
{
    const char *tenant = c->actor->tenant_id;
    char root[FSM_ID_SIZE];
    uint8_t pre[2 * FSM_ID_SIZE + 2];
    size_t tl = strlen(tenant), pl;
    int root_done = 0;
    struct user u;
    MDB_val k, v;
    int rc;

#define VISIT_ONE(user)                                 \
    do {                                                \
        if (user_visible(c->actor, (user))) {           \
            if (*total >= offset && *n_items < limit) { \
                user_pack_info(&o->pk, (user));         \
                (*n_items)++;                           \
            }                                           \
            (*total)++;                                 \
        }                                               \
    } while (0)
#define VISIT_ID(id)                               \
    do {                                           \
        int vr = user_get(c->f, c->txn, (id), &u); \
        if (vr == 0) {                             \
            VISIT_ONE(&u);                         \
        } else if (vr != YH_ENOTFOUND) {           \
            return vr;                             \
        }                                          \
    } while (0)

    if (tl == 0 || tl >= FSM_ID_SIZE) {
        /* no tenant: only itself */
        VISIT_ID(c->actor->user_id);
        return 0;
    }
    snprintf(root, sizeof root, "%s", tenant);
    memcpy(pre, tenant, tl);
    pre[tl] = '\0';
    memcpy(pre + tl + 1, SUB_PREFIX "-", sizeof SUB_PREFIX);
    pl = tl + 1 + sizeof SUB_PREFIX;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_TENANT_RES], cur);
    if (rc != 0) {
        *cur = NULL;
        return fsm__mdb_err(c->f, rc, "open cursor on 'tenant_res'");
    }
    k.mv_data = pre;
    k.mv_size = pl;
    for (rc = mdb_cursor_get(*cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(*cur, &k, &v, MDB_NEXT)) {
        char id[FSM_ID_SIZE];
        size_t idl;
        if (k.mv_size < pl || memcmp(k.mv_data, pre, pl) != 0) {
            break;
        }
        idl = k.mv_size - tl - 1;
        if (idl >= sizeof id) {
            continue;
        }
        memcpy(id, (const uint8_t *)k.mv_data + tl + 1, idl);
        id[idl] = '\0';
        if (!root_done && strcmp(root, id) < 0) {
            VISIT_ID(root);
            root_done = 1;
        }
        VISIT_ID(id);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'tenant_res'");
    }
    if (!root_done) {
        VISIT_ID(root);
    }
    return 0;
#undef VISIT_ID
#undef VISIT_ONE
}

int fsm__user_describe(struct fsm_ctx *c)
{
    char ids[100][FSM_ID_SIZE];
    struct yh_buf items = YH_BUF_INIT;
    uint64_t offset, limit, total = 0, n_items = 0;
    MDB_cursor *cur = NULL;
    struct fsm_out o;
    unsigned n_ids;
    struct user u;
    MDB_val k, v;
    int rc;

    TRY(fsm__arg_list(c, "UserIDs", 100, ids, &n_ids));
    TRY(fsm__arg_page(c, &offset, &limit));
    fsm__out_init(&o, &items);

    /* One visible user at a time, in UserID order. */
#define VISIT(user)                                   \
    do {                                              \
        if (user_visible(c->actor, (user))) {         \
            if (total >= offset && n_items < limit) { \
                user_pack_info(&o.pk, (user));        \
                n_items++;                            \
            }                                         \
            total++;                                  \
        }                                             \
    } while (0)

    if (n_ids > 0) {
        /* Direct lookups in key order (strcmp orders like LMDB's default
         * comparison for these NUL-free keys). */
        qsort(ids, n_ids, sizeof ids[0], id_cmp);
        for (unsigned i = 0; i < n_ids; i++) {
            if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0) {
                continue;
            }
            rc = user_get(c->f, c->txn, ids[i], &u);
            if (rc == YH_ENOTFOUND) {
                continue;
            }
            if (rc != 0) {
                goto out;
            }
            VISIT(&u);
        }
        rc = 0;
    } else if (!c->actor->admin) {
        /* Only the actor's tenant: its sub-accounts from the tenant's
         * 'tenant_res' rows, and the tenant itself in its place in
         * UserID order (not a scan of every user). */
        rc = tenant_users(c, &cur, &o, offset, limit, &total, &n_items);
        if (rc != 0) {
            goto out;
        }
    } else {
        rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_USERS], &cur);
        if (rc != 0) {
            rc = fsm__mdb_err(c->f, rc, "open cursor on 'users'");
            goto out;
        }
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            char id[FSM_ID_SIZE];
            if (k.mv_size == 0 || k.mv_size >= sizeof id) {
                continue;
            }
            memcpy(id, k.mv_data, k.mv_size);
            id[k.mv_size] = '\0';
            rc = user_get(c->f, c->txn, id, &u);
            if (rc != 0) {
                goto out;
            }
            VISIT(&u);
        }
        if (rc != MDB_NOTFOUND) {
            rc = fsm__mdb_err(c->f, rc, "read 'users'");
            goto out;
        }
        rc = 0;
    }
#undef VISIT
    if (o.oom) {
        rc = YH_ENOMEM;
        goto out;
    }
    msgpack_pack_array(fsm__field(c, "Infos"), (uint32_t)n_items);
    if (items.len > 0 &&
        yh_buf_append(&c->fields_buf, items.data, items.len) != 0) {
        c->fields.oom = 1;
    }
    msgpack_pack_uint64(fsm__field(c, "TotalCount"), total);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    yh_buf_release(&items);
    return rc;
}

/* ---- _Bootstrap and _Node ---- */

struct node_args
{
    uint64_t id;   /* NodeID */
    char raft[64]; /* RaftAddress */
    char api[64];  /* APIAddress */
};

static int node_args(const msgpack_object *m,
                     struct node_args *n,
                     int need_addrs)
{
    const msgpack_object *v = yh_mp_get(m, "NodeID");

    if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        v->via.u64 == 0) {
        return YH_EPROTO;
    }
    n->id = v->via.u64;
    if (!need_addrs) {
        return 0;
    }
    if (fsm__rec_str(m, "RaftAddress", n->raft, sizeof n->raft) != 0 ||
        fsm__rec_str(m, "APIAddress", n->api, sizeof n->api) != 0 ||
        n->raft[0] == '\0' || n->api[0] == '\0') {
        return YH_EPROTO;
    }
    return 0;
}

static int node_put(struct fsm_ctx *c, const struct node_args *n)
{
    struct yh_buf b = YH_BUF_INIT;
    struct fsm_out o;
    uint8_t key[8];
    int rc;

    fsm__out_init(&o, &b);
    msgpack_pack_map(&o.pk, 3);
    yh_mp_pack_str(&o.pk, "NodeID");
    msgpack_pack_uint64(&o.pk, n->id);
    yh_mp_pack_kv_str(&o.pk, "RaftAddress", n->raft);
    yh_mp_pack_kv_str(&o.pk, "APIAddress", n->api);
    fsm__be64_put(key, n->id);
    rc = o.oom ? YH_ENOMEM : put(c, FSM_TBL_NODES, key, 8, b.data, b.len);
    yh_buf_release(&b);
    return rc;
}

int fsm__bootstrap_apply(struct fsm_ctx *c)
{
    const msgpack_object *nodes = yh_mp_get(c->args, "Nodes");
    struct node_args n;
    struct user u;
    MDB_val v;
    int rc;

    if (nodes == NULL || nodes->type != MSGPACK_OBJECT_ARRAY) {
        return fsm__reject(c, YH_EPROTO, "bad command: 'Nodes'");
    }
    for (uint32_t i = 0; i < nodes->via.array.size; i++) {
        if (node_args(&nodes->via.array.ptr[i], &n, 1) != 0) {
            return fsm__reject(c, YH_EPROTO, "bad command: 'Nodes'");
        }
    }
    rc = fsm__get(c->f, c->txn, FSM_TBL_USERS, ADMIN_ID, strlen(ADMIN_ID), &v);
    if (rc == 0) {
        return fsm__reject(c, YH_EEXIST, "already bootstrapped");
    }
    if (rc != YH_ENOTFOUND) {
        return rc;
    }
    memset(&u, 0, sizeof u);
    snprintf(u.id, sizeof u.id, "%s", ADMIN_ID);
    snprintf(u.name, sizeof u.name, "admin");
    snprintf(u.state, sizeof u.state, "%s", STATE_NORMAL);
    u.revision = c->index;
    u.create_time = c->time_ns / 1000000000u;
    u.admin = 1;
    /* key_create decides its rejections (stamp, duplicate) before
     * writing; the user is written after it. */
    TRY(key_create(c, ADMIN_ID));
    TRY(user_put(c, &u));
    for (uint32_t i = 0; i < nodes->via.array.size; i++) {
        node_args(&nodes->via.array.ptr[i], &n, 1);
        TRY(node_put(c, &n));
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", ADMIN_ID);
    /* Key material stays out of the result: the caller has it. */
    c->n_fields = 0;
    yh_buf_reset(&c->fields_buf);
    yh_mp_pack_str(fsm__field(c, "UserID"), ADMIN_ID);
    return 0;
}

int fsm__node_apply(struct fsm_ctx *c)
{
    const msgpack_object *rm = yh_mp_get(c->args, "Remove");
    int remove =
        rm != NULL && rm->type == MSGPACK_OBJECT_BOOLEAN && rm->via.boolean;
    struct node_args n;
    uint8_t key[8];
    MDB_val v;
    int rc;

    if (rm != NULL && rm->type != MSGPACK_OBJECT_BOOLEAN) {
        return fsm__reject(c, YH_EPROTO, "bad command: 'Remove'");
    }
    if (node_args(c->args, &n, !remove) != 0) {
        return fsm__reject(c, YH_EPROTO, "bad command: node");
    }
    fsm__be64_put(key, n.id);
    snprintf(c->resource_id, sizeof c->resource_id, "node-%" PRIu64, n.id);
    if (remove) {
        rc = fsm__get(c->f, c->txn, FSM_TBL_NODES, key, 8, &v);
        if (rc == YH_ENOTFOUND) {
            return fsm__reject(c, YH_ENOTFOUND, "node %" PRIu64 " not found",
                               n.id);
        }
        if (rc != 0) {
            return rc;
        }
        TRY(del(c, FSM_TBL_NODES, key, 8));
    } else {
        TRY(node_put(c, &n));
    }
    msgpack_pack_uint64(fsm__field(c, "NodeID"), n.id);
    return 0;
}

/* ---- FreezeUser / UnfreezeUser ---- */

int fsm__user_freeze_check(struct fsm_ctx *c)
{
    char uid[FSM_ID_SIZE];

    return fsm__arg_str(c, "UserID", 1, FSM_ID_SIZE - 1, uid, NULL);
}

static int set_frozen(struct fsm_ctx *c, int frozen)
{
    char uid[FSM_ID_SIZE];
    const char *want = frozen ? STATE_FROZEN : STATE_NORMAL;
    struct user u;
    int rc;

    TRY(fsm__arg_str(c, "UserID", 1, FSM_ID_SIZE - 1, uid, NULL));
    rc = user_get(c->f, c->txn, uid, &u);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "user '%s' not found", uid);
    }
    if (rc != 0) {
        return rc;
    }
    if (u.admin) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: the administrator cannot be "
                           "frozen");
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", uid);
    if (strcmp(u.state, want) != 0) {
        /* Setting the desired state: freezing a frozen user is a no-op
         * success, not an error, so retries are harmless. */
        snprintf(u.state, sizeof u.state, "%s", want);
        u.revision = c->index;
        TRY(user_put(c, &u));
    }
    yh_mp_pack_str(fsm__field(c, "State"), u.state);
    msgpack_pack_uint64(fsm__field(c, "Revision"), u.revision);
    return 0;
}

int fsm__user_freeze_apply(struct fsm_ctx *c)
{
    return set_frozen(c, 1);
}

int fsm__user_unfreeze_apply(struct fsm_ctx *c)
{
    return set_frozen(c, 0);
}

/* ---- sub-accounts ---- */

static int only_main(struct fsm_ctx *c)
{
    if (!fsm__is_main(c)) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: only the main account "
                           "manages sub-accounts");
    }
    return 0;
}

int fsm__sub_create_check(struct fsm_ctx *c)
{
    struct create_user_args a;
    char tenant[FSM_ID_SIZE];

    TRY(create_user_args(c, &a));
    TRY(only_main(c));
    return c->actor->admin ? fsm__owner_arg(c, tenant) : 0;
}

/* Password material from the stamp (see fsm__user_create_stamp). */
static int user_stamp(struct fsm_ctx *c, struct user *u)
{
    const msgpack_object *it;

    TRY(fsm__stamp_bin(c, "PwHash", HASH_SIZE, HASH_SIZE, u->pwhash,
                       &u->pwhash_len));
    TRY(fsm__stamp_bin(c, "Salt", 8, sizeof u->salt, u->salt, &u->salt_len));
    it = yh_mp_get(c->stamp, "Iterations");
    if (it == NULL || it->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        it->via.u64 == 0 || it->via.u64 > 10000000) {
        return fsm__reject(c, YH_EPROTO, "bad command: stamp 'Iterations'");
    }
    u->iterations = it->via.u64;
    return 0;
}

int fsm__sub_create_apply(struct fsm_ctx *c)
{
    struct create_user_args a;
    char tenant[FSM_ID_SIZE];
    char ekey[EMAIL_MAX + 1];
    struct user u, t;
    MDB_val v;
    int rc;

    memset(&u, 0, sizeof u);
    TRY(create_user_args(c, &a));
    TRY(only_main(c));
    TRY(user_stamp(c, &u));
    TRY(fsm__owner_arg(c, tenant));
    rc = user_get(c->f, c->txn, tenant, &t);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "tenant '%s' not found", tenant);
    }
    if (rc != 0) {
        return rc;
    }
    email_key(a.email, ekey);
    rc = fsm__get(c->f, c->txn, FSM_TBL_EMAILS, ekey, strlen(ekey), &v);
    if (rc == 0) {
        return fsm__reject(c, YH_EEXIST, "UserEmail '%s' is already in use",
                           a.email);
    }
    if (rc != YH_ENOTFOUND) {
        return rc;
    }
    TRY(fsm__new_id(c, SUB_PREFIX, u.id));
    memcpy(u.email, a.email, sizeof u.email);
    memcpy(u.name, a.name, sizeof u.name);
    snprintf(u.state, sizeof u.state, "%s", STATE_NORMAL);
    u.revision = c->index;
    u.create_time = c->time_ns / 1000000000u;
    memcpy(u.tenant, tenant, sizeof u.tenant);
    TRY(user_put(c, &u));
    TRY(put(c, FSM_TBL_EMAILS, ekey, strlen(ekey), u.id, strlen(u.id)));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", u.id);
    yh_mp_pack_str(fsm__field(c, "SubAccountID"), u.id);
    return 0;
}

static int sub_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const char *want = arg;

    (void)c;
    return fsm__rec_i(r, "Admin") == 0 &&
           strcmp(fsm__rec_s(r, "TenantID"), fsm__rec_s(r, "UserID")) != 0 &&
           (want[0] == '\0' || strcmp(fsm__rec_s(r, "TenantID"), want) == 0);
}

static void sub_pack(struct fsm_ctx *c,
                     msgpack_packer *pk,
                     const struct fsm_rec *r,
                     void *arg)
{
    char roles[32][FSM_ID_SIZE];
    unsigned n = 0;

    (void)arg;
    if (fsm__rolebind_list(c->f, c->txn, fsm__rec_s(r, "UserID"), roles, 32,
                           &n) != 0) {
        n = 0;
    }
    msgpack_pack_map(pk, 9);
    yh_mp_pack_kv_str(pk, "SubAccountID", fsm__rec_s(r, "UserID"));
    yh_mp_pack_kv_str(pk, "UserEmail", fsm__rec_s(r, "UserEmail"));
    yh_mp_pack_kv_str(pk, "Name", fsm__rec_s(r, "Name"));
    yh_mp_pack_kv_str(pk, "Remark", fsm__rec_s(r, "Remark"));
    yh_mp_pack_kv_str(pk, "TenantID", fsm__rec_s(r, "TenantID"));
    yh_mp_pack_kv_str(pk, "State", fsm__rec_s(r, "State"));
    yh_mp_pack_str(pk, "Roles");
    msgpack_pack_array(pk, n);
    for (unsigned i = 0; i < n; i++) {
        yh_mp_pack_str(pk, roles[i]);
    }
    yh_mp_pack_kv_int(pk, "CreateTime", fsm__rec_i(r, "CreateTime"));
    yh_mp_pack_kv_int(pk, "Revision", fsm__rec_i(r, "Revision"));
}

int fsm__sub_describe(struct fsm_ctx *c)
{
    char tenant[FSM_ID_SIZE];
    struct fsm_desc d = {FSM_TBL_USERS, SUB_PREFIX "-", "SubAccountIDs", 0,
                         sub_keep,      sub_pack,       tenant};

    TRY(fsm__arg_str(c, "TenantID", 0, FSM_ID_SIZE - 1, tenant, NULL));
    return fsm__describe(c, &d);
}

int fsm__sub_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "SubAccountID", 1, FSM_ID_SIZE - 1, id, NULL));
    return only_main(c);
}

int fsm__sub_delete_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    char ekey[EMAIL_MAX + 1];
    char pubs[64][FSM_KEY_SIZE];
    char uk[FSM_ID_SIZE + FSM_KEY_SIZE];
    size_t idlen;
    unsigned n_pubs = 0;
    MDB_cursor *cur;
    struct user u;
    MDB_val k, v;
    int rc;

    TRY(fsm__sub_delete_check(c));
    fsm__arg_str(c, "SubAccountID", 1, FSM_ID_SIZE - 1, id, NULL);
    rc = user_get(c->f, c->txn, id, &u);
    if (rc == 0 &&
        (u.admin || strcmp(u.tenant, u.id) == 0 || !fsm__owns(c, u.tenant))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "sub-account '%s' not found", id);
    }
    if (rc != 0) {
        return rc;
    }
    /* Its keys go with it (collected first: deleting under a cursor over
     * the same table would be fragile). */
    idlen = strlen(id);
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_USERKEYS], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'userkeys'");
    }
    k.mv_data = id;
    k.mv_size = idlen + 1;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t pl;
        if (k.mv_size <= idlen + 1 || memcmp(k.mv_data, id, idlen + 1) != 0) {
            break;
        }
        pl = k.mv_size - idlen - 1;
        if (pl >= FSM_KEY_SIZE) {
            continue;
        }
        if (n_pubs == 64) {
            mdb_cursor_close(cur);
            return fsm__reject(c, YH_ESTATE,
                               "sub-account '%s' has too many API keys: "
                               "delete some first",
                               id);
        }
        memcpy(pubs[n_pubs], (char *)k.mv_data + idlen + 1, pl);
        pubs[n_pubs++][pl] = '\0';
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(c->f, rc, "read 'userkeys'");
    }
    for (unsigned i = 0; i < n_pubs; i++) {
        rc = del(c, FSM_TBL_KEYS, pubs[i], strlen(pubs[i]));
        if (rc != 0 && rc != YH_ENOTFOUND) {
            return rc;
        }
        TRY(del(c, FSM_TBL_USERKEYS, uk, userkey_key(id, pubs[i], uk)));
    }
    TRY(fsm__rolebind_drop(c, id));
    email_key(u.email, ekey);
    rc = del(c, FSM_TBL_EMAILS, ekey, strlen(ekey));
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    if (u.tenant[0] != '\0' && strcmp(u.tenant, id) != 0) {
        TRY(fsm__tenant_index(c, u.tenant, id, strlen(id), 0));
    }
    TRY(del(c, FSM_TBL_USERS, id, strlen(id)));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return 0;
}

/* ---- keys for other owners (hosts) ---- */

int fsm__key_stamp(struct fsm_ctx *c)
{
    return gen_key_pair(c);
}

int fsm__key_store(struct fsm_ctx *c, const char *owner)
{
    return key_create(c, owner);
}
