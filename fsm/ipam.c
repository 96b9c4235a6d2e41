/* CIDR math and deterministic address allocation (IPAM).
 *
 * Why hand-written: inet_pton/inet_ntop (libc) parse and print addresses,
 * and the rest is a few lines of 128-bit integer arithmetic (masks,
 * containment, overlap, next/previous address). Debian 12 does ship
 * libcidr (libcidr-dev 1.2.3), but it allocates a CIDR object per parse,
 * has no integer view of an address for the range arithmetic the
 * allocator needs (split/merge free ranges, lowest free address), and
 * linking it would change the build and the dependency list for ~150
 * lines of code. Everything here is a pure function of its inputs: no
 * locale, no resolver (inet_pton only accepts numeric forms).
 *
 * IPAM keeps, per address space (a subnet or an EIP pool, named by its
 * ID) and family, two kinds of rows in table "net":
 *
 *   "A" \0 space \0 fam hex(addr)   -> {Owner, IP}   an allocation
 *   "F" \0 space \0 fam hex(first)  -> {Last: hex}   a free range
 *
 * fam is '4' or '6' and hex is the big-endian address in fixed-width
 * lower-case hex (8 or 32 digits), so LMDB's byte order is numeric order.
 * The lowest free address is the first free range of the space (one
 * cursor seek); taking an address splits its range, releasing one merges
 * it with its neighbours: every operation is O(log n) whatever was
 * allocated before, and the free ranges of a space are disjoint and never
 * adjacent, so the table's bytes depend only on which addresses are
 * allocated. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

/* ---- CIDR math ---- */

static unsigned fam_bits(int fam)
{
    return fam == 4 ? 32 : 128;
}

static fsm_u128 all_ones(int fam)
{
    return fam == 4 ? (fsm_u128)0xffffffffu : ~(fsm_u128)0;
}

/* Network mask of @plen bits. */
static fsm_u128 mask_of(int fam, unsigned plen)
{
    unsigned bits = fam_bits(fam);

    if (plen == 0) {
        return 0;
    }
    return (all_ones(fam) << (bits - plen)) & all_ones(fam);
}

int fsm__ip_parse(const char *s, int *fam, fsm_u128 *out)
{
    uint8_t b[16];

    *out = 0;
    if (strchr(s, ':') != NULL) {
        if (inet_pton(AF_INET6, s, b) != 1) {
            return YH_EINVAL;
        }
        for (int i = 0; i < 16; i++) {
            *out = (*out << 8) | b[i];
        }
        *fam = 6;
        return 0;
    }
    /* inet_pton(AF_INET) takes dotted quads only (no "10.1", no octal) */
    if (inet_pton(AF_INET, s, b) != 1) {
        return YH_EINVAL;
    }
    for (int i = 0; i < 4; i++) {
        *out = (*out << 8) | b[i];
    }
    *fam = 4;
    return 0;
}

void fsm__ip_format(int fam, fsm_u128 a, char out[FSM_IP_STR])
{
    uint8_t b[16];
    int n = fam == 4 ? 4 : 16;

    for (int i = n - 1; i >= 0; i--) {
        b[i] = (uint8_t)(a & 0xff);
        a >>= 8;
    }
    if (inet_ntop(fam == 4 ? AF_INET : AF_INET6, b, out, FSM_IP_STR) == NULL) {
        snprintf(out, FSM_IP_STR, "?");
    }
}

int fsm__cidr_parse(const char *s,
                    struct fsm_cidr *out,
                    char *why,
                    size_t why_size)
{
    char addr[FSM_IP_STR];
    const char *slash = strchr(s, '/');
    size_t al;
    unsigned plen = 0;
    const char *p;

    memset(out, 0, sizeof *out);
    if (slash == NULL) {
        snprintf(why, why_size, "'%.64s' is not a CIDR (address/prefix)", s);
        return YH_EINVAL;
    }
    al = (size_t)(slash - s);
    if (al == 0 || al >= sizeof addr) {
        snprintf(why, why_size, "'%.64s': bad address", s);
        return YH_EINVAL;
    }
    memcpy(addr, s, al);
    addr[al] = '\0';
    if (fsm__ip_parse(addr, &out->fam, &out->net) != 0) {
        snprintf(why, why_size, "'%.64s': bad address '%s'", s, addr);
        return YH_EINVAL;
    }
    p = slash + 1;
    if (*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0')) {
        snprintf(why, why_size, "'%.64s': bad prefix length", s);
        return YH_EINVAL;
    }
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            snprintf(why, why_size, "'%.64s': bad prefix length", s);
            return YH_EINVAL;
        }
        plen = plen * 10 + (unsigned)(*p - '0');
    }
    if (plen > fam_bits(out->fam)) {
        snprintf(why, why_size, "'%.64s': prefix length above %u", s,
                 fam_bits(out->fam));
        return YH_EINVAL;
    }
    out->plen = plen;
    if ((out->net & ~mask_of(out->fam, plen) & all_ones(out->fam)) != 0) {
        char canon[FSM_CIDR_STR];
        struct fsm_cidr n = *out;
        n.net &= mask_of(n.fam, plen);
        fsm__cidr_format(&n, canon);
        snprintf(why, why_size, "'%.64s' has host bits set (the network is %s)",
                 s, canon);
        return YH_EINVAL;
    }
    return 0;
}

void fsm__cidr_format(const struct fsm_cidr *c, char out[FSM_CIDR_STR])
{
    char a[FSM_IP_STR];

    fsm__ip_format(c->fam, c->net, a);
    snprintf(out, FSM_CIDR_STR, "%s/%u", a, c->plen);
}

int fsm__cidr_has_ip(const struct fsm_cidr *c, int fam, fsm_u128 a)
{
    return fam == c->fam && (a & mask_of(fam, c->plen)) == c->net;
}

int fsm__cidr_contains(const struct fsm_cidr *outer,
                       const struct fsm_cidr *inner)
{
    return inner->fam == outer->fam && inner->plen >= outer->plen &&
           fsm__cidr_has_ip(outer, inner->fam, inner->net);
}

int fsm__cidr_overlap(const struct fsm_cidr *a, const struct fsm_cidr *b)
{
    return fsm__cidr_contains(a, b) || fsm__cidr_contains(b, a);
}

fsm_u128 fsm__cidr_last(const struct fsm_cidr *c)
{
    return c->net | (~mask_of(c->fam, c->plen) & all_ones(c->fam));
}

/* ---- keys ---- */

#define KEY_MAX (2 + FSM_ID_SIZE + 2 + 32)

static size_t hex_of(int fam, fsm_u128 a, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = fam == 4 ? 8 : 32;

    for (size_t i = n; i > 0; i--) {
        out[i - 1] = digits[(unsigned)(a & 0xf)];
        a >>= 4;
    }
    return n;
}

static int hex_get(const char *p, size_t n, fsm_u128 *out)
{
    *out = 0;
    if (n != 8 && n != 32) {
        return YH_ECORRUPT;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        unsigned d;
        if (ch >= '0' && ch <= '9') {
            d = (unsigned)(ch - '0');
        } else if (ch >= 'a' && ch <= 'f') {
            d = (unsigned)(ch - 'a' + 10);
        } else {
            return YH_ECORRUPT;
        }
        *out = (*out << 4) | d;
    }
    return 0;
}

/* kind \0 space \0 fam: the prefix of a space's rows of one kind. */
static size_t key_prefix(char kind, const char *space, int fam, char *out)
{
    size_t sl = strlen(space);

    out[0] = kind;
    out[1] = '\0';
    memcpy(out + 2, space, sl);
    out[2 + sl] = '\0';
    out[3 + sl] = fam == 4 ? '4' : '6';
    return 4 + sl;
}

static size_t key_of(char kind,
                     const char *space,
                     int fam,
                     fsm_u128 a,
                     char *out)
{
    size_t n = key_prefix(kind, space, fam, out);

    return n + hex_of(fam, a, out + n);
}

/* Free range value {Last: hex}. */
static int range_put(struct fsm_ctx *c,
                     const char *space,
                     int fam,
                     fsm_u128 first,
                     fsm_u128 last)
{
    char key[KEY_MAX], hex[33];
    struct fsm_rec r;
    int rc;

    hex[hex_of(fam, last, hex)] = '\0';
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "Last", hex);
    rc = fsm__rec_save(c, FSM_TBL_NET, key, key_of('F', space, fam, first, key),
                       &r);
    fsm__rec_free(&r);
    return rc;
}

static int range_last(struct fsm *f, const MDB_val *v, fsm_u128 *last)
{
    struct fsm_rec r;
    const char *s;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__rec_decode(v->mv_data, v->mv_size, &r);
    if (rc == 0) {
        s = fsm__rec_s(&r, "Last");
        rc = hex_get(s, strlen(s), last);
    }
    fsm__rec_free(&r);
    if (rc == YH_ECORRUPT) {
        snprintf(f->errmsg, sizeof f->errmsg, "free range in 'net' is corrupt");
    }
    return rc;
}

/* The free range holding @a: *found, and its first and last address. */
static int range_find(struct fsm_ctx *c,
                      const char *space,
                      int fam,
                      fsm_u128 a,
                      int *found,
                      fsm_u128 *first,
                      fsm_u128 *last)
{
    char key[KEY_MAX];
    size_t pl = key_prefix('F', space, fam, key);
    size_t kl = key_of('F', space, fam, a, key);
    MDB_cursor *cur;
    MDB_val k = {kl, key}, v;
    int rc;

    *found = 0;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'net'");
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == kl && memcmp(k.mv_data, key, kl) == 0) {
        /* a range starts at @a */
    } else {
        /* the range before: the last key below @a */
        rc = rc == 0              ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
             : rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, MDB_LAST)
                                  : rc;
    }
    if (rc == 0 && k.mv_size == kl && memcmp(k.mv_data, key, pl) == 0) {
        rc = hex_get((const char *)k.mv_data + pl, kl - pl, first);
        if (rc == 0) {
            rc = range_last(c->f, &v, last);
        }
        if (rc == 0) {
            *found = *first <= a && a <= *last;
        }
    } else if (rc == MDB_NOTFOUND || rc == 0) {
        rc = 0;
    } else {
        rc = fsm__mdb_err(c->f, rc, "read 'net'");
    }
    mdb_cursor_close(cur);
    if (rc == YH_ECORRUPT) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "free range key in 'net' is corrupt");
    }
    return rc;
}

/* ---- the allocator ---- */

/* First and last usable address of @net: the network address and the
 * gateway (the first host) are reserved, and for IPv4 the broadcast
 * address. *none when nothing is left. */
static void usable(const struct fsm_cidr *net,
                   fsm_u128 *first,
                   fsm_u128 *last,
                   int *none)
{
    fsm_u128 end = fsm__cidr_last(net);

    *first = net->net + 2;
    *last = net->fam == 4 ? end - 1 : end;
    *none = end - net->net < 2 || *first > *last;
}

int fsm__ipam_init(struct fsm_ctx *c,
                   const char *space,
                   const struct fsm_cidr *net)
{
    fsm_u128 first, last;
    int none;

    usable(net, &first, &last, &none);
    return none ? 0 : range_put(c, space, net->fam, first, last);
}

int fsm__ipam_pick(struct fsm_ctx *c,
                   const char *space,
                   const struct fsm_cidr *net,
                   const char *want,
                   fsm_u128 *out)
{
    char key[KEY_MAX], cidr[FSM_CIDR_STR];
    fsm_u128 first, last, a;
    int fam, found, none;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t pl;
    int rc;

    fsm__cidr_format(net, cidr);
    if (want != NULL && want[0] != '\0') {
        if (fsm__ip_parse(want, &fam, &a) != 0) {
            return fsm__reject(c, YH_EINVAL, "invalid IP address '%s'", want);
        }
        if (!fsm__cidr_has_ip(net, fam, a)) {
            return fsm__reject(c, YH_EINVAL,
                               "IP address '%s' is not in %s of '%s'", want,
                               cidr, space);
        }
        usable(net, &first, &last, &none);
        if (none || a < first || a > last) {
            return fsm__reject(c, YH_EINVAL,
                               "IP address '%s' is reserved in %s (network, "
                               "gateway%s)",
                               want, cidr, fam == 4 ? ", broadcast" : "");
        }
        TRY(range_find(c, space, fam, a, &found, &first, &last));
        if (!found) {
            return fsm__reject(c, YH_EEXIST, "address in use: '%s' in '%s'",
                               want, space);
        }
        *out = a;
        return 0;
    }
    pl = key_prefix('F', space, net->fam, key);
    k.mv_data = key;
    k.mv_size = pl;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'net'");
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size > pl && memcmp(k.mv_data, key, pl) == 0) {
        rc = hex_get((const char *)k.mv_data + pl, k.mv_size - pl, out);
        if (rc == YH_ECORRUPT) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "free range key in 'net' is corrupt");
        }
        found = 1;
    } else if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = 0;
        found = 0;
    } else {
        rc = fsm__mdb_err(c->f, rc, "read 'net'");
        found = 0;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && !found) {
        return fsm__reject(c, YH_ECAPACITY,
                           "subnet full: no free address in %s of '%s'", cidr,
                           space);
    }
    return rc;
}

int fsm__ipam_take(struct fsm_ctx *c,
                   const char *space,
                   int fam,
                   fsm_u128 a,
                   const char *owner)
{
    char key[KEY_MAX], ip[FSM_IP_STR];
    fsm_u128 first, last;
    struct fsm_rec r;
    int found;
    int rc;

    TRY(range_find(c, space, fam, a, &found, &first, &last));
    if (!found) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "address taken in '%s' is not free", space);
        return YH_EINTERNAL;
    }
    if (first < a) {
        TRY(range_put(c, space, fam, first, a - 1));
    } else {
        TRY(fsm__cdel(c, FSM_TBL_NET, key,
                      key_of('F', space, fam, first, key)));
    }
    if (a < last) {
        TRY(range_put(c, space, fam, a + 1, last));
    }
    fsm__ip_format(fam, a, ip);
    fsm__rec_init(&r);
    fsm__rec_set_s(&r, "Owner", owner);
    fsm__rec_set_s(&r, "IP", ip);
    rc =
        fsm__rec_save(c, FSM_TBL_NET, key, key_of('A', space, fam, a, key), &r);
    fsm__rec_free(&r);
    return rc;
}

int fsm__ipam_release(struct fsm_ctx *c, const char *space, int fam, fsm_u128 a)
{
    char key[KEY_MAX];
    fsm_u128 pf = 0, pla = 0, nf = 0, nl = 0, first, last;
    int has_prev = 0, has_next = 0, found;
    MDB_val v;
    int rc;

    rc = fsm__cdel(c, FSM_TBL_NET, key, key_of('A', space, fam, a, key));
    if (rc == YH_ENOTFOUND) {
        return 0; /* not allocated: nothing to give back */
    }
    TRY(rc);
    /* the range just below ends at a - 1? */
    if (a > 0) {
        TRY(range_find(c, space, fam, a - 1, &found, &pf, &pla));
        has_prev = found && pla == a - 1;
    }
    /* a range starting at a + 1? */
    if (a < all_ones(fam)) {
        rc = fsm__get(c->f, c->txn, FSM_TBL_NET, key,
                      key_of('F', space, fam, a + 1, key), &v);
        if (rc == 0) {
            nf = a + 1;
            TRY(range_last(c->f, &v, &nl));
            has_next = 1;
        } else if (rc != YH_ENOTFOUND) {
            return rc;
        }
    }
    first = has_prev ? pf : a;
    last = has_next ? nl : a;
    if (has_next) {
        TRY(fsm__cdel(c, FSM_TBL_NET, key, key_of('F', space, fam, nf, key)));
    }
    return range_put(c, space, fam, first, last);
}

/* First row of @kind of @space (either family): *any. */
static int any_row(struct fsm_ctx *c, char kind, const char *space, int *any)
{
    char key[KEY_MAX];
    size_t pl = key_prefix(kind, space, 4, key) - 1;
    MDB_cursor *cur;
    MDB_val k = {pl, key}, v;
    int rc;

    *any = 0;
    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'net'");
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0) {
        *any = k.mv_size > pl && memcmp(k.mv_data, key, pl) == 0;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0
                                         : fsm__mdb_err(c->f, rc, "read 'net'");
}

int fsm__ipam_in_use(struct fsm_ctx *c, const char *space, int *any)
{
    return any_row(c, 'A', space, any);
}

int fsm__ipam_drop(struct fsm_ctx *c, const char *space)
{
    char key[KEY_MAX];
    size_t pl = key_prefix('F', space, 4, key) - 1;
    int any;

    /* no allocations left: at most one free range per family */
    for (;;) {
        MDB_cursor *cur;
        MDB_val k = {pl, key}, v;
        char found[KEY_MAX];
        size_t fl = 0;
        int rc;
        TRY(any_row(c, 'F', space, &any));
        if (!any) {
            return 0;
        }
        rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_NET], &cur);
        if (rc != 0) {
            return fsm__mdb_err(c->f, rc, "open cursor on 'net'");
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size <= sizeof found) {
            fl = k.mv_size;
            memcpy(found, k.mv_data, fl);
        }
        mdb_cursor_close(cur);
        if (rc != 0 || fl == 0) {
            return fsm__mdb_err(c->f, rc != 0 ? rc : MDB_CORRUPTED,
                                "read 'net'");
        }
        TRY(fsm__cdel(c, FSM_TBL_NET, found, fl));
    }
}

int fsm__ipam_owner(struct fsm_ctx *c,
                    const char *space,
                    int fam,
                    fsm_u128 a,
                    char owner[FSM_ID_SIZE])
{
    char key[KEY_MAX];
    struct fsm_rec r;
    int rc;

    owner[0] = '\0';
    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_NET, key,
                       key_of('A', space, fam, a, key), &r);
    if (rc == 0) {
        snprintf(owner, FSM_ID_SIZE, "%s", fsm__rec_s(&r, "Owner"));
    }
    fsm__rec_free(&r);
    return rc;
}
