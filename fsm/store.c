/* LMDB store: one environment, one named database per table, one write
 * transaction per batch of applied entries.
 *
 * The batch is opened lazily by the first fsm_apply() and committed by
 * fsm_flush() together with the applied index and digest (meta), so a crash
 * loses whole batches only and the committed meta says exactly which entries
 * the state holds. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "fsm/base/log.h"
#include "base/crypto.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

const struct fsm_tbl_info fsm__tbls[FSM_N_TBL] = {
    [FSM_TBL_META] = {"meta", FSM_FMT_STR, FSM_FMT_RAW},
    [FSM_TBL_USERS] = {"users", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_EMAILS] = {"emails", FSM_FMT_STR, FSM_FMT_STR},
    [FSM_TBL_KEYS] = {"keys", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_USERKEYS] = {"userkeys", FSM_FMT_STR, FSM_FMT_RAW},
    [FSM_TBL_TOKENS] = {"tokens", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_TOKEN_EXP] = {"token_exp", FSM_FMT_U64_STR, FSM_FMT_RAW},
    [FSM_TBL_OPLOG] = {"oplog", FSM_FMT_U64, FSM_FMT_MP},
    [FSM_TBL_NODES] = {"nodes", FSM_FMT_U64, FSM_FMT_MP},
    [FSM_TBL_ROLES] = {"roles", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_ROLEBIND] = {"rolebind", FSM_FMT_STR, FSM_FMT_RAW},
    [FSM_TBL_QUOTAS] = {"quotas", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_USAGE] = {"usage", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_PRICES] = {"prices", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_ACCOUNTS] = {"accounts", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_SERIALS] = {"serials", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_ORDERS] = {"orders", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_TXNS] = {"txns", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_RES] = {"resources", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_INFRA] = {"infra", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_JOBS] = {"jobs", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_NET] = {"net", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_AUTO] = {"auto", FSM_FMT_STR, FSM_FMT_MP},
    [FSM_TBL_TENANT_RES] = {"tenant_res", FSM_FMT_STR, FSM_FMT_RAW},
    [FSM_TBL_RES_LIST] = {"res_list", FSM_FMT_STR, FSM_FMT_RAW},
};

#define META_APPLIED "applied"
#define META_DIGEST "digest"
#define META_FORMAT "format"
#define META_CONTENT "content"

int fsm__content_covers(int t, const void *key, size_t klen)
{
    static const char *const own[] = {META_APPLIED, META_DIGEST, META_CONTENT,
                                      META_FORMAT};

    if (t != FSM_TBL_META) {
        return 1;
    }
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (klen == strlen(own[i]) && memcmp(key, own[i], klen) == 0) {
            return 0;
        }
    }
    return 1;
}

void fsm__be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

uint64_t fsm__be64_get(const uint8_t in[8])
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | in[i];
    }
    return v;
}

int fsm__mdb_err(struct fsm *f, int rc, const char *fmt, ...)
{
    char what[128];
    va_list ap;
    int code;

    if (rc == MDB_NOTFOUND) {
        return YH_ENOTFOUND;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    switch (rc) {
    case ENOMEM:
        code = YH_ENOMEM;
        break;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_DBI:
        code = YH_ECORRUPT;
        break;
    default:
        code = YH_EIO;
        break;
    }
    if (f != NULL) {
        snprintf(f->errmsg, sizeof f->errmsg, "lmdb: %s: %s", what,
                 mdb_strerror(rc));
    }
    YH_ERR("lmdb: %s: %s", what, mdb_strerror(rc));
    return code;
}

/* mkdir -p @dir. */
static int make_dirs(const char *dir, char *errmsg)
{
    char path[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof path) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "bad directory '%s'", dir);
        return YH_EIO;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') {
            continue;
        }
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "cannot create '%.160s': %s", path,
                     strerror(errno));
            return YH_EIO;
        }
        path[i] = dir[i];
    }
    return 0;
}

int fsm__store_open(struct fsm *f,
                    const char *dir,
                    const struct fsm_config *cfg,
                    char *errmsg)
{
    size_t map_size =
        cfg && cfg->map_size ? cfg->map_size : FSM_DEFAULT_MAP_SIZE;
    unsigned flags = MDB_NOTLS;
    MDB_txn *txn;
    MDB_val v;
    int dead;
    int rc;

    if (cfg != NULL && cfg->nosync) {
        flags |= MDB_NOSYNC;
    }
    rc = make_dirs(dir, errmsg);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_env_create(&f->env);
    if (rc != 0) {
        goto err;
    }
    rc = mdb_env_set_maxdbs(f->env, 64);
    if (rc != 0) {
        goto err_after_env_create;
    }
    rc = mdb_env_set_mapsize(f->env, map_size);
    if (rc != 0) {
        goto err_after_env_create;
    }
    rc = mdb_env_open(f->env, dir, flags, 0600);
    if (rc != 0) {
        goto err_after_env_create;
    }
    /* A crashed process may have left reader slots behind. */
    mdb_reader_check(f->env, &dead);

    rc = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rc != 0) {
        goto err_after_env_create;
    }
    for (int i = 0; i < FSM_N_TBL; i++) {
        rc = mdb_dbi_open(txn, fsm__tbls[i].name, MDB_CREATE, &f->dbis[i]);
        if (rc != 0) {
            goto err_after_txn;
        }
    }
    rc = mdb_get(txn, f->dbis[FSM_TBL_META],
                 &(MDB_val){strlen(META_FORMAT), META_FORMAT}, &v);
    if (rc == MDB_NOTFOUND) {
        uint8_t be[8];
        fsm__be64_put(be, FSM_FORMAT_VERSION);
        rc = mdb_put(txn, f->dbis[FSM_TBL_META],
                     &(MDB_val){strlen(META_FORMAT), META_FORMAT},
                     &(MDB_val){8, be}, 0);
        if (rc != 0) {
            goto err_after_txn;
        }
    } else if (rc != 0) {
        goto err_after_txn;
    } else if (v.mv_size != 8 ||
               fsm__be64_get(v.mv_data) != FSM_FORMAT_VERSION) {
        mdb_txn_abort(txn);
        snprintf(errmsg, YH_ERRMSG_SIZE,
                 "'%s' holds state of an unknown format version", dir);
        rc = YH_ECORRUPT;
        goto err_after_env_open;
    }
    rc = fsm__meta_read(f, txn, &f->applied, f->digest);
    if (rc != 0) {
        mdb_txn_abort(txn);
        snprintf(errmsg, YH_ERRMSG_SIZE, "'%.100s': %.140s", dir, f->errmsg);
        goto err_after_env_open;
    }
    /* Every record must still hash to what was committed with it: LMDB has
     * no checksums, and a node serving flipped bits would diverge silently
     * (and spread them in its snapshots). */
    rc = fsm__content_scan(f, txn, f->content);
    if (rc == 0) {
        uint8_t stored[32];
        rc = fsm__content_read(f, txn, stored);
        if (rc == YH_ENOTFOUND) {
            rc = fsm__put(f, txn, FSM_TBL_META, META_CONTENT,
                          strlen(META_CONTENT), f->content, 32);
        } else if (rc == 0 && memcmp(stored, f->content, 32) != 0) {
            rc = YH_ECORRUPT;
            snprintf(f->errmsg, sizeof f->errmsg,
                     "records do not match their content hash");
        }
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        snprintf(errmsg, YH_ERRMSG_SIZE,
                 "'%.100s': %.100s: the state is corrupt; refusing to use "
                 "it (move it away: the node rebuilds from its peers)",
                 dir, f->errmsg);
        rc = rc == YH_ENOMEM ? rc : YH_ECORRUPT;
        goto err_after_env_open;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        goto err_after_env_create;
    }
    fsm__map_release(f);
    return 0;

err_after_txn:
    mdb_txn_abort(txn);
err_after_env_create:
    rc = fsm__mdb_err(f, rc, "open '%s'", dir);
    snprintf(errmsg, YH_ERRMSG_SIZE, "%s", f->errmsg);
err_after_env_open:
    mdb_env_close(f->env);
    f->env = NULL;
    f->map_addr = NULL;
    return rc;
err:
    rc = fsm__mdb_err(f, rc, "create environment");
    snprintf(errmsg, YH_ERRMSG_SIZE, "%s", f->errmsg);
    return rc;
}

void fsm__store_close(struct fsm *f)
{
    if (f->rtxn != NULL) {
        mdb_txn_abort(f->rtxn);
        f->rtxn = NULL;
    }
    if (f->wtxn != NULL) {
        mdb_txn_abort(f->wtxn);
        f->wtxn = NULL;
        fsm__wcursors_forget(f);
    }
    if (f->env != NULL) {
        mdb_env_close(f->env);
        f->env = NULL;
        f->map_addr = NULL;
    }
}

int fsm__batch(struct fsm *f, MDB_txn **txn)
{
    int rc;

    if (f->wtxn == NULL) {
        rc = mdb_txn_begin(f->env, NULL, 0, &f->wtxn);
        if (rc != 0) {
            f->wtxn = NULL;
            return fsm__mdb_err(f, rc, "begin batch");
        }
    }
    *txn = f->wtxn;
    return 0;
}

void fsm__batch_abort(struct fsm *f)
{
    uint64_t was = f->applied;
    MDB_txn *txn;

    f->nodes_gen++;
    if (f->wtxn != NULL) {
        mdb_txn_abort(f->wtxn);
        f->wtxn = NULL;
        fsm__wcursors_forget(f);
    }
    /* Back to what is committed. If even that cannot be read, keep the
     * old values: the next apply will fail the same way. */
    if (mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn) == 0) {
        fsm__meta_read(f, txn, &f->applied, f->digest);
        if (fsm__content_read(f, txn, f->content) == YH_ENOTFOUND) {
            memset(f->content, 0, sizeof f->content);
        }
        mdb_txn_abort(txn);
    }
    if (f->applied != was && !f->errored) {
        f->errored = 1;
        YH_ERR(
            "rolled back entries %llu..%llu that were reported applied: "
            "refusing further applies until restart",
            (unsigned long long)f->applied + 1, (unsigned long long)was);
    }
}

int fsm__rtxn_begin(struct fsm *f, MDB_txn **txn)
{
    int rc;

    if (f->wtxn != NULL) {
        *txn = f->wtxn;
        return 0;
    }
    /* Every authenticated request looks its key up: renewing one reset
     * read transaction skips allocating a transaction and a reader slot. */
    if (f->rtxn != NULL && !f->rtxn_busy) {
        rc = mdb_txn_renew(f->rtxn);
        if (rc == 0) {
            f->rtxn_busy = 1;
            *txn = f->rtxn;
            return 0;
        }
        mdb_txn_abort(f->rtxn);
        f->rtxn = NULL;
    }
    rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, txn);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "begin read");
    }
    if (f->rtxn == NULL) {
        f->rtxn = *txn;
        f->rtxn_busy = 1;
    }
    return 0;
}

void fsm__rtxn_end(struct fsm *f, MDB_txn *txn)
{
    if (txn == NULL || txn == f->wtxn) {
        return;
    }
    if (txn == f->rtxn) {
        mdb_txn_reset(txn);
        f->rtxn_busy = 0;
        return;
    }
    mdb_txn_abort(txn);
}

int fsm__get(struct fsm *f,
             MDB_txn *txn,
             enum fsm_tbl t,
             const void *key,
             size_t klen,
             MDB_val *out)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_get(txn, f->dbis[t], &k, out);

    if (rc != 0) {
        return fsm__mdb_err(f, rc, "get from '%s'", fsm__tbls[t].name);
    }
    return 0;
}

void fsm__content_mix(uint8_t acc[32],
                      int tbl,
                      const void *key,
                      size_t klen,
                      const void *val,
                      size_t vlen,
                      int add)
{
    /* Per record: XXH3-128 of the value, seeded with XXH3-64 of the key
     * seeded with the table (xxhash: 20+ GB/s; SHA-256 per record was a
     * fifth of a node's CPU, mostly at snapshots, which re-hash the whole
     * state). It detects bit rot, not an adversary: whoever can write the
     * state file can rewrite its hash too. The 128-bit value is added as
     * the low half of the 256-bit accumulator. */
    XXH64_hash_t seed = XXH3_64bits_withSeed(key, klen, (XXH64_hash_t)tbl + 1);
    XXH128_hash_t x = XXH3_128bits_withSeed(val, vlen, seed);
    uint64_t h[4] = {x.low64, x.high64, 0, 0};
    uint64_t a[4];
    unsigned carry = 0;

    /* acc +/- h as little-endian 256-bit integers, 64 bits a limb. */
    memcpy(a, acc, 32);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int i = 0; i < 4; i++) {
        a[i] = __builtin_bswap64(a[i]);
    }
#endif
    for (int i = 0; i < 4; i++) {
        if (add) {
            uint64_t t = a[i] + h[i];
            unsigned c1 = t < a[i];
            a[i] = t + carry;
            carry = c1 | (a[i] < t);
        } else {
            uint64_t t = a[i] - h[i];
            unsigned b1 = a[i] < h[i];
            a[i] = t - carry;
            carry = b1 | (t < (uint64_t)carry);
        }
    }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int i = 0; i < 4; i++) {
        a[i] = __builtin_bswap64(a[i]);
    }
#endif
    memcpy(acc, a, 32);
}

/* Find LMDB's map of the state file in /proc/self/maps (by inode): LMDB
 * only reports its map address (mdb_env_info) with MDB_FIXEDMAP, which we
 * do not use. Leaves f->map_addr NULL when not found. */
static void map_locate(struct fsm *f)
{
    struct stat st;
    char line[4096];
    mdb_filehandle_t fd;
    FILE *in;

    f->map_addr = NULL;
    f->map_len = 0;
    if (mdb_env_get_fd(f->env, &fd) != 0 || fstat(fd, &st) != 0) {
        return;
    }
    in = fopen("/proc/self/maps", "re");
    if (in == NULL) {
        return;
    }
    while (fgets(line, sizeof line, in) != NULL) {
        unsigned long long lo, hi, ino;
        char perms[8], dev[16];
        unsigned long long off;
        if (sscanf(line, "%llx-%llx %7s %llx %15s %llu", &lo, &hi, perms, &off,
                   dev, &ino) == 6 &&
            ino == (unsigned long long)st.st_ino && off == 0 &&
            strstr(line, "data.mdb") != NULL) {
            f->map_addr = (void *)(uintptr_t)lo;
            f->map_len = (size_t)(hi - lo);
            break;
        }
    }
    fclose(in);
}

/* Drop the state file's pages from this process's page tables after a
 * full scan (snapshot, restore, the content check at open). LMDB maps the
 * file read-only and writes with pwrite, so the mapping only caches what
 * was read: after MADV_DONTNEED the pages stay in the kernel's page cache
 * (shared, evictable) and are faulted back on the next read. Without it a
 * snapshot of a large state leaves all of it counted in the node's RSS
 * until the kernel needs the memory. Best effort. */
void fsm__map_release(struct fsm *f)
{
    if (f->map_addr == NULL) {
        map_locate(f);
    }
    if (f->map_addr != NULL) {
        (void)madvise(f->map_addr, f->map_len, MADV_DONTNEED);
    }
}

int fsm__map_over(size_t budget)
{
    unsigned long long size, resident, shared;
    FILE *in = fopen("/proc/self/statm", "r");
    int n;

    if (in == NULL) {
        return 0;
    }
    n = fscanf(in, "%llu %llu %llu", &size, &resident, &shared);
    fclose(in);
    /* statm's third field: resident pages backed by a file (or shmem) */
    return n == 3 && shared * (unsigned long long)sysconf(_SC_PAGESIZE) >
                         (unsigned long long)budget;
}

int fsm_map_trim(struct fsm *f, size_t budget)
{
    if (!fsm__map_over(budget)) {
        return 0;
    }
    fsm__map_release(f);
    return 1;
}

int fsm__content_scan(struct fsm *f, MDB_txn *txn, uint8_t out[32])
{
    memset(out, 0, 32);
    for (int t = 0; t < FSM_N_TBL; t++) {
        MDB_cursor *cur;
        MDB_val k, v;
        int rc;

        rc = mdb_cursor_open(txn, f->dbis[t], &cur);
        if (rc != 0) {
            return fsm__mdb_err(f, rc, "scan '%s'", fsm__tbls[t].name);
        }
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (fsm__content_covers(t, k.mv_data, k.mv_size)) {
                fsm__content_mix(out, t, k.mv_data, k.mv_size, v.mv_data,
                                 v.mv_size, 1);
            }
        }
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND) {
            return fsm__mdb_err(f, rc, "scan '%s'", fsm__tbls[t].name);
        }
    }
    return 0;
}

int fsm__content_read(struct fsm *f, MDB_txn *txn, uint8_t out[32])
{
    MDB_val v;
    int rc =
        fsm__get(f, txn, FSM_TBL_META, META_CONTENT, strlen(META_CONTENT), &v);

    if (rc != 0) {
        return rc;
    }
    if (v.mv_size != 32) {
        snprintf(f->errmsg, sizeof f->errmsg, "meta 'content' is corrupt");
        return YH_ECORRUPT;
    }
    memcpy(out, v.mv_data, 32);
    return 0;
}

void fsm__wcursors_forget(struct fsm *f)
{
    memset(f->wcur, 0, sizeof f->wcur);
}

int fsm__wcursor(struct fsm *f,
                 MDB_txn *txn,
                 enum fsm_tbl t,
                 MDB_cursor **cur,
                 int *owned)
{
    int rc;

    if (txn == f->wtxn && f->wcur[t] != NULL) {
        *cur = f->wcur[t];
        *owned = 0;
        return 0;
    }
    rc = mdb_cursor_open(txn, f->dbis[t], cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on '%s'", fsm__tbls[t].name);
    }
    if (txn == f->wtxn) {
        f->wcur[t] = *cur;
        *owned = 0;
    } else {
        *owned = 1;
    }
    return 0;
}

int fsm__cursor_del(struct fsm *f, enum fsm_tbl t, MDB_cursor *cur)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);

    if (t == FSM_TBL_NODES) {
        f->nodes_gen++;
    }
    if (rc == 0 && fsm__content_covers(t, k.mv_data, k.mv_size)) {
        fsm__content_mix(f->content, t, k.mv_data, k.mv_size, v.mv_data,
                         v.mv_size, 0);
    }
    if (rc == 0) {
        rc = mdb_cursor_del(cur, 0);
    }
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "delete from '%s'", fsm__tbls[t].name);
    }
    return 0;
}

/* One B-tree search per put: an insert that finds the key taken leaves
 * the cursor on it with the old value (MDB_KEYEXIST), which leaves the
 * content hash, and the value is replaced in place (MDB_CURRENT). */
int fsm__put(struct fsm *f,
             MDB_txn *txn,
             enum fsm_tbl t,
             const void *key,
             size_t klen,
             const void *val,
             size_t vlen)
{
    MDB_val k = {klen, (void *)key};
    MDB_val v = {vlen, (void *)val};
    MDB_cursor *cur;
    int covers = fsm__content_covers(t, key, klen);
    int owned;
    int rc;

    if (t == FSM_TBL_NODES) {
        f->nodes_gen++;
    }
    rc = fsm__wcursor(f, txn, t, &cur, &owned);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_put(cur, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        if (covers) {
            fsm__content_mix(f->content, t, key, klen, v.mv_data, v.mv_size, 0);
        }
        v.mv_size = vlen;
        v.mv_data = (void *)val;
        rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
    }
    if (owned) {
        mdb_cursor_close(cur);
    }
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "put into '%s'", fsm__tbls[t].name);
    }
    if (covers) {
        fsm__content_mix(f->content, t, key, klen, val, vlen, 1);
    }
    return 0;
}

int fsm__del(struct fsm *f,
             MDB_txn *txn,
             enum fsm_tbl t,
             const void *key,
             size_t klen)
{
    MDB_val k = {klen, (void *)key};
    MDB_val v;
    MDB_cursor *cur;
    int owned;
    int rc;

    rc = fsm__wcursor(f, txn, t, &cur, &owned);
    if (rc != 0) {
        return rc;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (rc == 0) {
        rc = fsm__cursor_del(f, t, cur);
    } else {
        rc = fsm__mdb_err(f, rc, "delete from '%s'", fsm__tbls[t].name);
    }
    if (owned) {
        mdb_cursor_close(cur);
    }
    return rc;
}

int fsm__meta_read(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t *applied,
                   uint8_t digest[FSM_DIGEST_SIZE])
{
    MDB_val v;
    int rc;

    rc = fsm__get(f, txn, FSM_TBL_META, META_APPLIED, strlen(META_APPLIED), &v);
    if (rc == YH_ENOTFOUND) {
        *applied = 0;
        memset(digest, 0, FSM_DIGEST_SIZE);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (v.mv_size != 8) {
        snprintf(f->errmsg, sizeof f->errmsg, "meta 'applied' is corrupt");
        return YH_ECORRUPT;
    }
    *applied = fsm__be64_get(v.mv_data);
    rc = fsm__get(f, txn, FSM_TBL_META, META_DIGEST, strlen(META_DIGEST), &v);
    if (rc == YH_ENOTFOUND || (rc == 0 && v.mv_size != FSM_DIGEST_SIZE)) {
        snprintf(f->errmsg, sizeof f->errmsg, "meta 'digest' is corrupt");
        return YH_ECORRUPT;
    }
    if (rc != 0) {
        return rc;
    }
    memcpy(digest, v.mv_data, FSM_DIGEST_SIZE);
    return 0;
}

int fsm__meta_write(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t applied,
                    const uint8_t digest[FSM_DIGEST_SIZE])
{
    uint8_t be[8];
    int rc;

    f->nodes_gen++; /* a commit, or a restore that wrote past fsm__put */
    fsm__be64_put(be, applied);
    rc = fsm__put(f, txn, FSM_TBL_META, META_APPLIED, strlen(META_APPLIED), be,
                  8);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__put(f, txn, FSM_TBL_META, META_CONTENT, strlen(META_CONTENT),
                  f->content, 32);
    if (rc != 0) {
        return rc;
    }
    return fsm__put(f, txn, FSM_TBL_META, META_DIGEST, strlen(META_DIGEST),
                    digest, FSM_DIGEST_SIZE);
}

int fsm__counter_next(struct fsm *f,
                      MDB_txn *txn,
                      const char *name,
                      uint64_t *value)
{
    uint8_t be[8];
    uint64_t n = 0;
    MDB_val v;
    int rc;

    rc = fsm__get(f, txn, FSM_TBL_META, name, strlen(name), &v);
    if (rc == 0) {
        if (v.mv_size != 8) {
            snprintf(f->errmsg, sizeof f->errmsg, "meta '%s' is corrupt", name);
            return YH_ECORRUPT;
        }
        n = fsm__be64_get(v.mv_data);
    } else if (rc != YH_ENOTFOUND) {
        return rc;
    }
    n++;
    fsm__be64_put(be, n);
    rc = fsm__put(f, txn, FSM_TBL_META, name, strlen(name), be, 8);
    if (rc != 0) {
        return rc;
    }
    *value = n;
    return 0;
}

int fsm_check_isolated(const char *dir,
                       const struct fsm_config *cfg,
                       char *errmsg)
{
    char path[4096];
    struct stat st;
    int status = 0;
    pid_t pid;

    errmsg[0] = '\0';
    if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >=
            sizeof path ||
        stat(path, &st) != 0) {
        return 0; /* nothing yet: a fresh node */
    }
    pid = fork();
    if (pid < 0) {
        return 0; /* cannot isolate; fsm_open still verifies */
    }
    if (pid == 0) {
        char e[YH_ERRMSG_SIZE];
        struct fsm *f = NULL;
        int rc = fsm_open(&f, dir, cfg, e);
        if (rc == 0) {
            fsm_close(f);
        }
        _exit(rc == 0 ? 0 : rc == YH_ECORRUPT ? 2 : 3);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return 0;
        }
    }
    if (WIFSIGNALED(status)) {
        snprintf(errmsg, YH_ERRMSG_SIZE,
                 "'%.200s': reading the state crashed (signal %d): the state "
                 "is corrupt; refusing to use it (move it away: the node "
                 "rebuilds from its peers)",
                 dir, WTERMSIG(status));
        return YH_ECORRUPT;
    }
    /* A plain failure (corrupt or not) is reported by the caller's own
     * fsm_open with its message. */
    return 0;
}
