/* fsm: Yunhan's replicated state machine, the ground floor.
 *
 * Every state change is a command: a msgpack map (the envelope)
 *
 *   {"v": 1, "type": "CreateUser", "actor": {"UserID": s, "TenantID": s,
 *    "Admin": bool}, "time": unix-ns, "token": s|nil, "bodyhash": bin32|nil,
 *    "src": "ip:port", "tag": uint, "ttl": ns, "args": {...},
 *    "stamp": {...}}
 *
 * (ttl: RequestToken retention stamped by the leader, so that apply does not
 * read the node-local configuration.)
 *
 * built on the leader by fsm_cmd_prepare() (which stamps time, random key
 * material, password hashes) and applied on every node by fsm_apply(), which
 * is a pure function of (state, index, envelope): it never reads a clock, a
 * random source, the environment or local configuration.
 *
 * State lives in one LMDB environment (one named DB per table). Applied
 * entries accumulate in one open write transaction (a batch) that
 * fsm_flush() commits, together with the applied index and the state digest
 * (SHA-256 chain over previous digest, index, command bytes, result bytes).
 *
 * Threading: every function except fsm_snapshot_encode() runs on the thread
 * that opened the fsm (yunhand's loop thread).
 */
#ifndef YH_FSM_H
#define YH_FSM_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/err.h"

struct fsm;      /* opaque */
struct fsm_snap; /* opaque: a snapshot in progress */

#define FSM_ID_SIZE 48  /* max bytes of an ID incl. NUL */
#define FSM_KEY_SIZE 96 /* max bytes of an API key string incl. NUL */
#define FSM_DIGEST_SIZE 32

/* Who is acting. Filled from an API key by fsm_key_get(). */
struct fsm_actor
{
    char user_id[FSM_ID_SIZE];   /* "" = anonymous */
    char tenant_id[FSM_ID_SIZE]; /* owning tenant ("" for the admin) */
    int admin;                   /* cluster administrator */
};

struct fsm_config
{
    size_t map_size;       /* LMDB map size in bytes (0 = default 8 GiB) */
    int nosync;            /* MDB_NOSYNC: the raft log is the durable copy */
    uint64_t token_ttl_ns; /* RequestToken retention in log time
                              (0 = default 24 h) */
    uint64_t oplog_keep;   /* operation-log records kept online (0 =
                              FSM_OPLOG_KEEP). Part of the state machine's
                              definition: it must be the same on every
                              node, so yunhand never sets it; only unit
                              tests shrink it. */
};

/* Operation-log records kept in the state: the last 100,000 entries.
 * Older ones leave the state (two per apply, oldest first); the full
 * history stays in the command-log archive (`yunhan audit`). */
#define FSM_OPLOG_KEEP 100000u

/* How an action is served. */
enum fsm_action_kind {
    FSM_ACT_UNKNOWN = 0, /* not an action of ours */
    FSM_ACT_WRITE,       /* proposed through raft, applied by fsm_apply() */
    FSM_ACT_READ,        /* served by fsm_query() after a barrier */
    FSM_ACT_CLUSTER,     /* served by the cluster layer (DescribeCluster,
                            TransferLeader, AddNode, RemoveNode, Watch) */
};

enum fsm_action_flags {
    FSM_ACT_F_ANON = 1 << 0,  /* allowed without auth */
    FSM_ACT_F_ADMIN = 1 << 1, /* admin only */
};

/* Kind of @action and its flags (*flags may be NULL). */
enum fsm_action_kind fsm_action_kind(const char *action, unsigned *flags);

/* NULL-terminated list of every action name (for docs, CLI completion). */
const char *const *fsm_action_names(void);

/* Open or create the state in directory @dir (created if missing).
 * @errmsg (YH_ERRMSG_SIZE) gets the reason on failure.
 * Errors: YH_EIO, YH_ECORRUPT, YH_ENOMEM. */
int fsm_open(struct fsm **out,
             const char *dir,
             const struct fsm_config *cfg,
             char *errmsg);

/* Commit any open batch and close. NULL is a no-op. */
void fsm_close(struct fsm *f);

/* Open and verify the state in @dir in a forked child first: LMDB trusts
 * its pages, so flipped bits in a branch page or a page header can crash
 * the reader (SIGSEGV/SIGBUS) instead of failing. A child that crashes or
 * finds the content hash wrong means a corrupt state: YH_ECORRUPT with
 * @errmsg saying so. Missing state is fine (0). Call before threads exist. */
int fsm_check_isolated(const char *dir,
                       const struct fsm_config *cfg,
                       char *errmsg);

/* Index of the last applied entry (including the open batch) and its
 * digest. */
uint64_t fsm_applied_index(const struct fsm *f);

/* If this process has more than @budget bytes of file pages mapped (LMDB's
 * map of the state file, touched by every read and write transaction, is
 * nearly all of them), drop the state file's pages from its page tables
 * (they stay in the kernel's page cache). Returns 1 if it did, 0 if not. */
int fsm_map_trim(struct fsm *f, size_t budget);
void fsm_digest(const struct fsm *f, uint8_t out[FSM_DIGEST_SIZE]);
void fsm_digest_hex(const struct fsm *f, char out[2 * FSM_DIGEST_SIZE + 1]);

/* Leader side: turn a client request into an envelope.
 *
 * @action: action name (FSM_ACT_WRITE kind, or LoginByPassword).
 * @request: the request map as the client sent it (its RequestToken is read
 *   from it; the body digest is over the canonical map without RequestToken
 *   and Consistency).
 * @actor: authenticated actor (anonymous for LoginByPassword).
 * @src: client address "ip:port".
 * @time_ns: leader wall clock.
 * @tag: opaque proposal tag returned by fsm_apply() for this entry, so the
 *   proposer can match results to requests.
 * On 0, @envelope holds the command. On a rejection known before proposing
 * (bad parameter, wrong password) returns 0 with @envelope empty and
 * @result holding the error result map (see fsm_apply). Other non-zero: local
 * failure (YH_ENOMEM). */
int fsm_cmd_prepare(struct fsm *f,
                    const char *action,
                    const msgpack_object *request,
                    const struct fsm_actor *actor,
                    const char *src,
                    uint64_t time_ns,
                    uint64_t tag,
                    struct yh_buf *envelope,
                    struct yh_buf *result);

/* Leader side: the bootstrap command that creates the admin with the given
 * key pair and records the initial nodes. Applying it twice is harmless
 * (the second one results in YH_EEXIST).
 * @nodes: n_nodes entries of {id, raft address, api address}. */
struct fsm_node
{
    uint64_t id;        /* raft server id */
    char raft_addr[64]; /* host:port of raft */
    char api_addr[64];  /* host:port of the API */
};
int fsm_cmd_bootstrap(const char *admin_public_key,
                      const char *admin_private_key,
                      const struct fsm_node *nodes,
                      unsigned n_nodes,
                      uint64_t time_ns,
                      struct yh_buf *envelope);

/* Leader side: record (or remove, @remove != 0) a node in the nodes table;
 * used by AddNode/RemoveNode before changing the raft configuration. */
int fsm_cmd_node(const struct fsm_node *node,
                 int remove,
                 uint64_t time_ns,
                 uint64_t tag,
                 struct yh_buf *envelope);

/* Apply the entry at log @index.
 *
 * Entries with index <= fsm_applied_index() are skipped (a restarted node is
 * re-fed entries it already holds): returns 0 with *skipped = 1, nothing
 * else is touched.
 * Otherwise opens the batch transaction if needed, applies, and sets
 * @result to a msgpack map {"RetCode": int, "Message": str, "Action":
 * "<Type>Response", ...fields}. A business rejection is such a result with
 * RetCode != 0 and returns 0 (state unchanged except for the applied index,
 * digest and the operation log). @event (may be NULL) receives the
 * operation-log record of the entry (a msgpack map, the same record
 * DescribeOperationLog and Watch return). *tag gets the envelope's tag (0 if
 * none).
 * A malformed envelope is also a result (YH_EPROTO), never a failure.
 * Non-zero return = local transient failure (YH_EIO, YH_ENOMEM): the batch
 * is rolled back whole and the caller must not advance; the fsm is then in
 * an errored state (fsm_applied_index() is back to the last committed
 * index). */
/* fsm_cmd_prepare for a thread other than the loop's: reads committed
 * state through a private read transaction and touches nothing the loop
 * thread uses. For requests whose stamp runs a password KDF
 * (fsm_cmd_uses_kdf): PBKDF2 takes milliseconds, and an anonymous
 * LoginByPassword must not stall every other client. */
int fsm_cmd_prepare_off_loop(struct fsm *f,
                             const char *action,
                             const msgpack_object *request,
                             const struct fsm_actor *actor,
                             const char *src,
                             uint64_t time_ns,
                             uint64_t tag,
                             struct yh_buf *envelope,
                             struct yh_buf *result);
/* 1 if @request carries a password (PassWord/Password) its stamp hashes. */
int fsm_cmd_uses_kdf(const msgpack_object *request);

/* The leader-stamped time (unix ns) of a log entry's command. Returns 0,
 * or YH_EPROTO if @cmd is not a valid envelope. */
int fsm_cmd_time(const void *cmd, size_t len, uint64_t *time_ns);

int fsm_apply(struct fsm *f,
              uint64_t index,
              const void *cmd,
              size_t len,
              struct yh_buf *result,
              struct yh_buf *event,
              uint64_t *tag,
              int *skipped);

/* Commit the open batch (no-op if none). Errors: YH_EIO. */
int fsm_flush(struct fsm *f);

/* Serve a read action (FSM_ACT_READ kind) from committed state; flushes the
 * open batch first. @result gets the result map as for fsm_apply.
 * Non-zero only on local failure. */
int fsm_query(struct fsm *f,
              const char *action,
              const msgpack_object *request,
              const struct fsm_actor *actor,
              struct yh_buf *result);

/* API key lookup for authentication.
 * Errors: YH_ENOTFOUND (no such key, or its user is deleted). */
struct fsm_key
{
    char private_key[FSM_KEY_SIZE]; /* HMAC secret */
    struct fsm_actor actor;         /* owner */
};
int fsm_key_get(struct fsm *f, const char *public_key, struct fsm_key *out);

/* Nodes table (filled by bootstrap and AddNode/RemoveNode commands).
 * Writes up to @max nodes, returns the count in *n. */
int fsm_nodes(struct fsm *f, struct fsm_node *nodes, unsigned max, unsigned *n);

/* Operation log from @from_index on, at most @max records, each a msgpack
 * map as in fsm_apply's @event, delivered to @cb in index order. @cb
 * returning non-zero stops the walk. */
typedef int fsm_oplog_cb(void *arg,
                         uint64_t index,
                         const uint8_t *rec,
                         size_t len);
/* The oldest log index whose operation-log record is still guaranteed to be
 * online (1 until the log outgrows FSM_OPLOG_KEEP). */
uint64_t fsm_oplog_floor(struct fsm *f);

int fsm_oplog_walk(struct fsm *f,
                   uint64_t from_index,
                   unsigned max,
                   fsm_oplog_cb *cb,
                   void *arg);

/* Snapshots.
 * begin (loop thread): flush, then open a read transaction on the current
 *   state; records its applied index and digest.
 * encode (any thread, once): serialize that state into @out.
 * end (loop thread): release.
 * Format: docs/disk-format.md. */
int fsm_snapshot_begin(struct fsm *f, struct fsm_snap **out);
int fsm_snapshot_encode(struct fsm_snap *s, struct yh_buf *out);
void fsm_snapshot_end(struct fsm_snap *s);

/* Replace the state with a snapshot, unless the local state already holds
 * that index or a later one (then it is kept: same log, same state): sets
 * *loaded accordingly. Errors: YH_ECORRUPT (bad snapshot; state unchanged),
 * YH_EIO. */
int fsm_restore(struct fsm *f, const void *data, size_t len, int *loaded);

/* Write every table, key and value as text, in key order, to @out
 * (deterministic: two replicas at the same index dump the same bytes). */
int fsm_dump(struct fsm *f, FILE *out);

/* Leader side, called about every 100 ms while this node leads: hands @cb
 * every envelope the leader should propose now (billing ticks, expiries,
 * host-lease timeouts, recycle-bin purges, timers), built from the state
 * and @now_ns. Applying such an envelope twice must be harmless: periodic
 * work is keyed (e.g. a charge by (resource, period)), so a new leader, a
 * retry or a replay never charges twice. @cb returning non-zero stops the
 * walk. Returns 0 or a local failure. */
typedef int fsm_propose_cb(void *arg, const uint8_t *envelope, size_t len);
int fsm_leader_tick(struct fsm *f,
                    uint64_t now_ns,
                    fsm_propose_cb *cb,
                    void *arg);

/* The agents' view of one resource (used by WatchCommands).
 * If @resource_id names a resource that concerns a host (a VM placed on it,
 * a disk attached to such a VM, a gateway placed on it, ...), writes that
 * host's ID into @host and the resource's full desired spec into @spec: a
 * msgpack map with at least ResourceID, ResourceType ("VM", "Disk",
 * "NATGW", ...), DesiredState, Generation (log index of its last change)
 * and everything an executor needs to realise it (sizes, image, pool,
 * attachments...), never a secret in clear (a VPN pre-shared key is sealed
 * to the host's key).
 * Errors: YH_ENOTFOUND (no such resource, or it concerns no host). */
int fsm_host_spec(struct fsm *f,
                  const char *resource_id,
                  char host[FSM_ID_SIZE],
                  struct yh_buf *spec);
/* The same, with the second host the resource concerns in @also ("" if
 * none): a machine being migrated concerns its source host
 * (MigrateFromHostID) as well as its target (@host, its HostID), and both
 * get the same spec. */
int fsm_host_spec2(struct fsm *f,
                   const char *resource_id,
                   char host[FSM_ID_SIZE],
                   char also[FSM_ID_SIZE],
                   struct yh_buf *spec);
/* The ResourceType of a resource that concerns hosts, from its ID alone
 * (its record may be gone: the tombstones of WatchCommands): "VM",
 * "NATGW", "LB", "VPNGateway"; "" for anything else. */
const char *fsm_host_resource_type(const char *resource_id);
/* 1 if @actor is a host's (agent's) credential. Agent-only actions
 * (FSM_ACT_F_AGENT in fsm_int.h) accept only such actors, and such actors
 * may call nothing else. */
int fsm_actor_is_host(const struct fsm_actor *actor);
#endif
