/* Snapshots: the whole state as one byte string (docs/disk-format.md).
 *
 *   "YHSNAP03" | be64 applied index | digest[32] | zstd frame of BODY |
 *   XXH3-128[16] of everything before
 *   BODY = be32 n_tables |
 *          n_tables x ( be16 name_len | name | be64 count |
 *                       count x ( be32 klen | key | be32 vlen | value ) )
 *
 * "YHSNAP02" (written before) has BODY in clear and is still restored.
 *
 * libraft 0.15 takes, stores and sends a snapshot as one memory buffer, so
 * the buffer is the node's peak memory: the body is compressed as it is
 * walked (zstd's streaming API; records with small-integer field names
 * compress ~4-6x) and decompressed as it is read back, never held in clear.
 *
 * begin flushes and opens an LMDB read transaction (MVCC: apply goes on
 * meanwhile); encode walks it on any thread; restore checks the checksum,
 * then in one pass validates every pair (table names, lengths, key order,
 * record encodings, content hash, format) while it replaces every table in
 * one write transaction, which it aborts at the first fault: a refused
 * snapshot leaves the state exactly as it was. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "fsm/base/log.h"
#include "base/crypto.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define SNAP_MAGIC "YHSNAP03"
#define SNAP_MAGIC_PLAIN "YHSNAP02"
#define SNAP_MAGIC_SIZE 8
#define SNAP_HEAD_SIZE (SNAP_MAGIC_SIZE + 8 + FSM_DIGEST_SIZE)
#define SNAP_SUM_SIZE 16 /* XXH3-128, canonical (big-endian) form */
#define SNAP_MAX_KEY 511 /* LMDB's default maximum key size */
/* zstd --fast=1. On the 240 MB body of 1M records (zstd -b): 1.1 GB/s
 * compressing, 2.3 GB/s decompressing, x7.1; level 1: 0.45 and 1.1 GB/s,
 * x7.6. Snapshot + restore of that state took 2.3-2.4 s either way. */
#define SNAP_ZSTD_LEVEL (-1)
#define SNAP_CHUNK (1u << 20)        /* clear bytes handed to zstd at a time */
#define SNAP_MAX_RECORD (256u << 20) /* window limit when reading */

/* Bytes of records between two looks at how much of the state file the
 * scan has mapped, and how much may be mapped before it is released. A
 * fixed interval in bytes of records is not enough: the kernel maps up to
 * 16 cached pages around each page faulted in (fault-around), and the
 * B-tree's leaves are scattered in the file, so 32 MB of records mapped
 * over 1 GB of the file between two releases (1M machines). */
#define SNAP_CHECK_EVERY (1u << 20)
#define SNAP_MAP_BUDGET (64u << 20)

struct fsm_snap
{
    struct fsm *f;                   /* owner */
    MDB_txn *txn;                    /* read txn on the state */
    uint64_t index;                  /* applied index of that state */
    uint8_t digest[FSM_DIGEST_SIZE]; /* its digest */
    int encoded;                     /* encode ran */
};

int fsm_snapshot_begin(struct fsm *f, struct fsm_snap **out)
{
    struct fsm_snap *s;
    int rc;

    *out = NULL;
    rc = fsm_flush(f);
    if (rc != 0) {
        return rc;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return YH_ENOMEM;
    }
    s->f = f;
    rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &s->txn);
    if (rc != 0) {
        rc = fsm__mdb_err(f, rc, "begin snapshot");
        goto err_after_alloc;
    }
    rc = fsm__meta_read(f, s->txn, &s->index, s->digest);
    if (rc != 0) {
        goto err_after_txn;
    }
    *out = s;
    return 0;

err_after_txn:
    mdb_txn_abort(s->txn);
err_after_alloc:
    free(s);
    return rc;
}

static int put_be(struct yh_buf *b, uint64_t v, unsigned n)
{
    uint8_t be[8];

    for (unsigned i = 0; i < n; i++) {
        be[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    return yh_buf_append(b, be, n);
}

/* The snapshot's checksum: XXH3-128 (a 250 MB snapshot took 0.15 s of
 * SHA-256; this guards against torn or flipped bytes, and replicas prove
 * agreement with the SHA-256 digest chain in the header). */
static void snap_sum(const void *p, size_t n, uint8_t out[SNAP_SUM_SIZE])
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    memcpy(out, c.digest, SNAP_SUM_SIZE);
}

/* The body is built in @clear and compressed into @out a chunk at a time. */
struct enc
{
    ZSTD_CCtx *z;        /* compressor */
    struct yh_buf clear; /* body bytes not yet compressed */
    struct yh_buf *out;  /* the snapshot */
};

/* Compress what @e->clear holds; with @end, finish the frame. */
static int enc_flush(struct enc *e, int end)
{
    ZSTD_inBuffer in = {e->clear.data, e->clear.len, 0};
    ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
    size_t left;

    do {
        ZSTD_outBuffer o;
        size_t room = ZSTD_CStreamOutSize();

        if (yh_buf_reserve(e->out, room) != 0) {
            return YH_ENOMEM;
        }
        o.dst = e->out->data + e->out->len;
        o.size = e->out->cap - e->out->len;
        o.pos = 0;
        left = ZSTD_compressStream2(e->z, &o, &in, mode);
        if (ZSTD_isError(left)) {
            YH_ERR("snapshot: zstd: %s", ZSTD_getErrorName(left));
            return ZSTD_getErrorCode(left) == ZSTD_error_memory_allocation
                       ? YH_ENOMEM
                       : YH_EIO;
        }
        e->out->len += o.pos;
    } while (end ? left != 0 : in.pos < in.size);
    yh_buf_reset(&e->clear);
    return 0;
}

static int enc_table(struct fsm_snap *s,
                     struct enc *e,
                     int t,
                     uint8_t content[32],
                     size_t *released)
{
    struct fsm *f = s->f;
    const char *name = fsm__tbls[t].name;
    struct yh_buf *b = &e->clear;
    MDB_cursor *cur;
    MDB_stat st;
    MDB_val k, v;
    uint64_t count = 0;
    int rc;

    /* The count comes first: LMDB keeps it for the transaction. */
    rc = mdb_stat(s->txn, f->dbis[t], &st);
    if (rc != 0) {
        return fsm__mdb_err(NULL, rc, "snapshot '%s'", name);
    }
    if (put_be(b, strlen(name), 2) != 0 ||
        yh_buf_append(b, name, strlen(name)) != 0 ||
        put_be(b, st.ms_entries, 8) != 0) {
        return YH_ENOMEM;
    }
    rc = mdb_cursor_open(s->txn, f->dbis[t], &cur);
    if (rc != 0) {
        return fsm__mdb_err(NULL, rc, "snapshot '%s'", name);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (fsm__content_covers(t, k.mv_data, k.mv_size)) {
            fsm__content_mix(content, t, k.mv_data, k.mv_size, v.mv_data,
                             v.mv_size, 1);
        }
        if (put_be(b, k.mv_size, 4) != 0 ||
            yh_buf_append(b, k.mv_data, k.mv_size) != 0 ||
            put_be(b, v.mv_size, 4) != 0 ||
            yh_buf_append(b, v.mv_data, v.mv_size) != 0) {
            rc = YH_ENOMEM;
            break;
        }
        count++;
        if (b->len >= SNAP_CHUNK) {
            *released += b->len;
            rc = enc_flush(e, 0);
            if (rc != 0) {
                break;
            }
        }
        /* Keep the scan from leaving the whole state file resident
         * while it runs (the pages it passed are not read again). */
        if (*released >= SNAP_CHECK_EVERY && f->map_addr != NULL) {
            /* f->map_addr was set at open, on the loop thread */
            if (fsm__map_over(SNAP_MAP_BUDGET)) {
                (void)madvise(f->map_addr, f->map_len, MADV_DONTNEED);
            }
            *released = 0;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        return rc == YH_ENOMEM || rc == YH_EIO
                   ? rc
                   : fsm__mdb_err(NULL, rc, "snapshot '%s'", name);
    }
    if (count != st.ms_entries) {
        YH_ERR("snapshot '%s': %llu records, LMDB counts %llu", name,
               (unsigned long long)count, (unsigned long long)st.ms_entries);
        return YH_ECORRUPT;
    }
    return 0;
}

int fsm_snapshot_encode(struct fsm_snap *s, struct yh_buf *out)
{
    struct fsm *f = s->f;
    struct enc e = {NULL, YH_BUF_INIT, out};
    uint8_t sum[SNAP_SUM_SIZE];
    uint8_t content[32] = {0};
    MDB_val ck = {7, "content"};
    MDB_val cv;
    size_t released = 0;
    int rc = 0;

    /* Runs off the loop thread: touches only the snapshot's txn and the
     * immutable handles (the map range was found at open), and never
     * f->errmsg (fsm__mdb_err gets NULL). */
    yh_buf_reset(out);
    if (yh_buf_append(out, SNAP_MAGIC, SNAP_MAGIC_SIZE) != 0 ||
        put_be(out, s->index, 8) != 0 ||
        yh_buf_append(out, s->digest, FSM_DIGEST_SIZE) != 0 ||
        put_be(&e.clear, FSM_N_TBL, 4) != 0) {
        rc = YH_ENOMEM;
        goto out;
    }
    e.z = ZSTD_createCCtx();
    if (e.z == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(
                           e.z, ZSTD_c_compressionLevel, SNAP_ZSTD_LEVEL))) {
        rc = YH_ENOMEM;
        goto out;
    }
    for (int t = 0; t < FSM_N_TBL && rc == 0; t++) {
        rc = enc_table(s, &e, t, content, &released);
    }
    if (rc == 0) {
        rc = enc_flush(&e, 1);
    }
    if (rc != 0) {
        goto out;
    }
    /* Never hand out state that no longer matches its content hash (bits
     * flipped on this node's disk): raft keeps the previous snapshot. */
    if (mdb_get(s->txn, f->dbis[FSM_TBL_META], &ck, &cv) != 0 ||
        cv.mv_size != 32 || memcmp(cv.mv_data, content, 32) != 0) {
        YH_ERR(
            "snapshot at %llu refused: records do not match their "
            "content hash (corrupt state)",
            (unsigned long long)s->index);
        rc = YH_ECORRUPT;
        goto out;
    }
    snap_sum(out->data, out->len, sum);
    if (yh_buf_append(out, sum, sizeof sum) != 0) {
        rc = YH_ENOMEM;
        goto out;
    }
    s->encoded = 1;
out:
    ZSTD_freeCCtx(e.z);
    yh_buf_release(&e.clear);
    return rc;
}

void fsm_snapshot_end(struct fsm_snap *s)
{
    if (s == NULL) {
        return;
    }
    mdb_txn_abort(s->txn);
    if (s->encoded) {
        fsm__map_release(s->f);
    }
    free(s);
}

/* ---- restore ---- */

size_t fsm__snap_window = 4u << 20;

/* Reads the body: straight from the snapshot (YHSNAP02) or through a
 * window that zstd refills (YHSNAP03). Bytes at p[off..len) are valid until
 * the next rd_need(). */
struct rd
{
    const uint8_t *p; /* window (or the clear body) */
    size_t len;       /* bytes in the window */
    size_t off;       /* cursor in the window */
    ZSTD_DStream *z;  /* NULL: clear body, nothing to refill */
    ZSTD_inBuffer in; /* the compressed body */
    uint8_t *win;     /* owned window (zstd) */
    size_t cap;       /* its size */
    int done;         /* zstd reported the end of the frame */
};

static int rd_open(struct rd *r, const uint8_t *snap, size_t len)
{
    const uint8_t *body = snap + SNAP_HEAD_SIZE;
    size_t n = len - SNAP_HEAD_SIZE - SNAP_SUM_SIZE;

    memset(r, 0, sizeof *r);
    if (memcmp(snap, SNAP_MAGIC_PLAIN, SNAP_MAGIC_SIZE) == 0) {
        r->p = body;
        r->len = n;
        return 0;
    }
    r->z = ZSTD_createDStream();
    r->cap = fsm__snap_window > 0 ? fsm__snap_window : 1;
    r->win = malloc(r->cap);
    if (r->z == NULL || r->win == NULL) {
        return YH_ENOMEM;
    }
    r->p = r->win;
    r->in.src = body;
    r->in.size = n;
    return 0;
}

static void rd_close(struct rd *r)
{
    ZSTD_freeDStream(r->z);
    free(r->win);
}

/* Make @n bytes available at p + off: YH_ECORRUPT if the body ends first
 * (or a record claims more than SNAP_MAX_RECORD), YH_ENOMEM. */
static int rd_need(struct rd *r, size_t n)
{
    while (r->len - r->off < n) {
        ZSTD_outBuffer o;
        size_t ret;

        if (r->z == NULL || r->done || n > SNAP_MAX_RECORD) {
            return YH_ECORRUPT;
        }
        if (r->off > 0) {
            memmove(r->win, r->win + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
        if (r->len == r->cap) {
            /* grows only as far as data really decompresses */
            uint8_t *w = realloc(r->win, 2 * r->cap);
            if (w == NULL) {
                return YH_ENOMEM;
            }
            r->win = w;
            r->p = w;
            r->cap *= 2;
        }
        o.dst = r->win;
        o.size = r->cap;
        o.pos = r->len;
        ret = ZSTD_decompressStream(r->z, &o, &r->in);
        if (ZSTD_isError(ret)) {
            return ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation
                       ? YH_ENOMEM
                       : YH_ECORRUPT;
        }
        if (ret == 0) {
            r->done = 1;
        } else if (o.pos == r->len && r->in.pos == r->in.size) {
            return YH_ECORRUPT; /* truncated frame */
        }
        r->len = o.pos;
    }
    return 0;
}

/* Nothing after the body: no clear bytes, no compressed bytes. */
static int rd_at_end(struct rd *r)
{
    if (r->off != r->len) {
        return 0;
    }
    if (r->z == NULL) {
        return 1;
    }
    if (!r->done && rd_need(r, 1) == 0) {
        return 0; /* more clear bytes */
    }
    return r->done && r->off == r->len && r->in.pos == r->in.size;
}

static uint64_t be_at(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Read a big-endian integer of @n bytes. */
static int rd_be(struct rd *r, unsigned n, uint64_t *v)
{
    int rc = rd_need(r, n);

    if (rc != 0) {
        return rc;
    }
    *v = be_at(r->p + r->off, n);
    r->off += n;
    return 0;
}

/* LMDB's default order: bytewise, a prefix first. */
static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    if (c != 0) {
        return c;
    }
    return an < bn ? -1 : an > bn;
}

/* One table entry of the snapshot, as read by the walker. */
struct snap_pair
{
    const uint8_t *k; /* key */
    size_t klen;      /* key size */
    const uint8_t *v; /* value */
    size_t vlen;      /* value size */
};

typedef int snap_pair_fn(void *arg, int tbl, const struct snap_pair *pr);

/* Read the next entry whole (its bytes stay valid until the next read). */
static int rd_pair(struct rd *r, struct snap_pair *pr)
{
    int rc;

    if ((rc = rd_need(r, 4)) != 0) {
        return rc;
    }
    pr->klen = be_at(r->p + r->off, 4);
    if (pr->klen == 0 || pr->klen > SNAP_MAX_KEY) {
        return YH_EINVAL; /* reported as a bad key size */
    }
    if ((rc = rd_need(r, 8 + pr->klen)) != 0) {
        return rc;
    }
    pr->vlen = be_at(r->p + r->off + 4 + pr->klen, 4);
    if ((rc = rd_need(r, 8 + pr->klen + pr->vlen)) != 0) {
        return rc;
    }
    pr->k = r->p + r->off + 4;
    pr->v = pr->k + pr->klen + 4;
    r->off += 8 + pr->klen + pr->vlen;
    return 0;
}

/* Walk the body; validates everything and calls @fn per pair (may be
 * NULL). */
static int snap_walk(const uint8_t *data,
                     size_t len,
                     snap_pair_fn *fn,
                     void *arg,
                     char *why,
                     size_t why_size)
{
    struct rd r;
    int seen[FSM_N_TBL] = {0};
    uint8_t prev[SNAP_MAX_KEY];
    uint64_t n_tables;
    int rc;

#define BAD(...)                                 \
    do {                                         \
        snprintf(why, why_size, __VA_ARGS__);    \
        rc = rc == YH_ENOMEM ? rc : YH_ECORRUPT; \
        goto out;                                \
    } while (0)
    rc = rd_open(&r, data, len);
    if (rc != 0) {
        BAD("out of memory");
    }
    if ((rc = rd_be(&r, 4, &n_tables)) != 0 || n_tables > FSM_N_TBL) {
        BAD("bad table count");
    }
    for (uint64_t i = 0; i < n_tables; i++) {
        char name[64];
        uint64_t name_len, count;
        size_t prev_len = 0;
        int t;

        if ((rc = rd_be(&r, 2, &name_len)) != 0 || name_len >= sizeof name ||
            (rc = rd_need(&r, name_len)) != 0) {
            BAD("truncated table header");
        }
        memcpy(name, r.p + r.off, name_len);
        name[name_len] = '\0';
        r.off += name_len;
        for (t = 0; t < FSM_N_TBL; t++) {
            if (strcmp(fsm__tbls[t].name, name) == 0) {
                break;
            }
        }
        if (t == FSM_N_TBL || seen[t]) {
            BAD("unknown or repeated table '%.32s'", name);
        }
        seen[t] = 1;
        if ((rc = rd_be(&r, 8, &count)) != 0 ||
            (r.z == NULL && count > (r.len - r.off) / 9)) {
            BAD("bad count in table '%.16s'", fsm__tbls[t].name);
        }
        for (uint64_t j = 0; j < count; j++) {
            struct snap_pair pr;

            rc = rd_pair(&r, &pr);
            if (rc == YH_EINVAL) {
                BAD("bad key size in table '%.16s'", fsm__tbls[t].name);
            }
            if (rc != 0) {
                BAD("truncated entry in table '%.16s'", fsm__tbls[t].name);
            }
            if (j > 0 && key_cmp(prev, prev_len, pr.k, pr.klen) >= 0) {
                BAD("keys out of order in table '%.16s'", fsm__tbls[t].name);
            }
            memcpy(prev, pr.k, pr.klen);
            prev_len = pr.klen;
            if ((fsm__tbls[t].key_fmt == FSM_FMT_U64 && pr.klen != 8) ||
                (fsm__tbls[t].key_fmt == FSM_FMT_U64_STR && pr.klen <= 8)) {
                BAD("bad key in table '%.16s'", fsm__tbls[t].name);
            }
            if (fsm__tbls[t].val_fmt == FSM_FMT_MP &&
                fsm__mp_check(pr.v, pr.vlen, FSM_MAX_DEPTH) != 0) {
                BAD("bad record in table '%.16s'", fsm__tbls[t].name);
            }
            if (fn != NULL) {
                rc = fn(arg, t, &pr);
                if (rc != 0) {
                    goto out;
                }
            }
        }
    }
    if (!rd_at_end(&r)) {
        BAD("trailing bytes");
    }
#undef BAD
    rc = 0;
out:
    rd_close(&r);
    return rc;
}

/* Restore is one pass: every pair is validated (snap_walk) and appended to
 * a write transaction that replaced every table; anything wrong aborts that
 * transaction, so the state is untouched. Along the way it learns the
 * snapshot's meta "format" (0 if absent or not 8 bytes) and whether its
 * records add up to the content hash it carries (meta "content"), so that
 * bytes changed before the checksum was computed (a corrupt sender) are
 * refused too. */
struct load
{
    struct fsm *f;       /* target */
    MDB_txn *txn;        /* write txn */
    uint8_t content[32]; /* content hash of what was loaded */
    uint64_t format;     /* meta "format" */
    uint8_t claimed[32]; /* meta "content" */
    int have_claim;      /* meta "content" was there, 32 bytes */
};

static int load_pair(void *arg, int tbl, const struct snap_pair *pr)
{
    struct load *l = arg;
    MDB_val k = {pr->klen, (void *)pr->k};
    MDB_val v = {pr->vlen, (void *)pr->v};
    /* Keys were checked to be sorted: append without searching. */
    int rc = mdb_put(l->txn, l->f->dbis[tbl], &k, &v, MDB_APPEND);

    if (rc != 0) {
        return fsm__mdb_err(l->f, rc, "restore '%s'", fsm__tbls[tbl].name);
    }
    if (fsm__content_covers(tbl, pr->k, pr->klen)) {
        fsm__content_mix(l->content, tbl, pr->k, pr->klen, pr->v, pr->vlen, 1);
    }
    if (tbl != FSM_TBL_META) {
        return 0;
    }
    if (pr->klen == 6 && memcmp(pr->k, "format", 6) == 0) {
        l->format = pr->vlen == 8 ? fsm__be64_get(pr->v) : 0;
    } else if (pr->klen == 7 && memcmp(pr->k, "content", 7) == 0 &&
               pr->vlen == 32) {
        memcpy(l->claimed, pr->v, 32);
        l->have_claim = 1;
    }
    return 0;
}

int fsm_restore(struct fsm *f, const void *data, size_t len, int *loaded)
{
    const uint8_t *p = data;
    uint8_t sum[SNAP_SUM_SIZE];
    uint8_t digest[FSM_DIGEST_SIZE];
    struct load l = {f, NULL, {0}, 0, {0}, 0};
    uint8_t content_was[32];
    uint64_t index;
    char why[128] = "";
    int rc;

    *loaded = 0;
    if (p == NULL || len < SNAP_HEAD_SIZE + SNAP_SUM_SIZE ||
        (memcmp(p, SNAP_MAGIC, SNAP_MAGIC_SIZE) != 0 &&
         memcmp(p, SNAP_MAGIC_PLAIN, SNAP_MAGIC_SIZE) != 0)) {
        snprintf(f->errmsg, sizeof f->errmsg, "snapshot: bad magic or size");
        YH_ERR("%s", f->errmsg);
        return YH_ECORRUPT;
    }
    snap_sum(p, len - SNAP_SUM_SIZE, sum);
    if (memcmp(sum, p + len - SNAP_SUM_SIZE, SNAP_SUM_SIZE) != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "snapshot: checksum mismatch");
        YH_ERR("%s", f->errmsg);
        return YH_ECORRUPT;
    }
    index = fsm__be64_get(p + SNAP_MAGIC_SIZE);
    memcpy(digest, p + SNAP_MAGIC_SIZE + 8, FSM_DIGEST_SIZE);
    if (index <= f->applied) {
        /* (its body is not even read: same log, same state) */
        YH_INFO("snapshot at %llu not loaded: state is at %llu",
                (unsigned long long)index, (unsigned long long)f->applied);
        return 0;
    }

    rc = fsm_flush(f);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_txn_begin(f->env, NULL, 0, &l.txn);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "begin restore") == YH_ENOMEM ? YH_ENOMEM
                                                                 : YH_EIO;
    }
    for (int t = 0; t < FSM_N_TBL; t++) {
        rc = mdb_drop(l.txn, f->dbis[t], 0);
        if (rc != 0) {
            rc = fsm__mdb_err(f, rc, "clear '%s'", fsm__tbls[t].name);
            goto err_after_txn;
        }
    }
    rc = snap_walk(p, len, load_pair, &l, why, sizeof why);
    if (rc == YH_ECORRUPT) {
        snprintf(f->errmsg, sizeof f->errmsg, "snapshot: %s", why);
        goto refused;
    }
    if (rc != 0) {
        goto err_after_txn;
    }
    if (!l.have_claim || memcmp(l.claimed, l.content, 32) != 0) {
        snprintf(f->errmsg, sizeof f->errmsg,
                 "snapshot: records do not match their content hash");
        goto refused;
    }
    if (l.format != FSM_FORMAT_VERSION) {
        /* another version's derived tables (e.g. 'res_list') would be
         * missing or different: pages and counts would be wrong */
        snprintf(f->errmsg, sizeof f->errmsg,
                 "snapshot: state of format version %llu, not %d",
                 (unsigned long long)l.format, FSM_FORMAT_VERSION);
        goto refused;
    }
    memcpy(content_was, f->content, 32);
    memcpy(f->content, l.content, 32); /* written by fsm__meta_write */
    rc = fsm__meta_write(f, l.txn, index, digest);
    if (rc != 0) {
        memcpy(f->content, content_was, 32);
        goto err_after_txn;
    }
    {
        /* The format version marker is part of meta; keep it. */
        uint8_t be[8];
        fsm__be64_put(be, FSM_FORMAT_VERSION);
        rc = fsm__put(f, l.txn, FSM_TBL_META, "format", 6, be, 8);
        if (rc != 0) {
            goto err_after_txn;
        }
    }
    rc = mdb_txn_commit(l.txn);
    if (rc != 0) {
        memcpy(f->content, content_was, 32);
        rc = fsm__mdb_err(f, rc, "commit restore");
        return rc == YH_ENOMEM ? rc : YH_EIO;
    }
    f->applied = index;
    memcpy(f->digest, digest, FSM_DIGEST_SIZE);
    f->errored = 0; /* whatever was lost is in the snapshot */
    *loaded = 1;
    fsm__map_release(f);
    YH_INFO("restored snapshot at index %llu", (unsigned long long)index);
    return 0;

refused:
    YH_ERR("%s", f->errmsg);
    mdb_txn_abort(l.txn);
    return YH_ECORRUPT;

err_after_txn:
    mdb_txn_abort(l.txn);
    return rc == YH_ENOMEM ? rc : YH_EIO;
}
