/* Gateways on hosts: where a NAT gateway, a load balancer or a VPN gateway
 * runs, the state its executor reports, and the spec its host's agent
 * realises (fsm_host_spec, agent.c).
 *
 * Placement. The leader's stamp of CreateNATGW / CreateLB /
 * CreateVPNGateway asks the machines' scheduler (tbl_vm.c fsm__place_pick)
 * for an Online, enabled host of the optional ZoneID (any zone when none is
 * named) and carries it as HostID; the apply re-validates it against the
 * state at its index (the host exists, is Online and enabled, is in the
 * zone) and refuses a stale placement with 172. A gateway's data plane
 * (network namespace, NAT rules, proxy, IKE daemon) runs in the host's own
 * system share, not in the machines' pool: it takes no CPU, memory or GPU
 * from the host's capacity and fits any host regardless of its
 * architecture. Hosts count their gateways (GatewayCount) and the
 * scheduler puts a new gateway on the host with the fewest, then the
 * smallest CPU share, then the lowest HostID. The gateway's ZoneID is the
 * zone named or its host's.
 *
 * State. Like a machine, a placed gateway has a desired state
 * (DesiredState Available; Stopped while the billing suspends it), an
 * observed one (ObservedState Available/Stopped/Error with
 * ObservedGeneration, from ReportState by its host) and a Generation: the
 * log index of the last change its executor must act on. Every change of
 * the gateway or of what its spec holds (rules, vservers, backends,
 * connections, its EIP's binding and bandwidth) makes that index its
 * Generation and lists it in the oplog record's Concerns (gw.c
 * fsm__concern), so WatchCommands sends its host the new spec. The shown
 * State is transitional until the host reports the current generation:
 * Creating (never reported), Updating, Stopping (suspended); then the
 * reported state. A report of an older generation than the observed one
 * is refused (160) and never overwrites it. When its host's lease ends
 * the gateway shows Unknown (State and ObservedState) until its host
 * reports or heartbeats again (the machines' marks, tbl_vmops.c). Deleting
 * a gateway deletes its record at once (billing, quota and EIP are freed
 * with it) and its host hears it from the oplog record's Gone (a
 * tombstone, api/server/dispatch.c); the billing purge does the same.
 *
 * Rows in "net": "H" \0 HostID \0 GatewayID (the gateways placed on a
 * host, for its lease's end).
 *
 * Secrets. A VPN connection's pre-shared key is needed by the executor to
 * configure IPsec. It is delivered sealed to the gateway's host: the spec
 * carries, per connection, PreSharedKeySealed {PublicKey, Ciphertext, MAC}
 * where, with PrivateKey the host's API secret (the hex text RegisterHost
 * returned) of PublicKey (the host's lowest one),
 *   K          = HMAC-SHA256(PrivateKey, "yunhan-psk-seal-v1" 0x00 ConnID)
 *   Ciphertext = hex(key XOR (HMAC-SHA256(K, "enc" be32(0)) ||
 *                             HMAC-SHA256(K, "enc" be32(1)) || ...))
 *   MAC        = hex(HMAC-SHA256(K, "mac" raw ciphertext))
 * A connection's key never changes and its ID is never reused, so each
 * keystream encrypts one text; the same state gives the same bytes. The
 * clear key is in no spec, Describe, result or oplog record. An HTTPS
 * vserver's certificate is in its load balancer's spec (Certificate, the
 * PEM text) with its private key sealed the same way (CertificateKeySealed,
 * the SSLID in place of the connection's ID: IDs are never reused and a
 * certificate's key never changes); never in clear. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fsm/base/crypto.h"
#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define PSK_MAX 128    /* vpn.c */
#define SEAL_MAX 32768 /* a certificate's key (cert.c) */
#define SUBNETS_MAX 20
#define SEAL_LABEL "yunhan-psk-seal-v1"

/* ---- placement ---- */

static void gw_place(struct fsm_place *p, const char *zone)
{
    memset(p, 0, sizeof *p);
    p->zone = zone;
    p->overcommit = 100;
    p->arch = "";
    p->spec = NULL;
    p->aag = "";
    p->vm = "";
    p->exclude = "";
}

/* Optional ZoneID: 150 unless it exists; "" when not given. */
static int zone_arg(struct fsm_ctx *c, char zone[FSM_ID_SIZE])
{
    int given;

    TRY(fsm__arg_str(c, "ZoneID", 0, FSM_ID_SIZE - 1, zone, &given));
    if (!given) {
        zone[0] = '\0';
        return 0;
    }
    return fsm__zone_get(c, zone);
}

int fsm__gw_place_stamp(struct fsm_ctx *c)
{
    char zone[FSM_ID_SIZE], host[FSM_ID_SIZE];
    struct fsm_place p;

    TRY(zone_arg(c, zone));
    gw_place(&p, zone);
    TRY(fsm__place_pick(c, &p, host));
    yh_mp_pack_str(fsm__stamp_field(c, "HostID"), host);
    return 0;
}

int fsm__gw_place_get(struct fsm_ctx *c,
                      char zone[FSM_ID_SIZE],
                      char host[FSM_ID_SIZE])
{
    struct fsm_place p;
    struct fsm_rec h;
    const char *why;
    int rc;

    TRY(zone_arg(c, zone));
    TRY(fsm__stamp_str(c, "HostID", FSM_ID_SIZE - 1, host));
    gw_place(&p, zone);
    TRY(fsm__place_why(c, &p, host, &why));
    if (why != NULL && strcmp(why, FSM_PLACE_GONE) == 0) {
        return fsm__reject(c, YH_ECAPACITY,
                           "stale placement: host '%s' is gone", host);
    }
    if (why != NULL) {
        return fsm__reject(c, YH_ECAPACITY,
                           "stale placement: host '%s' is now %s", host, why);
    }
    if (zone[0] != '\0') {
        return 0;
    }
    /* no zone named: the host's */
    fsm__rec_init(&h);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, host, strlen(host), &h);
    if (rc == 0) {
        snprintf(zone, FSM_ID_SIZE, "%s", fsm__rec_s(&h, "ZoneID"));
    }
    fsm__rec_free(&h);
    return rc;
}

/* ---- the life cycle on the host ---- */

/* Add @delta to @host's GatewayCount (hosts are never deleted). */
static int host_count(struct fsm_ctx *c, const char *host, int64_t delta)
{
    struct fsm_rec h;
    int rc;

    fsm__rec_init(&h);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, host, strlen(host), &h);
    if (rc == 0) {
        int64_t n = fsm__rec_i(&h, "GatewayCount") + delta;
        fsm__rec_set_i(&h, "GatewayCount", n < 0 ? 0 : n);
        fsm__rec_set_i(&h, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_INFRA, host, strlen(host), &h);
    }
    fsm__rec_free(&h);
    return rc == YH_ENOTFOUND ? 0 : rc;
}

int fsm__gw_host_begin(struct fsm_ctx *c,
                       const char *id,
                       struct fsm_rec *r,
                       const char *zone,
                       const char *host)
{
    fsm__rec_set_s(r, "ZoneID", zone);
    fsm__rec_set_s(r, "HostID", host);
    fsm__rec_set_s(r, "DesiredState", "Available");
    fsm__rec_set_s(r, "State", "Creating");
    fsm__rec_set_i(r, "Generation", (int64_t)c->index);
    fsm__rec_set_s(r, "ObservedState", "");
    fsm__rec_set_i(r, "ObservedGeneration", 0);
    TRY(fsm__net_link(c, 'H', host, id));
    TRY(host_count(c, host, 1));
    yh_mp_pack_str(fsm__field(c, "HostID"), host);
    return 0;
}

int fsm__gw_host_release(struct fsm_ctx *c,
                         const char *id,
                         const struct fsm_rec *r)
{
    const char *host = fsm__rec_s(r, "HostID");

    if (host[0] == '\0') {
        return 0; /* never placed */
    }
    TRY(fsm__net_unlink(c, 'H', host, id));
    TRY(host_count(c, host, -1));
    /* the record goes: its host hears it from the oplog's "Gone" */
    snprintf(c->gone_host, sizeof c->gone_host, "%s", host);
    c->gone_host2[0] = '\0';
    return 0;
}

/* The transitional State of @r until its executor reports Generation. */
static const char *pending_state(const struct fsm_rec *r)
{
    if (strcmp(fsm__rec_s(r, "DesiredState"), "Stopped") == 0) {
        return "Stopping";
    }
    return fsm__rec_i(r, "ObservedGeneration") == 0 ? "Creating" : "Updating";
}

/* Show the transitional state (kept aside while Unknown; a recycled
 * gateway stays Recycled). */
static void show_pending(struct fsm_rec *r)
{
    const char *state = fsm__rec_s(r, "State");

    if (strcmp(state, "Recycled") == 0) {
        return;
    }
    if (strcmp(state, "Unknown") == 0 && fsm__rec_has(r, "_UnknownState")) {
        fsm__rec_set_s(r, "_UnknownState", pending_state(r));
        return;
    }
    fsm__rec_set_s(r, "State", pending_state(r));
}

int fsm__gw_touch(struct fsm_ctx *c, const char *id)
{
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &r);
    if (rc != 0 || !fsm__rec_has(&r, "DesiredState") ||
        fsm__rec_i(&r, "Generation") == (int64_t)c->index) {
        /* gone, never placed, or already a change of this entry (its
         * create, or an earlier touch: listed once) */
        fsm__rec_free(&r);
        return rc == YH_ENOTFOUND ? 0 : rc;
    }
    fsm__rec_set_i(&r, "Generation", (int64_t)c->index);
    fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
    show_pending(&r);
    rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    fsm__rec_free(&r);
    TRY(rc);
    yh_mp_pack_str(&c->concerns.pk, id);
    c->n_concerns++;
    return c->concerns.oom ? YH_ENOMEM : 0;
}

void fsm__gw_resume(struct fsm_ctx *c, struct fsm_rec *r)
{
    if (fsm__gw_type(fsm__rec_s(r, "ResourceType")) == NULL ||
        !fsm__rec_has(r, "DesiredState") ||
        strcmp(fsm__rec_s(r, "DesiredState"), "Available") == 0) {
        return;
    }
    fsm__rec_set_s(r, "DesiredState", "Available");
    fsm__rec_set_i(r, "Generation", (int64_t)c->index);
    show_pending(r);
}

/* Mark (@unknown) or restore the gateways of @host. */
static int host_gws_set(struct fsm_ctx *c, const char *host, int unknown)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    rc = fsm__net_ids(c, 'H', host, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const char *id = l.v[i];
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &r);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc != 0 || strcmp(fsm__rec_s(&r, "State"), "Recycled") == 0 ||
            !!fsm__rec_has(&r, "_UnknownState") == !!unknown) {
            continue;
        }
        fsm__unknown_mark(&r, unknown);
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    fsm__rec_free(&r);
    fsm__ids_free(&l);
    return rc;
}

int fsm__gw_host_unknown(struct fsm_ctx *c, const char *host)
{
    return host_gws_set(c, host, 1);
}

int fsm__gw_host_back(struct fsm_ctx *c, const char *host)
{
    return host_gws_set(c, host, 0);
}

/* ---- the spec ---- */

/* A record's field @k as a value (nil when absent). */
static void pack_value(msgpack_packer *pk,
                       const struct fsm_rec *r,
                       const char *k)
{
    for (unsigned i = 0; i < r->n; i++) {
        const struct fsm_rf *f = &r->f[i];
        if (strcmp(f->k, k) != 0) {
            continue;
        }
        switch (f->t) {
        case FSM_RF_INT:
            msgpack_pack_int64(pk, f->i);
            return;
        case FSM_RF_BOOL:
            if (f->i) {
                msgpack_pack_true(pk);
            } else {
                msgpack_pack_false(pk);
            }
            return;
        case FSM_RF_STR:
            yh_mp_pack_str(pk, f->s);
            return;
        case FSM_RF_LIST: {
            char items[SUBNETS_MAX][FSM_ID_SIZE];
            unsigned n = fsm__rec_list(r, k, items, SUBNETS_MAX);
            msgpack_pack_array(pk, n);
            for (unsigned j = 0; j < n; j++) {
                yh_mp_pack_str(pk, items[j]);
            }
            return;
        }
        case FSM_RF_NIL:
        case FSM_RF_BIN: /* never in a spec */
            break;
        }
        break;
    }
    msgpack_pack_nil(pk);
}

/* A map of @fields of @r with room for @extra more pairs. */
static void pack_fields(msgpack_packer *pk,
                        const struct fsm_rec *r,
                        const char *const *fields,
                        uint32_t extra)
{
    uint32_t n = 0;

    while (fields[n] != NULL) {
        n++;
    }
    msgpack_pack_map(pk, n + extra);
    for (const char *const *k = fields; *k != NULL; k++) {
        yh_mp_pack_str(pk, *k);
        pack_value(pk, r, *k);
    }
}

/* An array packed aside: items are counted as they are added. */
struct list
{
    struct yh_buf b;
    struct fsm_out o;
    uint32_t n;
};

static void list_init(struct list *l)
{
    yh_buf_init(&l->b);
    fsm__out_init(&l->o, &l->b);
    l->n = 0;
}

/* "@key": [items] into @pk; releases @l. */
static int list_end(struct list *l, msgpack_packer *pk, const char *key)
{
    int rc = l->o.oom ? YH_ENOMEM : 0;

    yh_mp_pack_str(pk, key);
    msgpack_pack_array(pk, rc == 0 ? l->n : 0);
    if (rc == 0 && l->b.len > 0) {
        msgpack_pack_str_body(pk, l->b.data, l->b.len); /* raw append */
    }
    yh_buf_release(&l->b);
    return rc;
}

/* What building one spec needs. */
struct spec
{
    struct fsm *f;
    MDB_txn *txn;
    const char *host;        /* the gateway's host */
    int key_read;            /* host key looked up */
    int have_key;            /* the host has a key */
    char pub[FSM_KEY_SIZE];  /* its PublicKey */
    char priv[FSM_KEY_SIZE]; /* its PrivateKey */
};

static int load(struct spec *s, const char *id, struct fsm_rec *r)
{
    return fsm__rec_load(s->f, s->txn, FSM_TBL_RES, id, strlen(id), r);
}

/* The children of @parent ("C" rows) whose ID starts with @prefix. */
static int children(struct spec *s,
                    const char *parent,
                    const char *prefix,
                    struct fsm_ids *out)
{
    struct fsm_ids all = {NULL, 0, 0};
    size_t pl = strlen(prefix);
    int rc = fsm__net_walk(s->f, s->txn, 'C', parent, fsm__ids_add, &all);

    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        if (strncmp(all.v[i], prefix, pl) == 0) {
            rc = fsm__ids_add(out, all.v[i]);
        }
    }
    fsm__ids_free(&all);
    return rc;
}

/* "EIPID", "EIPAddr", "Bandwidth" of the EIP bound to @id ("", 0). */
static int pack_eip(struct spec *s, msgpack_packer *pk, const char *id)
{
    struct fsm_ids l = {NULL, 0, 0};
    struct fsm_rec e;
    char eip[FSM_ID_SIZE] = "", ip[FSM_IP_STR] = "";
    int64_t bw = 0;
    int rc = fsm__net_walk(s->f, s->txn, 'E', id, fsm__ids_add, &l);

    fsm__rec_init(&e);
    for (size_t i = 0; rc == 0 && i < l.n && eip[0] == '\0'; i++) {
        rc = load(s, l.v[i], &e);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0 && strcmp(fsm__rec_s(&e, "BindResourceID"), id) == 0) {
            snprintf(eip, sizeof eip, "%s", l.v[i]);
            snprintf(ip, sizeof ip, "%s", fsm__rec_s(&e, "IP"));
            bw = fsm__rec_i(&e, "Bandwidth");
        }
    }
    fsm__rec_free(&e);
    fsm__ids_free(&l);
    yh_mp_pack_kv_str(pk, "EIPID", eip);
    yh_mp_pack_kv_str(pk, "EIPAddr", ip);
    yh_mp_pack_kv_int(pk, "Bandwidth", bw);
    return rc;
}

/* "@key": [{SubnetID, Network, Gateway, IPv6Network}] of @ids. */
static int pack_subnets(struct spec *s,
                        msgpack_packer *pk,
                        const char *key,
                        char (*ids)[FSM_ID_SIZE],
                        unsigned n)
{
    static const char *const fields[] = {"SubnetID", "Network", "Gateway",
                                         "IPv6Network", NULL};
    struct fsm_rec r;
    struct list l;
    int rc = 0;

    list_init(&l);
    fsm__rec_init(&r);
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        rc = load(s, ids[i], &r);
        if (rc == YH_ENOTFOUND) {
            rc = 0; /* a served subnet is never deleted; be lenient */
            continue;
        }
        if (rc == 0) {
            pack_fields(&l.o.pk, &r, fields, 0);
            l.n++;
        }
    }
    fsm__rec_free(&r);
    if (rc != 0) {
        yh_buf_release(&l.b);
        return rc;
    }
    return list_end(&l, pk, key);
}

/* "@key": [each child of @parent with prefix @prefix, packed by @fn]. */
typedef int child_fn(struct spec *s,
                     msgpack_packer *pk,
                     const char *id,
                     const struct fsm_rec *r);

static int pack_children(struct spec *s,
                         msgpack_packer *pk,
                         const char *key,
                         const char *parent,
                         const char *prefix,
                         child_fn *fn)
{
    struct fsm_ids ids = {NULL, 0, 0};
    struct fsm_rec r;
    struct list l;
    int rc;

    list_init(&l);
    fsm__rec_init(&r);
    rc = children(s, parent, prefix, &ids);
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        rc = load(s, ids.v[i], &r);
        if (rc == YH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0) {
            rc = fn(s, &l.o.pk, ids.v[i], &r);
            l.n++;
        }
    }
    fsm__rec_free(&r);
    fsm__ids_free(&ids);
    if (rc != 0) {
        yh_buf_release(&l.b);
        return rc;
    }
    return list_end(&l, pk, key);
}

static int rule_pack(struct spec *s,
                     msgpack_packer *pk,
                     const char *id,
                     const struct fsm_rec *r)
{
    static const char *const fields[] = {"RuleID",    "Protocol",    "EIPPort",
                                         "PrivateIP", "PrivatePort", NULL};
    (void)s;
    (void)id;
    pack_fields(pk, r, fields, 0);
    return 0;
}

static int rs_pack(struct spec *s,
                   msgpack_packer *pk,
                   const char *id,
                   const struct fsm_rec *r)
{
    static const char *const fields[] = {"RSID", "BindResourceID", "PrivateIP",
                                         "Port", "Weight",         NULL};
    (void)s;
    (void)id;
    pack_fields(pk, r, fields, 0);
    return 0;
}

static int pack_cert(struct spec *s, msgpack_packer *pk, const char *ssl);

static int vs_pack(struct spec *s,
                   msgpack_packer *pk,
                   const char *id,
                   const struct fsm_rec *r)
{
    static const char *const fields[] = {"VServerID",
                                         "Protocol",
                                         "FrontendPort",
                                         "Method",
                                         "HealthCheckType",
                                         "Path",
                                         "HealthCheckInterval",
                                         "HealthCheckThreshold",
                                         "SSLID",
                                         NULL};

    pack_fields(pk, r, fields, 3);
    TRY(pack_cert(s, pk, fsm__rec_s(r, "SSLID")));
    return pack_children(s, pk, "Backends", id, "rs-", rs_pack);
}

int fsm__host_key(struct fsm *f,
                  MDB_txn *txn,
                  const char *host,
                  char pub[FSM_KEY_SIZE],
                  char priv[FSM_KEY_SIZE],
                  int *have)
{
    size_t hl = strlen(host);
    struct fsm_key k;
    MDB_cursor *cur;
    MDB_val key, v;
    char prefix[FSM_ID_SIZE + 1];
    int rc;

    *have = 0;
    if (hl == 0 || hl >= FSM_ID_SIZE) {
        return 0;
    }
    memcpy(prefix, host, hl);
    prefix[hl] = '\0';
    rc = mdb_cursor_open(txn, f->dbis[FSM_TBL_USERKEYS], &cur);
    if (rc != 0) {
        return fsm__mdb_err(f, rc, "open cursor on 'userkeys'");
    }
    key.mv_data = prefix;
    key.mv_size = hl + 1;
    rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    if (rc == 0 && key.mv_size > hl + 1 &&
        key.mv_size - hl - 1 < FSM_KEY_SIZE &&
        memcmp(key.mv_data, prefix, hl + 1) == 0) {
        memcpy(pub, (const char *)key.mv_data + hl + 1, key.mv_size - hl - 1);
        pub[key.mv_size - hl - 1] = '\0';
        *have = 1;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fsm__mdb_err(f, rc, "read 'userkeys'");
    }
    if (!*have) {
        return 0;
    }
    rc = fsm__key_lookup(f, txn, pub, &k);
    if (rc == 0) {
        snprintf(priv, FSM_KEY_SIZE, "%s", k.private_key);
    }
    OPENSSL_cleanse(&k, sizeof k);
    if (rc == YH_ENOTFOUND) {
        *have = 0;
        rc = 0;
    }
    return rc;
}

/* The host's key to seal with: its lowest PublicKey. */
static int host_key(struct spec *s)
{
    if (s->key_read) {
        return 0;
    }
    s->key_read = 1;
    return fsm__host_key(s->f, s->txn, s->host, s->pub, s->priv, &s->have_key);
}

/* K = HMAC-SHA256(@private_key, SEAL_LABEL 0x00 @conn). */
static int seal_key(const char *private_key,
                    const char *conn,
                    uint8_t k[YH_SHA256_SIZE])
{
    struct yh_part parts[2];

    parts[0].p = SEAL_LABEL;
    parts[0].n = sizeof SEAL_LABEL; /* with its NUL: the 0x00 separator */
    parts[1].p = conn;
    parts[1].n = strlen(conn);
    return yh_hmac_sha256(private_key, strlen(private_key), parts, 2, k);
}

/* @out = @in XOR HMAC-SHA256(K, "enc" be32(0)) || ... (@n bytes). */
static int seal_xor(const uint8_t k[YH_SHA256_SIZE],
                    const uint8_t *in,
                    size_t n,
                    uint8_t *out)
{
    uint8_t blk[YH_SHA256_SIZE];
    struct yh_part parts[2];
    int rc = 0;

    for (size_t off = 0; rc == 0 && off < n; off += sizeof blk) {
        uint8_t ctr[4];
        uint32_t i = (uint32_t)(off / sizeof blk);
        ctr[0] = (uint8_t)(i >> 24);
        ctr[1] = (uint8_t)(i >> 16);
        ctr[2] = (uint8_t)(i >> 8);
        ctr[3] = (uint8_t)i;
        parts[0].p = "enc";
        parts[0].n = 3;
        parts[1].p = ctr;
        parts[1].n = sizeof ctr;
        rc = yh_hmac_sha256(k, YH_SHA256_SIZE, parts, 2, blk);
        for (size_t j = 0; rc == 0 && j < sizeof blk && off + j < n; j++) {
            out[off + j] = in[off + j] ^ blk[j];
        }
    }
    OPENSSL_cleanse(blk, sizeof blk);
    return rc;
}

/* MAC = HMAC-SHA256(K, "mac" @ct). */
static int seal_mac(const uint8_t k[YH_SHA256_SIZE],
                    const uint8_t *ct,
                    size_t n,
                    uint8_t mac[YH_SHA256_SIZE])
{
    struct yh_part parts[2];

    parts[0].p = "mac";
    parts[0].n = 3;
    parts[1].p = ct;
    parts[1].n = n;
    return yh_hmac_sha256(k, YH_SHA256_SIZE, parts, 2, mac);
}

int fsm__gw_seal(const char *private_key,
                 const char *conn,
                 const char *text,
                 size_t n,
                 char *ct_hex,
                 char mac_hex[2 * YH_SHA256_SIZE + 1])
{
    uint8_t k[YH_SHA256_SIZE], mac[YH_SHA256_SIZE];
    uint8_t *ct;
    int rc;

    if (n > SEAL_MAX) {
        return YH_EINVAL;
    }
    ct = malloc(n > 0 ? n : 1);
    if (ct == NULL) {
        return YH_ENOMEM;
    }
    rc = seal_key(private_key, conn, k);
    if (rc == 0) {
        rc = seal_xor(k, (const uint8_t *)text, n, ct);
    }
    if (rc == 0) {
        rc = seal_mac(k, ct, n, mac);
    }
    if (rc == 0) {
        yh_hex(ct, n, ct_hex);
        yh_hex(mac, sizeof mac, mac_hex);
    }
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(ct, n);
    free(ct);
    return rc;
}

int fsm__gw_unseal(const char *private_key,
                   const char *conn,
                   const char *ct_hex,
                   const char *mac_hex,
                   char *text,
                   size_t size)
{
    uint8_t k[YH_SHA256_SIZE], mac[YH_SHA256_SIZE], want[YH_SHA256_SIZE];
    size_t hl = strlen(ct_hex), n = hl / 2;
    uint8_t *ct;
    int rc;

    if (hl % 2 != 0 || n > SEAL_MAX || n >= size ||
        strlen(mac_hex) != 2 * sizeof want) {
        return YH_EINVAL;
    }
    ct = malloc(n > 0 ? n : 1);
    if (ct == NULL) {
        return YH_ENOMEM;
    }
    rc = yh_unhex(ct_hex, n, ct);
    if (rc == 0) {
        rc = yh_unhex(mac_hex, sizeof want, want);
    }
    if (rc == 0) {
        rc = seal_key(private_key, conn, k);
    }
    if (rc == 0) {
        rc = seal_mac(k, ct, n, mac);
    }
    if (rc == 0 && CRYPTO_memcmp(mac, want, sizeof mac) != 0) {
        rc = YH_EINVAL; /* not sealed with this key, or altered */
    }
    if (rc == 0) {
        rc = seal_xor(k, ct, n, (uint8_t *)text);
    }
    if (rc == 0) {
        text[n] = '\0';
    } else if (size > 0) {
        OPENSSL_cleanse(text, size);
        text[0] = '\0';
    }
    OPENSSL_cleanse(k, sizeof k);
    free(ct);
    return rc;
}

/* "PreSharedKeySealed": {PublicKey, Ciphertext, MAC} (nil if the host has
 * no key). */
static int pack_psk(struct spec *s,
                    msgpack_packer *pk,
                    const char *conn,
                    const struct fsm_rec *r)
{
    const char *psk = fsm__rec_s(r, "_PreSharedKey");
    char ct[2 * PSK_MAX + 1], mac[2 * YH_SHA256_SIZE + 1];
    int rc;

    TRY(host_key(s));
    yh_mp_pack_str(pk, "PreSharedKeySealed");
    if (!s->have_key || psk[0] == '\0') {
        msgpack_pack_nil(pk);
        return 0;
    }
    rc = fsm__gw_seal(s->priv, conn, psk, strlen(psk), ct, mac);
    if (rc != 0) {
        msgpack_pack_nil(pk);
        return rc;
    }
    msgpack_pack_map(pk, 3);
    yh_mp_pack_kv_str(pk, "PublicKey", s->pub);
    yh_mp_pack_kv_str(pk, "Ciphertext", ct);
    yh_mp_pack_kv_str(pk, "MAC", mac);
    return 0;
}

/* Free certificate record @r leaving no copy of its key in freed
 * memory. */
static void cert_free(struct fsm_rec *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        if (strcmp(r->f[i].k, "_PrivateKey") == 0 && r->f[i].s != NULL) {
            OPENSSL_cleanse(r->f[i].s, strlen(r->f[i].s));
        }
    }
    fsm__rec_free(r);
}

/* "Certificate" (PEM, "" without one) and "CertificateKeySealed" (its key
 * sealed to the host like a pre-shared key, with the SSLID in place of
 * the connection's ID; nil without a certificate or a host key). */
static int pack_cert(struct spec *s, msgpack_packer *pk, const char *ssl)
{
    struct fsm_rec r;
    const char *key;
    char *ct = NULL, mac[2 * YH_SHA256_SIZE + 1];
    size_t n;
    int rc = 0;

    fsm__rec_init(&r);
    if (ssl[0] != '\0') {
        rc = load(s, ssl, &r);
    }
    if (rc == YH_ENOTFOUND) {
        rc = 0; /* in use: never deleted; be lenient */
    }
    if (rc == 0) {
        rc = host_key(s);
    }
    yh_mp_pack_kv_str(pk, "Certificate", fsm__rec_s(&r, "Certificate"));
    yh_mp_pack_str(pk, "CertificateKeySealed");
    key = fsm__rec_s(&r, "_PrivateKey");
    n = strlen(key);
    if (rc != 0 || !s->have_key || n == 0 || n > SEAL_MAX) {
        msgpack_pack_nil(pk);
        cert_free(&r);
        return rc;
    }
    ct = malloc(2 * n + 1);
    rc = ct == NULL ? YH_ENOMEM : fsm__gw_seal(s->priv, ssl, key, n, ct, mac);
    if (rc == 0) {
        msgpack_pack_map(pk, 3);
        yh_mp_pack_kv_str(pk, "PublicKey", s->pub);
        yh_mp_pack_kv_str(pk, "Ciphertext", ct);
        yh_mp_pack_kv_str(pk, "MAC", mac);
    } else {
        msgpack_pack_nil(pk);
    }
    free(ct);
    cert_free(&r);
    return rc;
}

static int conn_pack(struct spec *s,
                     msgpack_packer *pk,
                     const char *id,
                     const struct fsm_rec *r)
{
    static const char *const fields[] = {
        "VPNConnectionID", "RemoteVPNGatewayID",
        "RemoteCIDRs",     "IKEVersion",
        "IKEEncryption",   "IKEAuth",
        "IKEDHGroup",      "IKELifetime",
        "IPSecProtocol",   "IPSecEncryption",
        "IPSecAuth",       "IPSecPFSDHGroup",
        "IPSecLifetime",   NULL};
    char subnets[SUBNETS_MAX][FSM_ID_SIZE];
    unsigned n = fsm__rec_list(r, "LocalSubnetIDs", subnets, SUBNETS_MAX);
    struct fsm_rec remote;
    int rc;

    pack_fields(pk, r, fields, 3);
    fsm__rec_init(&remote);
    rc = load(s, fsm__rec_s(r, "RemoteVPNGatewayID"), &remote);
    yh_mp_pack_kv_str(pk, "RemoteIP", rc == 0 ? fsm__rec_s(&remote, "IP") : "");
    fsm__rec_free(&remote);
    if (rc != 0 && rc != YH_ENOTFOUND) {
        return rc;
    }
    TRY(pack_subnets(s, pk, "LocalSubnets", subnets, n));
    return pack_psk(s, pk, id, r);
}

unsigned fsm__gw_spec_pairs(const struct fsm_rec *r)
{
    const char *type = fsm__rec_s(r, "ResourceType");

    /* EIPID, EIPAddr, Bandwidth, then Subnets, Rules and WhiteList
     * (NAT), Subnets and VServers (LB), Connections (VPN) */
    if (strcmp(type, "VPNGateway") == 0) {
        return 4;
    }
    return strcmp(type, "NATGW") == 0 ? 6 : 5;
}

int fsm__gw_spec_pack(struct fsm *f,
                      MDB_txn *txn,
                      msgpack_packer *pk,
                      const char *id,
                      const struct fsm_rec *r,
                      const char *host)
{
    const char *type = fsm__rec_s(r, "ResourceType");
    struct spec s;
    int rc;

    memset(&s, 0, sizeof s);
    s.f = f;
    s.txn = txn;
    s.host = host;
    rc = pack_eip(&s, pk, id);
    if (rc == 0 && strcmp(type, "NATGW") == 0) {
        char subnets[SUBNETS_MAX][FSM_ID_SIZE];
        unsigned n = fsm__rec_list(r, "SubnetIDs", subnets, SUBNETS_MAX);
        rc = pack_subnets(&s, pk, "Subnets", subnets, n);
        if (rc == 0) {
            rc = pack_children(&s, pk, "Rules", id, "natrule-", rule_pack);
        }
        if (rc == 0) {
            rc = fsm__natwl_spec_pack(f, txn, pk, id, r); /* natwl.c */
        }
    } else if (rc == 0 && strcmp(type, "LB") == 0) {
        char subnet[1][FSM_ID_SIZE];
        snprintf(subnet[0], FSM_ID_SIZE, "%s", fsm__rec_s(r, "SubnetID"));
        rc = pack_subnets(&s, pk, "Subnets", subnet, 1);
        if (rc == 0) {
            rc = pack_children(&s, pk, "VServers", id, "vserver-", vs_pack);
        }
    } else if (rc == 0) {
        rc = pack_children(&s, pk, "Connections", id, "vpnconn-", conn_pack);
    }
    OPENSSL_cleanse(s.priv, sizeof s.priv);
    return rc;
}
