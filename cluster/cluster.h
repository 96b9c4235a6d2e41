/* cluster: one management node's raft membership, wired to the fsm.
 *
 * Owns the raft instance (libraft over raft_uv + TCP), the fsm it feeds,
 * proposal batching and linearizable-read barriers. Runs entirely on the
 * caller's libuv loop thread.
 *
 * Writes: cluster_submit() queues an envelope; once per loop iteration every
 * queued envelope goes to raft as one raft_apply() batch. The result of each
 * entry reaches its callback when the entry is applied locally, matched by
 * the envelope's tag (libraft's apply callback only reports the first entry
 * of a batch). A proposal whose fate cannot be known (leadership lost after
 * proposing) completes with YH_EUNKNOWN.
 *
 * Reads: cluster_barrier() queues a read; one raft_barrier serves every read
 * queued before it was issued.
 */
#ifndef YH_CLUSTER_H
#define YH_CLUSTER_H

#include <stdint.h>
#include <uv.h>

#include "fsm/fsm.h"

#define CLUSTER_MAX_NODES 16
#define CLUSTER_PATH_SIZE 1024

struct cluster;

struct cluster_config
{
    uint64_t id;                              /* this node's raft id */
    char data_dir[CLUSTER_PATH_SIZE];         /* raft in <dir>/raft, LMDB in
                                                 <dir>/state */
    char raft_addr[64];                       /* host:port */
    char api_addr[64];                        /* host:port */
    struct fsm_node peers[CLUSTER_MAX_NODES]; /* initial members */
    unsigned n_peers;
    int join;                        /* start empty, wait for AddNode */
    char admin_public[FSM_KEY_SIZE]; /* "" = no admin bootstrap */
    char admin_private[FSM_KEY_SIZE];
    unsigned snapshot_threshold; /* entries between snapshots */
    unsigned snapshot_trailing;  /* entries kept after one */
    size_t segment_size;         /* raft_uv segment size in bytes */
    unsigned election_timeout_ms;
    unsigned install_snapshot_timeout_ms; /* see cluster_config_defaults */
    unsigned heartbeat_timeout_ms;
    size_t map_size; /* LMDB map size (0 = default) */
    /* File pages mapped (nearly all LMDB's) above which the node drops the
     * state file's pages from its page tables, checked once a second (0 =
     * never): bounds RSS during long runs of writes (fsm_map_trim). */
    size_t map_budget;
    /* Testing only ("" = off): while this file exists, this node's
     * snapshots wait before encoding (at most 60 s), so that a test can
     * hold a node busy with its own snapshot. */
    char test_snapshot_hold_file[CLUSTER_PATH_SIZE];
};

/* Defaults for everything but id/addresses/peers. */
void cluster_config_defaults(struct cluster_config *cfg);

/* Open the fsm, start raft (bootstrapping the initial configuration on a
 * fresh data dir unless cfg->join). @errmsg: YH_ERRMSG_SIZE.
 * Errors: YH_EIO, YH_ECORRUPT, YH_ENOMEM, YH_EINVAL. */
int cluster_open(struct cluster **out,
                 uv_loop_t *loop,
                 const struct cluster_config *cfg,
                 char *errmsg);

/* Stop raft, flush and close the fsm; @cb fires on the loop when done and
 * the cluster memory is freed. Pending requests complete with
 * YH_EUNKNOWN (writes) or YH_EUNAVAIL (reads) first. */
typedef void cluster_close_cb(void *arg);
void cluster_close(struct cluster *c, cluster_close_cb *cb, void *arg);

/* The fsm (borrowed, valid until close). */
struct fsm *cluster_fsm(struct cluster *c);

/* Fresh proposal tag for fsm_cmd_prepare(). */
uint64_t cluster_next_tag(struct cluster *c);

/* Write completion. @status 0: @result (valid during the call) is the
 * entry's result map. YH_EUNKNOWN: fate unknown. YH_EUNAVAIL: definitely
 * not proposed (not leader). */
typedef void cluster_write_cb(void *arg,
                              int status,
                              const uint8_t *result,
                              size_t len);

/* Queue @envelope (copied) carrying @tag for the next batch. Fails with
 * YH_EUNAVAIL when this node is not the leader, YH_EBUSY when too many
 * proposals are pending. */
int cluster_submit(struct cluster *c,
                   const uint8_t *envelope,
                   size_t len,
                   uint64_t tag,
                   cluster_write_cb *cb,
                   void *arg);

/* Read barrier completion: @status 0 means every entry committed before the
 * read arrived is applied locally; serve from the fsm now. */
typedef void cluster_read_cb(void *arg, int status);
int cluster_barrier(struct cluster *c, cluster_read_cb *cb, void *arg);

/* 1 if this node is the leader. */
int cluster_is_leader(struct cluster *c);

/* Leader's id and API address ("" if unknown). Returns 0 or YH_EUNAVAIL. */
int cluster_leader_api(struct cluster *c, uint64_t *id, char api[64]);

/* Append DescribeCluster's fields (without RetCode/Action/Message) as
 * key/value pairs; returns the number of pairs written. */
unsigned cluster_describe_pack(struct cluster *c, msgpack_packer *pk);

/* Membership and leadership (leader only; @cb gets 0 or a YH_E* code and a
 * message). */
typedef void cluster_admin_cb(void *arg, int status, const char *message);
int cluster_transfer(struct cluster *c,
                     uint64_t id,
                     cluster_admin_cb *cb,
                     void *arg);
int cluster_add_node(struct cluster *c,
                     const struct fsm_node *node,
                     cluster_admin_cb *cb,
                     void *arg);
int cluster_remove_node(struct cluster *c,
                        uint64_t id,
                        cluster_admin_cb *cb,
                        void *arg);

/* Called for every applied entry with its operation-log event (a msgpack
 * map), for Watch streams. */
typedef void cluster_event_cb(void *arg,
                              uint64_t index,
                              const uint8_t *event,
                              size_t len);
void cluster_set_event_cb(struct cluster *c, cluster_event_cb *cb, void *arg);

/* Hook run at the end of every loop iteration, after proposals were sent
 * and the fsm batch committed (the server flushes its writes there). */
typedef void cluster_tick_cb(void *arg);
void cluster_set_tick_cb(struct cluster *c, cluster_tick_cb *cb, void *arg);

/* Parse a closed raft_uv segment name ("%016llu-%016llu": first and last
 * index). Returns 0 and sets both, or -1 if @name is not one. */
int cluster_segment_range(const char *name, uint64_t *first, uint64_t *last);

#endif
