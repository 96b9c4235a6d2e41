/* DescribeCluster, leadership transfer and membership changes.
 *
 * AddNode:    propose _Node(add) so every node learns the new member's API
 *             address -> raft_add(id, raft address) -> raft_assign(voter),
 *             which libraft completes once the node has caught up.
 * RemoveNode: propose _Node(remove) -> raft_remove(id).
 * One change at a time (libraft allows no more); a second one gets
 * YH_EBUSY. Every step has exactly one outstanding callback, which frees
 * the operation once it has been answered. */
#include "cluster_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsm/base/log.h"
#include "fsm/base/mp.h"

YH_LOG_MODULE("membership");

static const char *state_name(int state)
{
    switch (state) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

static const char *role_name(int role)
{
    switch (role) {
    case RAFT_VOTER:
        return "voter";
    case RAFT_STANDBY:
        return "standby";
    default:
        return "spare";
    }
}

/* API address of node @id: the replicated nodes table, else the local
 * configuration's peers. */
static void node_api(struct cluster *c, uint64_t id, char api[64])
{
    struct fsm_node nodes[CLUSTER_MAX_NODES];
    unsigned n = 0;

    api[0] = '\0';
    if (fsm_nodes(c->fsm, nodes, CLUSTER_MAX_NODES, &n) == 0) {
        for (unsigned i = 0; i < n; i++) {
            if (nodes[i].id == id) {
                snprintf(api, 64, "%s", nodes[i].api_addr);
                return;
            }
        }
    }
    for (unsigned i = 0; i < c->cfg.n_peers; i++) {
        if (c->cfg.peers[i].id == id) {
            snprintf(api, 64, "%s", c->cfg.peers[i].api_addr);
            return;
        }
    }
}

int cluster_leader_api(struct cluster *c, uint64_t *id, char api[64])
{
    raft_id lid = 0;
    const char *addr = NULL;

    api[0] = '\0';
    raft_leader(&c->raft, &lid, &addr);
    *id = lid;
    if (lid == 0) {
        return YH_EUNAVAIL;
    }
    node_api(c, lid, api);
    return api[0] != '\0' ? 0 : YH_EUNAVAIL;
}

unsigned cluster_describe_pack(struct cluster *c, msgpack_packer *pk)
{
    char digest[2 * FSM_DIGEST_SIZE + 1];
    char api[64];
    uint64_t lid = 0;
    const struct raft_configuration *conf = &c->raft.configuration;

    cluster_leader_api(c, &lid, api);
    fsm_digest_hex(c->fsm, digest);
    yh_mp_pack_kv_int(pk, "NodeID", (int64_t)c->cfg.id);
    yh_mp_pack_kv_str(pk, "State", state_name(raft_state(&c->raft)));
    yh_mp_pack_kv_int(pk, "LeaderID", (int64_t)lid);
    yh_mp_pack_kv_str(pk, "LeaderAPIAddress", api);
    yh_mp_pack_kv_int(pk, "Term", (int64_t)c->raft.current_term);
    yh_mp_pack_kv_int(pk, "CommitIndex", (int64_t)c->raft.commit_index);
    yh_mp_pack_kv_int(pk, "AppliedIndex", (int64_t)fsm_applied_index(c->fsm));
    yh_mp_pack_kv_int(pk, "LastIndex", (int64_t)raft_last_index(&c->raft));
    yh_mp_pack_kv_str(pk, "Digest", digest);
    yh_mp_pack_str(pk, "Nodes");
    msgpack_pack_array(pk, conf->n);
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        node_api(c, s->id, api);
        msgpack_pack_map(pk, 5);
        yh_mp_pack_kv_int(pk, "NodeID", (int64_t)s->id);
        yh_mp_pack_kv_str(pk, "RaftAddress", s->address);
        yh_mp_pack_kv_str(pk, "APIAddress", api);
        yh_mp_pack_kv_str(pk, "Role", role_name(s->role));
        yh_mp_pack_str(pk, "IsLeader");
        if (s->id == lid) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
    }
    return 10;
}

/* ---- admin operations -------------------------------------------------- */

static struct cluster_admin *admin_new(struct cluster *c,
                                       cluster_admin_cb *cb,
                                       void *arg)
{
    struct cluster_admin *a = calloc(1, sizeof *a);

    if (a == NULL) {
        return NULL;
    }
    a->c = c;
    a->cb = cb;
    a->arg = arg;
    c->admin = a;
    return a;
}

/* Answer the operation (once). The outstanding callback frees it. */
static void admin_answer(struct cluster_admin *a, int status, const char *msg)
{
    if (a->cb != NULL) {
        cluster_admin_cb *cb = a->cb;
        a->cb = NULL;
        if (a->c->admin == a) {
            a->c->admin = NULL;
        }
        cb(a->arg, status, msg);
    }
}

void cluster__admin_fail(struct cluster *c, int status, const char *msg)
{
    if (c->admin != NULL) {
        admin_answer(c->admin, status, msg);
    }
}

static void transfer_cb(struct raft_transfer *req)
{
    struct cluster_admin *a = req->data;
    struct cluster *c = a->c;
    raft_id lid = 0;
    const char *addr = NULL;
    char msg[128];

    if (a->cb != NULL) {
        raft_leader(&c->raft, &lid, &addr);
        if (lid != 0 && lid != c->cfg.id) {
            snprintf(msg, sizeof msg, "leadership transferred to node %llu",
                     (unsigned long long)lid);
            admin_answer(a, 0, msg);
        } else {
            admin_answer(a, YH_EUNAVAIL,
                         "leadership transfer did not complete");
        }
    }
    free(a);
}

int cluster_transfer(struct cluster *c,
                     uint64_t id,
                     cluster_admin_cb *cb,
                     void *arg)
{
    struct cluster_admin *a;
    int rv;

    if (raft_state(&c->raft) != RAFT_LEADER) {
        return YH_EUNAVAIL;
    }
    if (c->admin != NULL) {
        return YH_EBUSY;
    }
    a = admin_new(c, cb, arg);
    if (a == NULL) {
        return YH_ENOMEM;
    }
    a->req.transfer.data = a;
    rv = raft_transfer(&c->raft, &a->req.transfer, id, transfer_cb);
    if (rv != 0) {
        c->admin = NULL;
        free(a);
        return rv == RAFT_BADID || rv == RAFT_NOTFOUND ? YH_ENOTFOUND
                                                       : cluster__raft_err(rv);
    }
    YH_INFO("n%" PRIu64 " transferring leadership to %" PRIu64, c->cfg.id, id);
    return 0;
}

static void change_cb(struct raft_change *req, int status);
static void change_step(struct cluster_admin *a);

/* Run the next step from the check handle: the callbacks that decide it
 * run inside libraft, which must not be re-entered. */
static void defer_step(struct cluster_admin *a)
{
    a->c->admin_deferred = a;
    cluster__kick(a->c);
}

void cluster__admin_run_deferred(struct cluster *c)
{
    struct cluster_admin *a = c->admin_deferred;

    if (a != NULL) {
        c->admin_deferred = NULL;
        if (a->cb == NULL) {
            free(a); /* answered (shutdown) while waiting */
            return;
        }
        change_step(a);
    }
}

static void change_step(struct cluster_admin *a)
{
    struct cluster *c = a->c;
    int rv = 0;

    a->req.change.data = a;
    if (a->step == 1) {
        rv = raft_add(&c->raft, &a->req.change, a->node.id, a->node.raft_addr,
                      change_cb);
    } else if (a->step == 2) {
        rv = raft_assign(&c->raft, &a->req.change, a->node.id, RAFT_VOTER,
                         change_cb);
    } else if (a->step == 11) {
        rv = raft_remove(&c->raft, &a->req.change, a->node.id, change_cb);
    }
    if (rv != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "membership change failed: %s",
                 raft_strerror(rv));
        admin_answer(a, cluster__raft_err(rv), msg);
        free(a);
    }
}

static void change_cb(struct raft_change *req, int status)
{
    struct cluster_admin *a = req->data;
    char msg[160];

    if (a->cb == NULL) {
        free(a);
        return;
    }
    if (status != 0) {
        snprintf(msg, sizeof msg, "membership change failed: %s",
                 raft_strerror(status));
        admin_answer(a, cluster__raft_err(status), msg);
        free(a);
        return;
    }
    if (a->step == 1) {
        a->step = 2;
        defer_step(a);
        return;
    }
    snprintf(msg, sizeof msg, "node %llu %s", (unsigned long long)a->node.id,
             a->step == 2 ? "added as voter" : "removed");
    YH_INFO("n%" PRIu64 " %s", a->c->cfg.id, msg);
    admin_answer(a, 0, msg);
    free(a);
}

static void node_cmd_cb(void *arg,
                        int status,
                        const uint8_t *result,
                        size_t len)
{
    struct cluster_admin *a = arg;

    (void)result;
    (void)len;
    if (a->cb == NULL) {
        free(a);
        return;
    }
    if (status != 0) {
        admin_answer(a, status, "could not record the node change");
        free(a);
        return;
    }
    a->step = a->step == 0 ? 1 : 11;
    defer_step(a); /* we are inside the fsm's apply: not into raft here */
}

static int start_change(struct cluster *c,
                        const struct fsm_node *node,
                        int remove,
                        cluster_admin_cb *cb,
                        void *arg)
{
    struct cluster_admin *a;
    struct yh_buf env = YH_BUF_INIT;
    struct timespec ts;
    uint64_t tag;
    int rc;

    if (raft_state(&c->raft) != RAFT_LEADER) {
        return YH_EUNAVAIL;
    }
    if (c->admin != NULL) {
        return YH_EBUSY;
    }
    a = admin_new(c, cb, arg);
    if (a == NULL) {
        return YH_ENOMEM;
    }
    a->node = *node;
    a->step = remove ? 10 : 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    tag = cluster_next_tag(c);
    rc = fsm_cmd_node(node, remove,
                      (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                      tag, &env);
    if (rc == 0) {
        rc = cluster_submit(c, env.data, env.len, tag, node_cmd_cb, a);
    }
    yh_buf_release(&env);
    if (rc != 0) {
        c->admin = NULL;
        free(a);
    }
    return rc;
}

int cluster_add_node(struct cluster *c,
                     const struct fsm_node *node,
                     cluster_admin_cb *cb,
                     void *arg)
{
    const struct raft_configuration *conf = &c->raft.configuration;

    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == node->id) {
            return YH_EEXIST;
        }
    }
    return start_change(c, node, 0, cb, arg);
}

int cluster_remove_node(struct cluster *c,
                        uint64_t id,
                        cluster_admin_cb *cb,
                        void *arg)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    struct fsm_node node;

    memset(&node, 0, sizeof node);
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            node.id = id;
            snprintf(node.raft_addr, sizeof node.raft_addr, "%s",
                     conf->servers[i].address);
            return start_change(c, &node, 1, cb, arg);
        }
    }
    return YH_ENOTFOUND;
}
