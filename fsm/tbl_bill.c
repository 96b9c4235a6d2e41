/* Billing: balances, recharges, orders, transactions, renewals, the
 * billing configuration, the periodic charge/stop/recycle/purge commands
 * and the recycle bin.
 *
 * Money is int64 in 1/1000 of the currency unit. Every balance change is a
 * transaction record; every create, resize and renewal is an order.
 *
 * ChargeType Dynamic is post-paid per billing period (one "hour", length
 * set by ModifyBillingConfig): the leader proposes _BillCharge {ResourceID,
 * Epoch, Period} for every period that ended; apply charges only the next
 * period of the current epoch, so a duplicate or stale tick is a harmless
 * rejection. Month/Year are prepaid at create (Quantity months/years) and
 * carry an ExpireTime.
 *
 * Lifecycle driven by the leader's ticks, each step a logged command:
 *   balance < 0 for GracePeriod, or prepaid past ExpireTime + GracePeriod
 *     -> _BillStop: Suspended (charges stop)
 *   Suspended for RecycleAfter -> _Recycle: State Recycled (recycle bin)
 *     (a data disk still attached to a machine is detached first:
 *     _BillDetach, then its executor's ReportState Detached, then
 *     _Recycle; a recycled disk is never bound to a machine)
 *   Recycled for Retention     -> _Purge: deleted, usage released
 * DeleteX puts a resource in the recycle bin at once; RecoverResource
 * brings it back (balance >= 0, not expired), PurgeResource deletes it.
 * All times are envelope times (leader stamped). */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define CFG_KEY "billing"
#define MAX_AMOUNT 1000000000000000ll /* 10^12 currency units */
#define DAY 86400ll

#define STATE_RECYCLED "Recycled"

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

/* ---- configuration ---- */

static const struct
{
    const char *name; /* parameter and record field */
    size_t off;       /* in struct fsm_bill_cfg */
    int64_t def;      /* default, s */
} cfg_fields[] = {
    {"Period", offsetof(struct fsm_bill_cfg, period), 3600},
    {"MonthLength", offsetof(struct fsm_bill_cfg, month), 30 * DAY},
    {"YearLength", offsetof(struct fsm_bill_cfg, year), 365 * DAY},
    {"GracePeriod", offsetof(struct fsm_bill_cfg, grace), 3 * DAY},
    {"RecycleAfter", offsetof(struct fsm_bill_cfg, recycle), 3 * DAY},
    {"Retention", offsetof(struct fsm_bill_cfg, retention), 7 * DAY},
    {"HostLease", offsetof(struct fsm_bill_cfg, host_lease), 30},
};
#define N_CFG (sizeof cfg_fields / sizeof cfg_fields[0])

static int64_t *cfg_at(struct fsm_bill_cfg *cfg, size_t i)
{
    return (int64_t *)((char *)cfg + cfg_fields[i].off);
}

int fsm__bill_cfg(struct fsm *f, MDB_txn *txn, struct fsm_bill_cfg *cfg)
{
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__rec_load(f, txn, FSM_TBL_META, CFG_KEY, strlen(CFG_KEY), &r);
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    for (size_t i = 0; i < N_CFG; i++) {
        int64_t v = fsm__rec_i(&r, cfg_fields[i].name);
        *cfg_at(cfg, i) = v > 0 ? v : cfg_fields[i].def;
    }
    fsm__rec_free(&r);
    return 0;
}

static int cfg_args(struct fsm_ctx *c, struct fsm_bill_cfg *cfg, int *any)
{
    *any = 0;
    for (size_t i = 0; i < N_CFG; i++) {
        int64_t v;
        int given;
        TRY(fsm__arg_int(c, cfg_fields[i].name, 0, 1, 100 * 365 * DAY, &v,
                         &given));
        if (given) {
            *cfg_at(cfg, i) = v;
            *any = 1;
        }
    }
    return 0;
}

int fsm__bill_cfg_modify_check(struct fsm_ctx *c)
{
    struct fsm_bill_cfg cfg;
    int any;

    TRY(cfg_args(c, &cfg, &any));
    if (!any) {
        return fsm__reject(c, YH_EMISSING,
                           "missing parameter: one of Period, MonthLength, "
                           "YearLength, GracePeriod, RecycleAfter, "
                           "Retention");
    }
    return 0;
}

static void cfg_pack(struct fsm_ctx *c, const struct fsm_bill_cfg *cfg)
{
    for (size_t i = 0; i < N_CFG; i++) {
        msgpack_pack_int64(fsm__field(c, cfg_fields[i].name),
                           *cfg_at((struct fsm_bill_cfg *)cfg, i));
    }
}

int fsm__bill_cfg_modify_apply(struct fsm_ctx *c)
{
    struct fsm_bill_cfg cfg;
    struct fsm_rec r;
    int any;
    int rc;

    TRY(fsm__bill_cfg(c->f, c->txn, &cfg));
    TRY(cfg_args(c, &cfg, &any));
    if (!any) {
        return fsm__bill_cfg_modify_check(c);
    }
    fsm__rec_init(&r);
    for (size_t i = 0; i < N_CFG; i++) {
        fsm__rec_set_i(&r, cfg_fields[i].name, *cfg_at(&cfg, i));
    }
    rc = fsm__rec_save(c, FSM_TBL_META, CFG_KEY, strlen(CFG_KEY), &r);
    fsm__rec_free(&r);
    if (rc == 0) {
        cfg_pack(c, &cfg);
    }
    return rc;
}

int fsm__bill_cfg_describe(struct fsm_ctx *c)
{
    struct fsm_bill_cfg cfg;

    TRY(fsm__bill_cfg(c->f, c->txn, &cfg));
    cfg_pack(c, &cfg);
    return 0;
}

/* ---- accounts and transactions ---- */

static int account_load(struct fsm_ctx *c,
                        const char *tenant,
                        struct fsm_rec *a)
{
    int rc = fsm__rec_load(c->f, c->txn, FSM_TBL_ACCOUNTS, tenant,
                           strlen(tenant), a);

    if (rc == YH_ENOTFOUND) {
        fsm__rec_set_s(a, "UserID", tenant);
        fsm__rec_set_i(a, "Balance", 0);
        fsm__rec_set_i(a, "ArrearsSince", 0);
        fsm__rec_set_i(a, "Revision", 0);
        rc = 0;
    }
    return rc;
}

static int balance_of(struct fsm_ctx *c, const char *tenant, int64_t *b)
{
    struct fsm_rec a;
    int rc;

    fsm__rec_init(&a);
    rc = account_load(c, tenant, &a);
    *b = fsm__rec_i(&a, "Balance");
    fsm__rec_free(&a);
    return rc;
}

/* Change the balance of @tenant by @amount and record the transaction
 * (@type, with the optional references). Apply only, after every check. */
struct txn_ref
{
    const char *type;     /* Recharge, Order, Charge */
    const char *resource; /* ResourceID or NULL */
    const char *order;    /* OrderID or NULL */
    const char *serial;   /* SerialNo or NULL */
    const char *from;     /* FromType or NULL */
    int64_t period;       /* Charge: period index (0 = none) */
};

static int balance_change(struct fsm_ctx *c,
                          const char *tenant,
                          int64_t amount,
                          const struct txn_ref *ref,
                          char txn_id[FSM_ID_SIZE],
                          int64_t *balance)
{
    struct fsm_rec a, t;
    int64_t b;
    int rc;

    fsm__rec_init(&a);
    fsm__rec_init(&t);
    rc = account_load(c, tenant, &a);
    if (rc != 0) {
        goto out;
    }
    /* amounts are bounded by the callers, the sum cannot overflow in any
     * reachable state; saturate rather than wrap if it ever did */
    if (fsm__add(fsm__rec_i(&a, "Balance"), amount, &b) != 0) {
        b = amount < 0 ? INT64_MIN : INT64_MAX;
    }
    fsm__rec_set_i(&a, "Balance", b);
    if (b < 0 && fsm__rec_i(&a, "ArrearsSince") == 0) {
        fsm__rec_set_i(&a, "ArrearsSince", now_s(c));
    } else if (b >= 0) {
        fsm__rec_set_i(&a, "ArrearsSince", 0);
    }
    fsm__rec_set_i(&a, "Revision", (int64_t)c->index);
    rc = fsm__rec_save(c, FSM_TBL_ACCOUNTS, tenant, strlen(tenant), &a);
    if (rc == 0) {
        rc = fsm__new_id(c, "txn", txn_id);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&t, "TxnID", txn_id);
    fsm__rec_set_s(&t, "TenantID", tenant);
    fsm__rec_set_s(&t, "Type", ref->type);
    fsm__rec_set_i(&t, "Amount", amount);
    fsm__rec_set_i(&t, "Balance", b);
    if (ref->resource != NULL) {
        fsm__rec_set_s(&t, "ResourceID", ref->resource);
    }
    if (ref->order != NULL) {
        fsm__rec_set_s(&t, "OrderID", ref->order);
    }
    if (ref->serial != NULL) {
        fsm__rec_set_s(&t, "SerialNo", ref->serial);
    }
    if (ref->from != NULL) {
        fsm__rec_set_s(&t, "FromType", ref->from);
    }
    if (ref->period > 0) {
        fsm__rec_set_i(&t, "Period", ref->period);
    }
    fsm__rec_set_i(&t, "CreateTime", now_s(c));
    rc = fsm__rec_save(c, FSM_TBL_TXNS, txn_id, strlen(txn_id), &t);
    if (balance != NULL) {
        *balance = b;
    }
out:
    fsm__rec_free(&a);
    fsm__rec_free(&t);
    return rc;
}

/* The tenant whose account a read is about. */
static int account_arg(struct fsm_ctx *c, char tenant[FSM_ID_SIZE])
{
    int given;

    TRY(fsm__arg_str(c, "UserID", 0, FSM_ID_SIZE - 1, tenant, &given));
    if (!c->actor->admin) {
        if (given && strcmp(tenant, c->actor->tenant_id) != 0 &&
            strcmp(tenant, c->actor->user_id) != 0) {
            return fsm__reject(c, YH_EPERM,
                               "permission denied: account of another "
                               "tenant");
        }
        snprintf(tenant, FSM_ID_SIZE, "%s", c->actor->tenant_id);
        return 0;
    }
    if (!given) {
        return fsm__reject(c, YH_EMISSING, "missing parameter 'UserID'");
    }
    return 0;
}

/* @tenant is an existing main account. */
static int tenant_check(struct fsm_ctx *c, const char *tenant)
{
    struct fsm_rec u;
    int rc;

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

/* ---- Recharge ---- */

struct recharge_args
{
    char tenant[FSM_ID_SIZE]; /* UserID */
    int64_t amount;           /* Amount */
    char from[33];            /* FromType */
    char serial[65];          /* SerialNo */
};

static int recharge_args(struct fsm_ctx *c, struct recharge_args *a)
{
    TRY(fsm__arg_str(c, "UserID", 1, FSM_ID_SIZE - 1, a->tenant, NULL));
    TRY(fsm__arg_int(c, "Amount", 1, 1, MAX_AMOUNT, &a->amount, NULL));
    TRY(fsm__arg_str(c, "FromType", 1, sizeof a->from - 1, a->from, NULL));
    return fsm__arg_str(c, "SerialNo", 1, sizeof a->serial - 1, a->serial,
                        NULL);
}

int fsm__recharge_check(struct fsm_ctx *c)
{
    struct recharge_args a;

    return recharge_args(c, &a);
}

int fsm__recharge_apply(struct fsm_ctx *c)
{
    struct txn_ref ref = {"Recharge", NULL, NULL, NULL, NULL, 0};
    struct recharge_args a;
    char txn[FSM_ID_SIZE];
    struct fsm_rec s;
    int64_t bal;
    MDB_val v;
    int rc;

    TRY(recharge_args(c, &a));
    TRY(tenant_check(c, a.tenant));
    rc =
        fsm__get(c->f, c->txn, FSM_TBL_SERIALS, a.serial, strlen(a.serial), &v);
    if (rc == 0) {
        return fsm__reject(c, YH_EEXIST, "SerialNo '%s' was already used",
                           a.serial);
    }
    if (rc != YH_ENOTFOUND) {
        return rc;
    }
    TRY(balance_of(c, a.tenant, &bal));
    if (bal > MAX_AMOUNT) {
        return fsm__reject(c, YH_EINVAL, "balance would exceed %lld",
                           (long long)MAX_AMOUNT);
    }
    ref.serial = a.serial;
    ref.from = a.from;
    TRY(balance_change(c, a.tenant, a.amount, &ref, txn, &bal));
    fsm__rec_init(&s);
    fsm__rec_set_s(&s, "TxnID", txn);
    fsm__rec_set_s(&s, "UserID", a.tenant);
    fsm__rec_set_i(&s, "Amount", a.amount);
    rc = fsm__rec_save(c, FSM_TBL_SERIALS, a.serial, strlen(a.serial), &s);
    fsm__rec_free(&s);
    if (rc != 0) {
        return rc;
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", a.tenant);
    yh_mp_pack_str(fsm__field(c, "TxnID"), txn);
    msgpack_pack_int64(fsm__field(c, "Balance"), bal);
    return 0;
}

int fsm__balance_describe(struct fsm_ctx *c)
{
    char tenant[FSM_ID_SIZE];
    struct fsm_rec a;
    int rc;

    TRY(account_arg(c, tenant));
    if (c->actor->admin) {
        TRY(tenant_check(c, tenant));
    }
    fsm__rec_init(&a);
    rc = account_load(c, tenant, &a);
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "UserID"), tenant);
        msgpack_pack_int64(fsm__field(c, "Balance"), fsm__rec_i(&a, "Balance"));
        msgpack_pack_int64(fsm__field(c, "ArrearsSince"),
                           fsm__rec_i(&a, "ArrearsSince"));
    }
    fsm__rec_free(&a);
    return rc;
}

/* Describe filters shared by orders and transactions. */
struct bill_filter
{
    char tenant[FSM_ID_SIZE];   /* "" = any (admin) */
    char resource[FSM_ID_SIZE]; /* "" = any */
    char type[16];              /* "" = any */
    const char *type_field;     /* OrderType or Type */
};

static int bill_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *arg)
{
    const struct bill_filter *q = arg;

    (void)c;
    return (q->tenant[0] == '\0' ||
            strcmp(fsm__rec_s(r, "TenantID"), q->tenant) == 0) &&
           (q->resource[0] == '\0' ||
            strcmp(fsm__rec_s(r, "ResourceID"), q->resource) == 0) &&
           (q->type[0] == '\0' ||
            strcmp(fsm__rec_s(r, q->type_field), q->type) == 0);
}

static int bill_describe(struct fsm_ctx *c,
                         enum fsm_tbl tbl,
                         const char *prefix,
                         const char *ids_key,
                         const char *type_key)
{
    struct bill_filter q;
    struct fsm_desc d = {tbl, prefix, ids_key, 0, bill_keep, NULL, &q};

    memset(&q, 0, sizeof q);
    q.type_field = type_key;
    TRY(fsm__arg_str(c, "UserID", 0, FSM_ID_SIZE - 1, q.tenant, NULL));
    TRY(fsm__arg_str(c, "ResourceID", 0, FSM_ID_SIZE - 1, q.resource, NULL));
    TRY(fsm__arg_str(c, type_key, 0, sizeof q.type - 1, q.type, NULL));
    if (!c->actor->admin && q.tenant[0] != '\0' &&
        strcmp(q.tenant, c->actor->tenant_id) != 0) {
        return fsm__reject(c, YH_EPERM,
                           "permission denied: records of another tenant");
    }
    return fsm__describe(c, &d);
}

int fsm__order_describe(struct fsm_ctx *c)
{
    return bill_describe(c, FSM_TBL_ORDERS, "order-", "OrderIDs", "OrderType");
}

int fsm__txn_describe(struct fsm_ctx *c)
{
    return bill_describe(c, FSM_TBL_TXNS, "txn-", "TxnIDs", "Type");
}

/* ---- orders ---- */

static int order_write(struct fsm_ctx *c,
                       const char *tenant,
                       const struct fsm_rec *res,
                       const char *res_id,
                       const char *order_type,
                       int64_t quantity,
                       int64_t amount,
                       char id[FSM_ID_SIZE])
{
    struct fsm_rec o;
    int rc;

    TRY(fsm__new_id(c, "order", id));
    fsm__rec_init(&o);
    fsm__rec_set_s(&o, "OrderID", id);
    fsm__rec_set_s(&o, "TenantID", tenant);
    fsm__rec_set_s(&o, "ResourceID", res_id);
    fsm__rec_set_s(&o, "ResourceType", fsm__rec_s(res, "ResourceType"));
    fsm__rec_set_s(&o, "OrderType", order_type);
    fsm__rec_set_s(&o, "ChargeType", fsm__rec_s(res, "ChargeType"));
    fsm__rec_set_i(&o, "Quantity", quantity);
    fsm__rec_set_i(&o, "Amount", amount);
    fsm__rec_set_s(&o, "State", "Paid");
    fsm__rec_set_i(&o, "CreateTime", now_s(c));
    rc = fsm__rec_save(c, FSM_TBL_ORDERS, id, strlen(id), &o);
    fsm__rec_free(&o);
    return rc;
}

static int64_t unit_len(const struct fsm_bill_cfg *cfg, const char *ct)
{
    return strcmp(ct, "Year") == 0 ? cfg->year : cfg->month;
}

/* The resource's ID: the typed ID field named in "_IDField". */
static const char *res_id_of(const struct fsm_rec *r)
{
    return fsm__rec_s(r, fsm__rec_s(r, "_IDField"));
}

int fsm__bill_create(struct fsm_ctx *c,
                     const char *tenant,
                     struct fsm_rec *res,
                     const char *ct,
                     int64_t quantity,
                     int64_t price,
                     int check_only)
{
    int dynamic = strcmp(ct, "Dynamic") == 0;
    struct txn_ref ref = {"Order", NULL, NULL, NULL, NULL, 0};
    struct fsm_bill_cfg cfg;
    char order[FSM_ID_SIZE];
    char txn[FSM_ID_SIZE];
    int64_t amount, bal, span;

    if (fsm__mul(price, dynamic ? 1 : quantity, &amount) != 0 ||
        amount > MAX_AMOUNT) {
        return fsm__reject(c, YH_EINVAL, "price overflows");
    }
    if (check_only) {
        TRY(balance_of(c, tenant, &bal));
        /* Dynamic: the balance must cover the first period; prepaid: the
         * whole amount. A tenant in arrears cannot create anything. */
        if (bal < amount || bal < 0) {
            return fsm__reject(c, YH_EBALANCE,
                               "insufficient balance: %" PRId64
                               " needed, %" PRId64 " available",
                               amount, bal);
        }
        return 0;
    }
    fsm__rec_set_s(res, "ChargeType", ct);
    fsm__rec_set_i(res, "_Price", price);
    if (dynamic) {
        fsm__rec_set_i(res, "ExpireTime", 0);
        fsm__rec_set_i(res, "_BillStart", now_s(c));
        fsm__rec_set_i(res, "_Billed", 0);
    } else {
        /* the settings only for the prepaid span (a read per create) */
        TRY(fsm__bill_cfg(c->f, c->txn, &cfg));
        span = unit_len(&cfg, ct) * quantity;
        fsm__rec_set_i(res, "ExpireTime", now_s(c) + span);
    }
    TRY(order_write(c, tenant, res, res_id_of(res), "Create",
                    dynamic ? 0 : quantity, dynamic ? 0 : amount, order));
    fsm__rec_set_s(res, "_OrderID", order);
    if (!dynamic && amount > 0) {
        ref.resource = res_id_of(res);
        ref.order = order;
        TRY(balance_change(c, tenant, -amount, &ref, txn, NULL));
    }
    yh_mp_pack_str(fsm__field(c, "OrderID"), order);
    return 0;
}

int fsm__bill_resize(struct fsm_ctx *c,
                     const char *tenant,
                     struct fsm_rec *res,
                     int64_t new_price,
                     int check_only)
{
    const char *ct = fsm__rec_s(res, "ChargeType");
    struct txn_ref ref = {"Order", NULL, NULL, NULL, NULL, 0};
    struct fsm_bill_cfg cfg;
    char order[FSM_ID_SIZE];
    char txn[FSM_ID_SIZE];
    int64_t amount = 0, bal, left;
    __int128 prod;

    if (strcmp(ct, "Dynamic") != 0) {
        /* the difference for the prepaid time left, pro rata */
        TRY(fsm__bill_cfg(c->f, c->txn, &cfg));
        left = fsm__rec_i(res, "ExpireTime") - now_s(c);
        if (left > 0 && new_price > fsm__rec_i(res, "_Price")) {
            prod = (__int128)(new_price - fsm__rec_i(res, "_Price")) * left;
            prod /= unit_len(&cfg, ct);
            if (prod > MAX_AMOUNT) {
                return fsm__reject(c, YH_EINVAL, "price overflows");
            }
            amount = (int64_t)prod;
        }
    }
    if (check_only) {
        TRY(balance_of(c, tenant, &bal));
        if (bal < amount || bal < 0) {
            return fsm__reject(c, YH_EBALANCE,
                               "insufficient balance: %" PRId64
                               " needed, %" PRId64 " available",
                               amount, bal);
        }
        return 0;
    }
    fsm__rec_set_i(res, "_Price", new_price);
    TRY(order_write(c, tenant, res, res_id_of(res), "Resize", 0, amount,
                    order));
    if (amount > 0) {
        ref.resource = res_id_of(res);
        ref.order = order;
        TRY(balance_change(c, tenant, -amount, &ref, txn, NULL));
    }
    yh_mp_pack_str(fsm__field(c, "OrderID"), order);
    return 0;
}

/* ---- resources: lookup for the generic actions ---- */

/* Load resource @id for a mutation by the actor: 150 when absent or of
 * another tenant (a tenant never learns of others' resources). */
static int res_get(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    int rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), r);

    if (rc == 0 && !fsm__owns(c, fsm__rec_s(r, "TenantID"))) {
        rc = YH_ENOTFOUND;
    }
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "resource '%s' not found", id);
    }
    return rc;
}

static int res_save(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    fsm__rec_set_i(r, "Revision", (int64_t)c->index);
    return fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), r);
}

static int is_recycled(const struct fsm_rec *r)
{
    return strcmp(fsm__rec_s(r, "State"), STATE_RECYCLED) == 0;
}

/* Delete @id and release its usage. */
static int res_purge(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    const char *types[8];
    int64_t delta[8];
    char buf[8][48];
    unsigned n = fsm__res_usage(r, types, delta, buf);

    for (unsigned i = 0; i < n; i++) {
        delta[i] = -delta[i];
    }
    TRY(fsm__usage_add(c, fsm__rec_s(r, "TenantID"), n, types, delta));
    TRY(fsm__res_release(c, r));
    TRY(fsm__auto_purge(c, id)); /* its metric rings and alarm bindings */
    if (strcmp(fsm__rec_s(r, "ResourceType"), "VM") == 0) {
        /* the hosts must hear that it is gone (fsm_host_spec2 and the
         * oplog's "Gone") */
        snprintf(c->gone_host, sizeof c->gone_host, "%s",
                 fsm__rec_s(r, "HostID"));
        snprintf(c->gone_host2, sizeof c->gone_host2, "%s",
                 fsm__rec_s(r, "MigrateFromHostID"));
    }
    return fsm__cdel(c, FSM_TBL_RES, id, strlen(id));
}

/* ---- RenewResource ---- */

int fsm__renew_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    int64_t q;

    TRY(fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_int(c, "Quantity", 0, 1, 11, &q, NULL);
}

int fsm__renew_apply(struct fsm_ctx *c)
{
    struct txn_ref ref = {"Order", NULL, NULL, NULL, NULL, 0};
    char id[FSM_ID_SIZE], order[FSM_ID_SIZE], txn[FSM_ID_SIZE];
    char tenant[FSM_ID_SIZE];
    struct fsm_bill_cfg cfg;
    struct fsm_rec r;
    int64_t q, amount, bal, exp;
    const char *ct;
    int given;
    int rc;

    TRY(fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL));
    fsm__rec_init(&r);
    rc = res_get(c, id, &r);
    if (rc != 0) {
        goto out;
    }
    ct = fsm__rec_s(&r, "ChargeType");
    if (strcmp(ct, "Month") != 0 && strcmp(ct, "Year") != 0) {
        rc = fsm__reject(c, YH_ESTATE,
                         "'%s' is charged %s: only Month and Year resources "
                         "are renewed",
                         id, ct);
        goto out;
    }
    rc = fsm__arg_int(c, "Quantity", 0, 1, strcmp(ct, "Month") == 0 ? 11 : 5,
                      &q, &given);
    if (rc != 0) {
        goto out;
    }
    if (!given) {
        q = 1;
    }
    snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&r, "TenantID"));
    if (fsm__mul(fsm__rec_i(&r, "_Price"), q, &amount) != 0 ||
        amount > MAX_AMOUNT) {
        rc = fsm__reject(c, YH_EINVAL, "price overflows");
        goto out;
    }
    rc = balance_of(c, tenant, &bal);
    if (rc != 0) {
        goto out;
    }
    if (bal < amount || bal < 0) {
        rc = fsm__reject(c, YH_EBALANCE,
                         "insufficient balance: %" PRId64 " needed, %" PRId64
                         " available",
                         amount, bal);
        goto out;
    }
    rc = fsm__bill_cfg(c->f, c->txn, &cfg);
    if (rc != 0) {
        goto out;
    }
    /* contiguous: the new term starts where the old one ended */
    exp = fsm__rec_i(&r, "ExpireTime") + unit_len(&cfg, ct) * q;
    fsm__rec_set_i(&r, "ExpireTime", exp);
    if (fsm__rec_i(&r, "Suspended") &&
        strcmp(fsm__rec_s(&r, "SuspendReason"), "Expired") == 0 &&
        !is_recycled(&r) && exp > now_s(c)) {
        fsm__rec_set_b(&r, "Suspended", 0);
        fsm__rec_set_s(&r, "SuspendReason", "");
    }
    rc = order_write(c, tenant, &r, id, "Renew", q, amount, order);
    if (rc == 0 && amount > 0) {
        ref.resource = id;
        ref.order = order;
        rc = balance_change(c, tenant, -amount, &ref, txn, NULL);
    }
    if (rc == 0) {
        rc = res_save(c, id, &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "OrderID"), order);
        msgpack_pack_int64(fsm__field(c, "ExpireTime"), exp);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- recycle bin ---- */

static int recycled_keep(struct fsm_ctx *c, const struct fsm_rec *r, void *a)
{
    (void)c;
    (void)a;
    /* a boot disk is not listed: it follows its machine (bootdisk.c) */
    return is_recycled(r) && !fsm__rec_i(r, "Boot");
}

int fsm__recycled_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_RES,   "",   "ResourceIDs", 0,
                         recycled_keep, NULL, NULL};

    return fsm__describe(c, &d);
}

int fsm__recover_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__recover_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    const char *ct;
    int64_t bal;
    int rc;

    TRY(fsm__recover_check(c));
    fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = res_get(c, id, &r);
    if (rc == 0) {
        rc = fsm__boot_alone(c, id, &r, "recovered", "recover");
    }
    if (rc != 0) {
        goto out;
    }
    if (!is_recycled(&r) && !fsm__rec_i(&r, "Suspended")) {
        rc =
            fsm__reject(c, YH_ESTATE,
                        "'%s' is neither in the recycle bin nor suspended", id);
        goto out;
    }
    ct = fsm__rec_s(&r, "ChargeType");
    if (strcmp(ct, "Dynamic") != 0 &&
        fsm__rec_i(&r, "ExpireTime") <= now_s(c)) {
        rc = fsm__reject(c, YH_ESTATE, "'%s' has expired: renew it first", id);
        goto out;
    }
    rc = balance_of(c, fsm__rec_s(&r, "TenantID"), &bal);
    if (rc != 0) {
        goto out;
    }
    if (bal < 0) {
        rc = fsm__reject(c, YH_EBALANCE,
                         "insufficient balance: %" PRId64 " (recharge first)",
                         bal);
        goto out;
    }
    if (is_recycled(&r)) {
        char prev[32];
        snprintf(prev, sizeof prev, "%s", fsm__rec_s(&r, "_PrevState"));
        if (fsm__rec_has(&r, "DesiredState")) {
            /* a machine comes back as its executor last saw it (deleting
             * stopped it); start it to run it */
            snprintf(prev, sizeof prev, "%s",
                     fsm__rec_s(&r, "ObservedState")[0] != '\0'
                         ? fsm__rec_s(&r, "ObservedState")
                         : "Stopped");
        }
        fsm__rec_set_s(&r, "State", prev);
        fsm__rec_set_i(&r, "RecycleTime", 0);
    }
    fsm__rec_set_b(&r, "Suspended", 0);
    fsm__rec_set_s(&r, "SuspendReason", "");
    /* a gateway has no Start: it runs again (gwhost.c) */
    fsm__gw_resume(c, &r);
    if (strcmp(ct, "Dynamic") == 0) {
        /* a new billing epoch: ticks of the old one no longer apply */
        fsm__rec_set_i(&r, "_BillStart", now_s(c));
        fsm__rec_set_i(&r, "_Billed", 0);
    }
    rc = res_save(c, id, &r);
    if (rc == 0) {
        rc = fsm__boot_follow(c, &r); /* a machine's boot disk comes back */
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
        yh_mp_pack_str(fsm__field(c, "State"), fsm__rec_s(&r, "State"));
    }
out:
    fsm__rec_free(&r);
    return rc;
}

int fsm__purge_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__recover_check(c));
    fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL);
    fsm__rec_init(&r);
    rc = res_get(c, id, &r);
    if (rc == 0) {
        rc = fsm__boot_alone(c, id, &r, "purged", "purge");
    }
    if (rc == 0 && !is_recycled(&r)) {
        rc = fsm__reject(c, YH_ESTATE,
                         "'%s' is not in the recycle bin: delete it first", id);
    }
    if (rc == 0) {
        rc = res_purge(c, id, &r);
    }
    if (rc == 0) {
        snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    }
    fsm__rec_free(&r);
    return rc;
}

/* Move @r (id @id) to the recycle bin; the caller saves it. Shared by the
 * Delete actions and _Recycle. */
static void recycle(struct fsm_ctx *c, struct fsm_rec *r)
{
    fsm__rec_set_s(r, "_PrevState", fsm__rec_s(r, "State"));
    fsm__rec_set_s(r, "State", STATE_RECYCLED);
    fsm__rec_set_i(r, "RecycleTime", now_s(c));
}

int fsm__res_delete(struct fsm_ctx *c, const char *id, struct fsm_rec *r)
{
    recycle(c, r);
    TRY(res_save(c, id, r));
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return 0;
}

/* ---- internal commands (proposed by the leader's tick) ---- */

/* The resource an internal command is about; rejections are harmless
 * no-ops (a duplicate or stale tick). */
static int tick_res(struct fsm_ctx *c, char id[FSM_ID_SIZE], struct fsm_rec *r)
{
    int rc;

    if (fsm__arg_str(c, "ResourceID", 1, FSM_ID_SIZE - 1, id, NULL) != 0) {
        return YH_EPROTO;
    }
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), r);
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "resource '%s' not found", id);
    }
    snprintf(c->resource_id, sizeof c->resource_id, "%s", id);
    return rc;
}

int fsm__bill_charge_apply(struct fsm_ctx *c)
{
    struct txn_ref ref = {"Charge", NULL, NULL, NULL, NULL, 0};
    char id[FSM_ID_SIZE], txn[FSM_ID_SIZE];
    struct fsm_bill_cfg cfg;
    int64_t epoch, period, bal;
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = tick_res(c, id, &r);
    if (rc == 0) {
        rc = fsm__arg_int(c, "Epoch", 1, 0, INT64_MAX, &epoch, NULL);
    }
    if (rc == 0) {
        rc = fsm__arg_int(c, "Period", 1, 1, INT64_MAX / 2, &period, NULL);
    }
    if (rc == 0) {
        rc = fsm__bill_cfg(c->f, c->txn, &cfg);
    }
    if (rc != 0) {
        goto out;
    }
    if (strcmp(fsm__rec_s(&r, "ChargeType"), "Dynamic") != 0 ||
        is_recycled(&r) || fsm__rec_i(&r, "Suspended") ||
        fsm__rec_i(&r, "_BillStart") != epoch) {
        rc = fsm__reject(c, YH_ESTATE, "'%s' is not billed in epoch %" PRId64,
                         id, epoch);
        goto out;
    }
    if (period != fsm__rec_i(&r, "_Billed") + 1) {
        rc = fsm__reject(c, YH_EEXIST,
                         "period %" PRId64
                         " of '%s' is not the next one "
                         "(charged up to %" PRId64 ")",
                         period, id, fsm__rec_i(&r, "_Billed"));
        goto out;
    }
    if (now_s(c) < epoch + period * cfg.period) {
        rc =
            fsm__reject(c, YH_ESTATE,
                        "period %" PRId64 " of '%s' has not ended", period, id);
        goto out;
    }
    fsm__rec_set_i(&r, "_Billed", period);
    ref.resource = id;
    ref.period = period;
    rc = balance_change(c, fsm__rec_s(&r, "TenantID"),
                        -fsm__rec_i(&r, "_Price"), &ref, txn, &bal);
    if (rc == 0) {
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "TxnID"), txn);
        msgpack_pack_int64(fsm__field(c, "Balance"), bal);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* Why @r should be stopped at @now (NULL if it should not). */
static const char *stop_reason(struct fsm *f,
                               MDB_txn *txn,
                               const struct fsm_bill_cfg *cfg,
                               const struct fsm_rec *r,
                               int64_t now)
{
    const char *ct = fsm__rec_s(r, "ChargeType");
    const char *tenant = fsm__rec_s(r, "TenantID");
    struct fsm_rec a;
    int64_t since = 0;

    if (is_recycled(r) || fsm__rec_i(r, "Suspended")) {
        return NULL;
    }
    if (strcmp(ct, "Dynamic") != 0 &&
        now >= fsm__rec_i(r, "ExpireTime") + cfg->grace) {
        return "Expired";
    }
    fsm__rec_init(&a);
    if (fsm__rec_load(f, txn, FSM_TBL_ACCOUNTS, tenant, strlen(tenant), &a) ==
            0 &&
        fsm__rec_i(&a, "Balance") < 0) {
        since = fsm__rec_i(&a, "ArrearsSince");
    }
    fsm__rec_free(&a);
    return since > 0 && now >= since + cfg->grace ? "Arrears" : NULL;
}

int fsm__bill_stop_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_bill_cfg cfg;
    struct fsm_rec r;
    const char *why;
    int rc;

    fsm__rec_init(&r);
    rc = tick_res(c, id, &r);
    if (rc == 0) {
        rc = fsm__bill_cfg(c->f, c->txn, &cfg);
    }
    if (rc != 0) {
        goto out;
    }
    why = stop_reason(c->f, c->txn, &cfg, &r, now_s(c));
    if (why == NULL) {
        rc = fsm__reject(c, YH_ESTATE, "'%s' is not due to stop", id);
        goto out;
    }
    fsm__rec_set_b(&r, "Suspended", 1);
    fsm__rec_set_s(&r, "SuspendReason", why);
    fsm__rec_set_i(&r, "SuspendTime", now_s(c));
    if (fsm__rec_has(&r, "DesiredState")) {
        /* a machine (or a gateway, gwhost.c) is stopped, not just marked:
         * a new generation for its executor */
        char msg[96];
        fsm__rec_set_s(&r, "DesiredState", "Stopped");
        fsm__rec_set_s(&r, "State", "Stopping");
        fsm__rec_set_i(&r, "Generation", (int64_t)c->index);
        /* a job still running (a Start, a Resize...) can no longer
         * complete: its generation is superseded by the stop */
        snprintf(msg, sizeof msg, "stopped by billing (%s)", why);
        rc = fsm__job_fail(c, &r, msg);
    }
    if (rc == 0) {
        rc = res_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "SuspendReason"), why);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* Load the tick's resource into @r (the caller frees it) and check that it
 * is due for the recycle bin: suspended for RecycleAfter, not in it yet. */
static int load_due_for_bin(struct fsm_ctx *c,
                            char id[FSM_ID_SIZE],
                            struct fsm_rec *r)
{
    struct fsm_bill_cfg cfg;
    int rc = tick_res(c, id, r);

    if (rc == 0) {
        rc = fsm__bill_cfg(c->f, c->txn, &cfg);
    }
    if (rc == 0 && (is_recycled(r) || !fsm__rec_i(r, "Suspended") ||
                    now_s(c) < fsm__rec_i(r, "SuspendTime") + cfg.recycle)) {
        rc = fsm__reject(c, YH_ESTATE, "'%s' is not due for the recycle bin",
                         id);
    }
    return rc;
}

int fsm__bill_recycle_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = load_due_for_bin(c, id, &r);
    if (rc == 0 && fsm__disk_bound_data(&r)) {
        rc = fsm__reject(c, YH_ESTATE,
                         "disk '%s' is attached to '%s': it is detached "
                         "first (_BillDetach)",
                         id, fsm__rec_s(&r, "VMID"));
    }
    if (rc == 0) {
        recycle(c, &r);
        rc = res_save(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__boot_follow(c, &r); /* a machine's boot disk too */
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__bill_detach_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = load_due_for_bin(c, id, &r);
    if (rc != 0) {
        /* rejected above */
    } else if (!fsm__disk_bound_data(&r)) {
        rc = fsm__reject(c, YH_ESTATE, "'%s' is not an attached data disk", id);
    } else if (strcmp(fsm__rec_s(&r, "DesiredAttach"), "Detached") == 0) {
        rc = fsm__reject(c, YH_ESTATE, "disk '%s' is being detached already",
                         id);
    } else {
        /* as DetachDisk: 162 while rolled back or its machine migrates */
        rc = fsm__disk_detach(c, id, &r);
    }
    fsm__rec_free(&r);
    return rc;
}

int fsm__bill_purge_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_bill_cfg cfg;
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = tick_res(c, id, &r);
    if (rc == 0) {
        rc = fsm__bill_cfg(c->f, c->txn, &cfg);
    }
    if (rc != 0) {
        goto out;
    }
    if (!is_recycled(&r) ||
        now_s(c) < fsm__rec_i(&r, "RecycleTime") + cfg.retention) {
        rc = fsm__reject(c, YH_ESTATE, "'%s' is not due for purging", id);
        goto out;
    }
    rc = res_purge(c, id, &r);
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- the leader's tick ---- */

static int propose(const char *type,
                   const char *tenant,
                   const char *id,
                   int64_t epoch,
                   int64_t period,
                   uint64_t now_ns,
                   fsm_propose_cb *cb,
                   void *arg)
{
    /* The system acts for the tenant, so the tenant sees these steps in
     * its operation log. */
    struct fsm_actor sys;
    struct yh_buf args = YH_BUF_INIT, env = YH_BUF_INIT;
    struct fsm_out o;
    int rc;

    memset(&sys, 0, sizeof sys);
    snprintf(sys.tenant_id, sizeof sys.tenant_id, "%s", tenant);
    sys.admin = 1;
    fsm__out_init(&o, &args);
    msgpack_pack_map(&o.pk, period > 0 ? 3 : 1);
    yh_mp_pack_kv_str(&o.pk, "ResourceID", id);
    if (period > 0) {
        yh_mp_pack_kv_int(&o.pk, "Epoch", epoch);
        yh_mp_pack_kv_int(&o.pk, "Period", period);
    }
    rc = o.oom ? YH_ENOMEM : fsm__cmd_internal(type, &sys, now_ns, &args, &env);
    if (rc == 0) {
        rc = cb(arg, env.data, env.len) != 0 ? 1 : 0;
    }
    yh_buf_release(&args);
    yh_buf_release(&env);
    return rc;
}

#define MAX_CHARGES_PER_TICK 16
#define FSM_BILL_SCAN_MAX 2048

/* propose() returns 1 when the callback asked to stop (not an error). */
static int stop_rc(int stop)
{
    return stop == 1 ? 0 : stop;
}

int fsm__bill_tick(struct fsm *f,
                   MDB_txn *txn,
                   uint64_t now_ns,
                   fsm_propose_cb *cb,
                   void *arg)
{
    int64_t now = (int64_t)(now_ns / 1000000000u);
    struct fsm_bill_cfg cfg;
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned scanned = 0;
    int stop = 0;
    int rc;

    TRY(fsm__bill_cfg(f, txn, &cfg));
    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_RES], &cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on 'resources'");
    }
    fsm__rec_init(&r);
    /* At most FSM_BILL_SCAN_MAX records per tick, resuming where the last
     * tick stopped and wrapping at the end: a full scan of a million
     * resources took seconds on the loop thread (heartbeats were late,
     * followers started elections). Every resource is still visited every
     * (resources / FSM_BILL_SCAN_MAX) ticks; what is due meanwhile is
     * charged late, never twice or lost (keyed by period). */
    k.mv_data = f->bill_scan_next;
    k.mv_size = strlen(f->bill_scan_next);
    rc = k.mv_size > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                       : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char id[FSM_ID_SIZE], tenant[FSM_ID_SIZE];
        const char *why;
        if (scanned++ == FSM_BILL_SCAN_MAX) {
            /* resume here next tick */
            if (k.mv_size < sizeof f->bill_scan_next) {
                memcpy(f->bill_scan_next, k.mv_data, k.mv_size);
                f->bill_scan_next[k.mv_size] = '\0';
            }
            break;
        }
        if (k.mv_size == 0 || k.mv_size >= sizeof id ||
            fsm__rec_decode(v.mv_data, v.mv_size, &r) != 0) {
            continue;
        }
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = '\0';
        snprintf(tenant, sizeof tenant, "%s", fsm__rec_s(&r, "TenantID"));
        if (fsm__rec_s(&r, "ChargeType")[0] == '\0') {
            continue; /* not a billable resource */
        }
        if (is_recycled(&r)) {
            if (now >= fsm__rec_i(&r, "RecycleTime") + cfg.retention) {
                stop = propose("_Purge", tenant, id, 0, 0, now_ns, cb, arg);
            }
        } else if (fsm__rec_i(&r, "Suspended")) {
            if (now < fsm__rec_i(&r, "SuspendTime") + cfg.recycle) {
                /* not due yet */
            } else if (!fsm__disk_bound_data(&r)) {
                stop = propose("_Recycle", tenant, id, 0, 0, now_ns, cb, arg);
            } else if (fsm__disk_detach_wanted(f, txn, &r)) {
                /* an attached data disk is detached first; its recycle
                 * follows its executor's Detached report */
                stop =
                    propose("_BillDetach", tenant, id, 0, 0, now_ns, cb, arg);
            }
        } else {
            /* a free resource has nothing to charge: no zero-amount
             * transactions every period */
            if (strcmp(fsm__rec_s(&r, "ChargeType"), "Dynamic") == 0 &&
                fsm__rec_i(&r, "_Price") > 0) {
                int64_t start = fsm__rec_i(&r, "_BillStart");
                int64_t done = fsm__rec_i(&r, "_Billed");
                int64_t due = now > start ? (now - start) / cfg.period : 0;
                for (int64_t p = done + 1;
                     p <= due && p <= done + MAX_CHARGES_PER_TICK && !stop;
                     p++) {
                    stop = propose("_BillCharge", tenant, id, start, p, now_ns,
                                   cb, arg);
                }
            }
            why = stop_reason(f, txn, &cfg, &r, now);
            if (why != NULL && !stop) {
                stop = propose("_BillStop", tenant, id, 0, 0, now_ns, cb, arg);
            }
        }
        if (stop != 0) {
            /* the proposal queue is full: this resource first next tick */
            snprintf(f->bill_scan_next, sizeof f->bill_scan_next, "%s", id);
            break;
        }
    }
    if (rc == MDB_NOTFOUND) {
        f->bill_scan_next[0] = '\0'; /* wrap: from the first next tick */
    }
    fsm__rec_free(&r);
    mdb_cursor_close(cur);
    if (stop_rc(stop) != 0) {
        return stop_rc(stop);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(f, rc, "read 'resources'");
    }
    return 0;
}
