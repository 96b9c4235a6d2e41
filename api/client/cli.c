/* CLI helpers: request building from Key=Value arguments, table and JSON
 * rendering, config files. No I/O besides the FILE given. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../fsm/base/err.h"
#include "../../fsm/base/mp.h"
#include "../../fsm/fsm.h"
#include "../wire/auth.h"

#define CELL_MAX 60 /* table cells are cut to this many characters */

/* Time-ordered, like a UUIDv7: 12 hex digits of unix milliseconds, then 20
 * random ones. The state keeps tokens for a day keyed by (user, token);
 * tokens that grow with time insert at the right edge of that B-tree
 * instead of at random pages, so the pages a node touches per write stay
 * few however many tokens are kept. */
int api_cli_random_token(char token[API_CLI_TOKEN_SIZE])
{
    struct timespec ts;
    uint64_t ms;
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    rc = api_auth_random_hex(10, token + 12);
    if (rc == 0) {
        char head[13];
        snprintf(head, sizeof head, "%012" PRIx64,
                 (uint64_t)(ms & 0xffffffffffffu));
        memcpy(token, head, 12);
    }
    return rc;
}

int api_cli_build_request(int argc,
                          char *const argv[],
                          int add_token,
                          struct yh_buf *out,
                          char token[API_CLI_TOKEN_SIZE],
                          char *errmsg)
{
    msgpack_packer pk;
    char fresh[API_CLI_TOKEN_SIZE];
    int have_token = 0;
    int rc;

    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t klen;

        if (eq == NULL) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "argument '%s' is not Key=Value",
                     argv[i]);
            return YH_EINVAL;
        }
        klen = (size_t)(eq - argv[i]);
        if (klen == 0) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "argument '%s' has an empty key",
                     argv[i]);
            return YH_EINVAL;
        }
        for (int j = 0; j < i; j++) {
            if (strncmp(argv[j], argv[i], klen + 1) == 0) {
                snprintf(errmsg, YH_ERRMSG_SIZE, "key '%.*s' given twice",
                         (int)klen, argv[i]);
                return YH_EINVAL;
            }
        }
        if (klen == strlen("RequestToken") &&
            memcmp(argv[i], "RequestToken", klen) == 0) {
            have_token = 1;
            if (token != NULL) {
                snprintf(token, API_CLI_TOKEN_SIZE, "%s", eq + 1);
            }
        }
    }
    if (add_token && !have_token) {
        rc = api_cli_random_token(fresh);
        if (rc != 0) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "no randomness for a token");
            return rc;
        }
        if (token != NULL) {
            memcpy(token, fresh, sizeof(fresh));
        }
    }
    yh_buf_reset(out);
    msgpack_packer_init(&pk, out, yh_buf_msgpack_write);
    rc = msgpack_pack_map(&pk, (size_t)argc + (add_token && !have_token));
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *eq = strchr(argv[i], '=');
        rc = msgpack_pack_str_with_body(&pk, argv[i], (size_t)(eq - argv[i]));
        if (rc == 0) {
            rc = msgpack_pack_str_with_body(&pk, eq + 1, strlen(eq + 1));
        }
    }
    if (rc == 0 && add_token && !have_token) {
        rc = msgpack_pack_str_with_body(&pk, "RequestToken", 12);
        if (rc == 0) {
            rc = msgpack_pack_str_with_body(&pk, fresh, strlen(fresh));
        }
    }
    if (rc != 0) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "out of memory");
        return YH_ENOMEM;
    }
    return 0;
}

const msgpack_object *api_cli_unpack(msgpack_unpacked *u,
                                     const uint8_t *p,
                                     size_t len)
{
    msgpack_unpacker unp;
    const msgpack_object *ret = NULL;

    if (p == NULL || len == 0) {
        return NULL;
    }
    /* Through an unpacker, which copies the bytes and hands its buffer to
     * the zone of @u: strings in the result then stay valid after the
     * caller reuses or frees @p (msgpack_unpack_next would point into
     * @p). */
    if (!msgpack_unpacker_init(&unp, len)) {
        return NULL;
    }
    if (msgpack_unpacker_reserve_buffer(&unp, len)) {
        memcpy(msgpack_unpacker_buffer(&unp), p, len);
        msgpack_unpacker_buffer_consumed(&unp, len);
        if (msgpack_unpacker_next(&unp, u) == MSGPACK_UNPACK_SUCCESS) {
            ret = &u->data;
        }
    }
    msgpack_unpacker_destroy(&unp);
    return ret;
}

int api_cli_action_mutates(const char *action)
{
    if (strcmp(action, "AddNode") == 0 || strcmp(action, "RemoveNode") == 0 ||
        strcmp(action, "TransferLeader") == 0) {
        return 1;
    }
    return fsm_action_kind(action, NULL) == FSM_ACT_WRITE;
}

/* ---- JSON ------------------------------------------------------------ */

static json_t *hex_json(const void *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    json_t *j;

    if (s == NULL) {
        return NULL;
    }
    yh_hex(p, n, s);
    j = json_string(s);
    free(s);
    return j;
}

static json_t *to_json(const msgpack_object *o)
{
    json_t *j = NULL;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            return json_real((double)o->via.u64);
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        j = json_real(o->via.f64);
        return j != NULL ? j : json_null(); /* NaN/inf have no JSON form */
    case MSGPACK_OBJECT_STR:
        j = json_stringn(o->via.str.ptr, o->via.str.size);
        return j != NULL ? j : hex_json(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return hex_json(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return hex_json(o->via.ext.ptr, o->via.ext.size);
    case MSGPACK_OBJECT_ARRAY:
        j = json_array();
        for (uint32_t i = 0; j != NULL && i < o->via.array.size; i++) {
            json_t *e = to_json(&o->via.array.ptr[i]);
            if (e == NULL || json_array_append_new(j, e) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    case MSGPACK_OBJECT_MAP:
        j = json_object();
        for (uint32_t i = 0; j != NULL && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *v = to_json(&o->via.map.ptr[i].val);
            struct yh_buf kb = YH_BUF_INIT;
            int bad = v == NULL;

            if (!bad) {
                bad = api_cli_cell_text(&kb, k) != 0 ||
                      yh_buf_append(&kb, "", 1) != 0;
            }
            if (!bad) {
                bad = json_object_set_new(j, (const char *)kb.data, v) != 0;
                v = NULL;
            }
            json_decref(v);
            yh_buf_release(&kb);
            if (bad) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    }
    return json_null();
}

char *api_cli_json_string(const msgpack_object *o, int compact)
{
    json_t *j = to_json(o);
    char *s;

    if (j == NULL) {
        return NULL;
    }
    s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
                          (compact ? JSON_COMPACT : JSON_INDENT(2)));
    json_decref(j);
    return s;
}

int api_cli_print_json(FILE *out, const msgpack_object *o, int compact)
{
    char *s = api_cli_json_string(o, compact);

    if (s == NULL) {
        return YH_ENOMEM;
    }
    fprintf(out, "%s\n", s);
    free(s);
    return 0;
}

/* ---- table ----------------------------------------------------------- */

int api_cli_cell_text(struct yh_buf *out, const msgpack_object *o)
{
    char *s;
    int rc;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return yh_buf_append(out, "-", 1);
    case MSGPACK_OBJECT_BOOLEAN:
        return yh_buf_printf(out, "%s", o->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return yh_buf_printf(out, "%" PRIu64, o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return yh_buf_printf(out, "%" PRId64, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return yh_buf_printf(out, "%g", o->via.f64);
    case MSGPACK_OBJECT_STR:
        /* Control characters would break the layout of the table. */
        for (uint32_t i = 0; i < o->via.str.size; i++) {
            unsigned char ch = (unsigned char)o->via.str.ptr[i];
            char c = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
            rc = yh_buf_append(out, &c, 1);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT:
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        break;
    }
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        /* A list of scalars reads best as "a, b, c". */
        int scalars = 1;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int t = o->via.array.ptr[i].type;
            if (t == MSGPACK_OBJECT_ARRAY || t == MSGPACK_OBJECT_MAP) {
                scalars = 0;
            }
        }
        if (scalars) {
            for (uint32_t i = 0; i < o->via.array.size; i++) {
                rc = i > 0 ? yh_buf_append(out, ", ", 2) : 0;
                if (rc == 0) {
                    rc = api_cli_cell_text(out, &o->via.array.ptr[i]);
                }
                if (rc != 0) {
                    return rc;
                }
            }
            return 0;
        }
    }
    s = api_cli_json_string(o, 1);
    if (s == NULL) {
        return YH_ENOMEM;
    }
    if (o->type == MSGPACK_OBJECT_BIN || o->type == MSGPACK_OBJECT_EXT) {
        /* JSON renders them as a quoted hex string: drop the quotes. */
        size_t n = strlen(s);
        rc = n >= 2 ? yh_buf_append(out, s + 1, n - 2) : 0;
    } else {
        rc = yh_buf_append(out, s, strlen(s));
    }
    free(s);
    return rc;
}

/* Display width of UTF-8 text: code points, not bytes. */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            w++;
        }
    }
    return w;
}

/* Cut @b to at most CELL_MAX code points, ending in "...". */
static void cut_cell(struct yh_buf *b)
{
    size_t w = 0;

    if (text_width((char *)b->data, b->len) <= CELL_MAX) {
        return;
    }
    for (size_t i = 0; i < b->len; i++) {
        if ((b->data[i] & 0xc0) != 0x80 && w++ == CELL_MAX - 3) {
            b->len = i;
            yh_buf_append(b, "...", 3);
            return;
        }
    }
}

static int is_table(const msgpack_object *v)
{
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size == 0) {
        return 0;
    }
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        if (v->via.array.ptr[i].type != MSGPACK_OBJECT_MAP) {
            return 0;
        }
    }
    return 1;
}

#define TABLE_MAX_COLS 64

/* Columns: union of the rows' keys in order of first appearance. */
static void render_rows(FILE *out, const msgpack_object *arr)
{
    const msgpack_object *cols[TABLE_MAX_COLS];
    size_t widths[TABLE_MAX_COLS];
    unsigned n_cols = 0;
    uint32_t n_rows = arr->via.array.size;
    struct yh_buf *cells;

    for (uint32_t r = 0; r < n_rows; r++) {
        const msgpack_object *row = &arr->via.array.ptr[r];
        for (uint32_t i = 0; i < row->via.map.size; i++) {
            const msgpack_object *k = &row->via.map.ptr[i].key;
            unsigned c;
            if (k->type != MSGPACK_OBJECT_STR) {
                continue;
            }
            for (c = 0; c < n_cols; c++) {
                if (cols[c]->via.str.size == k->via.str.size &&
                    memcmp(cols[c]->via.str.ptr, k->via.str.ptr,
                           k->via.str.size) == 0) {
                    break;
                }
            }
            if (c == n_cols && n_cols < TABLE_MAX_COLS) {
                cols[n_cols] = k;
                widths[n_cols] = text_width(k->via.str.ptr, k->via.str.size);
                n_cols++;
            }
        }
    }
    cells = calloc((size_t)n_rows * n_cols + 1, sizeof(*cells));
    if (cells == NULL) {
        fprintf(out, "  (out of memory rendering the table)\n");
        return;
    }
    for (uint32_t r = 0; r < n_rows; r++) {
        const msgpack_object *row = &arr->via.array.ptr[r];
        for (unsigned c = 0; c < n_cols; c++) {
            struct yh_buf *b = &cells[(size_t)r * n_cols + c];
            const msgpack_object *v = NULL;
            for (uint32_t i = 0; i < row->via.map.size; i++) {
                const msgpack_object *k = &row->via.map.ptr[i].key;
                if (k->type == MSGPACK_OBJECT_STR &&
                    k->via.str.size == cols[c]->via.str.size &&
                    memcmp(k->via.str.ptr, cols[c]->via.str.ptr,
                           k->via.str.size) == 0) {
                    v = &row->via.map.ptr[i].val;
                    break;
                }
            }
            if (v == NULL) {
                yh_buf_append(b, "-", 1);
            } else {
                api_cli_cell_text(b, v);
            }
            if (b->len == 0) {
                yh_buf_append(b, "-", 1); /* keep columns visible */
            }
            cut_cell(b);
            size_t w = text_width((char *)b->data, b->len);
            if (w > widths[c]) {
                widths[c] = w;
            }
        }
    }
    fprintf(out, " ");
    for (unsigned c = 0; c < n_cols; c++) {
        size_t w = text_width(cols[c]->via.str.ptr, cols[c]->via.str.size);
        fprintf(out, " %.*s", (int)cols[c]->via.str.size, cols[c]->via.str.ptr);
        if (c + 1 < n_cols) {
            fprintf(out, "%*s", (int)(widths[c] - w + 1), "");
        }
    }
    fprintf(out, "\n");
    for (uint32_t r = 0; r < n_rows; r++) {
        fprintf(out, " ");
        for (unsigned c = 0; c < n_cols; c++) {
            struct yh_buf *b = &cells[(size_t)r * n_cols + c];
            size_t w = text_width((char *)b->data, b->len);
            fprintf(out, " %.*s", (int)b->len, (char *)b->data);
            if (c + 1 < n_cols) {
                fprintf(out, "%*s", (int)(widths[c] - w + 1), "");
            }
        }
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < (size_t)n_rows * n_cols; i++) {
        yh_buf_release(&cells[i]);
    }
    free(cells);
}

void api_cli_render_table(FILE *out, const msgpack_object *result)
{
    if (result->type != MSGPACK_OBJECT_MAP) {
        struct yh_buf b = YH_BUF_INIT;
        api_cli_cell_text(&b, result);
        fprintf(out, "%.*s\n", (int)b.len, (char *)b.data);
        yh_buf_release(&b);
        return;
    }
    for (uint32_t i = 0; i < result->via.map.size; i++) {
        const msgpack_object *k = &result->via.map.ptr[i].key;
        const msgpack_object *v = &result->via.map.ptr[i].val;
        struct yh_buf kb = YH_BUF_INIT;
        struct yh_buf vb = YH_BUF_INIT;

        if (yh_mp_eq(k, "RetCode") || yh_mp_eq(k, "Action")) {
            continue;
        }
        if (yh_mp_eq(k, "Message") && v->type == MSGPACK_OBJECT_STR &&
            v->via.str.size == 0) {
            continue;
        }
        api_cli_cell_text(&kb, k);
        if (is_table(v)) {
            fprintf(out, "%.*s:\n", (int)kb.len, (char *)kb.data);
            render_rows(out, v);
        } else if (v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 0) {
            fprintf(out, "%.*s: (none)\n", (int)kb.len, (char *)kb.data);
        } else {
            api_cli_cell_text(&vb, v);
            fprintf(out, "%.*s: %.*s\n", (int)kb.len, (char *)kb.data,
                    (int)vb.len, (char *)vb.data);
        }
        yh_buf_release(&kb);
        yh_buf_release(&vb);
    }
}

/* ---- config ---------------------------------------------------------- */

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = s + strlen(s);
    while (e > s &&
           (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) {
        *--e = '\0';
    }
    return s;
}

static int set_field(char *dst,
                     size_t size,
                     const char *v,
                     const char *path,
                     unsigned line,
                     char *errmsg)
{
    size_t n = strlen(v);

    if (n >= size) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "%s:%u: value too long", path, line);
        return YH_EINVAL;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

int api_cli_read_config(const char *path,
                        char public_key[API_CLI_KEY_SIZE],
                        char private_key[API_CLI_KEY_SIZE],
                        char endpoint[1024],
                        char *errmsg)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    unsigned n = 0;
    int rc = 0;

    if (f == NULL) {
        if (errno == ENOENT) {
            return YH_ENOTFOUND;
        }
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot open '%s': %s", path,
                 strerror(errno));
        return YH_EINVAL;
    }
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        char *s = trim(line);
        char *eq, *k, *v;

        n++;
        if (*s == '\0' || *s == '#') {
            continue;
        }
        eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(errmsg, YH_ERRMSG_SIZE, "%s:%u: expected 'key = value'",
                     path, n);
            rc = YH_EINVAL;
            break;
        }
        *eq = '\0';
        k = trim(s);
        v = trim(eq + 1);
        if (strcmp(k, "public_key") == 0) {
            rc = set_field(public_key, API_CLI_KEY_SIZE, v, path, n, errmsg);
        } else if (strcmp(k, "private_key") == 0) {
            rc = set_field(private_key, API_CLI_KEY_SIZE, v, path, n, errmsg);
        } else if (strcmp(k, "endpoint") == 0) {
            rc = set_field(endpoint, 1024, v, path, n, errmsg);
        } else {
            snprintf(errmsg, YH_ERRMSG_SIZE, "%s:%u: unknown key '%s'", path, n,
                     k);
            rc = YH_EINVAL;
        }
    }
    fclose(f);
    return rc;
}

int api_cli_read_keyfile(const char *path,
                         char public_key[API_CLI_KEY_SIZE],
                         char private_key[API_CLI_KEY_SIZE],
                         char *errmsg)
{
    FILE *f = fopen(path, "r");
    char line[2 * API_CLI_KEY_SIZE + 8];
    char *sp, *pub, *priv;

    if (f == NULL) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "cannot open '%s': %s", path,
                 strerror(errno));
        return errno == ENOENT ? YH_ENOTFOUND : YH_EINVAL;
    }
    if (fgets(line, sizeof(line), f) == NULL) {
        line[0] = '\0';
    }
    fclose(f);
    pub = trim(line);
    sp = strchr(pub, ' ');
    if (sp == NULL) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "'%s': expected 'PUBLIC PRIVATE'",
                 path);
        return YH_EINVAL;
    }
    *sp = '\0';
    priv = trim(sp + 1);
    if (*pub == '\0' || *priv == '\0' || strchr(priv, ' ') != NULL ||
        strlen(pub) >= API_CLI_KEY_SIZE || strlen(priv) >= API_CLI_KEY_SIZE) {
        snprintf(errmsg, YH_ERRMSG_SIZE, "'%s': expected 'PUBLIC PRIVATE'",
                 path);
        return YH_EINVAL;
    }
    memcpy(public_key, pub, strlen(pub) + 1);
    memcpy(private_key, priv, strlen(priv) + 1);
    return 0;
}

int api_cli_load_creds(const char *endpoint_opt,
                       struct api_cli_creds *c,
                       char *errmsg)
{
    const char *env_pub = getenv("YUNHAN_PUBLIC_KEY");
    const char *env_priv = getenv("YUNHAN_PRIVATE_KEY");
    const char *env_ep = getenv("YUNHAN_ENDPOINT");
    const char *cfg = getenv("YUNHAN_CONFIG");
    const char *home = getenv("HOME");
    char path[1024];
    int rc;

    memset(c, 0, sizeof(*c));
    if (cfg != NULL && *cfg != '\0') {
        snprintf(path, sizeof(path), "%s", cfg);
    } else if (home != NULL && *home != '\0') {
        snprintf(path, sizeof(path), "%s/.config/yunhan/config", home);
    } else {
        path[0] = '\0';
    }
    if (path[0] != '\0') {
        rc = api_cli_read_config(path, c->public_key, c->private_key,
                                 c->endpoint, errmsg);
        if (rc == YH_ENOTFOUND && cfg != NULL && *cfg != '\0') {
            snprintf(errmsg, YH_ERRMSG_SIZE, "config file '%s' not found",
                     path);
            return YH_EINVAL;
        }
        if (rc != 0 && rc != YH_ENOTFOUND) {
            return YH_EINVAL;
        }
    }
    if (env_pub != NULL && *env_pub != '\0') {
        snprintf(c->public_key, sizeof(c->public_key), "%s", env_pub);
    }
    if (env_priv != NULL && *env_priv != '\0') {
        snprintf(c->private_key, sizeof(c->private_key), "%s", env_priv);
    }
    if ((c->public_key[0] == '\0') != (c->private_key[0] == '\0')) {
        snprintf(errmsg, YH_ERRMSG_SIZE,
                 "a public key needs its private key (set both "
                 "YUNHAN_PUBLIC_KEY and YUNHAN_PRIVATE_KEY)");
        return YH_EINVAL;
    }
    if (endpoint_opt != NULL && *endpoint_opt != '\0') {
        snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint_opt);
    } else if (env_ep != NULL && *env_ep != '\0') {
        snprintf(c->endpoint, sizeof(c->endpoint), "%s", env_ep);
    } else if (c->endpoint[0] == '\0') {
        snprintf(c->endpoint, sizeof(c->endpoint), "%s",
                 API_CLI_DEFAULT_ENDPOINT);
    }
    return 0;
}
