/* Generic records and the helpers every domain table shares: IDs from
 * replicated counters, ownership, the generic Describe walk, internal
 * command envelopes and overflow-checked money arithmetic.
 *
 * Records are msgpack maps of scalars and string lists whose field order
 * is the order fields were first set: the same sequence of operations on
 * every replica gives the same bytes, which is what the state digest and
 * fsm_dump compare. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

void fsm__rec_init(struct fsm_rec *r)
{
    r->n = 0;
    r->oom = 0;
    r->used = 0;
}

/* Drop the value of @f (its bytes, if it owns an allocation). */
static void rf_release(struct fsm_rf *f)
{
    if (f->own) {
        free(f->s);
    }
    f->s = NULL;
    f->own = 0;
}

void fsm__rec_free(struct fsm_rec *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        rf_release(&r->f[i]);
    }
    r->n = 0;
    r->oom = 0;
    r->used = 0;
}

/* @n bytes for the value of @f: from the record's arena while it lasts
 * (a decode or a build of a record then allocates nothing), else
 * malloc'd and owned by the field. NULL when out of memory. */
static char *rf_alloc(struct fsm_rec *r, struct fsm_rf *f, size_t n)
{
    if (n <= sizeof r->arena - r->used) {
        f->s = r->arena + r->used;
        r->used += (unsigned)n;
        f->own = 0;
    } else {
        f->s = malloc(n);
        f->own = f->s != NULL;
    }
    return f->s;
}

/* A copy of @p (@n bytes, NUL added) as the value of @f. */
static char *rf_dupn(struct fsm_rec *r,
                     struct fsm_rf *f,
                     const char *p,
                     size_t n)
{
    char *s = rf_alloc(r, f, n + 1);

    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* ---- field names stored as numbers ----
 *
 * In the tables where every record is read through fsm__rec_decode
 * (fsm__rec_compact_tbl: resources, jobs, orders, transactions) a field whose
 * name is in this dictionary is stored with its index as the map key (an
 * integer, 1-2 bytes) instead of the name (a machine record repeated ~35
 * names, ~300 bytes). Other names stay strings; decoding accepts both.
 * The list is part of the state format (docs/disk-format.md): entries are
 * only ever appended, never reordered or removed, and at most 256. */
static const char *const rec_names[] = {
    "Action",
    "Adjustment",
    "AlarmTemplateID",
    "Amount",
    "AntiAffinityGroupID",
    "Arch",
    "ArrearsSince",
    "At",
    "Backend",
    "Balance",
    "Bandwidth",
    "BaseImageID",
    "BindCount",
    "BindResourceID",
    "BindResourceType",
    "BindTime",
    "BootDiskSetType",
    "BootDiskSpace",
    "CIDR",
    "CPU",
    "CPUOvercommit",
    "Capacity",
    "Certificate",
    "ChargeType",
    "CommonName",
    "Comparison",
    "ConnectionCount",
    "Cooldown",
    "Count",
    "CreateTime",
    "CredentialGeneration",
    "Desired",
    "DesiredAttach",
    "DesiredState",
    "Direction",
    "Disabled",
    "DiskCount",
    "DiskID",
    "EIPID",
    "EIPPoolID",
    "EIPPort",
    "Epoch",
    "ExpireTime",
    "Fingerprint",
    "FinishTime",
    "FireCount",
    "FromType",
    "FrontendPort",
    "GPU",
    "GPUModel",
    "GPUType",
    "Gateway",
    "GatewayCount",
    "Generation",
    "HealthCheckInterval",
    "HealthCheckThreshold",
    "HealthCheckType",
    "HostID",
    "IKEAuth",
    "IKEDHGroup",
    "IKEEncryption",
    "IKELifetime",
    "IKEVersion",
    "IP",
    "IPSecAuth",
    "IPSecEncryption",
    "IPSecLifetime",
    "IPSecPFSDHGroup",
    "IPSecProtocol",
    "IPVersion",
    "IPv6",
    "IPv6Gateway",
    "IPv6Network",
    "ImageID",
    "ImageType",
    "InternalIP",
    "InternalIPv6",
    "Interval",
    "JobID",
    "LBID",
    "LBType",
    "Last",
    "LastDue",
    "LastFailTime",
    "LastFireTime",
    "LastResult",
    "LastScaleTime",
    "LastTime",
    "LastValue",
    "LeaseExpire",
    "Limit",
    "LocalSubnetIDs",
    "Max",
    "Memory",
    "Method",
    "MetricName",
    "MigrateFromHostID",
    "Min",
    "MissedCount",
    "Mode",
    "NATGWID",
    "NICID",
    "Name",
    "NetGeneration",
    "Network",
    "NextDue",
    "NotAfter",
    "NotBefore",
    "ObservedAttach",
    "ObservedGeneration",
    "ObservedState",
    "OperatorName",
    "OrderID",
    "OrderType",
    "OsType",
    "Owner",
    "Path",
    "Period",
    "Permissions",
    "PolicyIDs",
    "Pool",
    "PoolID",
    "Port",
    "Ports",
    "Price",
    "Primary",
    "Priority",
    "PrivateIP",
    "PrivatePort",
    "Proto",
    "Protocol",
    "Quantity",
    "RSCount",
    "RSID",
    "RecycleTime",
    "ReinstallGeneration",
    "RemoteCIDRs",
    "RemoteVPNGatewayID",
    "ResourceID",
    "ResourceIDs",
    "ResourceType",
    "Revision",
    "RoleID",
    "RoleName",
    "RollbackSnapshotID",
    "Rule",
    "RuleCount",
    "RuleID",
    "Rules",
    "SSLID",
    "ScalingGroupID",
    "ScalingPolicyID",
    "SecurityGroupID",
    "Seq",
    "SerialNo",
    "SetType",
    "Size",
    "SnapshotID",
    "SourceID",
    "SourceVMID",
    "Spec",
    "StartTime",
    "State",
    "StorageSetTypes",
    "SubnetID",
    "SubnetIDs",
    "SuspendReason",
    "SuspendTime",
    "Suspended",
    "TenantID",
    "Threshold",
    "TimerID",
    "TxnID",
    "Type",
    "Used",
    "UsedCPU",
    "UsedGPU",
    "UsedMemory",
    "UserID",
    "VMCount",
    "VMID",
    "VMIDs",
    "VPCID",
    "VPNConnectionID",
    "VPNGatewayID",
    "VServerCount",
    "VServerID",
    "Weight",
    "ZoneID",
    "_ActorTenant",
    "_Admin",
    "_BillStart",
    "_Billed",
    "_IDField",
    "_MigrateGeneration",
    "_OrderID",
    "_Params",
    "_PreSharedKey",
    "_PrevState",
    "_Price",
    "_PrivateKey",
    "_PwHash",
    "_PwSalt",
    "_Ring",
    "_Template",
    "_UnknownObserved",
    "_UnknownState",
};
#define REC_N_NAMES (sizeof rec_names / sizeof rec_names[0])
_Static_assert(REC_N_NAMES <= 256, "field numbers are at most one byte");

#define NAME_HASH_SIZE 1024 /* a power of two, > 2 x REC_N_NAMES */
static int16_t name_hash[NAME_HASH_SIZE];
static uint8_t name_len[REC_N_NAMES];

/* Length and three bytes: enough to spread 207 names, cheap per lookup
 * (rf_slot asks for every new field). */
static uint32_t name_h(const char *k, size_t kl)
{
    uint32_t h = (uint32_t)kl * 0x9e3779b1u;

    if (kl > 0) {
        h ^= ((uint32_t)(uint8_t)k[0] << 16 |
              (uint32_t)(uint8_t)k[kl / 2] << 8 | (uint8_t)k[kl - 1]) *
             0x85ebca6bu;
    }
    return (h ^ (h >> 15)) & (NAME_HASH_SIZE - 1);
}

__attribute__((constructor)) static void name_init(void)
{
    memset(name_hash, 0xff, sizeof name_hash); /* -1: empty */
    for (unsigned id = 0; id < REC_N_NAMES; id++) {
        size_t kl = strlen(rec_names[id]);
        uint32_t h = name_h(rec_names[id], kl);
        name_len[id] = (uint8_t)kl;
        while (name_hash[h] >= 0) {
            h = (h + 1) & (NAME_HASH_SIZE - 1);
        }
        name_hash[h] = (int16_t)id;
    }
}

/* The dictionary number of name @k (-1 if it has none). */
static int name_id(const char *k, size_t kl)
{
    uint32_t h = name_h(k, kl);

    for (; name_hash[h] >= 0; h = (h + 1) & (NAME_HASH_SIZE - 1)) {
        int id = name_hash[h];
        if (name_len[id] == kl && memcmp(rec_names[id], k, kl) == 0) {
            return id;
        }
    }
    return -1;
}

const char *fsm__rec_name(uint64_t id)
{
    return id < REC_N_NAMES ? rec_names[id] : NULL;
}

int fsm__rec_compact_tbl(enum fsm_tbl t)
{
    return t == FSM_TBL_RES || t == FSM_TBL_JOBS || t == FSM_TBL_ORDERS ||
           t == FSM_TBL_TXNS;
}

/* A name's length and first byte rule out almost every other field
 * before any comparison call (a VM record has ~35 fields, and lookups by
 * strcmp were a fifth of an apply's CPU). */
static struct fsm_rf *rf_findn(const struct fsm_rec *r,
                               const char *k,
                               size_t kl)
{
    for (unsigned i = 0; i < r->n; i++) {
        const struct fsm_rf *f = &r->f[i];
        if (f->kl == kl && f->k[0] == k[0] && memcmp(f->k, k, kl) == 0) {
            return (struct fsm_rf *)f;
        }
    }
    return NULL;
}

static struct fsm_rf *rf_find(const struct fsm_rec *r, const char *k)
{
    return rf_findn(r, k, strlen(k));
}

/* The field @k, created at the end if absent, emptied. NULL (and oom) if
 * the record is full or the name too long: a programming error that
 * fsm__rec_save reports. */
static struct fsm_rf *rf_slot(struct fsm_rec *r, const char *k)
{
    size_t kl = strlen(k);
    struct fsm_rf *f = rf_findn(r, k, kl);

    if (f == NULL) {
        if (r->n >= FSM_REC_MAX || kl >= sizeof f->k) {
            r->oom = 1;
            return NULL;
        }
        f = &r->f[r->n++];
        memcpy(f->k, k, kl + 1);
        f->kl = (uint8_t)kl;
        f->kid = (int16_t)name_id(k, kl);
        f->s = NULL;
        f->own = 0;
    }
    rf_release(f);
    f->t = FSM_RF_NIL;
    f->i = 0;
    return f;
}

void fsm__rec_set_s(struct fsm_rec *r, const char *k, const char *v)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f == NULL) {
        return;
    }
    f->t = FSM_RF_STR;
    if (rf_dupn(r, f, v, strlen(v)) == NULL) {
        r->oom = 1;
        f->t = FSM_RF_NIL;
    }
}

void fsm__rec_set_i(struct fsm_rec *r, const char *k, int64_t v)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f != NULL) {
        f->t = FSM_RF_INT;
        f->i = v;
    }
}

void fsm__rec_set_b(struct fsm_rec *r, const char *k, int v)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f != NULL) {
        f->t = FSM_RF_BOOL;
        f->i = v != 0;
    }
}

void fsm__rec_set_l(struct fsm_rec *r,
                    const char *k,
                    char (*v)[FSM_ID_SIZE],
                    unsigned n)
{
    struct fsm_rf *f = rf_slot(r, k);
    size_t len = 0, off = 0;

    if (f == NULL) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        len += strlen(v[i]) + 1;
    }
    if (rf_alloc(r, f, len + 1) == NULL) {
        r->oom = 1;
        return;
    }
    f->t = FSM_RF_LIST;
    for (unsigned i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (i > 0) {
            f->s[off++] = '\n';
        }
        memcpy(f->s + off, v[i], l);
        off += l;
    }
    f->s[off] = '\0';
}

void fsm__rec_set_bin(struct fsm_rec *r, const char *k, const void *p, size_t n)
{
    struct fsm_rf *f = rf_slot(r, k);

    if (f == NULL) {
        return;
    }
    f->t = FSM_RF_BIN;
    f->i = (int64_t)n;
    if (rf_dupn(r, f, p, n) == NULL) {
        r->oom = 1;
        f->t = FSM_RF_NIL;
        f->i = 0;
    }
}

const char *fsm__rec_bin(const struct fsm_rec *r, const char *k, size_t *n)
{
    const struct fsm_rf *f = rf_find(r, k);

    if (f == NULL || f->t != FSM_RF_BIN) {
        *n = 0;
        return NULL;
    }
    *n = (size_t)f->i;
    return f->s;
}

void fsm__rec_del(struct fsm_rec *r, const char *k)
{
    struct fsm_rf *f = rf_find(r, k);

    if (f == NULL) {
        return;
    }
    rf_release(f);
    memmove(f, f + 1, (size_t)(&r->f[r->n] - (f + 1)) * sizeof *f);
    r->n--;
}

const char *fsm__rec_s(const struct fsm_rec *r, const char *k)
{
    const struct fsm_rf *f = rf_find(r, k);

    return f != NULL && (f->t == FSM_RF_STR || f->t == FSM_RF_LIST) ? f->s : "";
}

int64_t fsm__rec_i(const struct fsm_rec *r, const char *k)
{
    const struct fsm_rf *f = rf_find(r, k);

    return f != NULL && (f->t == FSM_RF_INT || f->t == FSM_RF_BOOL) ? f->i : 0;
}

int fsm__rec_has(const struct fsm_rec *r, const char *k)
{
    return rf_find(r, k) != NULL;
}

/* ---- decoding a stored record ----
 *
 * Records are flat maps, so they are read straight from the bytes: every
 * declared length is checked against what is left (which is what the
 * fsm__mp_check pre-scan guards for msgpack-c), and no object tree is
 * built. The accepted inputs and results are those of decoding with
 * msgpack-c: a map (at most FSM_REC_MAX entries) of string names (under
 * 32 bytes, no NUL) to nil, booleans, integers (up to INT64_MAX), bytes,
 * strings or arrays of strings, spanning the input exactly. */

struct rd
{
    const uint8_t *p; /* input */
    size_t len;       /* input size */
    size_t off;       /* next byte */
};

/* The @n-byte big-endian number at the cursor. */
static int rd_be(struct rd *d, unsigned n, uint64_t *out)
{
    uint64_t v = 0;

    if (n > d->len - d->off) {
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        v = (v << 8) | d->p[d->off + i];
    }
    d->off += n;
    *out = v;
    return 0;
}

/* @n bytes at the cursor. */
static int rd_bytes(struct rd *d, uint64_t n, const uint8_t **out)
{
    if (n > d->len - d->off) {
        return -1;
    }
    *out = d->p + d->off;
    d->off += n;
    return 0;
}

/* A string (any str format); -1 if the next object is something else. */
static int rd_str(struct rd *d, const uint8_t **s, uint64_t *n)
{
    uint8_t b;

    if (d->off >= d->len) {
        return -1;
    }
    b = d->p[d->off++];
    if ((b & 0xe0) == 0xa0) {
        *n = b & 0x1f;
    } else if (b == 0xd9 || b == 0xda || b == 0xdb) {
        if (rd_be(d, 1u << (b - 0xd9), n) != 0) {
            return -1;
        }
    } else {
        return -1;
    }
    return rd_bytes(d, *n, s);
}

/* An array header (element count). */
static int rd_array(struct rd *d, uint8_t b, uint64_t *n)
{
    if ((b & 0xf0) == 0x90) {
        *n = b & 0x0f;
        return 0;
    }
    return rd_be(d, b == 0xdc ? 2 : 4, n);
}

/* The value of field @f at the cursor. */
static int rd_value(struct rd *d, struct fsm_rec *r, struct fsm_rf *f)
{
    uint64_t u, n;
    const uint8_t *s;
    uint8_t b;

    if (d->off >= d->len) {
        return YH_ECORRUPT;
    }
    b = d->p[d->off];
    if (b <= 0x7f) {
        d->off++;
        f->t = FSM_RF_INT;
        f->i = b;
        return 0;
    }
    if (b >= 0xe0) {
        d->off++;
        f->t = FSM_RF_INT;
        f->i = (int8_t)b;
        return 0;
    }
    if ((b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb) {
        if (rd_str(d, &s, &n) != 0) {
            return YH_ECORRUPT;
        }
        f->t = FSM_RF_STR;
        return rf_dupn(r, f, (const char *)s, n) != NULL ? 0 : YH_ENOMEM;
    }
    d->off++;
    switch (b) {
    case 0xc0:
        return 0;
    case 0xc2:
    case 0xc3:
        f->t = FSM_RF_BOOL;
        f->i = b == 0xc3;
        return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (rd_be(d, 1u << (b - 0xcc), &u) != 0 || u > INT64_MAX) {
            return YH_ECORRUPT;
        }
        f->t = FSM_RF_INT;
        f->i = (int64_t)u;
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        unsigned w = 1u << (b - 0xd0);
        if (rd_be(d, w, &u) != 0) {
            return YH_ECORRUPT;
        }
        if (w < 8 && (u >> (8 * w - 1)) != 0) {
            u |= ~(uint64_t)0 << (8 * w); /* sign-extend */
        }
        f->t = FSM_RF_INT;
        f->i = (int64_t)u;
        return 0;
    }
    case 0xc4:
    case 0xc5:
    case 0xc6:
        if (rd_be(d, 1u << (b - 0xc4), &n) != 0 || rd_bytes(d, n, &s) != 0) {
            return YH_ECORRUPT;
        }
        f->t = FSM_RF_BIN;
        f->i = (int64_t)n;
        return rf_dupn(r, f, (const char *)s, n) != NULL ? 0 : YH_ENOMEM;
    default:
        break;
    }
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
        size_t start, len = 0, off = 0;
        if (rd_array(d, b, &n) != 0) {
            return YH_ECORRUPT;
        }
        /* every element takes at least one byte */
        if (n > d->len - d->off) {
            return YH_ECORRUPT;
        }
        start = d->off;
        for (uint64_t j = 0; j < n; j++) {
            uint64_t l;
            if (rd_str(d, &s, &l) != 0) {
                return YH_ECORRUPT;
            }
            len += l + 1;
        }
        if (rf_alloc(r, f, len + 1) == NULL) {
            return YH_ENOMEM;
        }
        f->t = FSM_RF_LIST;
        d->off = start;
        for (uint64_t j = 0; j < n; j++) {
            uint64_t l;
            (void)rd_str(d, &s, &l);
            if (j > 0) {
                f->s[off++] = '\n';
            }
            memcpy(f->s + off, s, l);
            off += l;
        }
        f->s[off] = '\0';
        return 0;
    }
    return YH_ECORRUPT; /* floats, maps, ext, 0xc1 */
}

int fsm__rec_decode(const void *p, size_t n, struct fsm_rec *r)
{
    struct rd d = {p, n, 0};
    uint64_t count;
    uint8_t b;
    int rc = 0;

    fsm__rec_free(r);
    if (p == NULL || n == 0) {
        return YH_ECORRUPT;
    }
    b = d.p[d.off++];
    if ((b & 0xf0) == 0x80) {
        count = b & 0x0f;
    } else if (b != 0xde && b != 0xdf) {
        return YH_ECORRUPT;
    } else if (rd_be(&d, b == 0xde ? 2 : 4, &count) != 0) {
        return YH_ECORRUPT;
    }
    if (count > FSM_REC_MAX) {
        return YH_ECORRUPT;
    }
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        const uint8_t *k;
        uint64_t kl;
        struct fsm_rf *f;
        /* Append without looking the name up: records are written by
         * fsm__rec_pack_all with unique names. */
        int kid = -1;
        if (d.off < d.len && (d.p[d.off] <= 0x7f || d.p[d.off] == 0xcc)) {
            /* a numbered name */
            uint64_t id = d.p[d.off++];
            if (id == 0xcc && rd_be(&d, 1, &id) != 0) {
                rc = YH_ECORRUPT;
                break;
            }
            if (id >= REC_N_NAMES) {
                rc = YH_ECORRUPT;
                break;
            }
            kid = (int)id;
            k = (const uint8_t *)rec_names[id];
            kl = name_len[id];
        } else if (rd_str(&d, &k, &kl) != 0 || kl >= sizeof f->k ||
                   memchr(k, '\0', kl) != NULL) {
            rc = YH_ECORRUPT;
            break;
        }
        f = &r->f[r->n++];
        memcpy(f->k, k, kl);
        f->k[kl] = '\0';
        f->kl = (uint8_t)kl;
        f->kid = (int16_t)kid;
        f->s = NULL;
        f->own = 0;
        f->t = FSM_RF_NIL;
        f->i = 0;
        rc = rd_value(&d, r, f);
    }
    if (rc == 0 && d.off != n) {
        rc = YH_ECORRUPT;
    }
    if (rc != 0) {
        fsm__rec_free(r);
    }
    return rc;
}

int fsm__rec_load(struct fsm *f,
                  MDB_txn *txn,
                  enum fsm_tbl t,
                  const void *k,
                  size_t kl,
                  struct fsm_rec *r)
{
    MDB_val v;
    int rc;

    fsm__rec_free(r);
    rc = fsm__get(f, txn, t, k, kl, &v);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__rec_decode(v.mv_data, v.mv_size, r);
    if (rc == YH_ECORRUPT) {
        snprintf(f->errmsg, sizeof f->errmsg, "record in '%s' is corrupt",
                 fsm__tbls[t].name);
    }
    return rc;
}

static void pack_list(msgpack_packer *pk, const char *s)
{
    uint32_t n = 0;
    const char *p;

    if (s[0] != '\0') {
        n = 1;
        for (p = s; *p != '\0'; p++) {
            n += *p == '\n';
        }
    }
    msgpack_pack_array(pk, n);
    for (p = s; n > 0; n--) {
        const char *e = strchr(p, '\n');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        yh_mp_pack_strn(pk, p, l);
        p += l + 1;
    }
}

static void pack_fields(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        int public_only,
                        uint32_t extra)
{
    uint32_t n = extra;

    for (unsigned i = 0; i < r->n; i++) {
        n += !public_only || (r->f[i].k[0] != '_' && r->f[i].t != FSM_RF_BIN);
    }
    msgpack_pack_map(pk, n);
    for (unsigned i = 0; i < r->n; i++) {
        const struct fsm_rf *f = &r->f[i];
        if (public_only && (f->k[0] == '_' || f->t == FSM_RF_BIN)) {
            continue;
        }
        yh_mp_pack_strn(pk, f->k, f->kl);
        switch (f->t) {
        case FSM_RF_NIL:
            msgpack_pack_nil(pk);
            break;
        case FSM_RF_INT:
            msgpack_pack_int64(pk, f->i);
            break;
        case FSM_RF_BOOL:
            if (f->i) {
                msgpack_pack_true(pk);
            } else {
                msgpack_pack_false(pk);
            }
            break;
        case FSM_RF_STR:
            yh_mp_pack_str(pk, f->s);
            break;
        case FSM_RF_LIST:
            pack_list(pk, f->s);
            break;
        case FSM_RF_BIN:
            msgpack_pack_bin(pk, (size_t)f->i);
            msgpack_pack_bin_body(pk, f->s, (size_t)f->i);
            break;
        }
    }
}

void fsm__rec_pack_all(msgpack_packer *pk, const struct fsm_rec *r)
{
    pack_fields(pk, r, 0, 0);
}

void fsm__rec_pack(msgpack_packer *pk, const struct fsm_rec *r)
{
    pack_fields(pk, r, 1, 0);
}

void fsm__rec_pack_more(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        uint32_t extra)
{
    pack_fields(pk, r, 1, extra);
}

/* ---- encoding a record to store ----
 *
 * The bytes of fsm__rec_pack_all (msgpack-c's choices: the shortest
 * header for each length, the shortest signed or unsigned form of each
 * integer) written straight into the buffer: one reservation instead of
 * a packer callback per token. */

static uint8_t *put_be(uint8_t *o, uint64_t v, unsigned n)
{
    for (unsigned i = n; i-- > 0;) {
        o[i] = (uint8_t)v;
        v >>= 8;
    }
    return o + n;
}

/* A header: the fix form (@fix | n) below @fixmax, else @b8 (when not 0),
 * @b16 or @b32 with the length. */
static uint8_t *put_hdr(uint8_t *o,
                        uint64_t n,
                        uint8_t fix,
                        uint64_t fixmax,
                        uint8_t b8,
                        uint8_t b16,
                        uint8_t b32)
{
    if (fix != 0 && n < fixmax) {
        *o++ = (uint8_t)(fix | n);
    } else if (b8 != 0 && n < 0x100) {
        *o++ = b8;
        *o++ = (uint8_t)n;
    } else if (n < 0x10000) {
        *o++ = b16;
        o = put_be(o, n, 2);
    } else {
        *o++ = b32;
        o = put_be(o, n, 4);
    }
    return o;
}

static uint8_t *put_str(uint8_t *o, const char *p, size_t n)
{
    o = put_hdr(o, n, 0xa0, 32, 0xd9, 0xda, 0xdb);
    memcpy(o, p, n);
    return o + n;
}

static uint8_t *put_int(uint8_t *o, int64_t v)
{
    if (v < -(1LL << 5)) {
        if (v < -(1LL << 31)) {
            *o++ = 0xd3;
            return put_be(o, (uint64_t)v, 8);
        }
        if (v < -(1LL << 15)) {
            *o++ = 0xd2;
            return put_be(o, (uint64_t)v, 4);
        }
        if (v < -(1LL << 7)) {
            *o++ = 0xd1;
            return put_be(o, (uint64_t)v, 2);
        }
        *o++ = 0xd0;
        return put_be(o, (uint64_t)v, 1);
    }
    if (v < (1LL << 7)) {
        *o++ = (uint8_t)v;
        return o;
    }
    if (v < (1LL << 8)) {
        *o++ = 0xcc;
        return put_be(o, (uint64_t)v, 1);
    }
    if (v < (1LL << 16)) {
        *o++ = 0xcd;
        return put_be(o, (uint64_t)v, 2);
    }
    if (v < (1LL << 32)) {
        *o++ = 0xce;
        return put_be(o, (uint64_t)v, 4);
    }
    *o++ = 0xcf;
    return put_be(o, (uint64_t)v, 8);
}

/* Append @r (every field) to @b: the bytes fsm__rec_pack_all packs, or
 * with @compact the dictionary's names as their numbers. */
static int rec_encode(const struct fsm_rec *r, int compact, struct yh_buf *b)
{
    size_t sl[FSM_REC_MAX]; /* strlen of each STR value */
    size_t need = 5;
    uint8_t *o;

    for (unsigned i = 0; i < r->n; i++) {
        const struct fsm_rf *f = &r->f[i];
        need += 5 + f->kl + 9;
        if (f->t == FSM_RF_STR || f->t == FSM_RF_LIST) {
            size_t l = strlen(f->s);
            sl[i] = l;
            need += l + (f->t == FSM_RF_LIST ? 5 * (l + 1) + 5 : 0);
        } else if (f->t == FSM_RF_BIN) {
            need += (size_t)f->i;
        }
    }
    if (yh_buf_reserve(b, need) != 0) {
        return YH_ENOMEM;
    }
    o = b->data + b->len;
    o = put_hdr(o, r->n, 0x80, 16, 0, 0xde, 0xdf);
    for (unsigned i = 0; i < r->n; i++) {
        const struct fsm_rf *f = &r->f[i];
        if (compact && f->kid >= 0) {
            o = put_int(o, f->kid);
        } else {
            o = put_str(o, f->k, f->kl);
        }
        switch (f->t) {
        case FSM_RF_NIL:
            *o++ = 0xc0;
            break;
        case FSM_RF_INT:
            o = put_int(o, f->i);
            break;
        case FSM_RF_BOOL:
            *o++ = f->i ? 0xc3 : 0xc2;
            break;
        case FSM_RF_STR:
            o = put_str(o, f->s, sl[i]);
            break;
        case FSM_RF_LIST: {
            const char *p = f->s;
            uint32_t n = 0;
            if (p[0] != '\0') {
                n = 1;
                for (const char *q = p; *q != '\0'; q++) {
                    n += *q == '\n';
                }
            }
            o = put_hdr(o, n, 0x90, 16, 0, 0xdc, 0xdd);
            for (; n > 0; n--) {
                const char *e = strchr(p, '\n');
                size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
                o = put_str(o, p, l);
                p += l + 1;
            }
            break;
        }
        case FSM_RF_BIN:
            o = put_hdr(o, (uint64_t)f->i, 0, 0, 0xc4, 0xc5, 0xc6);
            memcpy(o, f->s, (size_t)f->i);
            o += f->i;
            break;
        }
    }
    b->len = (size_t)(o - b->data);
    return 0;
}

/* Add (@add) or drop the row TenantID "\0" resource of 'tenant_res'. A
 * row is only a hint for Describe, which still checks the record's owner;
 * adding is skipped when present (most saves update a resource). */
int fsm__tenant_index(struct fsm_ctx *c,
                      const char *tenant,
                      const void *id,
                      size_t idl,
                      int add)
{
    uint8_t key[2 * FSM_ID_SIZE + 2];
    size_t tl = strlen(tenant);
    MDB_val v;
    int rc;

    if (tl == 0 || tl >= FSM_ID_SIZE || idl == 0 || idl >= FSM_ID_SIZE) {
        return 0; /* no owner (or not an ID): nothing to index */
    }
    memcpy(key, tenant, tl);
    key[tl] = '\0';
    memcpy(key + tl + 1, id, idl);
    rc = fsm__get(c->f, c->txn, FSM_TBL_TENANT_RES, key, tl + 1 + idl, &v);
    if (add) {
        return rc == YH_ENOTFOUND ? fsm__put(c->f, c->txn, FSM_TBL_TENANT_RES,
                                             key, tl + 1 + idl, "", 0)
                                  : rc;
    }
    return rc == 0
               ? fsm__del(c->f, c->txn, FSM_TBL_TENANT_RES, key, tl + 1 + idl)
           : rc == YH_ENOTFOUND ? 0
                                : rc;
}

/* ---- 'res_list': listed resources and block counts ----
 *
 * "L" ID -> "" for every record of 'resources' whose State is not
 * "Recycled" (what fsm__keep_live keeps), and "C" block -> be64 count of
 * such records in the block. An ID's block is its type prefix (through
 * the first '-') and the next LIST_BLOCK_DIGITS bytes, or the whole ID
 * when shorter: a fixed-length prefix, so every block is one contiguous
 * run of IDs and blocks sort like their IDs (1,000 machines a block for
 * "uhost-%08d"). Kept by fsm__rec_save and fsm__cdel like 'tenant_res'. */
#define LIST_BLOCK_DIGITS 5
#define LIST_KEY_MAX (FSM_ID_SIZE + 2)

static size_t list_block_len(const char *id, size_t idl)
{
    const char *dash = memchr(id, '-', idl);
    size_t l = dash != NULL ? (size_t)(dash - id) + 1 + LIST_BLOCK_DIGITS : idl;

    return l < idl ? l : idl;
}

/* Add @d to the count row @k (deleted at 0). */
static int list_count_add(struct fsm_ctx *c,
                          const uint8_t *k,
                          size_t kl,
                          int64_t d)
{
    uint64_t n = 0;
    uint8_t be[8];
    MDB_val v;
    int rc = fsm__get(c->f, c->txn, FSM_TBL_RES_LIST, k, kl, &v);

    if (rc == 0 && v.mv_size == 8) {
        n = fsm__be64_get(v.mv_data);
    } else if (rc == 0) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "record in 'res_list' is corrupt");
        return YH_ECORRUPT;
    } else if (rc != YH_ENOTFOUND) {
        return rc;
    }
    n += (uint64_t)d;
    if (n == 0) {
        return fsm__del(c->f, c->txn, FSM_TBL_RES_LIST, k, kl);
    }
    fsm__be64_put(be, n);
    return fsm__put(c->f, c->txn, FSM_TBL_RES_LIST, k, kl, be, 8);
}

/* Make resource @id listed (@listed) or not. */
static int list_index(struct fsm_ctx *c, const void *id, size_t idl, int listed)
{
    uint8_t key[LIST_KEY_MAX];
    MDB_val v;
    int rc;

    if (idl == 0 || idl + 1 > sizeof key) {
        return 0; /* not an ID: never listed */
    }
    key[0] = 'L';
    memcpy(key + 1, id, idl);
    rc = fsm__get(c->f, c->txn, FSM_TBL_RES_LIST, key, idl + 1, &v);
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    if ((rc == 0) == (listed != 0)) {
        return 0;
    }
    rc = listed ? fsm__put(c->f, c->txn, FSM_TBL_RES_LIST, key, idl + 1, "", 0)
                : fsm__del(c->f, c->txn, FSM_TBL_RES_LIST, key, idl + 1);
    if (rc != 0) {
        return rc;
    }
    key[0] = 'C';
    return list_count_add(c, key, 1 + list_block_len(id, idl), listed ? 1 : -1);
}

/* ---- 'res_list': machines by anti-affinity group ----
 *
 * "A" AntiAffinityGroupID NUL VMID -> "" for every record of 'resources'
 * keyed "uhost-…" with a group (recycled ones too). A machine's group is
 * set when it is created and never changes, so a save adds the row when
 * it is missing (one lookup, only for machines in a group) and a delete
 * drops it. The scheduler's anti-affinity check walks the group's rows
 * instead of every machine (and still checks each record). */
#define AAG_IDX_PREFIX "uhost-"

/* Add (@add) or drop the row @tag @a NUL @id of 'res_list' (shared by the
 * "A" and "D" rows below). Empty or oversized @a: no row. */
static int pair_row(struct fsm_ctx *c,
                    char tag,
                    const char *a,
                    const void *id,
                    size_t idl,
                    int add)
{
    size_t al = strlen(a);
    uint8_t key[2 * FSM_ID_SIZE + 2];
    MDB_val v;
    int rc;

    if (al == 0 || al >= FSM_ID_SIZE || idl >= FSM_ID_SIZE) {
        return 0;
    }
    key[0] = (uint8_t)tag;
    memcpy(key + 1, a, al);
    key[1 + al] = '\0';
    memcpy(key + 2 + al, id, idl);
    rc = fsm__get(c->f, c->txn, FSM_TBL_RES_LIST, key, 2 + al + idl, &v);
    if (add) {
        return rc == YH_ENOTFOUND ? fsm__put(c->f, c->txn, FSM_TBL_RES_LIST,
                                             key, 2 + al + idl, "", 0)
                                  : rc;
    }
    return rc == 0 ? fsm__del(c->f, c->txn, FSM_TBL_RES_LIST, key, 2 + al + idl)
           : rc == YH_ENOTFOUND ? 0
                                : rc;
}

/* Call @fn with the second half of every row @tag @a NUL … of 'res_list',
 * in order (shared by fsm__aag_walk and fsm__vm_disk_walk). */
static int pair_walk(struct fsm *f,
                     MDB_txn *txn,
                     char tag,
                     const char *a,
                     int (*fn)(void *arg, const char *id),
                     void *arg)
{
    uint8_t pre[FSM_ID_SIZE + 2];
    size_t al = strlen(a), pl;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, stop = 0;

    if (al == 0 || al >= FSM_ID_SIZE) {
        return 0;
    }
    pre[0] = (uint8_t)tag;
    memcpy(pre + 1, a, al);
    pre[1 + al] = '\0';
    pl = 2 + al;
    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_RES_LIST], &cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on 'res_list'");
    }
    k.mv_data = pre;
    k.mv_size = pl;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && stop == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char id[FSM_ID_SIZE];
        size_t idl;
        if (k.mv_size < pl || memcmp(k.mv_data, pre, pl) != 0) {
            break;
        }
        idl = k.mv_size - pl;
        if (idl == 0 || idl >= FSM_ID_SIZE) {
            continue;
        }
        memcpy(id, (const uint8_t *)k.mv_data + pl, idl);
        id[idl] = '\0';
        stop = fn(arg, id);
    }
    mdb_cursor_close(cur);
    if (stop < 0) {
        return stop;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(f, rc, "read 'res_list'");
    }
    return 0;
}

static int aag_index(struct fsm_ctx *c,
                     const void *id,
                     size_t idl,
                     const struct fsm_rec *r,
                     int add)
{
    if (idl <= sizeof AAG_IDX_PREFIX - 1 ||
        memcmp(id, AAG_IDX_PREFIX, sizeof AAG_IDX_PREFIX - 1) != 0) {
        return 0;
    }
    return pair_row(c, 'A', fsm__rec_s(r, "AntiAffinityGroupID"), id, idl, add);
}

int fsm__aag_walk(struct fsm_ctx *c,
                  const char *aag,
                  int (*fn)(void *arg, const char *vm),
                  void *arg)
{
    return pair_walk(c->f, c->txn, 'A', aag, fn, arg);
}

/* ---- 'res_list': disks by machine ----
 *
 * "D" VMID NUL DiskID -> "" for every disk record ("bsi-…") bound to a
 * machine (VMID set: attached, attaching, detaching, or a boot disk). A
 * disk's VMID changes on attach and detach, so a save of a disk looks up
 * the stored record's VMID first (one get of the row about to be
 * replaced) and moves the row. A machine's spec and its purge walk these
 * rows instead of every disk record. */
#define DISK_IDX_PREFIX "bsi-"

static int disk_row(struct fsm_ctx *c,
                    const char *vm,
                    const void *id,
                    size_t idl,
                    int add)
{
    return pair_row(c, 'D', vm, id, idl, add);
}

static int is_disk_key(const void *id, size_t idl)
{
    return idl > sizeof DISK_IDX_PREFIX - 1 && idl < FSM_ID_SIZE &&
           memcmp(id, DISK_IDX_PREFIX, sizeof DISK_IDX_PREFIX - 1) == 0;
}

/* Before a disk record @r replaces the stored one: drop the row of the
 * machine it was bound to if that changes; the caller adds the new one. */
static int disk_index_move(struct fsm_ctx *c,
                           const void *id,
                           size_t idl,
                           const struct fsm_rec *r)
{
    struct fsm_rec old;
    int rc;

    if (!is_disk_key(id, idl)) {
        return 0;
    }
    fsm__rec_init(&old);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, idl, &old);
    if (rc == 0 && strcmp(fsm__rec_s(&old, "VMID"), fsm__rec_s(r, "VMID"))) {
        rc = disk_row(c, fsm__rec_s(&old, "VMID"), id, idl, 0);
    }
    fsm__rec_free(&old);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

int fsm__vm_disk_walk(struct fsm *f,
                      MDB_txn *txn,
                      const char *vm,
                      int (*fn)(void *arg, const char *disk),
                      void *arg)
{
    return pair_walk(f, txn, 'D', vm, fn, arg);
}

/* ---- 'res_list': machines by host ----
 *
 * "H" HostID NUL VMID -> "" for every machine record ("uhost-…", recycled
 * ones too) on the host it is placed on (HostID) and, while it is being
 * migrated, on its source (MigrateFromHostID). A machine's hosts change
 * when it is created, migrated and when the migration ends, so a save of
 * a machine reads the stored record first (one get, as for the disk rows)
 * and moves its rows when they differ. _HostExpire and the heartbeat that
 * ends an Unknown walk the host's rows instead of every machine. */
static int is_vm_key(const void *id, size_t idl)
{
    return idl > sizeof AAG_IDX_PREFIX - 1 && idl < FSM_ID_SIZE &&
           memcmp(id, AAG_IDX_PREFIX, sizeof AAG_IDX_PREFIX - 1) == 0;
}

/* Add (@add) or drop the rows of machine @id for the hosts of @r. */
static int vm_host_rows(struct fsm_ctx *c,
                        const void *id,
                        size_t idl,
                        const struct fsm_rec *r,
                        int add)
{
    const char *from = fsm__rec_s(r, "MigrateFromHostID");

    TRY(pair_row(c, 'H', fsm__rec_s(r, "HostID"), id, idl, add));
    if (strcmp(from, fsm__rec_s(r, "HostID")) == 0) {
        return 0; /* "" (not migrating), or the same host: one row */
    }
    return pair_row(c, 'H', from, id, idl, add);
}

/* Whether @a and @b name the same hosts. */
static int vm_hosts_same(const struct fsm_rec *a, const struct fsm_rec *b)
{
    return strcmp(fsm__rec_s(a, "HostID"), fsm__rec_s(b, "HostID")) == 0 &&
           strcmp(fsm__rec_s(a, "MigrateFromHostID"),
                  fsm__rec_s(b, "MigrateFromHostID")) == 0;
}

int fsm__host_vm_walk(struct fsm *f,
                      MDB_txn *txn,
                      const char *host,
                      int (*fn)(void *arg, const char *vm),
                      void *arg)
{
    return pair_walk(f, txn, 'H', host, fn, arg);
}

/* ---- 'res_list': snapshots by disk ----
 *
 * "S" DiskID NUL SnapshotID -> "" for every snapshot record ("snap-…",
 * recycled ones too). A snapshot's disk is set when it is created and
 * never changes, so a save adds the row when it is missing (one lookup,
 * as for the "A" rows) and a delete drops it. CreateSnapshot's per-disk
 * limit, DeleteDisk's "has snapshots" check and a disk's purge walk the
 * disk's rows instead of every snapshot record. */
#define SNAP_IDX_PREFIX "snap-"

static int is_snap_key(const void *id, size_t idl)
{
    return idl > sizeof SNAP_IDX_PREFIX - 1 && idl < FSM_ID_SIZE &&
           memcmp(id, SNAP_IDX_PREFIX, sizeof SNAP_IDX_PREFIX - 1) == 0;
}

static int snap_index(struct fsm_ctx *c,
                      const void *id,
                      size_t idl,
                      const struct fsm_rec *r,
                      int add)
{
    if (!is_snap_key(id, idl)) {
        return 0;
    }
    return pair_row(c, 'S', fsm__rec_s(r, "DiskID"), id, idl, add);
}

int fsm__disk_snap_walk(struct fsm *f,
                        MDB_txn *txn,
                        const char *disk,
                        int (*fn)(void *arg, const char *snap),
                        void *arg)
{
    return pair_walk(f, txn, 'S', disk, fn, arg);
}

/* Before record @r of 'resources' replaces the stored one: the rows that
 * follow a field of the record ("D" of a disk, "H" of a machine) are
 * moved when that field changes. One read of the stored record, for disks
 * and machines only. */
static int index_move(struct fsm_ctx *c,
                      const void *id,
                      size_t idl,
                      const struct fsm_rec *r)
{
    struct fsm_rec old;
    int found;
    int rc;

    if (!is_vm_key(id, idl)) {
        return disk_index_move(c, id, idl, r);
    }
    fsm__rec_init(&old);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, idl, &old);
    found = rc == 0;
    rc = rc == YH_ENOTFOUND ? 0 : rc;
    if (rc == 0 && found && !vm_hosts_same(&old, r)) {
        rc = vm_host_rows(c, id, idl, &old, 0);
    }
    if (rc == 0 && (!found || !vm_hosts_same(&old, r))) {
        rc = vm_host_rows(c, id, idl, r, 1);
    }
    fsm__rec_free(&old);
    return rc;
}

int fsm__keep_live(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    (void)c;
    (void)arg;
    return strcmp(fsm__rec_s(r, "State"), "Recycled") != 0;
}

int fsm__rec_save(struct fsm_ctx *c,
                  enum fsm_tbl t,
                  const void *k,
                  size_t kl,
                  const struct fsm_rec *r)
{
    struct yh_buf b = YH_BUF_INIT;
    int rc;

    if (r->oom) {
        snprintf(c->f->errmsg, sizeof c->f->errmsg,
                 "record for '%s' could not be built", fsm__tbls[t].name);
        return YH_ENOMEM;
    }
    rc = rec_encode(r, fsm__rec_compact_tbl(t), &b);
    if (rc == 0 && t == FSM_TBL_RES) {
        rc = index_move(c, k, kl, r);
    }
    if (rc == 0) {
        rc = fsm__cput(c, t, k, kl, b.data, b.len);
    }
    yh_buf_release(&b);
    if (rc == 0 && t == FSM_TBL_RES) {
        rc = fsm__tenant_index(c, fsm__rec_s(r, "TenantID"), k, kl, 1);
    }
    if (rc == 0 && t == FSM_TBL_RES) {
        rc = list_index(c, k, kl, fsm__keep_live(c, r, NULL));
    }
    if (rc == 0 && t == FSM_TBL_RES) {
        rc = aag_index(c, k, kl, r, 1);
    }
    if (rc == 0 && t == FSM_TBL_RES && is_disk_key(k, kl)) {
        rc = disk_row(c, fsm__rec_s(r, "VMID"), k, kl, 1);
    }
    if (rc == 0 && t == FSM_TBL_RES) {
        rc = snap_index(c, k, kl, r, 1);
    }
    return rc;
}

int fsm__cput(struct fsm_ctx *c,
              enum fsm_tbl t,
              const void *k,
              size_t kl,
              const void *v,
              size_t vl)
{
    c->wrote = 1;
    return fsm__put(c->f, c->txn, t, k, kl, v, vl);
}

int fsm__cdel(struct fsm_ctx *c, enum fsm_tbl t, const void *k, size_t kl)
{
    c->wrote = 1;
    if (t == FSM_TBL_RES) {
        struct fsm_rec r;
        int rc;
        fsm__rec_init(&r);
        rc = fsm__rec_load(c->f, c->txn, t, k, kl, &r);
        if (rc == 0) {
            rc = fsm__tenant_index(c, fsm__rec_s(&r, "TenantID"), k, kl, 0);
        }
        if (rc == 0) {
            rc = list_index(c, k, kl, 0);
        }
        if (rc == 0) {
            rc = aag_index(c, k, kl, &r, 0);
        }
        if (rc == 0 && is_disk_key(k, kl)) {
            rc = disk_row(c, fsm__rec_s(&r, "VMID"), k, kl, 0);
        }
        if (rc == 0 && is_vm_key(k, kl)) {
            rc = vm_host_rows(c, k, kl, &r, 0);
        }
        if (rc == 0) {
            rc = snap_index(c, k, kl, &r, 0);
        }
        fsm__rec_free(&r);
        if (rc != 0 && rc != YH_ENOTFOUND) {
            return rc;
        }
    }
    return fsm__del(c->f, c->txn, t, k, kl);
}

size_t fsm__key2(char *out, const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);

    memcpy(out, a, la);
    out[la] = '\0';
    memcpy(out + la + 1, b, lb);
    out[la + 1 + lb] = '\0';
    return la + 1 + lb;
}

int fsm__new_id(struct fsm_ctx *c, const char *prefix, char out[FSM_ID_SIZE])
{
    char ctr[40];
    uint64_t n;
    int rc;

    snprintf(ctr, sizeof ctr, "ctr.%s", prefix);
    c->wrote = 1;
    rc = fsm__counter_next(c->f, c->txn, ctr, &n);
    if (rc != 0) {
        return rc;
    }
    snprintf(out, FSM_ID_SIZE, "%s-%08" PRIu64, prefix, n);
    return 0;
}

int fsm__owns(const struct fsm_ctx *c, const char *tenant)
{
    if (c->actor->admin) {
        return 1;
    }
    return c->actor->tenant_id[0] != '\0' &&
           strcmp(c->actor->tenant_id, tenant) == 0;
}

int fsm__owner_arg(struct fsm_ctx *c, char tenant[FSM_ID_SIZE])
{
    struct fsm_rec u;
    int given;
    int rc;

    rc = fsm__arg_str(c, "TenantID", 0, FSM_ID_SIZE - 1, tenant, &given);
    if (rc != 0) {
        return rc;
    }
    if (!c->actor->admin) {
        if (given && strcmp(tenant, c->actor->tenant_id) != 0) {
            return fsm__reject(c, YH_EPERM,
                               "permission denied: cannot act for tenant "
                               "'%s'",
                               tenant);
        }
        snprintf(tenant, FSM_ID_SIZE, "%s", c->actor->tenant_id);
        return 0;
    }
    if (!given) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter 'TenantID' (the administrator "
                           "acts for a tenant)");
    }
    fsm__rec_init(&u);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_USERS, tenant, strlen(tenant), &u);
    if (rc == 0 && (fsm__rec_i(&u, "Admin") != 0 ||
                    strcmp(fsm__rec_s(&u, "TenantID"), tenant) != 0)) {
        rc = YH_ENOTFOUND;
    }
    fsm__rec_free(&u);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "tenant '%s' not found", tenant);
    }
    return rc;
}

/* ---- generic Describe ---- */

static int id_cmp(const void *x, const void *y)
{
    return strcmp(x, y);
}

struct visit
{
    struct fsm_ctx *c;        /* context */
    const struct fsm_desc *d; /* what */
    struct fsm_out o;         /* items */
    uint64_t offset, limit;   /* page */
    uint64_t total, n;        /* counts */
};

static int visit(struct visit *vs, const struct fsm_rec *r)
{
    struct fsm_ctx *c = vs->c;
    const struct fsm_desc *d = vs->d;

    if (!d->no_tenant && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        return 0;
    }
    if (d->keep != NULL && !d->keep(c, r, d->arg)) {
        return 0;
    }
    if (vs->total >= vs->offset && vs->n < vs->limit) {
        if (d->pack != NULL) {
            d->pack(c, &vs->o.pk, r, d->arg);
        } else {
            fsm__rec_pack(&vs->o.pk, r);
        }
        vs->n++;
    }
    vs->total++;
    return 0;
}

/* An administrator's page of a type listed in 'res_list' (the Describe
 * keeps fsm__keep_live records of FSM_TBL_RES, @prefix is "type-"): the
 * block counts give TotalCount and the block holding item Offset, then
 * the listed IDs are walked from that block's first, so a page reads the
 * type's count rows (one per 1,000 IDs), at most one block of ID rows and
 * the page's records instead of every record of the type. The items and
 * TotalCount are those of the scan: the same records in key order. */
static int describe_listed(struct visit *vs, struct fsm_rec *r)
{
    struct fsm_ctx *c = vs->c;
    const char *prefix = vs->d->prefix;
    size_t plen = strlen(prefix);
    uint8_t key[LIST_KEY_MAX], start[LIST_KEY_MAX];
    size_t start_len = 0;
    uint64_t before = 0, skip;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_RES_LIST], &cur);
    if (rc != 0) {
        return fsm__mdb_err(c->f, rc, "open cursor on 'res_list'");
    }
    key[0] = 'C';
    memcpy(key + 1, prefix, plen);
    k.mv_data = key;
    k.mv_size = 1 + plen;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t n;
        if (k.mv_size < 1 + plen || memcmp(k.mv_data, key, 1 + plen) != 0) {
            break;
        }
        if (v.mv_size != 8 || k.mv_size > sizeof start) {
            rc = YH_ECORRUPT;
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "record in 'res_list' is corrupt");
            goto out;
        }
        n = fsm__be64_get(v.mv_data);
        if (start_len == 0 && vs->offset < vs->total + n) {
            start[0] = 'L';
            memcpy(start + 1, (const uint8_t *)k.mv_data + 1, k.mv_size - 1);
            start_len = k.mv_size;
            before = vs->total;
        }
        vs->total += n;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = fsm__mdb_err(c->f, rc, "read 'res_list'");
        goto out;
    }
    rc = 0;
    if (start_len == 0 || vs->limit == 0) {
        goto out;
    }
    skip = vs->offset - before;
    key[0] = 'L';
    k.mv_data = start;
    k.mv_size = start_len;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && vs->n < vs->limit;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 1 + plen || memcmp(k.mv_data, key, 1 + plen) != 0) {
            break;
        }
        if (skip > 0) {
            skip--;
            continue;
        }
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES,
                           (const uint8_t *)k.mv_data + 1, k.mv_size - 1, r);
        if (rc == YH_ENOTFOUND) {
            rc = YH_ECORRUPT;
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "'res_list' lists a resource that does not exist");
        }
        if (rc != 0) {
            goto out;
        }
        if (vs->d->pack != NULL) {
            vs->d->pack(c, &vs->o.pk, r, vs->d->arg);
        } else {
            fsm__rec_pack(&vs->o.pk, r);
        }
        vs->n++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = fsm__mdb_err(c->f, rc, "read 'res_list'");
        goto out;
    }
    rc = 0;
out:
    mdb_cursor_close(cur);
    return rc;
}

int fsm__describe(struct fsm_ctx *c, const struct fsm_desc *d)
{
    return fsm__describe_from(c, d, NULL);
}

int fsm__describe_from(struct fsm_ctx *c,
                       const struct fsm_desc *d,
                       fsm_desc_list_fn *list)
{
    char ids[100][FSM_ID_SIZE];
    struct yh_buf items = YH_BUF_INIT;
    size_t plen = strlen(d->prefix);
    MDB_cursor *cur = NULL;
    struct visit vs;
    struct fsm_rec r;
    unsigned n_ids = 0;
    int listed = 0;
    MDB_val k, v;
    int rc;

    memset(&vs, 0, sizeof vs);
    vs.c = c;
    vs.d = d;
    if (d->ids_key != NULL) {
        rc = fsm__arg_list(c, d->ids_key, 100, ids, &n_ids);
        if (rc != 0) {
            return rc;
        }
    }
    rc = fsm__arg_page(c, &vs.offset, &vs.limit);
    if (rc != 0) {
        return rc;
    }
    if (n_ids == 0 && list != NULL) {
        rc = list(c, d->arg, ids, 100, &n_ids, &listed);
        if (rc != 0) {
            return rc;
        }
    }
    fsm__out_init(&vs.o, &items);
    fsm__rec_init(&r);
    if (n_ids > 0 || listed) {
        qsort(ids, n_ids, sizeof ids[0], id_cmp);
        for (unsigned i = 0; i < n_ids; i++) {
            if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0) {
                continue;
            }
            if (strncmp(ids[i], d->prefix, plen) != 0) {
                continue;
            }
            rc =
                fsm__rec_load(c->f, c->txn, d->tbl, ids[i], strlen(ids[i]), &r);
            if (rc == YH_ENOTFOUND) {
                continue;
            }
            if (rc != 0) {
                goto out;
            }
            visit(&vs, &r);
        }
        rc = 0;
    } else if (d->tbl == FSM_TBL_RES && !d->no_tenant && !c->actor->admin) {
        /* a tenant's own resources only, through its index rows */
        char pre[2 * FSM_ID_SIZE + 2];
        size_t tl = strlen(c->actor->tenant_id);
        size_t pl;
        if (tl == 0 || tl + 1 + plen >= sizeof pre) {
            goto done; /* no tenant: owns nothing */
        }
        memcpy(pre, c->actor->tenant_id, tl);
        pre[tl] = '\0';
        memcpy(pre + tl + 1, d->prefix, plen);
        pl = tl + 1 + plen;
        rc = mdb_cursor_open(c->txn, c->f->dbis[FSM_TBL_TENANT_RES], &cur);
        if (rc != 0) {
            rc = fsm__mdb_err(c->f, rc, "open cursor on 'tenant_res'");
            goto out;
        }
        k.mv_data = pre;
        k.mv_size = pl;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            int lr;
            if (k.mv_size < pl || memcmp(k.mv_data, pre, pl) != 0) {
                break;
            }
            lr = fsm__rec_load(c->f, c->txn, FSM_TBL_RES,
                               (const uint8_t *)k.mv_data + tl + 1,
                               k.mv_size - tl - 1, &r);
            if (lr == YH_ENOTFOUND) {
                continue;
            }
            if (lr != 0) {
                rc = lr;
                goto out;
            }
            visit(&vs, &r);
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            rc = fsm__mdb_err(c->f, rc, "read 'tenant_res'");
            goto out;
        }
        rc = 0;
    } else if (d->tbl == FSM_TBL_RES && c->actor->admin &&
               d->keep == fsm__keep_live && plen >= 2 &&
               d->prefix[plen - 1] == '-' &&
               memchr(d->prefix, '-', plen - 1) == NULL) {
        rc = describe_listed(&vs, &r);
        if (rc != 0) {
            goto out;
        }
    } else {
        rc = mdb_cursor_open(c->txn, c->f->dbis[d->tbl], &cur);
        if (rc != 0) {
            rc = fsm__mdb_err(c->f, rc, "open cursor on '%s'",
                              fsm__tbls[d->tbl].name);
            goto out;
        }
        k.mv_data = (void *)d->prefix;
        k.mv_size = plen;
        rc = mdb_cursor_get(cur, &k, &v, plen > 0 ? MDB_SET_RANGE : MDB_FIRST);
        for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < plen || memcmp(k.mv_data, d->prefix, plen) != 0) {
                break;
            }
            rc = fsm__rec_decode(v.mv_data, v.mv_size, &r);
            if (rc != 0) {
                snprintf(c->f->errmsg, sizeof c->f->errmsg,
                         "record in '%s' is corrupt", fsm__tbls[d->tbl].name);
                goto out;
            }
            visit(&vs, &r);
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            rc = fsm__mdb_err(c->f, rc, "read '%s'", fsm__tbls[d->tbl].name);
            goto out;
        }
        rc = 0;
    }
done:
    if (vs.o.oom) {
        rc = YH_ENOMEM;
        goto out;
    }
    msgpack_pack_array(fsm__field(c, "Infos"), (uint32_t)vs.n);
    if (items.len > 0 &&
        yh_buf_append(&c->fields_buf, items.data, items.len) != 0) {
        c->fields.oom = 1;
    }
    msgpack_pack_uint64(fsm__field(c, "TotalCount"), vs.total);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    fsm__rec_free(&r);
    yh_buf_release(&items);
    return rc;
}

/* ---- arithmetic ---- */

int fsm__mul(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? YH_EINVAL : 0;
}

int fsm__add(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_add_overflow(a, b, out) ? YH_EINVAL : 0;
}
