/* Pieces of the yunhan CLI that are plain functions of their input (request
 * building, rendering, config parsing), plus the entry points of the
 * sub-commands that live in their own files (cluster, bench, replay).
 */
#ifndef API_CLI_H
#define API_CLI_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../fsm/base/buf.h"

#define API_CLI_TOKEN_SIZE 33 /* 32 hex chars + NUL */
#define API_CLI_KEY_SIZE 160  /* max key string incl. NUL */

/* Exit codes of bin/yunhan. */
enum api_cli_exit {
    API_CLI_EXIT_OK = 0,
    API_CLI_EXIT_ERROR = 1,   /* the server answered an error */
    API_CLI_EXIT_USAGE = 2,   /* bad command line */
    API_CLI_EXIT_UNKNOWN = 3, /* outcome unknown after retries */
    API_CLI_EXIT_UNREACH = 4, /* no endpoint reachable */
};

/* Build the request map from "Key=Value" arguments: every value is a
 * msgpack string, keys are sent exactly as written ("UserIDs.0"). When
 * @add_token is set and no RequestToken argument is present, a fresh one
 * (32 random hex chars) is added and copied into @token (may be NULL).
 * @out is reset first.
 * Errors: YH_EINVAL (missing '=', empty key, duplicate key) with @errmsg
 * (YH_ERRMSG_SIZE), YH_ENOMEM, YH_EINTERNAL (no randomness). */
int api_cli_build_request(int argc,
                          char *const argv[],
                          int add_token,
                          struct yh_buf *out,
                          char token[API_CLI_TOKEN_SIZE],
                          char *errmsg);

/* 32 random hex chars. Errors: YH_EINTERNAL. */
int api_cli_random_token(char token[API_CLI_TOKEN_SIZE]);

/* Decode one msgpack object from @p/@len into @u (init'ed by the caller,
 * destroy with msgpack_unpacked_destroy). The object does not borrow from
 * @p: it lives in @u's zone. Returns the object or NULL. */
const msgpack_object *api_cli_unpack(msgpack_unpacked *u,
                                     const uint8_t *p,
                                     size_t len);

/* Render a result map for people: top-level scalars as "Key: value" lines
 * (RetCode and Action omitted, Message only when not empty), arrays of maps
 * (Infos, Nodes, ...) as aligned columns under "Key:", arrays of scalars as
 * a comma-separated list, nested maps as compact JSON. */
void api_cli_render_table(FILE *out, const msgpack_object *result);

/* Render @o as JSON (bin and invalid UTF-8 as lower-case hex).
 * @compact: one line. Errors: YH_ENOMEM. */
int api_cli_print_json(FILE *out, const msgpack_object *o, int compact);
/* The same into a malloc'ed NUL-terminated string (free with free()), or
 * NULL on memory failure. */
char *api_cli_json_string(const msgpack_object *o, int compact);

/* Text of a scalar (str, int, bool, ...) for a table cell or a "Key: value"
 * line: appended to @out. Nested values become compact JSON. */
int api_cli_cell_text(struct yh_buf *out, const msgpack_object *o);

/* Read "public_key = X" / "private_key = Y" / "endpoint = Z" lines of a
 * config file (# comments, blank lines allowed). Fields not present are
 * left untouched. Returns 0, YH_ENOTFOUND if the file does not exist,
 * YH_EINVAL (with @errmsg) for a malformed line or an over-long value. */
int api_cli_read_config(const char *path,
                        char public_key[API_CLI_KEY_SIZE],
                        char private_key[API_CLI_KEY_SIZE],
                        char endpoint[1024],
                        char *errmsg);

/* Parse "PUBLIC PRIVATE" (one line, as in a cluster's admin.key).
 * Errors: YH_ENOTFOUND, YH_EINVAL with @errmsg. */
int api_cli_read_keyfile(const char *path,
                         char public_key[API_CLI_KEY_SIZE],
                         char private_key[API_CLI_KEY_SIZE],
                         char *errmsg);

/* Credentials and endpoints for a call: @endpoint_opt (--endpoint, may be
 * NULL), else $YUNHAN_ENDPOINT, else the config file's endpoint, else
 * 127.0.0.1:7401. Keys from $YUNHAN_PUBLIC_KEY/$YUNHAN_PRIVATE_KEY, else
 * the config file ($YUNHAN_CONFIG, default ~/.config/yunhan/config).
 * Empty keys = anonymous.
 * Errors: YH_EINVAL (bad config file, a key without its pair) with
 * @errmsg. */
struct api_cli_creds
{
    char public_key[API_CLI_KEY_SIZE];  /* "" = anonymous */
    char private_key[API_CLI_KEY_SIZE]; /* "" = anonymous */
    char endpoint[1024];                /* "h:p,h:p" */
};
#define API_CLI_DEFAULT_ENDPOINT "127.0.0.1:7401"
int api_cli_load_creds(const char *endpoint_opt,
                       struct api_cli_creds *c,
                       char *errmsg);

/* 1 if @action changes state (fsm write actions and the cluster membership
 * actions): the CLI adds a RequestToken. */
int api_cli_action_mutates(const char *action);

/* Sub-commands: argv[0] is the sub-command name ("cluster", "bench",
 * "replay"); return the process exit code. */
int api_cli_cluster_main(int argc, char *argv[]);
int api_cli_bench_main(int argc, char *argv[]);
int api_cli_replay_main(int argc, char *argv[]);

/* Usage text of each sub-command. */
void api_cli_cluster_usage(FILE *out);
void api_cli_bench_usage(FILE *out);
void api_cli_replay_usage(FILE *out);

#endif
