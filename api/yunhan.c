/* yunhan: the command-line client.
 *
 *   yunhan [options] <Action> Key=Value ...   call any API action
 *   yunhan cluster up|down|status|kill|start|add|remove ...
 *   yunhan bench ...
 *   yunhan replay ...
 *
 * Exit codes: 0 ok, 1 error answer, 2 usage, 3 outcome unknown, 4 no
 * endpoint reachable.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../fsm/base/buf.h"
#include "../fsm/base/err.h"
#include "../fsm/base/mp.h"
#include "../fsm/fsm.h"
#include "client/cli.h"
#include "client/client.h"
#include "wire/frame.h"

#define DEFAULT_ENDPOINT API_CLI_DEFAULT_ENDPOINT

struct opts
{
    const char *endpoint; /* --endpoint, NULL = env/config/default */
    int json;             /* --json */
    int timeout_s;        /* --timeout, 0 = defaults */
    int wait;             /* --wait */
    long count;           /* --count (Watch), 0 = forever */
};

static void usage(FILE *out)
{
    const char *const *names = fsm_action_names();
    int col = 0;

    fprintf(
        out,
        "usage: yunhan [options] <Action> [Key=Value ...]\n"
        "       yunhan cluster <up|down|status|kill|start|add|remove> "
        "...\n"
        "       yunhan bench [options]\n"
        "       yunhan replay --data-dir DIR [--to INDEX|TIME] [--dump FILE]\n"
        "       yunhan audit --data-dir DIR [--from-index N] [--user ID]\n"
        "                    [--action NAME] [--json]\n"
        "       yunhan --help\n"
        "\n"
        "Call an API action. Values are sent as strings; lists as\n"
        "Key.0=a Key.1=b. Mutating actions get a fresh RequestToken\n"
        "(unless RequestToken=... is given) and are retried with it when\n"
        "the outcome is unknown.\n"
        "\n"
        "options:\n"
        "  --endpoint H:P[,H:P...]  nodes to try in turn (default\n"
        "                           $YUNHAN_ENDPOINT, then the config "
        "file,\n"
        "                           then " DEFAULT_ENDPOINT
        ")\n"
        "  --json                   print the result as JSON\n"
        "  --timeout S              give up after S seconds (default "
        "15)\n"
        "  --wait                   if the result has a JobID, wait for "
        "the job\n"
        "  --count K                Watch: stop after K events\n"
        "\n"
        "credentials: $YUNHAN_PUBLIC_KEY and $YUNHAN_PRIVATE_KEY, or\n"
        "~/.config/yunhan/config ($YUNHAN_CONFIG) with lines\n"
        "'public_key = ...', 'private_key = ...', 'endpoint = ...'.\n"
        "Without keys calls are anonymous (DescribeCluster, "
        "LoginByPassword).\n"
        "\n"
        "exit codes: 0 ok, 1 error answer, 2 usage, 3 outcome unknown,\n"
        "4 no endpoint reachable.\n\n");
    api_cli_cluster_usage(out);
    fprintf(out, "\n");
    api_cli_bench_usage(out);
    fprintf(out, "\n");
    api_cli_replay_usage(out);
    fprintf(out, "\nactions:\n ");
    for (; names != NULL && *names != NULL; names++) {
        int n = (int)strlen(*names) + 1;
        if (col + n > 76) {
            fprintf(out, "\n ");
            col = 0;
        }
        fprintf(out, " %s", *names);
        col += n;
    }
    fprintf(out, "\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "yunhan: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see yunhan --help)\n");
    return API_CLI_EXIT_USAGE;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Parse one option at argv[*i]; 1 if it was one, 0 if not, -1 usage
 * error (already reported). */
static int parse_opt(int argc, char *argv[], int *i, struct opts *o)
{
    const char *a = argv[*i];
    const char *val = NULL;
    const char *eq;
    char name[32];
    long v;

    if (strncmp(a, "--", 2) != 0) {
        return 0;
    }
    eq = strchr(a, '=');
    if (eq != NULL) {
        snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
        val = eq + 1;
    } else {
        snprintf(name, sizeof(name), "%s", a);
    }
    if (strcmp(name, "--json") == 0 || strcmp(name, "--wait") == 0) {
        if (val != NULL) {
            usage_error("option %s takes no value", name);
            return -1;
        }
        if (name[2] == 'j') {
            o->json = 1;
        } else {
            o->wait = 1;
        }
        return 1;
    }
    if (strcmp(name, "--endpoint") != 0 && strcmp(name, "--timeout") != 0 &&
        strcmp(name, "--count") != 0) {
        usage_error("unknown option '%s'", a);
        return -1;
    }
    if (val == NULL) {
        if (*i + 1 >= argc) {
            usage_error("option %s needs a value", name);
            return -1;
        }
        val = argv[++*i];
    }
    if (strcmp(name, "--endpoint") == 0) {
        o->endpoint = val;
    } else if (strcmp(name, "--timeout") == 0) {
        if (parse_long(val, 1, 86400, &v) != 0) {
            usage_error("bad --timeout '%s' (seconds, 1..86400)", val);
            return -1;
        }
        o->timeout_s = (int)v;
    } else {
        if (parse_long(val, 1, 1000000000, &v) != 0) {
            usage_error("bad --count '%s'", val);
            return -1;
        }
        o->count = v;
    }
    return 1;
}

/* Message of an error map. */
static void print_error(const msgpack_object *res, int retcode)
{
    const msgpack_object *m = yh_mp_get(res, "Message");
    struct yh_buf b = YH_BUF_INIT;

    if (m != NULL) {
        api_cli_cell_text(&b, m);
    }
    if (b.len == 0) {
        yh_buf_printf(&b, "%s", yh_strerror(retcode));
    }
    fprintf(stderr, "error %d: %.*s\n", retcode, (int)b.len, (char *)b.data);
    yh_buf_release(&b);
}

static int exit_for_call_rc(int rc, const char *errmsg)
{
    switch (rc) {
    case YH_EUNKNOWN:
        fprintf(stderr, "error %d: %s\n", YH_EUNKNOWN, errmsg);
        return API_CLI_EXIT_UNKNOWN;
    case YH_EUNAVAIL:
        fprintf(stderr, "error: %s\n", errmsg);
        return API_CLI_EXIT_UNREACH;
    case YH_EINVAL:
        fprintf(stderr, "yunhan: %s\n", errmsg);
        return API_CLI_EXIT_USAGE;
    default:
        fprintf(stderr, "error: %s\n", errmsg);
        return API_CLI_EXIT_ERROR;
    }
}

/* ---- --wait ---------------------------------------------------------- */

static int job_state_final(const char *s, size_t n, int *failed)
{
    static const char *const ok[] = {"succeeded", "success",   "done",
                                     "finished",  "completed", NULL};
    static const char *const bad[] = {"failed",    "error",   "canceled",
                                      "cancelled", "aborted", NULL};

    for (int i = 0; ok[i] != NULL; i++) {
        if (strlen(ok[i]) == n && strncasecmp(s, ok[i], n) == 0) {
            *failed = 0;
            return 1;
        }
    }
    for (int i = 0; bad[i] != NULL; i++) {
        if (strlen(bad[i]) == n && strncasecmp(s, bad[i], n) == 0) {
            *failed = 1;
            return 1;
        }
    }
    return 0;
}

/* Poll DescribeJob until the job reaches a final state; progress on
 * stderr. Returns an exit code; the final job record is printed. */
static int wait_job(struct api_client *cl,
                    const struct opts *o,
                    const char *job_id)
{
    char arg[256];
    char *argv[1] = {arg};
    struct yh_buf req = YH_BUF_INIT, res = YH_BUF_INIT, last = YH_BUF_INIT;
    char errmsg[YH_ERRMSG_SIZE];
    int64_t deadline = o->timeout_s > 0
                           ? api_client_now_ms() + o->timeout_s * 1000LL
                           : INT64_MAX;
    int ret = API_CLI_EXIT_ERROR;

    snprintf(arg, sizeof(arg), "JobIDs.0=%s", job_id);
    if (api_cli_build_request(1, argv, 0, &req, NULL, errmsg) != 0) {
        fprintf(stderr, "yunhan: %s\n", errmsg);
        return API_CLI_EXIT_ERROR;
    }
    for (;;) {
        msgpack_unpacked u;
        const msgpack_object *r, *infos, *state;
        int rc, retcode, failed = 0, done = 0;

        rc = api_client_call_flags(cl, "DescribeJob", req.data, req.len,
                                   API_CLIENT_F_IDEMPOTENT, &res, errmsg);
        if (rc != 0) {
            ret = exit_for_call_rc(rc, errmsg);
            break;
        }
        msgpack_unpacked_init(&u);
        r = api_cli_unpack(&u, res.data, res.len);
        retcode = api_frame_result_retcode(res.data, res.len);
        if (r == NULL || retcode != 0) {
            if (r != NULL) {
                print_error(r, retcode);
            }
            msgpack_unpacked_destroy(&u);
            break;
        }
        infos = yh_mp_get(r, "Infos");
        state = infos != NULL && infos->type == MSGPACK_OBJECT_ARRAY &&
                        infos->via.array.size > 0
                    ? yh_mp_get(&infos->via.array.ptr[0], "State")
                    : NULL;
        if (state == NULL || state->type != MSGPACK_OBJECT_STR) {
            fprintf(stderr, "yunhan: job %s: no State in DescribeJob\n",
                    job_id);
            msgpack_unpacked_destroy(&u);
            break;
        }
        if (last.len != state->via.str.size ||
            memcmp(last.data, state->via.str.ptr, last.len) != 0) {
            const msgpack_object *pr =
                yh_mp_get(&infos->via.array.ptr[0], "Progress");
            struct yh_buf pb = YH_BUF_INIT;
            if (pr != NULL) {
                api_cli_cell_text(&pb, pr);
            }
            fprintf(stderr, "job %s: %.*s%s%.*s\n", job_id,
                    (int)state->via.str.size, state->via.str.ptr,
                    pb.len > 0 ? " " : "", (int)pb.len, (char *)pb.data);
            yh_buf_release(&pb);
            yh_buf_reset(&last);
            yh_buf_append(&last, state->via.str.ptr, state->via.str.size);
        }
        if (job_state_final(state->via.str.ptr, state->via.str.size, &failed)) {
            if (o->json) {
                api_cli_print_json(stdout, &infos->via.array.ptr[0], 0);
            } else {
                api_cli_render_table(stdout, &infos->via.array.ptr[0]);
            }
            ret = failed ? API_CLI_EXIT_ERROR : API_CLI_EXIT_OK;
            done = 1;
        }
        msgpack_unpacked_destroy(&u);
        if (done) {
            break;
        }
        if (api_client_now_ms() > deadline) {
            fprintf(stderr, "yunhan: job %s still running after %d s\n", job_id,
                    o->timeout_s);
            break;
        }
        usleep(500 * 1000);
    }
    yh_buf_release(&req);
    yh_buf_release(&res);
    yh_buf_release(&last);
    return ret;
}

/* ---- Watch ----------------------------------------------------------- */

struct watch_ctx
{
    const struct opts *o;
    uint64_t next_index; /* FromIndex to resume from */
    long n_events;       /* delivered so far */
};

static void print_field(struct yh_buf *b,
                        const msgpack_object *ev,
                        const char *key,
                        const char *label)
{
    const msgpack_object *v = yh_mp_get(ev, key);

    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        return;
    }
    if (v->type == MSGPACK_OBJECT_STR && v->via.str.size == 0) {
        return;
    }
    yh_buf_printf(b, " %s", label);
    api_cli_cell_text(b, v);
}

static int watch_cb(void *arg, int notify, const msgpack_object *obj)
{
    struct watch_ctx *w = arg;
    const msgpack_object *idx;

    if (!notify) {
        return 0; /* the stream's opening response */
    }
    idx = yh_mp_get(obj, "Index");
    if (idx != NULL && idx->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        w->next_index = idx->via.u64 + 1;
    }
    w->n_events++;
    if (w->o->json) {
        api_cli_print_json(stdout, obj, 1);
    } else {
        struct yh_buf b = YH_BUF_INIT;
        print_field(&b, obj, "Index", "#");
        print_field(&b, obj, "Time", "");
        print_field(&b, obj, "Action", "");
        print_field(&b, obj, "UserID", "user=");
        print_field(&b, obj, "TenantID", "tenant=");
        print_field(&b, obj, "Source", "from=");
        print_field(&b, obj, "ResourceID", "resource=");
        print_field(&b, obj, "RequestToken", "token=");
        print_field(&b, obj, "RetCode", "ret=");
        print_field(&b, obj, "Message", "");
        printf("%.*s\n", b.len > 0 ? (int)b.len - 1 : 0,
               b.len > 0 ? (char *)b.data + 1 : "");
        yh_buf_release(&b);
    }
    fflush(stdout);
    return 0;
}

/* Watch with resume: when the connection drops, reconnect (any endpoint)
 * and continue from the event after the last one printed. */
static int run_watch(struct api_client *cl,
                     const struct opts *o,
                     int argc,
                     char *argv[])
{
    struct watch_ctx w = {o, 0, 0};
    struct yh_buf req = YH_BUF_INIT, res = YH_BUF_INIT;
    char errmsg[YH_ERRMSG_SIZE];
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    char from[64];
    int ret = API_CLI_EXIT_ERROR;
    int from_pos = -1;

    if (args == NULL) {
        return API_CLI_EXIT_ERROR;
    }
    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
        if (strncmp(argv[i], "FromIndex=", 10) == 0) {
            from_pos = i;
        }
    }
    for (;;) {
        int n = argc;
        int rc;

        if (w.next_index > 0) {
            snprintf(from, sizeof(from), "FromIndex=%" PRIu64, w.next_index);
            if (from_pos >= 0) {
                args[from_pos] = from;
            } else {
                args[n++] = from;
            }
        }
        rc = api_cli_build_request(n, args, 0, &req, NULL, errmsg);
        if (rc != 0) {
            ret = exit_for_call_rc(rc, errmsg);
            break;
        }
        rc = api_client_stream(
            cl, "Watch", req.data, req.len,
            o->count > 0 ? (unsigned)(o->count - w.n_events) : 0, -1, watch_cb,
            &w, &res, errmsg);
        if (rc == YH_EIO && (o->count == 0 || w.n_events < o->count)) {
            fprintf(stderr, "yunhan: watch: %s; reconnecting\n", errmsg);
            usleep(200 * 1000);
            continue;
        }
        if (rc != 0) {
            ret = exit_for_call_rc(rc, errmsg);
            break;
        }
        rc = api_frame_result_retcode(res.data, res.len);
        if (rc != 0) {
            msgpack_unpacked u;
            const msgpack_object *r;
            msgpack_unpacked_init(&u);
            r = api_cli_unpack(&u, res.data, res.len);
            if (r != NULL) {
                print_error(r, rc);
            }
            msgpack_unpacked_destroy(&u);
            ret = rc == YH_EUNKNOWN ? API_CLI_EXIT_UNKNOWN : API_CLI_EXIT_ERROR;
            break;
        }
        ret = API_CLI_EXIT_OK;
        break;
    }
    free(args);
    yh_buf_release(&req);
    yh_buf_release(&res);
    return ret;
}

/* ---- one call -------------------------------------------------------- */

static int valid_action(const char *a)
{
    if (!isupper((unsigned char)a[0])) {
        return 0;
    }
    for (const char *p = a; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p)) {
            return 0;
        }
    }
    return strlen(a) < 64;
}

static int run_action(const struct opts *o,
                      const char *action,
                      int argc,
                      char *argv[])
{
    struct api_cli_creds cr;
    struct api_client_config cfg;
    struct api_client *cl = NULL;
    struct yh_buf req = YH_BUF_INIT, res = YH_BUF_INIT;
    char errmsg[YH_ERRMSG_SIZE];
    char token[API_CLI_TOKEN_SIZE] = "";
    enum fsm_action_kind kind = fsm_action_kind(action, NULL);
    unsigned flags = 0;
    msgpack_unpacked u;
    const msgpack_object *r;
    int rc, retcode, ret;

    if (api_cli_load_creds(o->endpoint, &cr, errmsg) != 0) {
        fprintf(stderr, "yunhan: %s\n", errmsg);
        return API_CLI_EXIT_USAGE;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.endpoints = cr.endpoint;
    cfg.public_key = cr.public_key[0] != '\0' ? cr.public_key : NULL;
    cfg.private_key = cr.private_key[0] != '\0' ? cr.private_key : NULL;
    cfg.timeout_ms = o->timeout_s * 1000;
    cfg.deadline_ms = o->timeout_s * 1000;
    rc = api_client_new(&cl, &cfg, errmsg);
    if (rc != 0) {
        fprintf(stderr, "yunhan: %s\n", errmsg);
        return API_CLI_EXIT_USAGE;
    }
    if (strcmp(action, "Watch") == 0) {
        ret = run_watch(cl, o, argc, argv);
        api_client_free(cl);
        return ret;
    }
    rc = api_cli_build_request(argc, argv, api_cli_action_mutates(action), &req,
                               token, errmsg);
    if (rc != 0) {
        ret = rc == YH_EINVAL ? usage_error("%s", errmsg) : API_CLI_EXIT_ERROR;
        goto out;
    }
    if (kind == FSM_ACT_READ || strcmp(action, "DescribeCluster") == 0) {
        flags |= API_CLIENT_F_IDEMPOTENT;
    }
    rc = api_client_call_flags(cl, action, req.data, req.len, flags, &res,
                               errmsg);
    if (rc != 0) {
        ret = exit_for_call_rc(rc, errmsg);
        if (rc == YH_EUNKNOWN && token[0] != '\0') {
            fprintf(stderr, "retry with RequestToken=%s\n", token);
        }
        goto out;
    }
    msgpack_unpacked_init(&u);
    r = api_cli_unpack(&u, res.data, res.len);
    retcode = api_frame_result_retcode(res.data, res.len);
    if (r == NULL) {
        fprintf(stderr, "error: undecodable answer\n");
        ret = API_CLI_EXIT_ERROR;
    } else if (retcode != 0) {
        if (o->json) {
            api_cli_print_json(stdout, r, 0);
        }
        print_error(r, retcode);
        if (retcode == YH_EUNKNOWN && token[0] != '\0') {
            fprintf(stderr, "retry with RequestToken=%s\n", token);
        }
        ret =
            retcode == YH_EUNKNOWN ? API_CLI_EXIT_UNKNOWN : API_CLI_EXIT_ERROR;
    } else {
        const msgpack_object *job = yh_mp_get(r, "JobID");
        if (o->json) {
            api_cli_print_json(stdout, r, 0);
        } else {
            api_cli_render_table(stdout, r);
        }
        ret = API_CLI_EXIT_OK;
        if (o->wait && job != NULL && job->type == MSGPACK_OBJECT_STR &&
            job->via.str.size > 0 && job->via.str.size < 200) {
            char id[201];
            memcpy(id, job->via.str.ptr, job->via.str.size);
            id[job->via.str.size] = '\0';
            fflush(stdout);
            ret = wait_job(cl, o, id);
        }
    }
    msgpack_unpacked_destroy(&u);
out:
    yh_buf_release(&req);
    yh_buf_release(&res);
    api_client_free(cl);
    return ret;
}

int main(int argc, char *argv[])
{
    struct opts o;
    int i, n_kv = 0;
    const char *action = NULL;
    char **kv;
    int ret;

    memset(&o, 0, sizeof(o));
    for (i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
            strcmp(argv[i], "help") == 0) {
            usage(stdout);
            return 0;
        }
        r = parse_opt(argc, argv, &i, &o);
        if (r < 0) {
            return API_CLI_EXIT_USAGE;
        }
        if (r == 0) {
            action = argv[i];
            break;
        }
    }
    if (action == NULL) {
        fprintf(stderr,
                "usage: yunhan [options] <Action> [Key=Value ...]\n"
                "       yunhan cluster|bench|replay|audit ...\n"
                "(yunhan --help lists options, commands and actions)\n");
        return API_CLI_EXIT_USAGE;
    }
    /* Sub-commands parse their own options; a global --endpoint reaches
     * them through the environment. */
    if (strcmp(action, "cluster") == 0 || strcmp(action, "bench") == 0 ||
        strcmp(action, "replay") == 0 || strcmp(action, "audit") == 0) {
        if (o.endpoint != NULL) {
            setenv("YUNHAN_ENDPOINT", o.endpoint, 1);
        }
        if (action[0] == 'c') {
            return api_cli_cluster_main(argc - i, argv + i);
        }
        if (action[0] == 'b') {
            return api_cli_bench_main(argc - i, argv + i);
        }
        return api_cli_replay_main(argc - i, argv + i);
    }
    if (!valid_action(action)) {
        return usage_error(
            "unknown command '%s' (actions are PascalCase, "
            "e.g. DescribeCluster)",
            action);
    }
    kv = calloc((size_t)argc, sizeof(*kv));
    if (kv == NULL) {
        return API_CLI_EXIT_ERROR;
    }
    for (i++; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(kv);
            return 0;
        }
        r = parse_opt(argc, argv, &i, &o);
        if (r < 0) {
            free(kv);
            return API_CLI_EXIT_USAGE;
        }
        if (r == 0) {
            kv[n_kv++] = argv[i];
        }
    }
    if (o.count > 0 && strcmp(action, "Watch") != 0) {
        free(kv);
        return usage_error("--count is for %s only", "Watch");
    }
    ret = run_action(&o, action, n_kv, kv);
    free(kv);
    return ret;
}
