/* The fsm unit tests' shared fixture (see fsmtest.h). */
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "tests/lib/fsmtest.h"

/* ---- lifecycle ---- */

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

void fsmtest_rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void fsmtest_open(struct fsmtest *x)
{
    char err[YH_ERRMSG_SIZE];

    assert_int_equal(fsm_open(&x->f, x->dir, &x->cfg, err), 0);
}

struct fsmtest *fsmtest_new(void)
{
    struct fsmtest *x = calloc(1, sizeof *x);

    assert_non_null(x);
    snprintf(x->dir, sizeof x->dir, "/tmp/yh-test-fsm-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    x->cfg.nosync = 1;
    x->cfg.map_size = 64u << 20;
    x->cfg.token_ttl_ns = 3600 * FSMTEST_SEC;
    x->time = FSMTEST_T0;
    msgpack_unpacked_init(&x->res);
    fsmtest_open(x);
    return x;
}

void fsmtest_free(struct fsmtest *x)
{
    fsm_close(x->f);
    fsmtest_rm_rf(x->dir);
    fsmtest_log_free(x->log);
    msgpack_unpacked_destroy(&x->res);
    yh_buf_release(&x->env);
    yh_buf_release(&x->out);
    yh_buf_release(&x->event);
    yh_buf_release(&x->resbuf);
    free(x);
}

int fsmtest_setup(void **state)
{
    struct fsmtest *x = fsmtest_new();

    fsmtest_bootstrap(x);
    *state = x;
    return 0;
}

int fsmtest_setup_bare(void **state)
{
    *state = fsmtest_new();
    return 0;
}

int fsmtest_teardown(void **state)
{
    fsmtest_free(*state);
    return 0;
}

/* ---- results ---- */

/* x->res borrows strings from the bytes it was unpacked from: keep a
 * copy. */
void fsmtest_set_result(struct fsmtest *x, const struct yh_buf *b)
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
    assert_int_equal(off, x->resbuf.len);
    assert_int_equal(x->res.data.type, MSGPACK_OBJECT_MAP);
}

int64_t fsmtest_res_int(struct fsmtest *x, const char *key)
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

const char *fsmtest_res_str(struct fsmtest *x, const char *key)
{
    static char buf[4][256];
    static int i;
    char *out = buf[i++ & 3];

    if (yh_mp_strcpy(&x->res.data, key, out, 256) != 0) {
        out[0] = '\0';
    }
    return out;
}

const msgpack_object *fsmtest_info(struct fsmtest *x, unsigned i)
{
    const msgpack_object *v = yh_mp_get(&x->res.data, "Infos");

    assert_non_null(v);
    assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
    assert_true(i < v->via.array.size);
    return &v->via.array.ptr[i];
}

unsigned fsmtest_n_infos(struct fsmtest *x)
{
    const msgpack_object *v = yh_mp_get(&x->res.data, "Infos");

    assert_non_null(v);
    return v->via.array.size;
}

const char *fsmtest_info_str(struct fsmtest *x, unsigned i, const char *key)
{
    static char buf[4][256];
    static int j;
    char *out = buf[j++ & 3];

    if (yh_mp_strcpy(fsmtest_info(x, i), key, out, 256) != 0) {
        out[0] = '\0';
    }
    return out;
}

int64_t fsmtest_info_int(struct fsmtest *x, unsigned i, const char *key)
{
    const msgpack_object *o = yh_mp_get(fsmtest_info(x, i), key);
    int64_t v = -999999;

    if (o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN) {
        return o->via.boolean;
    }
    assert_int_equal(yh_mp_int(fsmtest_info(x, i), key, &v), 0);
    return v;
}

/* ---- driving the store ---- */

int fsmtest_apply_raw(struct fsmtest *x, const void *cmd, size_t len)
{
    int skipped = 1;
    int rc;

    x->index++;
    rc = fsm_apply(x->f, x->index, cmd, len, &x->out, &x->event, &x->tag,
                   &skipped);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(fsm_applied_index(x->f), x->index);
    if (x->log != NULL) {
        fsmtest_log_add(x->log, x->index, cmd, len);
    }
    fsmtest_set_result(x, &x->out);
    return (int)fsmtest_res_int(x, "RetCode");
}

void fsmtest_req_vbuild(struct yh_buf *b, const char *k, va_list ap)
{
    const char *keys[32];
    const char *vals[32];
    msgpack_packer pk;
    unsigned n = 0;

    while (k != NULL) {
        assert_true(n < 32);
        keys[n] = k;
        vals[n] = va_arg(ap, const char *);
        n++;
        k = va_arg(ap, const char *);
    }
    msgpack_packer_init(&pk, b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        yh_mp_pack_str(&pk, keys[i]);
        yh_mp_pack_str(&pk, vals[i]);
    }
}

/* Run a request the way the cluster layer would: prepare + apply for
 * writes, query for reads. */
int fsmtest_call_obj(struct fsmtest *x,
                     const char *action,
                     const struct fsm_actor *actor,
                     const msgpack_object *req)
{
    enum fsm_action_kind kind = fsm_action_kind(action, NULL);
    struct yh_buf result = YH_BUF_INIT;
    int rc;

    x->time += FSMTEST_SEC;
    x->proposed = 0;
    if (kind == FSM_ACT_READ) {
        assert_int_equal(fsm_query(x->f, action, req, actor, &result), 0);
        fsmtest_set_result(x, &result);
        yh_buf_release(&result);
        return (int)fsmtest_res_int(x, "RetCode");
    }
    assert_int_equal(fsm_cmd_prepare(x->f, action, req, actor, "127.0.0.1:5555",
                                     x->time, 77, &x->env, &result),
                     0);
    if (x->env.len == 0) {
        assert_true(result.len > 0);
        fsmtest_set_result(x, &result);
        if (getenv("YH_TEST_VERBOSE") != NULL) {
            fprintf(stderr, "%s: %s\n", action, fsmtest_res_str(x, "Message"));
        }
        yh_buf_release(&result);
        rc = (int)fsmtest_res_int(x, "RetCode");
        assert_int_not_equal(rc, 0);
        return rc;
    }
    assert_int_equal(result.len, 0);
    yh_buf_release(&result);
    x->proposed = 1;
    rc = fsmtest_apply_raw(x, x->env.data, x->env.len);
    assert_int_equal(x->tag, 77);
    if (rc != 0 && getenv("YH_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "%s: %s\n", action, fsmtest_res_str(x, "Message"));
    }
    return rc;
}

int fsmtest_call(struct fsmtest *x,
                 const char *action,
                 const struct fsm_actor *actor,
                 const char *k,
                 ...)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_unpacked u;
    size_t off = 0;
    va_list ap;
    int rc;

    va_start(ap, k);
    fsmtest_req_vbuild(&b, k, ap);
    va_end(ap);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    rc = fsmtest_call_obj(x, action, actor, &u.data);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
    return rc;
}

static int tick_cb(void *arg, const uint8_t *env, size_t len)
{
    struct fsmtest_tick *t = arg;

    if (t->n < 64) {
        t->codes[t->n] = fsmtest_apply_raw(t->x, env, len);
    }
    t->n++;
    return 0;
}

unsigned fsmtest_tick(struct fsmtest *x, struct fsmtest_tick *t)
{
    memset(t, 0, sizeof *t);
    t->x = x;
    assert_int_equal(fsm_leader_tick(x->f, x->time, tick_cb, t), 0);
    return t->n;
}

int fsmtest_tick_apply_cb(void *arg, const uint8_t *env, size_t len)
{
    fsmtest_apply_raw(arg, env, len);
    return 0;
}

/* ---- identities ---- */

void fsmtest_bootstrap_nodes(struct fsmtest *x,
                             const struct fsm_node *nodes,
                             unsigned n_nodes)
{
    struct fsm_key key;
    struct yh_buf b = YH_BUF_INIT;

    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", nodes, n_nodes, x->time, &b),
        0);
    assert_int_equal(fsmtest_apply_raw(x, b.data, b.len), 0);
    yh_buf_release(&b);
    assert_int_equal(fsm_key_get(x->f, "adminpub", &key), 0);
    assert_string_equal(key.private_key, "adminpriv");
    assert_true(key.actor.admin);
    x->admin = key.actor;
}

void fsmtest_bootstrap(struct fsmtest *x)
{
    fsmtest_bootstrap_nodes(x, NULL, 0);
}

void fsmtest_key_for(struct fsmtest *x,
                     const struct fsm_actor *by,
                     const char *uid,
                     struct fsm_actor *a)
{
    struct fsm_key key;

    assert_int_equal(fsmtest_call(x, "CreateAPIKey", by, "UserID", uid, NULL),
                     0);
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &key),
                     0);
    assert_string_equal(key.actor.user_id, uid);
    *a = key.actor;
}

void fsmtest_make_tenant(struct fsmtest *x,
                         const char *email,
                         struct fsm_actor *a,
                         char *uid_out)
{
    char uid[FSM_ID_SIZE];

    assert_int_equal(fsmtest_call(x, "CreateUser", &x->admin, "UserEmail",
                                  email, "PassWord", "secret-pass", NULL),
                     0);
    snprintf(uid, sizeof uid, "%s", fsmtest_res_str(x, "UserID"));
    fsmtest_key_for(x, &x->admin, uid, a);
    if (uid_out != NULL) {
        snprintf(uid_out, FSM_ID_SIZE, "%s", uid);
    }
}

/* ---- infrastructure ---- */

void fsmtest_storage(struct fsmtest *x, char *zone)
{
    static const char *const sets[] = {"Standard", "SSD", "Free"};

    assert_int_equal(
        fsmtest_call(x, "CreateZone", &x->admin, "Name", "disk-zone", NULL), 0);
    snprintf(zone, FSM_ID_SIZE, "%s", fsmtest_res_str(x, "ZoneID"));
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(
            fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID", zone,
                         "SetType", sets[i], "Backend", "ceph", "Pool", sets[i],
                         "Capacity", "1000000", NULL),
            0);
    }
}

void fsmtest_pool(struct fsmtest *x, const char *zone, const char *set)
{
    char name[80];

    snprintf(name, sizeof name, "%s-%s", zone, set);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  zone, "SetType", set, "Backend", "ceph",
                                  "Pool", name, "Capacity", "1000000", NULL),
                     0);
}

/* ---- comparing stores ---- */

char *fsmtest_dump_str(struct fsm *f)
{
    char *p = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&p, &n);

    assert_non_null(m);
    assert_int_equal(fsm_dump(f, m), 0);
    fclose(m);
    return p;
}

uint64_t fsmtest_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct fsmtest_log *fsmtest_log_new(unsigned cap)
{
    struct fsmtest_log *l = calloc(1, sizeof *l);

    assert_non_null(l);
    l->e = calloc(cap, sizeof *l->e);
    assert_non_null(l->e);
    l->cap = cap;
    return l;
}

void fsmtest_log_add(struct fsmtest_log *l,
                     uint64_t index,
                     const void *cmd,
                     size_t len)
{
    struct fsmtest_entry *e;

    assert_true(l->n < l->cap);
    e = &l->e[l->n++];
    e->index = index;
    e->cmd = malloc(len ? len : 1);
    assert_non_null(e->cmd);
    if (len > 0) {
        memcpy(e->cmd, cmd, len);
    }
    e->len = len;
}

void fsmtest_log_free(struct fsmtest_log *l)
{
    if (l == NULL) {
        return;
    }
    for (unsigned i = 0; i < l->n; i++) {
        free(l->e[i].cmd);
    }
    free(l->e);
    free(l);
}

void fsmtest_replay(struct fsm *f,
                    const struct fsmtest_log *l,
                    unsigned flush_every,
                    int want_skipped)
{
    struct yh_buf res = YH_BUF_INIT;
    uint64_t tag;
    int skipped;

    for (unsigned i = 0; i < l->n; i++) {
        assert_int_equal(fsm_apply(f, l->e[i].index, l->e[i].cmd, l->e[i].len,
                                   &res, NULL, &tag, &skipped),
                         0);
        assert_int_equal(skipped, want_skipped);
        if (flush_every && i % flush_every == 0) {
            assert_int_equal(fsm_flush(f), 0);
        }
    }
    yh_buf_release(&res);
}

void fsmtest_assert_restores(struct fsm *f, const char *dump)
{
    struct fsmtest *z = fsmtest_new();
    struct fsm_snap *sn;
    struct yh_buf snap = YH_BUF_INIT;
    int loaded;
    char *dump3;

    assert_int_equal(fsm_snapshot_begin(f, &sn), 0);
    assert_int_equal(fsm_snapshot_encode(sn, &snap), 0);
    fsm_snapshot_end(sn);
    assert_int_equal(fsm_restore(z->f, snap.data, snap.len, &loaded), 0);
    assert_true(loaded);
    dump3 = fsmtest_dump_str(z->f);
    assert_string_equal(dump, dump3);
    free(dump3);
    yh_buf_release(&snap);
    fsmtest_free(z);
}

char *fsmtest_assert_same(struct fsm *a, struct fsm *b)
{
    uint8_t d1[FSM_DIGEST_SIZE], d2[FSM_DIGEST_SIZE];
    char *dump1, *dump2;

    fsm_digest(a, d1);
    fsm_digest(b, d2);
    assert_memory_equal(d1, d2, FSM_DIGEST_SIZE);
    dump1 = fsmtest_dump_str(a);
    dump2 = fsmtest_dump_str(b);
    assert_string_equal(dump1, dump2);
    free(dump2);
    return dump1;
}

void fsmtest_bootstrap_copy(struct fsmtest *y)
{
    struct yh_buf bb = YH_BUF_INIT, res = YH_BUF_INIT;
    uint64_t tag;
    int skipped;

    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, FSMTEST_T0, &bb),
        0);
    assert_int_equal(
        fsm_apply(y->f, 1, bb.data, bb.len, &res, NULL, &tag, &skipped), 0);
    yh_buf_release(&bb);
    yh_buf_release(&res);
}

void fsmtest_make_cert(const char *cn, char **cert, char **key)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *c = X509_new();
    BIO *b;
    BUF_MEM *m;

    assert_non_null(k);
    assert_non_null(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_gmtime_adj(X509_getm_notBefore(c), 0);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400L * 365);
    X509_set_pubkey(c, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(c));
    assert_true(X509_sign(c, k, EVP_sha256()) > 0);
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, c), 1);
    BIO_get_mem_ptr(b, &m);
    *cert = strndup(m->data, m->length);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL),
                     1);
    BIO_get_mem_ptr(b, &m);
    *key = strndup(m->data, m->length);
    BIO_free(b);
    X509_free(c);
    EVP_PKEY_free(k);
}
