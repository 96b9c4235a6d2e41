/* The agents' view of the state: which host a resource concerns and the
 * full desired spec its executor realises (fsm_host_spec, used by the API
 * server's WatchCommands streams).
 *
 * A machine concerns the host it is placed on (its HostID) for as long as
 * its record exists, recycled ones included: the host must keep it stopped
 * until the purge deletes the record. While it is migrated it concerns
 * the source host (MigrateFromHostID) as well: both get the same spec,
 * HostID naming the target. A disk concerns the host of the
 * machine it is bound to (VMID): while it is being attached, while it is
 * attached, and while it is being detached (the binding is dropped only
 * when the executor confirms the detach); a machine's boot disk (Boot
 * true, bootdisk.c) is bound to it for its whole life. A gateway (NAT gateway,
 * load balancer, VPN gateway) concerns the host it is placed on (gwhost.c) for
 * as long as its record exists. A detached disk, a snapshot (no executor
 * acts on one: it has no Generation) and anything else concern no host.
 *
 * The spec is a msgpack map: a fixed head (ResourceID, ResourceType,
 * HostID, DesiredState, State, Generation, Revision), then the record's
 * other fields in record order, then what the executor needs from other
 * records (a disk's pool; a machine's disks, its boot disk marked Boot,
 * and its network: NICs,
 * security groups with their rules, EIPs, nic.c; a gateway's EIP, subnets
 * and rules, vservers and backends, or connections, gwhost.c). Internal
 * fields ('_' prefix), binary fields and anything whose name looks like a
 * secret are never included; the one secret an executor needs, a VPN
 * connection's pre-shared key, is sealed to its host (gwhost.c). The same
 * state always gives the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define MAX_VM_DISKS 64

/* Fields written by the head of the spec (not repeated from the record). */
static const char *const head_fields[] = {
    "ResourceID", "ResourceType", "HostID",   "DesiredState",
    "State",      "Generation",   "Revision", NULL,
};

/* Substrings of field names that are never shown to an agent. */
static const char *const secret_words[] = {
    "Password", "PwHash", "Salt", "Secret", "PrivateKey", NULL,
};

static int in_list(const char *const *list, const char *k)
{
    for (; *list != NULL; list++) {
        if (strcmp(*list, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_secret(const char *k)
{
    for (const char *const *w = secret_words; *w != NULL; w++) {
        if (strcasestr(k, *w) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* Whether record field @f goes into a spec after the head. */
static int field_shown(const struct fsm_rf *f)
{
    return f->k[0] != '_' && f->t != FSM_RF_BIN && !is_secret(f->k) &&
           !in_list(head_fields, f->k);
}

/* A string list field ('\n'-joined) as a msgpack array. */
static void pack_list(msgpack_packer *pk, const char *s)
{
    uint32_t n = 0;

    if (s[0] != '\0') {
        n = 1;
        for (const char *p = s; *p != '\0'; p++) {
            n += *p == '\n';
        }
    }
    msgpack_pack_array(pk, n);
    while (n-- > 0) {
        const char *e = strchr(s, '\n');
        size_t l = e != NULL ? (size_t)(e - s) : strlen(s);
        yh_mp_pack_strn(pk, s, l);
        s += l + 1;
    }
}

static void pack_field(msgpack_packer *pk, const struct fsm_rf *f)
{
    yh_mp_pack_str(pk, f->k);
    switch (f->t) {
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
    case FSM_RF_NIL:
    case FSM_RF_BIN: /* never shown (field_shown) */
        msgpack_pack_nil(pk);
        break;
    }
}

/* Backend and Ceph pool name of storage pool @pool ("" if unknown). */
static int pool_info(struct fsm *f,
                     MDB_txn *txn,
                     const char *pool,
                     char backend[16],
                     char name[80])
{
    struct fsm_rec p;
    int rc = 0;

    backend[0] = '\0';
    name[0] = '\0';
    if (pool[0] == '\0') {
        return 0;
    }
    fsm__rec_init(&p);
    rc = fsm__rec_load(f, txn, FSM_TBL_INFRA, pool, strlen(pool), &p);
    if (rc == 0) {
        snprintf(backend, 16, "%s", fsm__rec_s(&p, "Backend"));
        snprintf(name, 80, "%s", fsm__rec_s(&p, "Pool"));
    }
    fsm__rec_free(&p);
    /* pools are never deleted; a missing one leaves the fields empty */
    return rc == YH_ENOTFOUND ? 0 : rc;
}

/* The disks bound to machine @vm, in ID order. */
struct vm_disks
{
    char ids[MAX_VM_DISKS][FSM_ID_SIZE]; /* DiskIDs */
    unsigned n;                          /* count */
};

static int vm_disk_add(void *arg, const char *disk)
{
    struct vm_disks *out = arg;

    if (out->n >= MAX_VM_DISKS) {
        return 1;
    }
    snprintf(out->ids[out->n++], FSM_ID_SIZE, "%s", disk);
    return 0;
}

/* From the disks-by-machine rows of 'res_list' (kept exact by every save
 * and delete of a disk record), not a scan of every disk. */
static int vm_disks(struct fsm *f,
                    MDB_txn *txn,
                    const char *vm,
                    struct vm_disks *out)
{
    out->n = 0;
    return fsm__vm_disk_walk(f, txn, vm, vm_disk_add, out);
}

/* "Disks": what a machine's executor needs about each disk bound to it. */
static int pack_vm_disks(struct fsm *f,
                         MDB_txn *txn,
                         msgpack_packer *pk,
                         const struct vm_disks *d)
{
    char backend[16], pool[80];
    struct fsm_rec r;
    int rc = 0;

    fsm__rec_init(&r);
    yh_mp_pack_str(pk, "Disks");
    msgpack_pack_array(pk, d->n);
    for (unsigned i = 0; i < d->n; i++) {
        rc = fsm__rec_load(f, txn, FSM_TBL_RES, d->ids[i], strlen(d->ids[i]),
                           &r);
        if (rc == 0) {
            rc = pool_info(f, txn, fsm__rec_s(&r, "PoolID"), backend, pool);
        }
        if (rc != 0) {
            break;
        }
        msgpack_pack_map(pk, 10);
        yh_mp_pack_kv_str(pk, "DiskID", d->ids[i]);
        yh_mp_pack_str(pk, "Boot");
        if (fsm__rec_i(&r, "Boot")) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
        yh_mp_pack_kv_str(pk, "DesiredAttach", fsm__rec_s(&r, "DesiredAttach"));
        yh_mp_pack_kv_str(pk, "State", fsm__rec_s(&r, "State"));
        yh_mp_pack_kv_int(pk, "Generation", fsm__rec_i(&r, "Generation"));
        yh_mp_pack_kv_int(pk, "Size", fsm__rec_i(&r, "Size"));
        yh_mp_pack_kv_str(pk, "SetType", fsm__rec_s(&r, "SetType"));
        yh_mp_pack_kv_str(pk, "PoolID", fsm__rec_s(&r, "PoolID"));
        yh_mp_pack_kv_str(pk, "Backend", backend);
        yh_mp_pack_kv_str(pk, "Pool", pool);
    }
    fsm__rec_free(&r);
    return rc;
}

/* The spec of resource @id (record @r) concerning @host. */
static int pack_spec(struct fsm *f,
                     MDB_txn *txn,
                     const char *id,
                     const struct fsm_rec *r,
                     const char *host,
                     struct yh_buf *spec)
{
    int disk = strcmp(fsm__rec_s(r, "ResourceType"), "Disk") == 0;
    int gw = fsm__gw_type(fsm__rec_s(r, "ResourceType")) != NULL;
    char backend[16], pool[80];
    struct vm_disks *disks = NULL;
    struct fsm_out o;
    uint32_t n = 7;
    int rc = 0;

    if (disk) {
        rc = pool_info(f, txn, fsm__rec_s(r, "PoolID"), backend, pool);
        if (rc != 0) {
            return rc;
        }
        n += 2; /* Backend, Pool */
    } else if (gw) {
        n += fsm__gw_spec_pairs(r);
    } else {
        disks = malloc(sizeof *disks);
        if (disks == NULL) {
            return YH_ENOMEM;
        }
        rc = vm_disks(f, txn, id, disks);
        if (rc != 0) {
            goto out;
        }
        n += 5; /* Disks, NICs, SecurityGroups, EIPs, CredentialSealed */
    }
    for (unsigned i = 0; i < r->n; i++) {
        n += field_shown(&r->f[i]);
    }
    fsm__out_init(&o, spec);
    msgpack_pack_map(&o.pk, n);
    yh_mp_pack_kv_str(&o.pk, "ResourceID", id);
    yh_mp_pack_kv_str(&o.pk, "ResourceType", fsm__rec_s(r, "ResourceType"));
    yh_mp_pack_kv_str(&o.pk, "HostID", host);
    /* a disk's desired state is its desired attachment */
    yh_mp_pack_kv_str(&o.pk, "DesiredState",
                      fsm__rec_s(r, disk ? "DesiredAttach" : "DesiredState"));
    yh_mp_pack_kv_str(&o.pk, "State", fsm__rec_s(r, "State"));
    yh_mp_pack_kv_int(&o.pk, "Generation", fsm__rec_i(r, "Generation"));
    yh_mp_pack_kv_int(&o.pk, "Revision", fsm__rec_i(r, "Revision"));
    for (unsigned i = 0; i < r->n; i++) {
        if (field_shown(&r->f[i])) {
            pack_field(&o.pk, &r->f[i]);
        }
    }
    if (disk) {
        yh_mp_pack_kv_str(&o.pk, "Backend", backend);
        yh_mp_pack_kv_str(&o.pk, "Pool", pool);
    } else if (gw) {
        rc = fsm__gw_spec_pack(f, txn, &o.pk, id, r, host); /* gwhost.c */
    } else {
        rc = pack_vm_disks(f, txn, &o.pk, disks);
        if (rc == 0) {
            rc = fsm__vm_net_pack(f, txn, &o.pk, id); /* nic.c */
        }
        if (rc == 0) {
            fsm__pw_seal_pack(&o.pk, r); /* pwseal.c */
        }
    }
    if (rc == 0 && o.oom) {
        rc = YH_ENOMEM;
    }
out:
    free(disks);
    return rc;
}

int fsm_host_spec(struct fsm *f,
                  const char *resource_id,
                  char host[FSM_ID_SIZE],
                  struct yh_buf *spec)
{
    char also[FSM_ID_SIZE];

    return fsm_host_spec2(f, resource_id, host, also, spec);
}

int fsm_host_spec2(struct fsm *f,
                   const char *resource_id,
                   char host[FSM_ID_SIZE],
                   char also[FSM_ID_SIZE],
                   struct yh_buf *spec)
{
    struct fsm_rec r, m;
    const char *type;
    MDB_txn *txn;
    size_t n;
    int rc;

    host[0] = '\0';
    also[0] = '\0';
    yh_buf_reset(spec);
    n = resource_id != NULL ? strlen(resource_id) : 0;
    if (n == 0 || n >= FSM_ID_SIZE) {
        return YH_ENOTFOUND;
    }
    /* committed state only, like fsm_query: what a stream sends must not
     * be rolled back by a failing batch */
    rc = fsm_flush(f);
    if (rc != 0) {
        return rc;
    }
    rc = fsm__rtxn_begin(f, &txn);
    if (rc != 0) {
        return rc;
    }
    fsm__rec_init(&r);
    fsm__rec_init(&m);
    rc = fsm__rec_load(f, txn, FSM_TBL_RES, resource_id, n, &r);
    if (rc != 0) {
        goto out;
    }
    type = fsm__rec_s(&r, "ResourceType");
    if (strcmp(type, "VM") == 0) {
        snprintf(host, FSM_ID_SIZE, "%s", fsm__rec_s(&r, "HostID"));
        /* being migrated: the source host too */
        snprintf(also, FSM_ID_SIZE, "%s", fsm__rec_s(&r, "MigrateFromHostID"));
    } else if (strcmp(type, "Disk") == 0) {
        /* bound to a machine from AttachDisk until the confirmed detach */
        const char *vm = fsm__rec_s(&r, "VMID");
        rc = vm[0] != '\0'
                 ? fsm__rec_load(f, txn, FSM_TBL_RES, vm, strlen(vm), &m)
                 : YH_ENOTFOUND;
        if (rc == 0) {
            snprintf(host, FSM_ID_SIZE, "%s", fsm__rec_s(&m, "HostID"));
        }
    } else if (fsm__gw_type(type) != NULL) {
        /* placed on a host at its creation (gwhost.c) */
        snprintf(host, FSM_ID_SIZE, "%s", fsm__rec_s(&r, "HostID"));
    } else {
        rc = YH_ENOTFOUND; /* snapshots: no executor acts on them */
    }
    if (rc == 0 && host[0] == '\0') {
        rc = YH_ENOTFOUND;
    }
    if (rc == 0) {
        rc = pack_spec(f, txn, resource_id, &r, host, spec);
    }
out:
    fsm__rec_free(&r);
    fsm__rec_free(&m);
    fsm__rtxn_end(f, txn);
    if (rc != 0) {
        host[0] = '\0';
        also[0] = '\0';
        yh_buf_reset(spec);
    }
    return rc;
}

const char *fsm_host_resource_type(const char *resource_id)
{
    static const struct
    {
        const char *prefix, *type;
    } kinds[] = {
        {"uhost-", "VM"},
        {"natgw-", "NATGW"},
        {"lb-", "LB"},
        {"vpngw-", "VPNGateway"},
    };

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strncmp(resource_id, kinds[i].prefix, strlen(kinds[i].prefix)) ==
            0) {
            return kinds[i].type;
        }
    }
    return "";
}
