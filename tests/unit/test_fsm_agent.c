/* Unit tests of fsm_host_spec: the host a resource concerns and the spec
 * its executor gets (WatchCommands), secrets left out, Generation moving
 * with every change the executor must act on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "tests/lib/fsmtest.h"

/* A zone with a Ceph SSD pool, two hosts, an image and a tenant. */
struct world
{
    char z[FSM_ID_SIZE], pool[FSM_ID_SIZE]; /* zone, its SSD pool */
    char h[2][FSM_ID_SIZE];                 /* hosts */
    struct fsm_actor agent[2];              /* their executors */
    char img[FSM_ID_SIZE];                  /* image (10 GB) */
    struct fsm_actor t;                     /* tenant */
    char tid[FSM_ID_SIZE];                  /* its ID */
};

static void str_of(struct fsmtest *x, const char *key, char *out)
{
    snprintf(out, FSM_ID_SIZE, "%s", fsmtest_res_str(x, key));
}

static void world(struct fsmtest *x, struct world *w)
{
    struct fsm_key k;

    assert_int_equal(
        fsmtest_call(x, "CreateZone", &x->admin, "Name", "z1", NULL), 0);
    str_of(x, "ZoneID", w->z);
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w->z, "SetType", "SSD", "Backend", "ceph",
                                  "Pool", "ssd-a", "Capacity", "1000", NULL),
                     0);
    str_of(x, "PoolID", w->pool);
    fsmtest_pool(x, w->z, "Standard");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", w->z, "CPU",
                         "16", "Memory", "65536", NULL),
            0);
        str_of(x, "HostID", w->h[i]);
        assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k),
                         0);
        w->agent[i] = k.actor;
        assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w->agent[i], NULL),
                         0);
    }
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "debian",
                                  "Size", "10", NULL),
                     0);
    str_of(x, "ImageID", w->img);
    fsmtest_make_tenant(x, "t@x.io", &w->t, w->tid);
}

/* A decoded spec. */
struct spec
{
    char host[FSM_ID_SIZE]; /* host it concerns */
    struct yh_buf raw;      /* bytes */
    msgpack_unpacked u;     /* decoded */
};

static void spec_init(struct spec *s)
{
    memset(s, 0, sizeof *s);
    msgpack_unpacked_init(&s->u);
}

static void spec_free(struct spec *s)
{
    yh_buf_release(&s->raw);
    msgpack_unpacked_destroy(&s->u);
}

/* fsm_host_spec of @id; decodes the spec on success. */
static int get(struct fsmtest *x, const char *id, struct spec *s)
{
    size_t off = 0;
    int rc;

    memset(s->host, 'x', sizeof s->host - 1);
    s->host[sizeof s->host - 1] = '\0';
    rc = fsm_host_spec(x->f, id, s->host, &s->raw);
    if (rc != 0) {
        assert_string_equal(s->host, "");
        assert_int_equal(s->raw.len, 0);
        return rc;
    }
    assert_int_equal(
        msgpack_unpack_next(&s->u, (const char *)s->raw.data, s->raw.len, &off),
        MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, s->raw.len); /* exactly one object */
    assert_int_equal(s->u.data.type, MSGPACK_OBJECT_MAP);
    return 0;
}

static const char *sstr(const struct spec *s, const char *key)
{
    static char buf[4][256];
    static unsigned next;
    char *out = buf[next++ % 4];

    assert_int_equal(yh_mp_strcpy(&s->u.data, key, out, 256), 0);
    return out;
}

static int64_t sint(const struct spec *s, const char *key)
{
    const msgpack_object *o = yh_mp_get(&s->u.data, key);
    int64_t v;

    assert_non_null(o);
    assert_true(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(yh_mp_int(&s->u.data, key, &v), 0);
    return v;
}

/* No key of the spec (nor of nested maps) is internal or a secret, and
 * no key appears twice. */
static void no_secret(const msgpack_object *m)
{
    static const char *const bad[] = {"Password", "PwHash",     "Salt",
                                      "Secret",   "PrivateKey", "Pw"};

    assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        const msgpack_object *v = &m->via.map.ptr[i].val;
        char name[64];
        assert_int_equal(k->type, MSGPACK_OBJECT_STR);
        assert_true(k->via.str.size < sizeof name);
        memcpy(name, k->via.str.ptr, k->via.str.size);
        name[k->via.str.size] = '\0';
        assert_true(name[0] != '_');
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            assert_null(strstr(name, bad[j]));
        }
        for (uint32_t j = 0; j < i; j++) {
            const msgpack_object *k2 = &m->via.map.ptr[j].key;
            assert_false(
                k2->via.str.size == k->via.str.size &&
                memcmp(k2->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0);
        }
        assert_true(v->type != MSGPACK_OBJECT_BIN);
        if (v->type == MSGPACK_OBJECT_ARRAY) {
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                if (v->via.array.ptr[j].type == MSGPACK_OBJECT_MAP) {
                    no_secret(&v->via.array.ptr[j]);
                }
            }
        }
    }
}

static int64_t vm_generation(struct fsmtest *x, const char *vm)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeVMInstance", &x->admin, "VMIDs.0", vm, NULL),
        0);
    assert_int_equal(fsmtest_n_infos(x), 1);
    return fsmtest_info_int(x, 0, "Generation");
}

static int64_t disk_generation(struct fsmtest *x, const char *d)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeDisk", &x->admin, "DiskIDs.0", d, NULL), 0);
    assert_int_equal(fsmtest_n_infos(x), 1);
    return fsmtest_info_int(x, 0, "Generation");
}

/* The executor of @agent reports @state of the current generation. */
static int report(struct fsmtest *x,
                  const struct fsm_actor *agent,
                  const char *id,
                  const char *state)
{
    char gen[24];
    int vm = strncmp(id, "uhost-", 6) == 0;

    snprintf(gen, sizeof gen, "%lld",
             (long long)(vm ? vm_generation(x, id) : disk_generation(x, id)));
    return fsmtest_call(x, "ReportState", agent, "ResourceID", id, "State",
                        state, "Generation", gen, NULL);
}

static const struct fsm_actor *agent_of(struct world *w, const char *host)
{
    return strcmp(host, w->h[0]) == 0 ? &w->agent[0] : &w->agent[1];
}

/* ---- machines ---- */

static void vm_spec(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], vm2[FSM_ID_SIZE], host[FSM_ID_SIZE];
    int64_t gen;
    struct spec s, s2;

    world(x, &w);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "2", "Memory",
                                  "2048", "Password", "secret-pass", "Name",
                                  "web1", "BootDiskSetType", "SSD", NULL),
                     0);
    str_of(x, "VMID", vm);
    str_of(x, "HostID", host);
    assert_int_equal(strncmp(host, "host-", 5), 0);
    gen = vm_generation(x, vm);
    assert_true(gen > 0);

    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    assert_string_equal(s.host, host);
    assert_string_equal(sstr(&s, "ResourceID"), vm);
    assert_string_equal(sstr(&s, "ResourceType"), "VM");
    assert_string_equal(sstr(&s, "HostID"), host);
    assert_string_equal(sstr(&s, "DesiredState"), "Running");
    assert_string_equal(sstr(&s, "State"), "Creating");
    assert_int_equal(sint(&s, "Generation"), gen);
    assert_int_equal(sint(&s, "Revision"), gen);
    assert_int_equal(sint(&s, "CPU"), 2);
    assert_int_equal(sint(&s, "Memory"), 2048);
    assert_int_equal(sint(&s, "GPU"), 0);
    assert_string_equal(sstr(&s, "ImageID"), w.img);
    assert_string_equal(sstr(&s, "ZoneID"), w.z);
    assert_string_equal(sstr(&s, "BootDiskSetType"), "SSD");
    assert_int_equal(sint(&s, "BootDiskSpace"), 10);
    assert_string_equal(sstr(&s, "Name"), "web1");
    assert_string_equal(sstr(&s, "TenantID"), w.tid);
    assert_non_null(yh_mp_get(&s.u.data, "Disks"));
    assert_int_equal(yh_mp_get(&s.u.data, "Disks")->type, MSGPACK_OBJECT_ARRAY);
    /* its boot disk, placed in the SSD pool */
    assert_int_equal(yh_mp_get(&s.u.data, "Disks")->via.array.size, 1);
    {
        const msgpack_object *b =
            &yh_mp_get(&s.u.data, "Disks")->via.array.ptr[0];
        assert_true(yh_mp_eq(yh_mp_get(b, "DiskID"), sstr(&s, "BootDiskID")));
        assert_int_equal(yh_mp_get(b, "Boot")->type, MSGPACK_OBJECT_BOOLEAN);
        assert_true(yh_mp_get(b, "Boot")->via.boolean);
        assert_true(yh_mp_eq(yh_mp_get(b, "SetType"), "SSD"));
        assert_true(yh_mp_eq(yh_mp_get(b, "PoolID"), w.pool));
        assert_true(yh_mp_eq(yh_mp_get(b, "DesiredAttach"), "Attached"));
        assert_true(yh_mp_eq(yh_mp_get(b, "State"), "InUse"));
        assert_int_equal(yh_mp_get(b, "Size")->via.i64, 10);
    }
    /* the password hash is in the state but never in a spec */
    {
        char *d = fsmtest_dump_str(x->f);
        assert_non_null(strstr(d, "_PwHash"));
        free(d);
    }
    no_secret(&s.u.data);
    assert_null(memmem(s.raw.data, s.raw.len, "secret-pass", 11));
    assert_null(memmem(s.raw.data, s.raw.len, "PwHash", 6));
    assert_null(memmem(s.raw.data, s.raw.len, "Salt", 4));
    assert_null(memmem(s.raw.data, s.raw.len, "_Price", 6));
    /* the same state, the same bytes */
    spec_init(&s2);
    assert_int_equal(get(x, vm, &s2), 0);
    assert_int_equal(s2.raw.len, s.raw.len);
    assert_memory_equal(s2.raw.data, s.raw.data, s.raw.len);
    spec_free(&s2);
    spec_free(&s);

    /* a second machine lands on the other (less loaded) host */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        0);
    str_of(x, "VMID", vm2);
    assert_string_not_equal(fsmtest_res_str(x, "HostID"), host);
    spec_init(&s);
    assert_int_equal(get(x, vm2, &s), 0);
    assert_string_not_equal(s.host, host);
    assert_string_equal(s.host, sstr(&s, "HostID"));
    spec_free(&s);

    /* the executor reports; then a stop is a new generation */
    assert_int_equal(report(x, agent_of(&w, host), vm, "Running"), 0);
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    assert_string_equal(sstr(&s, "State"), "Running");
    assert_string_equal(sstr(&s, "ObservedState"), "Running");
    assert_int_equal(sint(&s, "Generation"), gen); /* a report is no change */
    assert_true(sint(&s, "Revision") > gen);
    spec_free(&s);
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    assert_true(sint(&s, "Generation") > gen);
    assert_int_equal(sint(&s, "Generation"), (int64_t)x->index);
    assert_int_equal(sint(&s, "Generation"), vm_generation(x, vm));
    assert_string_equal(sstr(&s, "DesiredState"), "Stopped");
    assert_string_equal(sstr(&s, "State"), "Stopping");
    gen = sint(&s, "Generation");
    spec_free(&s);
    /* stopping again changes nothing: same generation */
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    assert_int_equal(sint(&s, "Generation"), gen);
    spec_free(&s);

    /* in the recycle bin it still concerns its host (kept stopped); once
     * purged it concerns nobody */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm, NULL), 0);
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    assert_string_equal(s.host, host);
    assert_string_equal(sstr(&s, "State"), "Recycled");
    assert_string_equal(sstr(&s, "DesiredState"), "Stopped");
    assert_true(sint(&s, "Generation") > gen);
    spec_free(&s);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", vm, NULL), 0);
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), YH_ENOTFOUND);
    spec_free(&s);
}

/* ---- disks ---- */

static void disk_spec(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], host[FSM_ID_SIZE], d[FSM_ID_SIZE];
    char snap[FSM_ID_SIZE];
    const msgpack_object *disks, *e;
    int64_t gen;
    struct spec s;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        0);
    str_of(x, "VMID", vm);
    str_of(x, "HostID", host);
    assert_int_equal(report(x, agent_of(&w, host), vm, "Running"), 0);
    assert_int_equal(fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", w.z, "Size",
                                  "20", "SetType", "SSD", NULL),
                     0);
    str_of(x, "DiskID", d);

    /* detached: no host */
    spec_init(&s);
    assert_int_equal(get(x, d, &s), YH_ENOTFOUND);

    /* attaching: the machine's host */
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", d, "VMID", vm, NULL), 0);
    gen = (int64_t)x->index; /* the attach's log index */
    assert_int_equal(disk_generation(x, d), gen);
    assert_int_equal(get(x, d, &s), 0);
    assert_string_equal(s.host, host);
    assert_string_equal(sstr(&s, "ResourceID"), d);
    assert_string_equal(sstr(&s, "ResourceType"), "Disk");
    assert_string_equal(sstr(&s, "HostID"), host);
    assert_string_equal(sstr(&s, "DesiredState"), "Attached");
    assert_string_equal(sstr(&s, "DesiredAttach"), "Attached");
    assert_string_equal(sstr(&s, "State"), "Attaching");
    assert_int_equal(sint(&s, "Generation"), gen);
    assert_int_equal(sint(&s, "Size"), 20);
    assert_string_equal(sstr(&s, "SetType"), "SSD");
    assert_string_equal(sstr(&s, "PoolID"), w.pool);
    assert_string_equal(sstr(&s, "Backend"), "ceph");
    assert_string_equal(sstr(&s, "Pool"), "ssd-a");
    assert_string_equal(sstr(&s, "VMID"), vm);
    assert_string_equal(sstr(&s, "ZoneID"), w.z);
    no_secret(&s.u.data);
    spec_free(&s);

    /* the machine's spec lists it */
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    disks = yh_mp_get(&s.u.data, "Disks");
    assert_non_null(disks);
    assert_int_equal(disks->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(disks->via.array.size, 2); /* the boot disk first */
    assert_true(yh_mp_get(&disks->via.array.ptr[0], "Boot")->via.boolean);
    e = &disks->via.array.ptr[1];
    assert_false(yh_mp_get(e, "Boot")->via.boolean);
    assert_true(yh_mp_eq(yh_mp_get(e, "DiskID"), d));
    assert_true(yh_mp_eq(yh_mp_get(e, "DesiredAttach"), "Attached"));
    assert_true(yh_mp_eq(yh_mp_get(e, "Backend"), "ceph"));
    assert_true(yh_mp_eq(yh_mp_get(e, "Pool"), "ssd-a"));
    assert_true(yh_mp_eq(yh_mp_get(e, "PoolID"), w.pool));
    no_secret(&s.u.data);
    spec_free(&s);

    /* attached, then detaching: still the machine's host */
    assert_int_equal(report(x, agent_of(&w, host), d, "Attached"), 0);
    spec_init(&s);
    assert_int_equal(get(x, d, &s), 0);
    assert_string_equal(s.host, host);
    assert_string_equal(sstr(&s, "State"), "InUse");
    assert_int_equal(sint(&s, "Generation"), gen);
    spec_free(&s);

    /* a snapshot is acted on by no executor */
    assert_int_equal(fsmtest_call(x, "CreateSnapshot", &w.t, "DiskID", d, NULL),
                     0);
    str_of(x, "SnapshotID", snap);
    spec_init(&s);
    assert_int_equal(get(x, snap, &s), YH_ENOTFOUND);
    spec_free(&s);

    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", d, NULL), 0);
    spec_init(&s);
    assert_int_equal(get(x, d, &s), 0);
    assert_string_equal(s.host, host);
    assert_string_equal(sstr(&s, "State"), "Detaching");
    assert_string_equal(sstr(&s, "DesiredState"), "Detached");
    assert_true(sint(&s, "Generation") > gen);
    spec_free(&s);

    /* detached once the executor confirms */
    assert_int_equal(report(x, agent_of(&w, host), d, "Detached"), 0);
    spec_init(&s);
    assert_int_equal(get(x, d, &s), YH_ENOTFOUND);
    assert_int_equal(get(x, vm, &s), 0);
    assert_int_equal(yh_mp_get(&s.u.data, "Disks")->via.array.size, 1);
    assert_true(
        yh_mp_get(&yh_mp_get(&s.u.data, "Disks")->via.array.ptr[0], "Boot")
            ->via.boolean); /* its boot disk stays */
    spec_free(&s);
}

/* ---- what concerns no host ---- */

static void not_found(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char longid[FSM_ID_SIZE + 8];
    struct spec s;

    world(x, &w);
    spec_init(&s);
    assert_int_equal(get(x, "uhost-99999999", &s), YH_ENOTFOUND);
    assert_int_equal(get(x, "bsi-99999999", &s), YH_ENOTFOUND);
    assert_int_equal(get(x, "", &s), YH_ENOTFOUND);
    assert_int_equal(get(x, NULL, &s), YH_ENOTFOUND);
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(get(x, longid, &s), YH_ENOTFOUND);
    /* records of other tables are not resources of a host */
    assert_int_equal(get(x, w.h[0], &s), YH_ENOTFOUND);
    assert_int_equal(get(x, w.z, &s), YH_ENOTFOUND);
    assert_int_equal(get(x, w.img, &s), YH_ENOTFOUND);
    assert_int_equal(get(x, w.pool, &s), YH_ENOTFOUND);
    assert_int_equal(get(x, w.tid, &s), YH_ENOTFOUND);
    spec_free(&s);
}

/* Reads committed state: a change still in the open batch is flushed
 * first, and the store stays usable (the batch reopens on the next
 * apply). */
static void committed(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE];
    struct spec s;
    char *d1, *d2;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        0);
    str_of(x, "VMID", vm);
    d1 = fsmtest_dump_str(x->f);
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    spec_free(&s);
    /* a read changes nothing */
    d2 = fsmtest_dump_str(x->f);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    spec_init(&s);
    assert_int_equal(get(x, vm, &s), 0);
    assert_string_equal(sstr(&s, "DesiredState"), "Stopped");
    spec_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(vm_spec, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(disk_spec, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(not_found, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(committed, fsmtest_setup,
                                        fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
