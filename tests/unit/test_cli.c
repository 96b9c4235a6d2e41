/* CLI pieces and the client's failover rules.
 *
 * Request building, table and JSON rendering, config and key files are
 * plain functions. The client is driven against a scripted in-process
 * server (a thread with a listening socket) that answers each request as a
 * script says: with a RetCode, or by closing the connection after reading
 * it (outcome unknown).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "api/client/cli.h"
#include "api/client/client.h"
#include "api/wire/frame.h"
#include "api/wire/prescan.h"
#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"

static char errmsg[YH_ERRMSG_SIZE];

/* ---- helpers --------------------------------------------------------- */

/* Decode @b into @u; fails the test if it is not one msgpack object. */
static const msgpack_object *unpack(msgpack_unpacked *u, const struct yh_buf *b)
{
    const msgpack_object *o;

    msgpack_unpacked_init(u);
    o = api_cli_unpack(u, b->data, b->len);
    assert_non_null(o);
    return o;
}

static void assert_str_field(const msgpack_object *m,
                             const char *k,
                             const char *want)
{
    char got[256];

    assert_int_equal(yh_mp_strcpy(m, k, got, sizeof(got)), 0);
    assert_string_equal(got, want);
}

/* Render into a string (free with free()). */
static char *render(const msgpack_object *o)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);

    assert_non_null(f);
    api_cli_render_table(f, o);
    fclose(f);
    return s;
}

/* ---- request building ------------------------------------------------ */

static void test_build_request(void **state)
{
    char *argv[] = {"UserIDs.0=u-1", "UserIDs.1=u-2", "Remark=a=b c", "Limit=5",
                    "Name="};
    struct yh_buf b = YH_BUF_INIT;
    msgpack_unpacked u;
    const msgpack_object *o;
    char token[API_CLI_TOKEN_SIZE] = "";

    (void)state;
    assert_int_equal(api_cli_build_request(5, argv, 0, &b, token, errmsg), 0);
    o = unpack(&u, &b);
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o->via.map.size, 5);
    /* keys exactly as written, every value a string */
    assert_str_field(o, "UserIDs.0", "u-1");
    assert_str_field(o, "UserIDs.1", "u-2");
    assert_str_field(o, "Remark", "a=b c");
    assert_int_equal(yh_mp_get(o, "Limit")->type, MSGPACK_OBJECT_STR);
    assert_str_field(o, "Limit", "5");
    assert_str_field(o, "Name", "");
    assert_null(yh_mp_get(o, "RequestToken"));
    assert_string_equal(token, "");
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
}

static void test_build_request_token(void **state)
{
    char *argv[] = {"UserEmail=a@b"};
    char *argv_tok[] = {"RequestToken=mine", "UserEmail=a@b"};
    struct yh_buf b = YH_BUF_INIT;
    msgpack_unpacked u;
    const msgpack_object *o;
    char token[API_CLI_TOKEN_SIZE] = "", token2[API_CLI_TOKEN_SIZE] = "";

    (void)state;
    assert_int_equal(api_cli_build_request(1, argv, 1, &b, token, errmsg), 0);
    o = unpack(&u, &b);
    assert_int_equal(o->via.map.size, 2);
    assert_int_equal(strlen(token), 32);
    for (int i = 0; i < 32; i++) {
        assert_non_null(strchr("0123456789abcdef", token[i]));
    }
    assert_str_field(o, "RequestToken", token);
    msgpack_unpacked_destroy(&u);

    /* fresh each time */
    assert_int_equal(api_cli_build_request(1, argv, 1, &b, token2, errmsg), 0);
    assert_string_not_equal(token, token2);

    /* the user's token wins */
    assert_int_equal(api_cli_build_request(2, argv_tok, 1, &b, token, errmsg),
                     0);
    o = unpack(&u, &b);
    assert_int_equal(o->via.map.size, 2);
    assert_str_field(o, "RequestToken", "mine");
    assert_string_equal(token, "mine");
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
}

static void test_build_request_errors(void **state)
{
    char *no_eq[] = {"UserEmail"};
    char *empty_key[] = {"=x"};
    char *dup[] = {"A=1", "B=2", "A=3"};
    char *prefix[] = {"A=1", "AB=2"};
    struct yh_buf b = YH_BUF_INIT;

    (void)state;
    assert_int_equal(api_cli_build_request(1, no_eq, 0, &b, NULL, errmsg),
                     YH_EINVAL);
    assert_non_null(strstr(errmsg, "Key=Value"));
    assert_int_equal(api_cli_build_request(1, empty_key, 0, &b, NULL, errmsg),
                     YH_EINVAL);
    assert_int_equal(api_cli_build_request(3, dup, 0, &b, NULL, errmsg),
                     YH_EINVAL);
    assert_non_null(strstr(errmsg, "'A' given twice"));
    /* a key that is a prefix of another is not a duplicate */
    assert_int_equal(api_cli_build_request(2, prefix, 0, &b, NULL, errmsg), 0);
    /* no arguments: an empty map */
    assert_int_equal(api_cli_build_request(0, NULL, 0, &b, NULL, errmsg), 0);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 0x80);
    yh_buf_release(&b);
}

static void test_action_mutates(void **state)
{
    (void)state;
    assert_true(api_cli_action_mutates("CreateUser"));
    assert_true(api_cli_action_mutates("ModifyNameAndRemark"));
    assert_true(api_cli_action_mutates("AddNode"));
    assert_true(api_cli_action_mutates("RemoveNode"));
    assert_true(api_cli_action_mutates("TransferLeader"));
    assert_false(api_cli_action_mutates("DescribeUser"));
    assert_false(api_cli_action_mutates("DescribeCluster"));
    assert_false(api_cli_action_mutates("Watch"));
    assert_false(api_cli_action_mutates("NoSuchAction"));
}

static void test_parse_endpoints(void **state)
{
    char eps[4][128];

    (void)state;
    assert_int_equal(
        api_client_parse_endpoints("127.0.0.1:7401", eps, 4, errmsg), 1);
    assert_string_equal(eps[0], "127.0.0.1:7401");
    assert_int_equal(
        api_client_parse_endpoints("a:1, b:2 ,[::1]:3,", eps, 4, errmsg), 3);
    assert_string_equal(eps[1], "b:2");
    assert_string_equal(eps[2], "[::1]:3");
    assert_int_equal(api_client_parse_endpoints("", eps, 4, errmsg), -1);
    assert_int_equal(api_client_parse_endpoints("host", eps, 4, errmsg), -1);
    assert_int_equal(api_client_parse_endpoints("host:", eps, 4, errmsg), -1);
    assert_int_equal(api_client_parse_endpoints("h:7x", eps, 4, errmsg), -1);
    assert_int_equal(
        api_client_parse_endpoints("a:1,b:2,c:3,d:4,e:5", eps, 4, errmsg), -1);
    assert_non_null(strstr(errmsg, "too many"));
}

/* ---- rendering ------------------------------------------------------- */

/* {"RetCode":0,"Action":"DescribeUserResponse","Message":"",
 *  "TotalCount":2,"Infos":[{"UserID":"u-1","Name":"alice","State":
 *  "Active"},{"UserID":"u-22","Name":"b","Remark":"x\ny"}]} */
static void pack_describe(struct yh_buf *b)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 5);
    yh_mp_pack_kv_int(&pk, "RetCode", 0);
    yh_mp_pack_kv_str(&pk, "Action", "DescribeUserResponse");
    yh_mp_pack_kv_str(&pk, "Message", "");
    yh_mp_pack_kv_int(&pk, "TotalCount", 2);
    yh_mp_pack_str(&pk, "Infos");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 3);
    yh_mp_pack_kv_str(&pk, "UserID", "u-1");
    yh_mp_pack_kv_str(&pk, "Name", "alice");
    yh_mp_pack_kv_str(&pk, "State", "Active");
    msgpack_pack_map(&pk, 3);
    yh_mp_pack_kv_str(&pk, "UserID", "u-22");
    yh_mp_pack_kv_str(&pk, "Name", "b");
    yh_mp_pack_kv_str(&pk, "Remark", "x\ny");
}

static void test_render_table(void **state)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_unpacked u;
    char *s;

    (void)state;
    pack_describe(&b);
    s = render(unpack(&u, &b));
    /* RetCode, Action and the empty Message are left out; columns are the
     * union of the rows' keys, aligned; missing cells are "-"; control
     * characters do not break lines. */
    assert_string_equal(s,
                        "TotalCount: 2\n"
                        "Infos:\n"
                        "  UserID  Name   State   Remark\n"
                        "  u-1     alice  Active  -\n"
                        "  u-22    b      -       x?y\n");
    free(s);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
}

static void test_render_scalars(void **state)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk;
    msgpack_unpacked u;
    char *s;
    char long_str[100];

    (void)state;
    memset(long_str, 'z', 99);
    long_str[99] = '\0';
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 8);
    yh_mp_pack_kv_str(&pk, "Message", "hello");
    yh_mp_pack_kv_int(&pk, "Neg", -3);
    yh_mp_pack_str(&pk, "Ok");
    msgpack_pack_true(&pk);
    yh_mp_pack_str(&pk, "Bin");
    msgpack_pack_bin_with_body(&pk, "\x01\xab", 2);
    yh_mp_pack_str(&pk, "List");
    msgpack_pack_array(&pk, 2);
    yh_mp_pack_str(&pk, "a");
    msgpack_pack_uint64(&pk, 7);
    yh_mp_pack_str(&pk, "Empty");
    msgpack_pack_array(&pk, 0);
    yh_mp_pack_str(&pk, "Map");
    msgpack_pack_map(&pk, 1);
    yh_mp_pack_kv_int(&pk, "k", 1);
    yh_mp_pack_str(&pk, "Rows");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 1);
    yh_mp_pack_kv_str(&pk, "Long", long_str);
    s = render(unpack(&u, &b));
    /* long cells are cut to 60 characters */
    assert_string_equal(s,
                        "Message: hello\n"
                        "Neg: -3\n"
                        "Ok: true\n"
                        "Bin: 01ab\n"
                        "List: a, 7\n"
                        "Empty: (none)\n"
                        "Map: {\"k\":1}\n"
                        "Rows:\n"
                        "  Long\n"
                        "  zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
                        "zzzzzzz...\n");
    free(s);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
}

static void test_json(void **state)
{
    struct yh_buf b = YH_BUF_INIT;
    msgpack_packer pk;
    msgpack_unpacked u;
    char *s;

    (void)state;
    msgpack_packer_init(&pk, &b, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 6);
    yh_mp_pack_kv_int(&pk, "RetCode", 0);
    yh_mp_pack_str(&pk, "Digest");
    msgpack_pack_bin_with_body(&pk, "\xde\xad", 2);
    yh_mp_pack_str(&pk, "Bad");
    msgpack_pack_str_with_body(&pk, "\xff", 1); /* not UTF-8 */
    yh_mp_pack_str(&pk, "Nil");
    msgpack_pack_nil(&pk);
    yh_mp_pack_str(&pk, "L");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_false(&pk);
    msgpack_pack_uint64(&pk, 1);
    yh_mp_pack_str(&pk, "intkey");
    s = api_cli_json_string(unpack(&u, &b), 1);
    assert_non_null(s);
    assert_string_equal(s,
                        "{\"RetCode\":0,\"Digest\":\"dead\",\"Bad\":\"ff\","
                        "\"Nil\":null,\"L\":[1.5,false],\"1\":\"intkey\"}");
    free(s);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&b);
}

/* ---- config files ---------------------------------------------------- */

static void write_tmp(char *path, const char *content)
{
    int fd;

    snprintf(path, 64, "/tmp/yh-test-cli.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)),
                     (ssize_t)strlen(content));
    close(fd);
}

static void test_config_file(void **state)
{
    char path[64];
    char pub[API_CLI_KEY_SIZE] = "", priv[API_CLI_KEY_SIZE] = "";
    char ep[1024] = "keep";

    (void)state;
    write_tmp(path,
              "# yunhan\n\n  public_key = PUB1  \n"
              "private_key=PRIV1\n");
    assert_int_equal(api_cli_read_config(path, pub, priv, ep, errmsg), 0);
    assert_string_equal(pub, "PUB1");
    assert_string_equal(priv, "PRIV1");
    assert_string_equal(ep, "keep");
    unlink(path);

    write_tmp(path, "public_key = A\nbogus line\n");
    assert_int_equal(api_cli_read_config(path, pub, priv, ep, errmsg),
                     YH_EINVAL);
    assert_non_null(strstr(errmsg, ":2:"));
    unlink(path);

    write_tmp(path, "colour = blue\n");
    assert_int_equal(api_cli_read_config(path, pub, priv, ep, errmsg),
                     YH_EINVAL);
    assert_non_null(strstr(errmsg, "unknown key"));
    unlink(path);

    assert_int_equal(
        api_cli_read_config("/nonexistent/yh/config", pub, priv, ep, errmsg),
        YH_ENOTFOUND);
}

static void test_keyfile(void **state)
{
    char path[64];
    char pub[API_CLI_KEY_SIZE], priv[API_CLI_KEY_SIZE];

    (void)state;
    write_tmp(path, "abc123 def456\n");
    assert_int_equal(api_cli_read_keyfile(path, pub, priv, errmsg), 0);
    assert_string_equal(pub, "abc123");
    assert_string_equal(priv, "def456");
    unlink(path);
    write_tmp(path, "onlyone\n");
    assert_int_equal(api_cli_read_keyfile(path, pub, priv, errmsg), YH_EINVAL);
    unlink(path);
}

/* ---- client against a scripted server -------------------------------- */

enum step {
    STEP_ANSWER_OK,  /* answer RetCode 0 */
    STEP_ANSWER_191, /* answer "no leader" */
    STEP_ANSWER_190, /* answer "outcome unknown" */
    STEP_DROP,       /* close the connection without answering */
};

struct fake
{
    int lfd; /* listening socket */
    int port;
    const enum step *script; /* one step per request received */
    int n_steps;
    int n_requests;      /* requests received */
    int n_conns;         /* connections accepted */
    char last_token[64]; /* RequestToken of the last request */
    int signed_ok;       /* last request carried an auth map */
    pthread_t thread;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;

    for (;;) {
        struct api_frame_reader rd;
        int fd = accept(f->lfd, NULL, NULL);
        int open = 1;

        if (fd < 0) {
            return NULL; /* listening socket shut down: test over */
        }
        f->n_conns++;
        api_frame_reader_init(&rd, API_MAX_MESSAGE, API_MAX_DEPTH);
        while (open) {
            uint8_t buf[4096];
            ssize_t r = read(fd, buf, sizeof(buf));
            const uint8_t *p;
            size_t n;
            char em[YH_ERRMSG_SIZE];

            if (r <= 0) {
                break;
            }
            api_frame_reader_feed(&rd, buf, (size_t)r);
            while (open &&
                   api_frame_reader_next(&rd, &p, &n, em, sizeof(em)) == 0) {
                msgpack_zone zone;
                struct api_msg m;
                int known;
                struct yh_buf out = YH_BUF_INIT;
                enum step s;

                msgpack_zone_init(&zone, 1024);
                if (api_frame_decode(p, n, &zone, &m, &known, em, sizeof(em)) !=
                    0) {
                    msgpack_zone_destroy(&zone);
                    open = 0;
                    break;
                }
                f->last_token[0] = '\0';
                yh_mp_strcpy(m.request, "RequestToken", f->last_token,
                             sizeof(f->last_token));
                f->signed_ok =
                    m.auth != NULL && yh_mp_get(m.auth, "Signature") != NULL;
                s = f->n_requests < f->n_steps ? f->script[f->n_requests]
                                               : STEP_ANSWER_OK;
                f->n_requests++;
                if (s == STEP_DROP) {
                    open = 0;
                } else if (s == STEP_ANSWER_OK) {
                    msgpack_packer pk;
                    struct yh_buf res = YH_BUF_INIT;
                    msgpack_packer_init(&pk, &res, yh_buf_msgpack_write);
                    msgpack_pack_map(&pk, 4);
                    yh_mp_pack_kv_int(&pk, "RetCode", 0);
                    yh_mp_pack_kv_str(&pk, "Action", "XResponse");
                    yh_mp_pack_kv_str(&pk, "Message", "");
                    yh_mp_pack_kv_int(&pk, "Served", f->n_requests);
                    api_frame_pack_result(&out, m.msgid, res.data, res.len);
                    yh_buf_release(&res);
                } else {
                    api_frame_pack_error(
                        &out, m.msgid,
                        s == STEP_ANSWER_191 ? YH_EUNAVAIL : YH_EUNKNOWN,
                        "scripted", "XResponse");
                }
                if (out.len > 0 &&
                    write(fd, out.data, out.len) != (ssize_t)out.len) {
                    open = 0;
                }
                yh_buf_release(&out);
                msgpack_zone_destroy(&zone);
            }
        }
        api_frame_reader_release(&rd);
        close(fd);
    }
}

static void fake_start(struct fake *f, const enum step *script, int n)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int one = 1;

    memset(f, 0, sizeof(*f));
    f->script = script;
    f->n_steps = n;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    close(f->lfd);
    pthread_join(f->thread, NULL);
}

/* A port nobody listens on: bind, read the port, close. */
static int dead_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static struct api_client *client_for(const char *eps, int deadline_ms)
{
    struct api_client_config cfg = {eps, "pub", "priv", 2000, deadline_ms};
    struct api_client *c = NULL;

    assert_int_equal(api_client_new(&c, &cfg, errmsg), 0);
    return c;
}

static int do_call(struct api_client *c,
                   int with_token,
                   unsigned flags,
                   struct yh_buf *res)
{
    char *argv[] = {"RequestToken=tok-1", "A=1"};

    struct yh_buf req = YH_BUF_INIT;
    int rc;

    assert_int_equal(
        api_cli_build_request(with_token ? 2 : 1, with_token ? argv : argv + 1,
                              0, &req, NULL, errmsg),
        0);
    rc = api_client_call_flags(c, "CreateUser", req.data, req.len, flags, res,
                               errmsg);
    yh_buf_release(&req);
    return rc;
}

static void test_client_ok_and_reuse(void **state)
{
    struct fake f;
    struct api_client *c;
    struct yh_buf res = YH_BUF_INIT;
    char eps[64];

    (void)state;
    fake_start(&f, NULL, 0);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", f.port);
    c = client_for(eps, 3000);
    assert_int_equal(do_call(c, 0, 0, &res), 0);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), 0);
    assert_true(f.signed_ok);
    assert_int_equal(do_call(c, 0, 0, &res), 0);
    /* one connection for both calls */
    assert_int_equal(f.n_conns, 1);
    assert_int_equal(f.n_requests, 2);
    api_client_free(c);
    fake_stop(&f);
    yh_buf_release(&res);
}

static void test_client_failover_refused(void **state)
{
    struct fake f;
    struct api_client *c;
    struct yh_buf res = YH_BUF_INIT;
    char eps[128];

    (void)state;
    fake_start(&f, NULL, 0);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d,127.0.0.1:%d", dead_port(),
             f.port);
    c = client_for(eps, 3000);
    assert_int_equal(do_call(c, 0, 0, &res), 0);
    assert_int_equal(f.n_requests, 1);
    api_client_free(c);
    fake_stop(&f);

    /* nobody anywhere: YH_EUNAVAIL once the deadline passes */
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", dead_port());
    c = client_for(eps, 400);
    assert_int_equal(do_call(c, 1, 0, &res), YH_EUNAVAIL);
    assert_non_null(strstr(errmsg, "no endpoint reachable"));
    api_client_free(c);
    yh_buf_release(&res);
}

static void test_client_no_leader_retry(void **state)
{
    static const enum step script[] = {STEP_ANSWER_191, STEP_ANSWER_191,
                                       STEP_ANSWER_OK};
    struct fake f;
    struct api_client *c;
    struct yh_buf res = YH_BUF_INIT;
    char eps[64];

    (void)state;
    fake_start(&f, script, 3);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", f.port);
    c = client_for(eps, 5000);
    assert_int_equal(do_call(c, 0, 0, &res), 0);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), 0);
    assert_int_equal(f.n_requests, 3);
    api_client_free(c);
    fake_stop(&f);

    /* past the deadline the 191 answer itself is returned */
    fake_start(&f, script, 2);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", f.port);
    c = client_for(eps, 50);
    assert_int_equal(do_call(c, 0, 0, &res), 0);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), YH_EUNAVAIL);
    api_client_free(c);
    fake_stop(&f);
    yh_buf_release(&res);
}

static void test_client_unknown_outcome(void **state)
{
    static const enum step drop[] = {STEP_DROP};
    static const enum step unknown[] = {STEP_ANSWER_190, STEP_ANSWER_190};
    struct fake f;
    struct api_client *c;
    struct yh_buf res = YH_BUF_INIT;
    char eps[64];

    (void)state;
    /* no token: never resent, the caller learns the outcome is unknown */
    fake_start(&f, drop, 1);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", f.port);
    c = client_for(eps, 3000);
    assert_int_equal(do_call(c, 0, 0, &res), YH_EUNKNOWN);
    assert_int_equal(f.n_requests, 1);
    api_client_free(c);
    fake_stop(&f);

    /* with a token: resent with the same token, answered */
    fake_start(&f, drop, 1);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", f.port);
    c = client_for(eps, 3000);
    assert_int_equal(do_call(c, 1, 0, &res), 0);
    assert_int_equal(f.n_requests, 2);
    assert_string_equal(f.last_token, "tok-1");
    api_client_free(c);
    fake_stop(&f);

    /* idempotent (a read) without a token: resent too */
    fake_start(&f, drop, 1);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", f.port);
    c = client_for(eps, 3000);
    assert_int_equal(do_call(c, 0, API_CLIENT_F_IDEMPOTENT, &res), 0);
    assert_int_equal(f.n_requests, 2);
    api_client_free(c);
    fake_stop(&f);

    /* RetCode 190 without a token goes back to the caller as is */
    fake_start(&f, unknown, 2);
    snprintf(eps, sizeof(eps), "127.0.0.1:%d", f.port);
    c = client_for(eps, 3000);
    assert_int_equal(do_call(c, 0, 0, &res), 0);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), YH_EUNKNOWN);
    assert_int_equal(f.n_requests, 1);
    /* ... and with a token it is retried */
    assert_int_equal(do_call(c, 1, 0, &res), 0);
    assert_int_equal(api_frame_result_retcode(res.data, res.len), 0);
    assert_int_equal(f.n_requests, 3);
    api_client_free(c);
    fake_stop(&f);
    yh_buf_release(&res);
}

static void test_client_bad_request(void **state)
{
    struct api_client *c = client_for("127.0.0.1:1", 100);
    struct yh_buf res = YH_BUF_INIT;
    const uint8_t not_map[] = {0x91, 0x01};
    struct api_client_config half = {"127.0.0.1:1", "pub", NULL, 0, 0};
    struct api_client *c2 = NULL;

    (void)state;
    assert_int_equal(
        api_client_call(c, "X", not_map, sizeof(not_map), &res, errmsg),
        YH_EINVAL);
    api_client_free(c);
    assert_int_equal(api_client_new(&c2, &half, errmsg), YH_EINVAL);
    assert_null(c2);
    yh_buf_release(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_request),
        cmocka_unit_test(test_build_request_token),
        cmocka_unit_test(test_build_request_errors),
        cmocka_unit_test(test_action_mutates),
        cmocka_unit_test(test_parse_endpoints),
        cmocka_unit_test(test_render_table),
        cmocka_unit_test(test_render_scalars),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_keyfile),
        cmocka_unit_test(test_client_ok_and_reuse),
        cmocka_unit_test(test_client_failover_refused),
        cmocka_unit_test(test_client_no_leader_retry),
        cmocka_unit_test(test_client_unknown_outcome),
        cmocka_unit_test(test_client_bad_request),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
