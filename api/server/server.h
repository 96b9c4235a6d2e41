/* api/server: the MessagePack-RPC front end of yunhand.
 *
 * One libuv loop thread. Each connection pre-scans and decodes its messages
 * (api/wire), authenticates them (HMAC over the raw request) and routes
 * them: writes are prepared into envelopes and proposed through the cluster
 * (batched per loop iteration), linearizable reads wait for a barrier,
 * stale reads and DescribeCluster are served locally. A follower forwards
 * writes and linearizable reads to the leader over one connection signed
 * with the cluster secret. Responses are gathered per connection and
 * written once per loop iteration.
 */
#ifndef API_SERVER_H
#define API_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "cluster/cluster.h"

struct api_server;

struct api_server_config
{
    char listen_addr[64];     /* host:port */
    char cluster_secret[128]; /* "" = forwarding disabled */
    size_t max_message;       /* bytes (0 = API_MAX_MESSAGE) */
    int64_t auth_skew_s;      /* 0 = API_AUTH_SKEW_S */
};

/* Start listening. @cluster is borrowed and must outlive the server.
 * Errors: YH_EIO (bind/listen failed, reason in @errmsg), YH_ENOMEM. */
int api_server_open(struct api_server **out,
                    uv_loop_t *loop,
                    struct cluster *cluster,
                    const struct api_server_config *cfg,
                    char *errmsg);

/* Stop listening, close every connection; @cb fires once all handles are
 * closed and the server is freed. */
typedef void api_server_close_cb(void *arg);
void api_server_close(struct api_server *s, api_server_close_cb *cb, void *arg);

#endif
