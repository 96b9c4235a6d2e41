/* Unit tests of infrastructure and compute: zones, hosts (credentials,
 * heartbeat lease, expiry, disable), images, anti-affinity groups, the
 * scheduler, VM lifecycle with jobs and executor reports, resize, recycle
 * bin and capacity release. */
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h" /* the scheduler cache */
#include "tests/lib/fsmtest.h"

#define SEC FSMTEST_SEC
#define T0 FSMTEST_T0

/* Create a zone, return its ID. */
static void zone(struct fsmtest *x, const char *name, const char *oc, char *id)
{
    assert_int_equal(fsmtest_call(x, "CreateZone", &x->admin, "Name", name,
                                  "CPUOvercommit", oc, NULL),
                     0);
    snprintf(id, FSM_ID_SIZE, "%s", fsmtest_res_str(x, "ZoneID"));
}

/* Register a host; its agent actor in @agent. */
static void host(struct fsmtest *x,
                 const char *zone_id,
                 const char *cpu,
                 const char *mem,
                 const char *arch,
                 const char *gpu,
                 char *id,
                 struct fsm_actor *agent)
{
    struct fsm_key k;

    assert_int_equal(
        fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", zone_id, "CPU",
                     cpu, "Memory", mem, "Arch", arch, "GPU", gpu, "GPUModel",
                     "T4", "StorageSetTypes.0", "SSD", NULL),
        0);
    snprintf(id, FSM_ID_SIZE, "%s", fsmtest_res_str(x, "HostID"));
    assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k), 0);
    assert_string_equal(k.actor.user_id, id);
    assert_string_equal(k.actor.tenant_id, "");
    assert_false(k.actor.admin);
    *agent = k.actor;
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", agent, NULL), 0);
}

static void image(struct fsmtest *x, const char *arch, char *id)
{
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "debian",
                                  "Arch", arch, "Size", "10", NULL),
                     0);
    snprintf(id, FSM_ID_SIZE, "%s", fsmtest_res_str(x, "ImageID"));
}

static void infra(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, agent;
    char z[FSM_ID_SIZE], h[FSM_ID_SIZE], img[FSM_ID_SIZE];
    struct fsmtest_tick tc;

    fsmtest_make_tenant(x, "t@x.io", &t, NULL);
    assert_int_equal(fsmtest_call(x, "CreateZone", &t, "Name", "z1", NULL),
                     YH_EPERM);
    assert_int_equal(fsmtest_call(x, "CreateZone", &x->admin, NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateZone", &x->admin, "Name", "z1",
                                  "CPUOvercommit", "50", NULL),
                     YH_EINVAL);
    zone(x, "z1", "200", z);
    assert_string_equal(z, "zone-00000001");
    assert_int_equal(
        fsmtest_call(x, "CreateZone", &x->admin, "Name", "z1", NULL),
        YH_EEXIST);
    assert_int_equal(fsmtest_call(x, "DescribeZone", &t, NULL), 0); /* public */
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(fsmtest_info_int(x, 0, "CPUOvercommit"), 200);

    /* hosts: validation */
    assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID",
                                  "zone-9", "CPU", "8", "Memory", "8192", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", z, "CPU", "8",
                     "Memory", "8192", "Arch", "mips", NULL),
        YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", z, "CPU", "8",
                     "Memory", "8192", "GPU", "2", NULL),
        YH_EINVAL); /* GPUs need a model */
    assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", z,
                                  "Memory", "8192", NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "RegisterHost", &t, "ZoneID", z, "CPU",
                                  "8", "Memory", "8192", NULL),
                     YH_EPERM);
    host(x, z, "8", "16384", "x86_64", "0", h, &agent);
    assert_int_equal(fsmtest_call(x, "DescribeHost", &x->admin, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Online");
    assert_int_equal(fsmtest_info_int(x, 0, "Epoch"), 1);
    assert_int_equal(fsmtest_call(x, "DescribeHost", &t, NULL), YH_EPERM);
    /* host credentials: agent actions only; agent actions: hosts only */
    assert_int_equal(fsmtest_call(x, "DescribeUser", &agent, NULL), YH_EPERM);
    assert_int_equal(fsmtest_call(x, "CreateDisk", &agent, "Size", "1", NULL),
                     YH_EPERM);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &t, NULL), YH_EPERM);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &x->admin, NULL),
                     YH_EPERM);
    /* the lease: 30 s by default; expiry is proposed by the leader */
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    x->time += 31 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    assert_int_equal(tc.codes[0], 0);
    assert_int_equal(fsmtest_tick(x, &tc), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", h, NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Unknown");
    assert_int_equal(fsmtest_info_int(x, 0, "Epoch"), 2);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &agent, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Online");
    assert_int_equal(fsmtest_res_int(x, "Epoch"), 2);
    /* a shorter lease from the configuration */
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "5", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &agent, NULL), 0);
    x->time += 6 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 1);
    /* disable / enable */
    assert_int_equal(
        fsmtest_call(x, "DisableHost", &x->admin, "HostID", "host-9", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DisableHost", &x->admin, "HostID", h, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeHost", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_info_int(x, 0, "Disabled"), 1);
    assert_int_equal(
        fsmtest_call(x, "EnableHost", &x->admin, "HostID", h, NULL), 0);
    /* images */
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "i",
                                  "OsType", "BeOS", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateImage", &t, "Name", "i", NULL),
                     YH_EPERM);
    image(x, "x86_64", img);
    assert_string_equal(img, "image-00000001");
    assert_int_equal(fsmtest_call(x, "DescribeImage", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "Arch"), "x86_64");
    /* anti-affinity groups are tenant-owned */
    assert_int_equal(
        fsmtest_call(x, "CreateAntiAffinityGroup", &t, "Name", "web", NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "CreateAntiAffinityGroup", &t, "Name", "web", NULL),
        YH_EEXIST);
    assert_int_equal(fsmtest_call(x, "DescribeAntiAffinityGroup", &t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_int_equal(
        fsmtest_call(x, "DescribeAntiAffinityGroup", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
}

struct world
{
    struct fsm_actor t, t2;    /* tenants */
    char tid[FSM_ID_SIZE];     /* t's ID */
    char z[FSM_ID_SIZE];       /* zone (overcommit 150%) */
    char h[3][FSM_ID_SIZE];    /* hosts: 4 cpu, 8 cpu, 8 cpu arm+gpu */
    struct fsm_actor agent[3]; /* their agents */
    char img[FSM_ID_SIZE], arm[FSM_ID_SIZE]; /* images */
};

static void world(struct fsmtest *x, struct world *w)
{
    fsmtest_make_tenant(x, "t@x.io", &w->t, w->tid);
    fsmtest_make_tenant(x, "u@x.io", &w->t2, NULL);
    zone(x, "z1", "150", w->z);
    fsmtest_pool(x, w->z, "Standard");
    host(x, w->z, "4", "8192", "x86_64", "0", w->h[0], &w->agent[0]);
    host(x, w->z, "8", "16384", "x86_64", "0", w->h[1], &w->agent[1]);
    host(x, w->z, "8", "16384", "aarch64", "2", w->h[2], &w->agent[2]);
    image(x, "x86_64", w->img);
    image(x, "aarch64", w->arm);
}

static int create_vm(struct fsmtest *x,
                     const struct fsm_actor *a,
                     const char *zone_id,
                     const char *img,
                     const char *cpu,
                     const char *mem)
{
    return fsmtest_call(x, "CreateVMInstance", a, "ZoneID", zone_id, "ImageID",
                        img, "CPU", cpu, "Memory", mem, NULL);
}

static void scheduler(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char aag[FSM_ID_SIZE], vm[FSM_ID_SIZE];

    world(x, &w);
    /* validation */
    assert_int_equal(create_vm(x, &w.t, "zone-9", w.img, "1", "1024"),
                     YH_ENOTFOUND);
    assert_int_equal(create_vm(x, &w.t, w.z, "image-9", "1", "1024"),
                     YH_ENOTFOUND);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "0", "1024"), YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "Password", "short", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "BootDiskSpace", "5", NULL),
                     YH_EINVAL); /* the image needs 10 GB */
    /* least loaded: the 8-CPU x86 host first (1/12 < 1/6) */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "2", "Memory", "2048", "Password",
                     "secret-pass", "Name", "web1", NULL),
        0);
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[1]);
    snprintf(vm, sizeof vm, "%s", fsmtest_res_str(x, "VMID"));
    assert_string_equal(vm, "uhost-00000001");
    assert_true(strlen(fsmtest_res_str(x, "JobID")) > 0);
    /* the password is neither in the log nor in the state */
    assert_null(strstr((const char *)x->env.data, "secret-pass"));
    {
        char *d = fsmtest_dump_str(x->f);
        assert_null(strstr(d, "secret-pass"));
        assert_non_null(strstr(d, "\"_PwHash\""));
        free(d);
    }
    assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Creating");
    assert_string_equal(fsmtest_info_str(x, 0, "DesiredState"), "Running");
    assert_null(yh_mp_get(fsmtest_info(x, 0), "_PwHash"));
    assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &w.t2, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    /* then the lighter one; architecture: arm images go to the arm host */
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), 0);
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[0]);
    assert_int_equal(create_vm(x, &w.t, w.z, w.arm, "1", "1024"), 0);
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[2]);
    /* GPUs: only the arm host has them (model T4) */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", "GPU", "1", NULL),
        YH_ECAPACITY);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.arm, "CPU", "1", "Memory",
                                  "1024", "GPU", "1", "GPUType", "A100", NULL),
                     YH_ECAPACITY);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.arm, "CPU", "1", "Memory",
                                  "1024", "GPU", "2", "GPUType", "T4", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.arm, "CPU", "1", "Memory", "1024", "GPU", "1", NULL),
        YH_ECAPACITY);
    /* overcommit: 8 CPU * 150% = 12 on h1 (2 used), 6 on h0 (2 used) */
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "10", "1024"), 0);
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[1]);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "5", "1024"), YH_ECAPACITY);
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "insufficient capacity"));
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "4", "1024"), 0);
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[0]);
    /* memory is not overcommitted */
    assert_int_equal(
        fsmtest_call(x, "DisableHost", &x->admin, "HostID", w.h[2], NULL), 0);
    assert_int_equal(create_vm(x, &w.t, w.z, w.arm, "1", "1024"),
                     YH_ECAPACITY); /* disabled */
    assert_int_equal(
        fsmtest_call(x, "EnableHost", &x->admin, "HostID", w.h[2], NULL), 0);
    assert_int_equal(create_vm(x, &w.t, w.z, w.arm, "1", "16384"),
                     YH_ECAPACITY);
    /* anti-affinity: two machines of a group never share a host */
    assert_int_equal(
        fsmtest_call(x, "CreateAntiAffinityGroup", &w.t2, "Name", "g", NULL),
        0);
    snprintf(aag, sizeof aag, "%s", fsmtest_res_str(x, "AntiAffinityGroupID"));
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.arm, "CPU", "1", "Memory", "512",
                                  "AntiAffinityGroupID", aag, NULL),
                     YH_ENOTFOUND); /* another tenant's group */
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t2, "ZoneID", w.z,
                                  "ImageID", w.arm, "CPU", "1", "Memory", "512",
                                  "AntiAffinityGroupID", aag, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t2, "ZoneID", w.z,
                                  "ImageID", w.arm, "CPU", "1", "Memory", "512",
                                  "AntiAffinityGroupID", aag, NULL),
                     YH_ECAPACITY); /* the only arm host holds one */
    /* paging */
    assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &w.t, "Limit", "2",
                                  "Offset", "1", NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 6);
    assert_int_equal(fsmtest_n_infos(x), 2);
    assert_string_equal(fsmtest_info_str(x, 0, "VMID"), "uhost-00000002");
    assert_int_equal(
        fsmtest_call(x, "DescribeVMInstance", &w.t, "VMIDs.0", "uhost-00000003",
                     "VMIDs.1", "uhost-00000007", NULL),
        0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1); /* 7 is t2's */
    /* host usage is in the host records */
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL),
        0);
    assert_int_equal(fsmtest_info_int(x, 0, "UsedCPU"), 12);
    assert_int_equal(fsmtest_info_int(x, 0, "VMCount"), 2);
}

/* The leader's scheduler cache (entries reused while a host's bytes are
 * unchanged, with their answer to the last question asked) picks what a
 * scheduler decoding every host picks: two stores fed the same random
 * creates, deletes and host toggles, one of them without the cache. */
static void scheduler_cache(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct world w, v;
    char vms[64][FSM_ID_SIZE];
    unsigned n_vms = 0;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int picks = 0;

    fsmtest_bootstrap(y);
    fsm__place_cache_free(y->f->place_cache);
    y->f->place_cache = NULL; /* y's picks decode every host */
    world(x, &w);
    world(y, &v);
    for (int i = 0; i < 4; i++) {
        char hx[FSM_ID_SIZE], hy[FSM_ID_SIZE];
        struct fsm_actor ax, ay;
        const char *cpu = i % 2 ? "96" : "128";
        host(x, w.z, cpu, "1048576", "x86_64", "0", hx, &ax);
        host(y, v.z, cpu, "1048576", "x86_64", "0", hy, &ay);
        assert_string_equal(hx, hy);
    }
    for (int i = 0; i < 400; i++) {
        uint64_t r = fsmtest_rnd(&seed);
        unsigned op = (unsigned)(r % 16);
        char cpu[8], mem[16], host_id[FSM_ID_SIZE];
        int rx, ry;
        r >>= 8;
        if (op == 0 || op == 1) {
            const char *act = op == 0 ? "DisableHost" : "EnableHost";
            snprintf(host_id, sizeof host_id, "host-%08u",
                     (unsigned)(r % 7) + 1);
            rx = fsmtest_call(x, act, &x->admin, "HostID", host_id, NULL);
            ry = fsmtest_call(y, act, &y->admin, "HostID", host_id, NULL);
            assert_int_equal(rx, ry);
            continue;
        }
        if (op == 2 && n_vms > 0) {
            unsigned k = (unsigned)(r % n_vms);
            rx =
                fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vms[k], NULL);
            ry =
                fsmtest_call(y, "DeleteVMInstance", &v.t, "VMID", vms[k], NULL);
            assert_int_equal(rx, ry);
            memmove(vms[k], vms[k + 1], (n_vms - k - 1) * sizeof vms[0]);
            n_vms--;
            continue;
        }
        snprintf(cpu, sizeof cpu, "%u", 1 + (unsigned)(r % 3));
        snprintf(mem, sizeof mem, "%u", 512u << (unsigned)((r >> 4) % 4));
        {
            const char *img = (r >> 8) % 5 == 0 ? w.arm : w.img;
            const char *gpu = (r >> 12) % 7 == 0 ? "1" : "0";
            rx = fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                              "ImageID", img, "CPU", cpu, "Memory", mem, "GPU",
                              gpu, NULL);
            if (rx == 0) {
                snprintf(host_id, sizeof host_id, "%s",
                         fsmtest_res_str(x, "HostID"));
                if (n_vms < 64) {
                    snprintf(vms[n_vms++], FSM_ID_SIZE, "%s",
                             fsmtest_res_str(x, "VMID"));
                }
            }
            ry = fsmtest_call(y, "CreateVMInstance", &v.t, "ZoneID", v.z,
                              "ImageID", img, "CPU", cpu, "Memory", mem, "GPU",
                              gpu, NULL);
            assert_int_equal(rx, ry);
            if (rx == 0) {
                assert_string_equal(fsmtest_res_str(y, "HostID"), host_id);
                picks++;
            }
        }
    }
    assert_true(picks > 100);
    fsmtest_free(y);
}

static void stale_placement(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    struct yh_buf e1 = YH_BUF_INIT, e2 = YH_BUF_INIT, res = YH_BUF_INIT;
    struct yh_buf req = YH_BUF_INIT;
    msgpack_packer pk;
    msgpack_unpacked u;
    size_t off = 0;
    struct fsmtest_tick tc;

    world(x, &w);
    /* two creates placed on the same state both pick h1 (6 CPUs each fit
     * 12); the second no longer fits at apply */
    msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_kv_str(&pk, "ZoneID", w.z);
    yh_mp_pack_kv_str(&pk, "ImageID", w.img);
    yh_mp_pack_kv_str(&pk, "CPU", "7");
    yh_mp_pack_kv_str(&pk, "Memory", "1024");
    msgpack_unpacked_init(&u);
    msgpack_unpack_next(&u, (const char *)req.data, req.len, &off);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 1, &e1, &res),
                     0);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 2, &e2, &res),
                     0);
    assert_true(e1.len > 0 && e2.len > 0);
    assert_int_equal(fsmtest_apply_raw(x, e1.data, e1.len), 0);
    assert_int_equal(fsmtest_apply_raw(x, e2.data, e2.len), YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "stale placement"));
    /* a placement on a host whose lease ended meanwhile is stale too */
    yh_buf_reset(&e1);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 3, &e1, &res),
                     0);
    assert_true(e1.len == 0); /* nothing fits 7 more: h1 has 5 left */
    yh_buf_reset(&req);
    msgpack_packer_init(&pk, &req, yh_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    yh_mp_pack_kv_str(&pk, "ZoneID", w.z);
    yh_mp_pack_kv_str(&pk, "ImageID", w.img);
    yh_mp_pack_kv_str(&pk, "CPU", "1");
    yh_mp_pack_kv_str(&pk, "Memory", "1024");
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    off = 0;
    msgpack_unpack_next(&u, (const char *)req.data, req.len, &off);
    yh_buf_reset(&res);
    assert_int_equal(fsm_cmd_prepare(x->f, "CreateVMInstance", &u.data, &w.t,
                                     "", x->time, 4, &e1, &res),
                     0);
    assert_true(e1.len > 0);
    x->time += 31 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 3); /* every lease ended */
    assert_int_equal(fsmtest_apply_raw(x, e1.data, e1.len), YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "not healthy"));
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&e1);
    yh_buf_release(&e2);
    yh_buf_release(&res);
    yh_buf_release(&req);
}

static int report(struct fsmtest *x,
                  const struct fsm_actor *agent,
                  const char *vm,
                  const char *st,
                  int64_t gen)
{
    char g[32];

    snprintf(g, sizeof g, "%lld", (long long)gen);
    return fsmtest_call(x, "ReportState", agent, "ResourceID", vm, "State", st,
                        "Generation", g, NULL);
}

static int64_t vm_int(struct fsmtest *x,
                      const struct fsm_actor *a,
                      const char *vm,
                      const char *key)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeVMInstance", a, "VMIDs.0", vm, NULL), 0);
    return fsmtest_info_int(x, 0, key);
}

static const char *vm_str(struct fsmtest *x,
                          const struct fsm_actor *a,
                          const char *vm,
                          const char *key)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeVMInstance", a, "VMIDs.0", vm, NULL), 0);
    return fsmtest_info_str(x, 0, key);
}

static const char *job_state(struct fsmtest *x,
                             const struct fsm_actor *a,
                             const char *job)
{
    if (fsmtest_call(x, "DescribeJob", a, "JobIDs.0", job, NULL) != 0) {
        fprintf(stderr, "job [%s]: %s\n", job, fsmtest_res_str(x, "Message"));
        fail();
    }
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    return fsmtest_info_str(x, 0, "State");
}

static void lifecycle(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], job[FSM_ID_SIZE], job2[FSM_ID_SIZE];
    const struct fsm_actor *ag;
    int64_t g1, g2;

    world(x, &w);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), 0);
    snprintf(vm, sizeof vm, "%s", fsmtest_res_str(x, "VMID"));
    snprintf(job, sizeof job, "%s", fsmtest_res_str(x, "JobID"));
    ag = &w.agent[1];
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[1]);
    g1 = vm_int(x, &w.t, vm, "Generation");
    assert_string_equal(job_state(x, &w.t, job), "Running");
    assert_int_equal(
        fsmtest_call(x, "DescribeJob", &w.t2, "JobIDs.0", job, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);

    /* reports: only the VM's host, valid states, issued generations */
    assert_int_equal(report(x, &w.agent[0], vm, "Running", g1), YH_EPERM);
    assert_int_equal(report(x, &w.t, vm, "Running", g1), YH_EPERM);
    assert_int_equal(report(x, ag, vm, "Flying", g1), YH_EINVAL);
    assert_int_equal(report(x, ag, vm, "Running", g1 + 1000), YH_EINVAL);
    assert_int_equal(report(x, ag, "uhost-99999999", "Running", g1),
                     YH_ENOTFOUND);
    assert_int_equal(report(x, ag, vm, "Running", g1), 0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Running");
    assert_string_equal(job_state(x, &w.t, job), "Success");

    /* stop: transitional until the executor reports the new generation */
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Stopping");
    snprintf(job2, sizeof job2, "%s", fsmtest_res_str(x, "JobID"));
    g2 = vm_int(x, &w.t, vm, "Generation");
    assert_true(g2 > g1);
    /* a late report of the old generation is observed, not settled */
    assert_int_equal(report(x, ag, vm, "Running", g1), 0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopping");
    assert_int_equal(report(x, ag, vm, "Stopped", g2), 0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopped");
    assert_int_equal(vm_int(x, &w.t, vm, "ObservedGeneration"), g2);
    assert_string_equal(job_state(x, &w.t, job2), "Success");
    /* an older generation never overwrites a newer one */
    assert_int_equal(report(x, ag, vm, "Running", g1), YH_ECONFLICT);
    assert_string_equal(vm_str(x, &w.t, vm, "ObservedState"), "Stopped");
    /* stopping again is a no-op success */
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    assert_int_equal(vm_int(x, &w.t, vm, "Generation"), g2);
    /* restart needs a running machine */
    assert_int_equal(
        fsmtest_call(x, "RestartVMInstance", &w.t, "VMID", vm, NULL),
        YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t2, "VMID", vm, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, NULL),
                     YH_EMISSING);

    /* resize while stopped: capacity, quota, then an executor job */
    assert_int_equal(fsmtest_call(x, "ResizeVMConfig", &w.t, "VMID", vm, NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "13", NULL),
        YH_ECAPACITY); /* 2 + 11 more > 12 */
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                                  "ResourceType", "CPU", "Limit", "3", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "4", NULL),
        YH_EQUOTA);
    assert_int_equal(fsmtest_call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU",
                                  "3", "Memory", "4096", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Resizing");
    g2 = vm_int(x, &w.t, vm, "Generation");
    assert_int_equal(vm_int(x, &w.t, vm, "CPU"), 3);
    assert_int_equal(report(x, ag, vm, "Stopped", g2), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL),
        0);
    assert_int_equal(fsmtest_info_int(x, 0, "UsedCPU"), 3);
    assert_int_equal(fsmtest_info_int(x, 0, "UsedMemory"), 4096);
    /* resizing a running machine is refused */
    assert_int_equal(fsmtest_call(x, "StartVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Starting");
    snprintf(job, sizeof job, "%s", fsmtest_res_str(x, "JobID"));
    assert_int_equal(
        fsmtest_call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "2", NULL),
        YH_ESTATE);
    /* restart supersedes the start's job if it is still running */
    assert_int_equal(
        fsmtest_call(x, "RestartVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Restarting");
    assert_string_equal(job_state(x, &w.t, job), "Superseded");
    g2 = vm_int(x, &w.t, vm, "Generation");
    /* an executor failure fails the job */
    snprintf(job, sizeof job, "%s", vm_str(x, &w.t, vm, "JobID"));
    assert_int_equal(report(x, ag, vm, "Error", g2), 0);
    assert_string_equal(job_state(x, &w.t, job), "Failed");
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Error");

    /* delete: recycle bin (capacity kept), purge releases it */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &w.t, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_call(x, "StartVMInstance", &w.t, "VMID", vm, NULL),
                     YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "DesiredState"), "Stopped");
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL),
        0);
    assert_int_equal(fsmtest_info_int(x, 0, "UsedCPU"), 3);
    /* recovered as its executor last saw it; deleted again */
    assert_int_equal(
        fsmtest_call(x, "RecoverResource", &w.t, "ResourceID", vm, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Error");
    assert_string_equal(vm_str(x, &w.t, vm, "DesiredState"), "Stopped");
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", vm, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[1], NULL),
        0);
    assert_int_equal(fsmtest_info_int(x, 0, "UsedCPU"), 0);
    assert_int_equal(fsmtest_info_int(x, 0, "VMCount"), 0);
    assert_int_equal(fsmtest_call(x, "DescribeQuota", &w.t, NULL), 0);
    for (unsigned i = 0; i < fsmtest_n_infos(x); i++) {
        if (strcmp(fsmtest_info_str(x, i, "ResourceType"), "CPU") == 0 ||
            strcmp(fsmtest_info_str(x, i, "ResourceType"), "VM") == 0) {
            assert_int_equal(fsmtest_info_int(x, i, "Used"), 0);
        }
    }
}

static void vm_billing(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], job[FSM_ID_SIZE];
    struct fsmtest_tick tc;

    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period", "10",
                     "GracePeriod", "10", "HostLease", "100000", NULL),
        0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent[i], NULL),
                         0);
    }
    assert_int_equal(
        fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "CPU", "ChargeType",
                     "Dynamic", "Price", "100", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "Memory",
                                  "ChargeType", "Dynamic", "Price", "50", NULL),
                     0);
    /* 2 CPU + 2 GB = 300 per period: needs the balance */
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), YH_EBALANCE);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount", "500",
                     "FromType", "Bank", "SerialNo", "s1", NULL),
        0);
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                                  "ResourceType", "VM", "Limit", "1", NULL),
                     0);
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "2", "2048"), 0);
    snprintf(vm, sizeof vm, "%s", fsmtest_res_str(x, "VMID"));
    assert_int_equal(create_vm(x, &w.t, w.z, w.img, "1", "512"), YH_EQUOTA);
    assert_int_equal(report(x, &w.agent[1], vm, "Running",
                            vm_int(x, &w.t, vm, "Generation")),
                     0);
    /* a job still running when billing stops the machine */
    assert_int_equal(
        fsmtest_call(x, "RestartVMInstance", &w.t, "VMID", vm, NULL), 0);
    snprintf(job, sizeof job, "%s", fsmtest_res_str(x, "JobID"));
    /* two periods: 500 - 600 < 0, then the grace, then the stop */
    x->time += 20 * SEC;
    assert_int_equal(fsmtest_tick(x, &tc), 2);
    x->time += 11 * SEC;
    assert_true(fsmtest_tick(x, &tc) >= 1);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopping");
    /* the restart can never complete: it failed, saying why */
    assert_string_equal(job_state(x, &w.t, job), "Failed");
    assert_string_equal(fsmtest_info_str(x, 0, "Message"),
                        "stopped by billing (Arrears)");
    assert_true(fsmtest_info_int(x, 0, "FinishTime") > 0);
    assert_string_equal(vm_str(x, &w.t, vm, "DesiredState"), "Stopped");
    assert_string_equal(vm_str(x, &w.t, vm, "SuspendReason"), "Arrears");
    assert_int_equal(fsmtest_call(x, "StartVMInstance", &w.t, "VMID", vm, NULL),
                     YH_ESTATE);
    assert_int_equal(report(x, &w.agent[1], vm, "Stopped",
                            vm_int(x, &w.t, vm, "Generation")),
                     0);
    assert_string_equal(vm_str(x, &w.t, vm, "State"), "Stopped");
    assert_string_equal(job_state(x, &w.t, job), "Failed");
}

/* ---- determinism: a random stream of compute commands ---- */

/* call() that records what was applied: x->log takes every entry */
#define CALL(...) fsmtest_call(__VA_ARGS__, NULL)

static void determinism(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct fsm_actor t[2], agent[3];
    char tid[2][FSM_ID_SIZE], z[FSM_ID_SIZE], h[3][FSM_ID_SIZE];
    char img[FSM_ID_SIZE], vm[FSM_ID_SIZE], a[32], b[32];
    uint64_t s = 0x13198a2e03707344ull;
    unsigned long long n_vm = 0;
    struct yh_buf res = YH_BUF_INIT, bb = YH_BUF_INIT;
    char *dump1;
    int skipped;
    uint64_t tag;

    x->log = fsmtest_log_new(4000);
    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, T0, &bb), 0);
    assert_int_equal(
        fsm_apply(y->f, 1, bb.data, bb.len, &res, NULL, &tag, &skipped), 0);
    yh_buf_release(&bb);
    CALL(x, "ModifyBillingConfig", &x->admin, "Period", "5", "GracePeriod",
         "30", "RecycleAfter", "30", "Retention", "30", "HostLease", "20");
    CALL(x, "ModifyPrice", &x->admin, "Spec", "CPU", "ChargeType", "Dynamic",
         "Price", "2");
    CALL(x, "CreateZone", &x->admin, "Name", "z", "CPUOvercommit", "200");
    snprintf(z, sizeof z, "%s", fsmtest_res_str(x, "ZoneID"));
    CALL(x, "CreateStoragePool", &x->admin, "ZoneID", z, "SetType", "Standard",
         "Backend", "ceph", "Pool", "std", "Capacity", "1000000");
    CALL(x, "CreateImage", &x->admin, "Name", "i", "Size", "5");
    snprintf(img, sizeof img, "%s", fsmtest_res_str(x, "ImageID"));
    for (int i = 0; i < 3; i++) {
        struct fsm_key k;
        CALL(x, "RegisterHost", &x->admin, "ZoneID", z, "CPU", "4", "Memory",
             "8192");
        snprintf(h[i], FSM_ID_SIZE, "%s", fsmtest_res_str(x, "HostID"));
        assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k),
                         0);
        agent[i] = k.actor;
    }
    for (int i = 0; i < 2; i++) {
        struct fsm_key k;
        snprintf(a, sizeof a, "t%d@x.io", i);
        CALL(x, "CreateUser", &x->admin, "UserEmail", a, "PassWord",
             "secret-pass");
        snprintf(tid[i], FSM_ID_SIZE, "%s", fsmtest_res_str(x, "UserID"));
        CALL(x, "CreateAPIKey", &x->admin, "UserID", tid[i]);
        assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k),
                         0);
        t[i] = k.actor;
        CALL(x, "Recharge", &x->admin, "UserID", tid[i], "Amount", "200",
             "FromType", "Bank", "SerialNo", a);
    }
    for (unsigned i = 0; i < 500; i++) {
        unsigned u = (unsigned)(fsmtest_rnd(&s) % 2);
        unsigned hh = (unsigned)(fsmtest_rnd(&s) % 3);
        snprintf(vm, sizeof vm, "uhost-%08llu",
                 (unsigned long long)(n_vm > 5 ? n_vm - fsmtest_rnd(&s) % 6
                                               : 1 + fsmtest_rnd(&s) % 6));
        switch (fsmtest_rnd(&s) % 12) {
        case 0:
        case 1:
            snprintf(a, sizeof a, "%llu",
                     (unsigned long long)(1 + fsmtest_rnd(&s) % 4));
            CALL(x, "CreateVMInstance", &t[u], "ZoneID", z, "ImageID", img,
                 "CPU", a, "Memory", "1024");
            if (strncmp(fsmtest_res_str(x, "VMID"), "uhost-", 6) == 0) {
                n_vm = strtoull(fsmtest_res_str(x, "VMID") + 6, NULL, 10);
            }
            break;
        case 2:
            CALL(x, fsmtest_rnd(&s) % 2 ? "StartVMInstance" : "StopVMInstance",
                 &t[u], "VMID", vm);
            break;
        case 3:
            CALL(x,
                 fsmtest_rnd(&s) % 2 ? "RestartVMInstance" : "DeleteVMInstance",
                 &t[u], "VMID", vm);
            break;
        case 4:
            CALL(x, fsmtest_rnd(&s) % 2 ? "PurgeResource" : "RecoverResource",
                 &t[u], "ResourceID", vm);
            break;
        case 5:
            snprintf(a, sizeof a, "%llu",
                     (unsigned long long)(1 + fsmtest_rnd(&s) % 4));
            CALL(x, "ResizeVMConfig", &t[u], "VMID", vm, "CPU", a);
            break;
        case 6:
        case 7:
            snprintf(b, sizeof b, "%llu",
                     (unsigned long long)(x->index - fsmtest_rnd(&s) % 20));
            if (fsmtest_call(x, "DescribeVMInstance", &x->admin, "VMIDs.0", vm,
                             NULL) == 0 &&
                fsmtest_n_infos(x) == 1) {
                /* its host; a well-behaved executor also reports the
                 * current generation and the desired state */
                for (int k = 0; k < 3; k++) {
                    if (strcmp(h[k], fsmtest_info_str(x, 0, "HostID")) == 0) {
                        hh = (unsigned)k;
                    }
                }
                if (fsmtest_rnd(&s) % 2) {
                    snprintf(b, sizeof b, "%lld",
                             (long long)fsmtest_info_int(x, 0, "Generation"));
                    snprintf(a, sizeof a, "%s",
                             fsmtest_info_str(x, 0, "DesiredState"));
                    CALL(x, "ReportState", &agent[hh], "ResourceID", vm,
                         "State", a, "Generation", b);
                    break;
                }
                /* a late report of an older generation */
                snprintf(
                    b, sizeof b, "%lld",
                    (long long)fsmtest_info_int(x, 0, "ObservedGeneration") -
                        (long long)(fsmtest_rnd(&s) % 2));
            }
            CALL(x, "ReportState", &agent[hh], "ResourceID", vm, "State",
                 fsmtest_rnd(&s) % 2 ? "Running" : "Stopped", "Generation", b);
            break;
        case 8:
            CALL(x, "HostHeartbeat", &agent[hh]);
            break;
        case 9:
            snprintf(a, sizeof a, "sn-%llu",
                     (unsigned long long)(fsmtest_rnd(&s) % 30));
            CALL(x, "Recharge", &x->admin, "UserID", tid[u], "Amount", "50",
                 "FromType", "Bank", "SerialNo", a);
            break;
        default:
            x->time += (1 + fsmtest_rnd(&s) % 6) * SEC;
            assert_int_equal(
                fsm_leader_tick(x->f, x->time, fsmtest_tick_apply_cb, x), 0);
            break;
        }
        if (fsmtest_rnd(&s) % 11 == 0) {
            assert_int_equal(fsm_flush(x->f), 0);
        }
    }
    assert_true(x->log->n > 250);
    fsmtest_replay(y->f, x->log, 13, 0);
    dump1 = fsmtest_assert_same(x->f, y->f);
    assert_non_null(strstr(dump1, "\"Action\": \"_HostExpire\""));
    assert_non_null(strstr(dump1, "\"Action\": \"_BillCharge\""));
    assert_non_null(strstr(dump1, "\"State\": \"Success\""));
    assert_non_null(strstr(dump1, "\"RetCode\": 160"));
    assert_non_null(strstr(dump1, "\"RetCode\": 171"));
    free(dump1);
    fsmtest_log_free(x->log);
    x->log = NULL;
    yh_buf_release(&res);
    fsmtest_free(y);
}

/* An administrator's DescribeVMInstance pages through 'res_list' (block
 * counts, then listed IDs): every Offset/Limit gives exactly the slice of
 * the machines not Recycled in ID order, across blocks of 1,000 IDs, after
 * deletes (recycled), purges and recoveries. */
#define PG_VMS 2150
static char pg_ids[PG_VMS][FSM_ID_SIZE];
static int pg_live[PG_VMS];

static void admin_page_check(struct fsmtest *x)
{
    static unsigned live[PG_VMS];
    static const uint64_t offs[] = {0,    1,    99,   998,  999,  1000,
                                    1001, 1500, 1998, 1999, 2000, 2001};
    static const uint64_t lims[] = {1, 7, 100};
    unsigned n = 0;
    char o[32], l[32];

    for (unsigned i = 0; i < PG_VMS; i++) {
        if (pg_live[i]) {
            live[n++] = i;
        }
    }
    for (unsigned a = 0; a < sizeof offs / sizeof offs[0] + 2; a++) {
        uint64_t off = a < sizeof offs / sizeof offs[0]
                           ? offs[a]
                           : (a == sizeof offs / sizeof offs[0] ? n - 1 : n);
        for (unsigned b = 0; b < sizeof lims / sizeof lims[0]; b++) {
            uint64_t want = off >= n            ? 0
                            : n - off < lims[b] ? n - off
                                                : lims[b];
            snprintf(o, sizeof o, "%" PRIu64, off);
            snprintf(l, sizeof l, "%" PRIu64, lims[b]);
            assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &x->admin,
                                          "Offset", o, "Limit", l, NULL),
                             0);
            assert_int_equal(fsmtest_res_int(x, "TotalCount"), n);
            assert_int_equal(fsmtest_n_infos(x), want);
            for (unsigned i = 0; i < want; i++) {
                assert_string_equal(fsmtest_info_str(x, i, "VMID"),
                                    pg_ids[live[off + i]]);
            }
        }
    }
}

static void admin_paging(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t[3], agent;
    char z[FSM_ID_SIZE], h[FSM_ID_SIZE], img[FSM_ID_SIZE];
    unsigned total = 0;

    for (unsigned i = 0; i < 3; i++) {
        char email[32];
        snprintf(email, sizeof email, "p%u@x.io", i);
        fsmtest_make_tenant(x, email, &t[i], NULL);
    }
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "864000", NULL),
                     0);
    zone(x, "z1", "1000", z);
    fsmtest_pool(x, z, "Standard");
    host(x, z, "4096", "67108864", "x86_64", "0", h, &agent);
    image(x, "x86_64", img);
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "ResourceType",
                                  "VM", "Limit", "100000", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "ResourceType",
                                  "CPU", "Limit", "100000", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "ResourceType",
                                  "Memory", "Limit", "100000000", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &x->admin, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(fsmtest_n_infos(x), 0);
    for (unsigned i = 0; i < PG_VMS; i++) {
        assert_int_equal(create_vm(x, &t[i % 3], z, img, "1", "512"), 0);
        snprintf(pg_ids[i], FSM_ID_SIZE, "%s", fsmtest_res_str(x, "VMID"));
        pg_live[i] = 1;
        assert_true(i == 0 || strcmp(pg_ids[i - 1], pg_ids[i]) < 0);
    }
    admin_page_check(x);
    /* deleted machines are Recycled (not listed); purged ones are gone;
     * every 4th of the first 1,000 IDs goes, and the whole block 1001-1999
     * except three */
    for (unsigned i = 0; i < PG_VMS; i++) {
        int del =
            (i < 1000 && i % 4 == 0) ||
            (i >= 1000 && i < 2000 && i != 1000 && i != 1500 && i != 1998);
        if (!del) {
            continue;
        }
        assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &t[i % 3], "VMID",
                                      pg_ids[i], NULL),
                         0);
        pg_live[i] = 0;
        if (i % 8 == 0) {
            assert_int_equal(fsmtest_call(x, "PurgeResource", &t[i % 3],
                                          "ResourceID", pg_ids[i], NULL),
                             0);
        }
    }
    admin_page_check(x);
    /* recovered: listed again */
    assert_int_equal(fsmtest_call(x, "RecoverResource", &t[1501 % 3],
                                  "ResourceID", pg_ids[1501], NULL),
                     0);
    pg_live[1501] = 1;
    admin_page_check(x);
    /* the tenants' own listings (their index) agree */
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(
            fsmtest_call(x, "DescribeVMInstance", &t[i], "Limit", "1", NULL),
            0);
        total += (unsigned)fsmtest_res_int(x, "TotalCount");
    }
    {
        unsigned n = 0;
        for (unsigned i = 0; i < PG_VMS; i++) {
            n += (unsigned)pg_live[i];
        }
        assert_int_equal(total, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(infra, fsmtest_setup, fsmtest_teardown),
        cmocka_unit_test_setup_teardown(scheduler, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(scheduler_cache, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(stale_placement, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(lifecycle, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(vm_billing, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(admin_paging, fsmtest_setup,
                                        fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
