/* Unit tests of the machine operations beyond the lifecycle
 * (fsm/tbl_vmops.c): ReinstallVMInstance, ResetVMInstancePassword,
 * MigrateVMInstance (the scheduler's stamp re-validated at apply, both
 * hosts' capacity, completion and rollback by executor reports), machines
 * of hosts that go Unknown, and determinism of a random stream of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fsm/base/buf.h"
#include "fsm/base/err.h"
#include "fsm/base/mp.h"
#include "fsm/fsm.h"
#include "fsm/fsm_int.h"
#include "tests/lib/fsmtest.h"

#define SEC FSMTEST_SEC
#define T0 FSMTEST_T0
#define NH 5

/* A zone (no overcommit), three x86 hosts of 8 CPU / 16 GB, an arm host
 * with 2 T4 GPUs and an arm host without GPUs; images; two tenants. */
struct world
{
    struct fsm_actor t, t2;     /* tenants */
    char tid[FSM_ID_SIZE];      /* t's ID */
    char z[FSM_ID_SIZE];        /* zone */
    char h[NH][FSM_ID_SIZE];    /* hosts */
    struct fsm_actor agent[NH]; /* their executors */
    char pub[NH][FSM_KEY_SIZE]; /* their PublicKeys */
    char img[FSM_ID_SIZE];      /* x86, 10 GB */
    char img2[FSM_ID_SIZE];     /* x86, 5 GB */
    char big[FSM_ID_SIZE];      /* x86, 100 GB */
    char arm[FSM_ID_SIZE];      /* aarch64 */
};

static void id_of(struct fsmtest *x, const char *key, char *out)
{
    snprintf(out, FSM_ID_SIZE, "%s", fsmtest_res_str(x, key));
}

static void host(struct fsmtest *x,
                 struct world *w,
                 int i,
                 const char *arch,
                 const char *gpu)
{
    struct fsm_key k;

    assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", w->z,
                                  "CPU", "8", "Memory", "16384", "Arch", arch,
                                  "GPU", gpu, "GPUModel", "T4", NULL),
                     0);
    id_of(x, "HostID", w->h[i]);
    snprintf(w->pub[i], sizeof w->pub[i], "%s",
             fsmtest_res_str(x, "PublicKey"));
    assert_int_equal(fsm_key_get(x->f, w->pub[i], &k), 0);
    w->agent[i] = k.actor;
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w->agent[i], NULL), 0);
}

static void image(struct fsmtest *x,
                  const char *arch,
                  const char *size,
                  char *out)
{
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "os",
                                  "Arch", arch, "Size", size, NULL),
                     0);
    id_of(x, "ImageID", out);
}

static void world(struct fsmtest *x, struct world *w)
{
    fsmtest_make_tenant(x, "t@x.io", &w->t, w->tid);
    fsmtest_make_tenant(x, "u@x.io", &w->t2, NULL);
    /* leases long enough for every test to control expiries itself */
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100000", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CreateZone", &x->admin, "Name", "z1",
                                  "CPUOvercommit", "100", NULL),
                     0);
    id_of(x, "ZoneID", w->z);
    fsmtest_pool(x, w->z, "Standard");
    host(x, w, 0, "x86_64", "0");
    host(x, w, 1, "x86_64", "0");
    host(x, w, 2, "x86_64", "0");
    host(x, w, 3, "aarch64", "2");
    host(x, w, 4, "aarch64", "0");
    image(x, "x86_64", "10", w->img);
    image(x, "x86_64", "5", w->img2);
    image(x, "x86_64", "100", w->big);
    image(x, "aarch64", "10", w->arm);
}

static int host_index(const struct world *w, const char *id)
{
    for (int i = 0; i < NH; i++) {
        if (strcmp(w->h[i], id) == 0) {
            return i;
        }
    }
    fail_msg("no host '%s'", id);
    return -1;
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

static void describe(struct fsmtest *x, const char *vm)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeVMInstance", &x->admin, "VMIDs.0", vm, NULL),
        0);
    assert_int_equal(fsmtest_n_infos(x), 1);
}

static int64_t vm_int(struct fsmtest *x, const char *vm, const char *key)
{
    describe(x, vm);
    return fsmtest_info_int(x, 0, key);
}

static const char *vm_str(struct fsmtest *x, const char *vm, const char *key)
{
    describe(x, vm);
    return fsmtest_info_str(x, 0, key);
}

static int vm_has(struct fsmtest *x, const char *vm, const char *key)
{
    describe(x, vm);
    return yh_mp_get(fsmtest_info(x, 0), key) != NULL;
}

static int64_t host_int(struct fsmtest *x, const char *h, const char *key)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", h, NULL), 0);
    return fsmtest_info_int(x, 0, key);
}

static const char *job_state(struct fsmtest *x, const char *job)
{
    assert_int_equal(
        fsmtest_call(x, "DescribeJob", &x->admin, "JobIDs.0", job, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    return fsmtest_info_str(x, 0, "State");
}

/* The executor of the machine's host reports its desired state at its
 * current generation. */
static void settle(struct fsmtest *x, const struct world *w, const char *vm)
{
    char st[32];
    int64_t gen;
    int i;

    describe(x, vm);
    i = host_index(w, fsmtest_info_str(x, 0, "HostID"));
    snprintf(st, sizeof st, "%s", fsmtest_info_str(x, 0, "DesiredState"));
    gen = fsmtest_info_int(x, 0, "Generation");
    assert_int_equal(report(x, &w->agent[i], vm, st, gen), 0);
    assert_string_equal(vm_str(x, vm, "State"), st);
}

/* A machine of @cpu CPUs (tenant @a, image @img) settled Running; its ID
 * in @vm, its host's index returned. */
static int vm_new(struct fsmtest *x,
                  const struct world *w,
                  const struct fsm_actor *a,
                  const char *img,
                  const char *cpu,
                  char *vm)
{
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", a, "ZoneID", w->z,
                                  "ImageID", img, "CPU", cpu, "Memory", "1024",
                                  "Password", "first-pass-1", NULL),
                     0);
    id_of(x, "VMID", vm);
    settle(x, w, vm);
    return host_index(w, vm_str(x, vm, "HostID"));
}

static void stop(struct fsmtest *x, const struct world *w, const char *vm)
{
    assert_int_equal(
        fsmtest_call(x, "StopVMInstance", &x->admin, "VMID", vm, NULL), 0);
    settle(x, w, vm);
}

/* @s does not occur in the @n bytes at @p. */
static void absent(const void *p, size_t n, const char *s)
{
    assert_null(memmem(p, n, s, strlen(s)));
}

/* The password is nowhere: not in the last envelope, the state, the
 * machine's description or its executor's spec; the hash is in the state
 * and only there. */
static void pw_hidden(struct fsmtest *x, const char *vm, const char *pw)
{
    struct yh_buf spec = YH_BUF_INIT;
    char h[FSM_ID_SIZE], also[FSM_ID_SIZE];
    char *d = fsmtest_dump_str(x->f);

    absent(x->env.data, x->env.len, pw);
    absent(d, strlen(d), pw);
    assert_non_null(strstr(d, "\"_PwHash\""));
    free(d);
    describe(x, vm);
    assert_null(yh_mp_get(fsmtest_info(x, 0), "_PwHash"));
    assert_null(yh_mp_get(fsmtest_info(x, 0), "_PwSalt"));
    absent(x->resbuf.data, x->resbuf.len, pw);
    absent(x->resbuf.data, x->resbuf.len, "PwHash");
    assert_int_equal(fsm_host_spec2(x->f, vm, h, also, &spec), 0);
    absent(spec.data, spec.len, pw);
    absent(spec.data, spec.len, "Pw");
    absent(spec.data, spec.len, "Salt");
    absent(spec.data, spec.len, "Password\"");
    yh_buf_release(&spec);
}

/* The machine's stored password hash (hex), from the dump. */
static void pw_hash(struct fsmtest *x, const char *vm, char out[65])
{
    char *d = fsmtest_dump_str(x->f);
    char *p = strstr(d, vm);
    char *q;

    out[0] = '\0';
    while (p != NULL && (q = strstr(p, "\"_PwHash\": \"")) != NULL) {
        char *end = strstr(p + 1, "\"VMID\": \"uhost-");
        if (end != NULL && end < q) {
            p = strstr(end + 1, vm);
            continue;
        }
        memcpy(out, q + 12, 64);
        out[64] = '\0';
        break;
    }
    free(d);
}

/* One decoded spec of @vm. */
static void spec_get(struct fsmtest *x,
                     const char *vm,
                     char host[FSM_ID_SIZE],
                     char also[FSM_ID_SIZE],
                     msgpack_unpacked *u,
                     struct yh_buf *raw)
{
    size_t off = 0;

    yh_buf_reset(raw);
    assert_int_equal(fsm_host_spec2(x->f, vm, host, also, raw), 0);
    msgpack_unpacked_destroy(u);
    msgpack_unpacked_init(u);
    assert_int_equal(
        msgpack_unpack_next(u, (const char *)raw->data, raw->len, &off),
        MSGPACK_UNPACK_SUCCESS);
}

/* ---- ReinstallVMInstance ---- */

static void reinstall(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], vm2[FSM_ID_SIZE], job[FSM_ID_SIZE];
    char custom[FSM_ID_SIZE], hash0[65], hash1[65];
    char hh[FSM_ID_SIZE], also[FSM_ID_SIZE], s[64];
    struct yh_buf raw = YH_BUF_INIT;
    msgpack_unpacked u;
    int64_t g0, g;
    int hi;

    msgpack_unpacked_init(&u);
    world(x, &w);
    hi = vm_new(x, &w, &w.t, w.img, "2", vm);
    /* validation */
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "Password",
                                  "new-pass-12", NULL),
                     YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm, NULL),
        YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "short", NULL),
                     YH_EINVAL);
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", "uhost-99999999",
                     "Password", "new-pass-12", NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t2, "VMID", vm,
                                  "Password", "new-pass-12", NULL),
                     YH_ENOTFOUND);
    /* a running machine is not reinstalled */
    g0 = vm_int(x, vm, "Generation");
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "new-pass-12", NULL),
                     YH_ESTATE);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "must be stopped"));
    assert_int_equal(vm_int(x, vm, "Generation"), g0);
    /* nor one on its way to Stopped */
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "new-pass-12", NULL),
                     YH_ESTATE);
    settle(x, &w, vm);
    g0 = vm_int(x, vm, "Generation");
    /* the image: exists, the host's architecture, fits the boot disk,
     * not another tenant's */
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm, "ImageID",
                     "image-99999999", "Password", "new-pass-12", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm, "ImageID",
                     w.arm, "Password", "new-pass-12", NULL),
        YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "aarch64"));
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm, "ImageID",
                     w.big, "Password", "new-pass-12", NULL),
        YH_EINVAL);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "needs 100 GB"));
    vm_new(x, &w, &w.t2, w.img, "1", vm2);
    stop(x, &w, vm2);
    assert_int_equal(fsmtest_call(x, "CreateCustomImage", &w.t2, "VMID", vm2,
                                  "Name", "mine", NULL),
                     0);
    id_of(x, "ImageID", custom);
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm, "ImageID",
                     custom, "Password", "new-pass-12", NULL),
        YH_ENOTFOUND);
    /* its own tenant may use it */
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t2, "VMID", vm2, "ImageID",
                     custom, "Password", "new-pass-12", NULL),
        0);
    assert_int_equal(vm_int(x, vm, "Generation"), g0); /* the stop's */

    /* reinstall keeping the image */
    pw_hash(x, vm, hash0);
    assert_int_equal(strlen(hash0), 64);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "second-pass-2", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Reinstalling");
    assert_string_equal(fsmtest_res_str(x, "ImageID"), w.img);
    id_of(x, "JobID", job);
    assert_true(strlen(job) > 0);
    pw_hidden(x, vm, "second-pass-2");
    pw_hash(x, vm, hash1);
    assert_int_equal(strlen(hash1), 64);
    assert_string_not_equal(hash0, hash1);
    g = vm_int(x, vm, "Generation");
    assert_true(g > g0);
    assert_int_equal(vm_int(x, vm, "ReinstallGeneration"), g);
    assert_string_equal(vm_str(x, vm, "DesiredState"), "Stopped");
    assert_string_equal(job_state(x, job), "Running");
    /* the executor's spec: the image, the reinstall generation */
    spec_get(x, vm, hh, also, &u, &raw);
    assert_string_equal(hh, w.h[hi]);
    assert_string_equal(also, "");
    assert_int_equal(yh_mp_strcpy(&u.data, "ImageID", s, sizeof s), 0);
    assert_string_equal(s, w.img);
    assert_int_equal(yh_mp_strcpy(&u.data, "State", s, sizeof s), 0);
    assert_string_equal(s, "Reinstalling");
    {
        int64_t v;
        assert_int_equal(yh_mp_int(&u.data, "ReinstallGeneration", &v), 0);
        assert_int_equal(v, g);
        assert_int_equal(yh_mp_int(&u.data, "Generation", &v), 0);
        assert_int_equal(v, g);
    }
    /* no other change while it is not Stopped */
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "third-pass-3", NULL),
                     YH_ESTATE);
    /* the executor reports the generation: settled, job done */
    assert_int_equal(report(x, &w.agent[(hi + 1) % 3], vm, "Stopped", g),
                     YH_EPERM);
    assert_int_equal(report(x, &w.agent[hi], vm, "Stopped", g), 0);
    assert_string_equal(vm_str(x, vm, "State"), "Stopped");
    assert_string_equal(job_state(x, job), "Success");

    /* another image of the architecture */
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm, "ImageID",
                     w.img2, "Password", "third-pass-3", NULL),
        0);
    assert_string_equal(fsmtest_res_str(x, "ImageID"), w.img2);
    id_of(x, "JobID", job);
    pw_hidden(x, vm, "third-pass-3");
    spec_get(x, vm, hh, also, &u, &raw);
    assert_int_equal(yh_mp_strcpy(&u.data, "ImageID", s, sizeof s), 0);
    assert_string_equal(s, w.img2);
    g = vm_int(x, vm, "Generation");
    /* an executor failure fails the job */
    assert_int_equal(report(x, &w.agent[hi], vm, "Error", g), 0);
    assert_string_equal(vm_str(x, vm, "State"), "Error");
    assert_string_equal(job_state(x, job), "Failed");
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "third-pass-3", NULL),
                     YH_ESTATE);
    /* recycled machines are not reinstalled */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t2, "VMID", vm2, NULL), 0);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t2, "VMID", vm2,
                                  "Password", "new-pass-12", NULL),
                     YH_ESTATE);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&raw);
}

/* ---- ResetVMInstancePassword ---- */

static void reset_password(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], job[FSM_ID_SIZE], h0[65], h1[65];
    char hh[FSM_ID_SIZE], also[FSM_ID_SIZE];
    struct yh_buf raw = YH_BUF_INIT;
    msgpack_unpacked u;
    int64_t g, v;
    int hi;

    msgpack_unpacked_init(&u);
    world(x, &w);
    /* a machine created without a password gets one */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        0);
    id_of(x, "VMID", vm);
    settle(x, &w, vm);
    hi = host_index(&w, vm_str(x, vm, "HostID"));
    pw_hash(x, vm, h0);
    assert_string_equal(h0, "");
    /* validation */
    assert_int_equal(
        fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID", vm, NULL),
        YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t,
                                  "Password", "reset-pass-1", NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "1234567", NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t2, "VMID",
                                  vm, "Password", "reset-pass-1", NULL),
                     YH_ENOTFOUND);
    /* UCloudStack: stopped machines only */
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "reset-pass-1", NULL),
                     YH_ESTATE);
    stop(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "reset-pass-1", NULL),
                     0);
    assert_string_equal(fsmtest_res_str(x, "State"), "ResettingPassword");
    id_of(x, "JobID", job);
    pw_hidden(x, vm, "reset-pass-1");
    pw_hash(x, vm, h0);
    assert_int_equal(strlen(h0), 64);
    g = vm_int(x, vm, "Generation");
    assert_int_equal(vm_int(x, vm, "CredentialGeneration"), g);
    spec_get(x, vm, hh, also, &u, &raw);
    assert_int_equal(yh_mp_int(&u.data, "CredentialGeneration", &v), 0);
    assert_int_equal(v, g);
    assert_int_equal(report(x, &w.agent[hi], vm, "Stopped", g), 0);
    assert_string_equal(vm_str(x, vm, "State"), "Stopped");
    assert_string_equal(job_state(x, job), "Success");
    /* again: a new hash (new salt) even for the same password */
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "reset-pass-1", NULL),
                     0);
    pw_hidden(x, vm, "reset-pass-1");
    pw_hash(x, vm, h1);
    assert_string_not_equal(h0, h1);
    assert_true(vm_int(x, vm, "CredentialGeneration") > g);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&raw);
}

/* ---- MigrateVMInstance ---- */

static void migrate_checks(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], gvm[FSM_ID_SIZE], fill[FSM_ID_SIZE];
    int hi;

    world(x, &w);
    hi = vm_new(x, &w, &w.t, w.img, "2", vm);
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &w.t, "VMID", vm, NULL),
        YH_EPERM); /* the administrator's */
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, NULL),
                     YH_EMISSING);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID",
                                  "uhost-99999999", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", "host-99999999", NULL),
                     YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", w.h[hi], NULL),
                     YH_EINVAL);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", w.h[3], NULL),
                     YH_ECAPACITY);
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "of another architecture"));
    /* a disabled target, a full one */
    assert_int_equal(fsmtest_call(x, "DisableHost", &x->admin, "HostID",
                                  w.h[(hi + 1) % 3], NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", w.h[(hi + 1) % 3], NULL),
                     YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "not healthy"));
    assert_int_equal(fsmtest_call(x, "EnableHost", &x->admin, "HostID",
                                  w.h[(hi + 1) % 3], NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t2, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "7", "Memory", "1024", NULL),
        0);
    id_of(x, "VMID", fill);
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                     "TargetHostID", fsmtest_res_str(x, "HostID"), NULL),
        YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "without CPU room"));
    /* not settled: transitional states are refused */
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", fill, NULL),
        YH_ESTATE); /* Creating */
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "Creating"));
    /* GPUs: the only other arm host has none */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.arm, "CPU", "1", "Memory", "1024", "GPU", "1", NULL),
        0);
    id_of(x, "VMID", gvm);
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[3]);
    settle(x, &w, gvm);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID",
                                  gvm, "TargetHostID", w.h[4], NULL),
                     YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "without the GPUs"));
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", gvm, NULL),
        YH_ECAPACITY); /* the scheduler finds none either */
    assert_non_null(
        strstr(fsmtest_res_str(x, "Message"), "insufficient capacity"));
    /* without GPUs the arm machine may go to h4 */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.arm, "CPU", "1", "Memory", "1024", NULL),
        0);
    id_of(x, "VMID", gvm);
    settle(x, &w, gvm);
    hi = host_index(&w, vm_str(x, gvm, "HostID"));
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", gvm, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "HostID"), w.h[hi == 3 ? 4 : 3]);
}

static void migrate(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], job[FSM_ID_SIZE];
    char hh[FSM_ID_SIZE], also[FSM_ID_SIZE], disk[FSM_ID_SIZE];
    struct yh_buf raw = YH_BUF_INIT;
    msgpack_unpacked u;
    int src, dst, third;
    int64_t g;

    msgpack_unpacked_init(&u);
    world(x, &w);
    src = vm_new(x, &w, &w.t, w.img, "2", vm);
    /* the scheduler picks the least loaded other x86 host */
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL), 0);
    assert_string_equal(fsmtest_res_str(x, "State"), "Migrating");
    assert_string_equal(fsmtest_res_str(x, "MigrateFromHostID"), w.h[src]);
    dst = host_index(&w, fsmtest_res_str(x, "HostID"));
    assert_true(dst != src && dst < 3);
    third = 3 - src - dst;
    id_of(x, "JobID", job);
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[dst]);
    assert_string_equal(vm_str(x, vm, "MigrateFromHostID"), w.h[src]);
    assert_string_equal(vm_str(x, vm, "DesiredState"), "Running");
    g = vm_int(x, vm, "Generation");
    /* capacity on both hosts while migrating */
    assert_int_equal(host_int(x, w.h[src], "UsedCPU"), 2);
    assert_int_equal(host_int(x, w.h[dst], "UsedCPU"), 2);
    assert_int_equal(host_int(x, w.h[dst], "VMCount"), 1);
    /* both hosts get the spec */
    spec_get(x, vm, hh, also, &u, &raw);
    assert_string_equal(hh, w.h[dst]);
    assert_string_equal(also, w.h[src]);
    {
        char s[64];
        assert_int_equal(yh_mp_strcpy(&u.data, "HostID", s, sizeof s), 0);
        assert_string_equal(s, w.h[dst]);
        assert_int_equal(
            yh_mp_strcpy(&u.data, "MigrateFromHostID", s, sizeof s), 0);
        assert_string_equal(s, w.h[src]);
        assert_int_equal(yh_mp_strcpy(&u.data, "State", s, sizeof s), 0);
        assert_string_equal(s, "Migrating");
    }
    assert_int_equal(fsm_host_spec(x->f, vm, hh, &raw), 0);
    assert_string_equal(hh, w.h[dst]);
    /* nothing else changes the machine meanwhile */
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", vm, NULL),
                     YH_ESTATE);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "migrating"));
    assert_int_equal(
        fsmtest_call(x, "RestartVMInstance", &w.t, "VMID", vm, NULL),
        YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm, NULL), YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "ResizeVMConfig", &w.t, "VMID", vm, "CPU", "1", NULL),
        YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "new-pass-12", NULL),
                     YH_ESTATE);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "new-pass-12", NULL),
                     YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL),
        YH_ESTATE);
    /* reports: the two hosts only; a third one is refused */
    assert_int_equal(report(x, &w.agent[third], vm, "Running", g), YH_EPERM);
    /* an older generation from the source is only observed */
    assert_int_equal(report(x, &w.agent[src], vm, "Running", g - 1), 0);
    assert_string_equal(vm_str(x, vm, "State"), "Migrating");
    assert_string_equal(vm_str(x, vm, "MigrateFromHostID"), w.h[src]);
    /* the target reports it runs there: done */
    assert_int_equal(report(x, &w.agent[dst], vm, "Running", g), 0);
    assert_string_equal(vm_str(x, vm, "State"), "Running");
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[dst]);
    assert_false(vm_has(x, vm, "MigrateFromHostID"));
    assert_string_equal(job_state(x, job), "Success");
    assert_int_equal(host_int(x, w.h[src], "UsedCPU"), 0);
    assert_int_equal(host_int(x, w.h[src], "VMCount"), 0);
    assert_int_equal(host_int(x, w.h[dst], "UsedCPU"), 2);
    assert_int_equal(fsm_host_spec2(x->f, vm, hh, also, &raw), 0);
    assert_string_equal(hh, w.h[dst]);
    assert_string_equal(also, "");
    /* the old host no longer reports on it */
    assert_int_equal(report(x, &w.agent[src], vm, "Running", g), YH_EPERM);

    /* rollback: the source reports the machine is still there */
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", w.h[src], NULL),
                     0);
    id_of(x, "JobID", job);
    g = vm_int(x, vm, "Generation");
    assert_int_equal(host_int(x, w.h[src], "UsedCPU"), 2);
    assert_int_equal(report(x, &w.agent[dst], vm, "Running", g), 0);
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[dst]);
    assert_false(vm_has(x, vm, "MigrateFromHostID"));
    assert_string_equal(vm_str(x, vm, "State"), "Running");
    assert_string_equal(job_state(x, job), "Failed");
    assert_int_equal(host_int(x, w.h[src], "UsedCPU"), 0);
    assert_int_equal(host_int(x, w.h[src], "VMCount"), 0);
    assert_int_equal(host_int(x, w.h[dst], "UsedCPU"), 2);
    assert_int_equal(host_int(x, w.h[dst], "VMCount"), 1);

    /* rollback: the target reports an error receiving it (a stopped
     * machine: cold) */
    stop(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", w.h[third], NULL),
                     0);
    id_of(x, "JobID", job);
    g = vm_int(x, vm, "Generation");
    assert_int_equal(report(x, &w.agent[third], vm, "Error", g), 0);
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[dst]);
    assert_string_equal(vm_str(x, vm, "State"), "Error");
    assert_string_equal(job_state(x, job), "Failed");
    assert_int_equal(host_int(x, w.h[third], "UsedCPU"), 0);
    assert_int_equal(host_int(x, w.h[dst], "UsedCPU"), 2);
    /* the source reports the truth at the same generation */
    assert_int_equal(report(x, &w.agent[dst], vm, "Stopped", g), 0);
    assert_string_equal(vm_str(x, vm, "State"), "Stopped");

    /* disks bound to a migrating machine stay as they are */
    assert_int_equal(fsmtest_call(x, "CreateStoragePool", &x->admin, "ZoneID",
                                  w.z, "SetType", "Standard", "Backend", "ceph",
                                  "Pool", "p", "Capacity", "1000", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateDisk", &w.t, "ZoneID", w.z, "Size", "10", NULL),
        0);
    id_of(x, "DiskID", disk);
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL), 0);
    g = vm_int(x, vm, "Generation");
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", disk, "VMID", vm, NULL),
        YH_ESTATE);
    assert_int_equal(
        report(x, &w.agent[host_index(&w, vm_str(x, vm, "HostID"))], vm,
               "Stopped", g),
        0);
    assert_false(vm_has(x, vm, "MigrateFromHostID"));
    assert_int_equal(
        fsmtest_call(x, "AttachDisk", &w.t, "DiskID", disk, "VMID", vm, NULL),
        0);
    /* a detach while migrating is refused as well */
    settle(x, &w, vm);
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL), 0);
    assert_int_equal(fsmtest_call(x, "DetachDisk", &w.t, "DiskID", disk, NULL),
                     YH_ESTATE);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&raw);
}

/* Prepare @action now (without applying it); the envelope in @env. */
static void prepare(struct fsmtest *x,
                    const char *action,
                    const struct fsm_actor *a,
                    struct yh_buf *env,
                    const char *k,
                    ...)
{
    struct yh_buf req = YH_BUF_INIT, res = YH_BUF_INIT;
    msgpack_unpacked u;
    size_t off = 0;
    va_list ap;

    va_start(ap, k);
    fsmtest_req_vbuild(&req, k, ap);
    va_end(ap);
    msgpack_unpacked_init(&u);
    assert_int_equal(
        msgpack_unpack_next(&u, (const char *)req.data, req.len, &off),
        MSGPACK_UNPACK_SUCCESS);
    yh_buf_reset(env);
    assert_int_equal(
        fsm_cmd_prepare(x->f, action, &u.data, a, "", x->time, 9, env, &res),
        0);
    assert_true(env->len > 0);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&req);
    yh_buf_release(&res);
}

static void migrate_stale(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], a[FSM_ID_SIZE], b[FSM_ID_SIZE], aag[FSM_ID_SIZE];
    struct yh_buf env = YH_BUF_INIT;
    int src, pick;
    int64_t g;

    world(x, &w);
    src = vm_new(x, &w, &w.t, w.img, "4", vm);
    /* the leader's scheduler stamps a target... */
    prepare(x, "MigrateVMInstance", &x->admin, &env, "VMID", vm, NULL);
    /* ...which is filled before the migration applies: h0..h2 all get 6
     * CPUs more (the source has 4 used, so 2 + 6 = 8 there) */
    for (int i = 0; i < 3; i++) {
        /* the least loaded first: the two empty hosts, then the source */
        assert_int_equal(
            fsmtest_call(x, "CreateVMInstance", &w.t2, "ZoneID", w.z, "ImageID",
                         w.img, "CPU", i < 2 ? "6" : "4", "Memory", "1024",
                         NULL),
            0);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(host_int(x, w.h[i], "UsedCPU"), i == src ? 8 : 6);
    }
    g = vm_int(x, vm, "Generation");
    assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "stale placement"));
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "without CPU room"));
    /* nothing changed */
    assert_int_equal(vm_int(x, vm, "Generation"), g);
    assert_string_equal(vm_str(x, vm, "State"), "Running");
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[src]);
    assert_false(vm_has(x, vm, "MigrateFromHostID"));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(host_int(x, w.h[i], "UsedCPU"), i == src ? 8 : 6);
    }
    /* the same with a target the administrator named */
    fsmtest_free(x);
    x = fsmtest_new();
    *state = x;
    fsmtest_bootstrap(x);
    world(x, &w);
    src = vm_new(x, &w, &w.t, w.img, "4", vm);
    pick = (src + 1) % 3;
    prepare(x, "MigrateVMInstance", &x->admin, &env, "VMID", vm, "TargetHostID",
            w.h[pick], NULL);
    while (host_int(x, w.h[pick], "UsedCPU") < 8) {
        assert_int_equal(
            fsmtest_call(x, "CreateVMInstance", &w.t2, "ZoneID", w.z, "ImageID",
                         w.img, "CPU", "1", "Memory", "1024", NULL),
            0);
    }
    assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), w.h[pick]));
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[src]);

    /* anti-affinity: re-checked at apply too */
    fsmtest_free(x);
    x = fsmtest_new();
    *state = x;
    fsmtest_bootstrap(x);
    world(x, &w);
    assert_int_equal(
        fsmtest_call(x, "CreateAntiAffinityGroup", &w.t, "Name", "g", NULL), 0);
    id_of(x, "AntiAffinityGroupID", aag);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "AntiAffinityGroupID", aag, NULL),
                     0);
    id_of(x, "VMID", a);
    settle(x, &w, a);
    src = host_index(&w, vm_str(x, a, "HostID"));
    prepare(x, "MigrateVMInstance", &x->admin, &env, "VMID", a, NULL);
    /* two more of the group: one on each other x86 host */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                         w.img, "CPU", "1", "Memory", "1024",
                         "AntiAffinityGroupID", aag, NULL),
            0);
        id_of(x, "VMID", b);
        assert_int_not_equal(host_index(&w, fsmtest_res_str(x, "HostID")), src);
    }
    assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ECAPACITY);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "anti-affinity"));
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", a, NULL),
        YH_ECAPACITY);
    /* a migrating member holds both its hosts: purge one, migrate another,
     * and a new member fits on neither */
    assert_int_equal(fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", b, NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", b, NULL), 0);
    settle(x, &w, a);
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", a, NULL), 0);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "AntiAffinityGroupID", aag, NULL),
                     YH_ECAPACITY);
    yh_buf_release(&env);
}

static void expire_only(struct fsmtest *x, const struct world *w, int i);

/* Billing may stop, recycle and purge a machine during a migration: the
 * purge gives both hosts their room back. The machine carries every field
 * a machine record can have (address, password, reinstall and password
 * generations, migration, Unknown marks, suspension, recycle bin). */
static void migrate_purged(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], vpc[FSM_ID_SIZE], sub[FSM_ID_SIZE];
    struct fsmtest_tick tc;
    int src, dst, stopped = 0, recycled = 0, gone = 0;
    int64_t g;

    world(x, &w);
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin, "Period",
                                  "10", "GracePeriod", "10", "RecycleAfter",
                                  "10", "Retention", "10", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "ModifyPrice", &x->admin, "Spec", "CPU", "ChargeType",
                     "Dynamic", "Price", "100", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "Recharge", &x->admin, "UserID", w.tid, "Amount", "250",
                     "FromType", "Bank", "SerialNo", "s1", NULL),
        0);
    assert_int_equal(
        fsmtest_call(x, "CreateVPC", &w.t, "Name", "v", "Network",
                     "10.0.0.0/16", "IPv6Network", "fd00:1::/48", NULL),
        0);
    id_of(x, "VPCID", vpc);
    assert_int_equal(
        fsmtest_call(x, "CreateSubnet", &w.t, "VPCID", vpc, "Network",
                     "10.0.0.0/24", "IPv6Network", "fd00:1:0:1::/64", NULL),
        0);
    id_of(x, "SubnetID", sub);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "2", "Memory", "1024", "Password",
                     "first-pass-1", "SubnetID", sub, "Name", "full", NULL),
        0);
    id_of(x, "VMID", vm);
    settle(x, &w, vm);
    stop(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "second-pass-2", NULL),
                     0);
    settle(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "third-pass-3", NULL),
                     0);
    settle(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "StartVMInstance", &w.t, "VMID", vm, NULL),
                     0);
    settle(x, &w, vm);
    src = host_index(&w, vm_str(x, vm, "HostID"));
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL), 0);
    dst = host_index(&w, fsmtest_res_str(x, "HostID"));
    g = vm_int(x, vm, "Generation");
    expire_only(x, &w, src);
    assert_string_equal(vm_str(x, vm, "State"), "Unknown");
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100000", NULL),
                     0);
    /* two periods (200 each) run the balance into arrears; after the
     * grace the machine is stopped (a new generation, still migrating),
     * then recycled, then purged */
    for (int i = 0; i < 60 && !gone; i++) {
        x->time += 2 * SEC;
        fsmtest_tick(x, &tc);
        assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &x->admin,
                                      "VMIDs.0", vm, NULL),
                         0);
        if (fsmtest_n_infos(x) == 1 &&
            strcmp(fsmtest_info_str(x, 0, "SuspendReason"), "Arrears") == 0 &&
            !stopped) {
            stopped = 1;
            assert_true(fsmtest_info_int(x, 0, "Generation") > g);
            assert_string_equal(fsmtest_info_str(x, 0, "State"), "Stopping");
            assert_string_equal(fsmtest_info_str(x, 0, "MigrateFromHostID"),
                                w.h[src]);
        }
        assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &x->admin,
                                      "ResourceIDs.0", vm, NULL),
                         0);
        if (fsmtest_n_infos(x) == 1 && !recycled) {
            char *d = fsmtest_dump_str(x->f);
            recycled = 1;
            assert_string_equal(fsmtest_info_str(x, 0, "MigrateFromHostID"),
                                w.h[src]);
            assert_string_equal(fsmtest_info_str(x, 0, "InternalIP"),
                                "10.0.0.2");
            assert_true(fsmtest_info_int(x, 0, "ReinstallGeneration") > 0);
            assert_true(fsmtest_info_int(x, 0, "CredentialGeneration") > 0);
            assert_non_null(strstr(d, "\"_UnknownState\": \"Migrating\""));
            free(d);
        }
        gone = fsmtest_call(x, "PurgeResource", &x->admin, "ResourceID", vm,
                            NULL) == YH_ENOTFOUND;
    }
    assert_true(stopped);
    assert_true(recycled);
    assert_true(gone);
    assert_int_equal(host_int(x, w.h[src], "UsedCPU"), 0);
    assert_int_equal(host_int(x, w.h[src], "VMCount"), 0);
    assert_int_equal(host_int(x, w.h[dst], "UsedCPU"), 0);
    assert_int_equal(host_int(x, w.h[dst], "VMCount"), 0);
}

/* ---- hosts that go Unknown ---- */

static void expire_only(struct fsmtest *x, const struct world *w, int i)
{
    struct fsmtest_tick tc;

    /* @i heartbeats, then every other host, then @i's lease ends first */
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w->agent[i], NULL), 0);
    x->time += 50 * SEC;
    for (int k = 0; k < NH; k++) {
        if (k != i) {
            assert_int_equal(
                fsmtest_call(x, "HostHeartbeat", &w->agent[k], NULL), 0);
        }
    }
    x->time += 48 * SEC;
    fsmtest_tick(x, &tc);
    (void)tc;
    for (int k = 0; k < NH; k++) {
        assert_int_equal(fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0",
                                      w->h[k], NULL),
                         0);
        assert_string_equal(fsmtest_info_str(x, 0, "State"),
                            k == i ? "Unknown" : "Online");
    }
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100000", NULL),
                     0);
    for (int k = 0; k < NH; k++) {
        if (k != i) {
            assert_int_equal(
                fsmtest_call(x, "HostHeartbeat", &w->agent[k], NULL), 0);
        }
    }
}

/* A new 1-CPU machine that the scheduler puts on host @hi (the ones it
 * puts elsewhere are left as they are). */
static void on_host(struct fsmtest *x, const struct world *w, int hi, char *vm)
{
    for (int n = 0; n < 10; n++) {
        assert_int_equal(
            fsmtest_call(x, "CreateVMInstance", &w->t, "ZoneID", w->z,
                         "ImageID", w->img, "CPU", "1", "Memory", "1024", NULL),
            0);
        id_of(x, "VMID", vm);
        if (host_index(w, fsmtest_res_str(x, "HostID")) == hi) {
            return;
        }
    }
    fail_msg("never placed on host %d", hi);
}

static void unknown(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char run[FSM_ID_SIZE], run2[FSM_ID_SIZE], stopping[FSM_ID_SIZE];
    char creating[FSM_ID_SIZE], del[FSM_ID_SIZE], away[FSM_ID_SIZE];
    char later[FSM_ID_SIZE];
    int64_t g;
    int hi;

    world(x, &w);
    hi = vm_new(x, &w, &w.t, w.img, "1", run);
    /* the least loaded host now is another one */
    assert_int_not_equal(vm_new(x, &w, &w.t, w.img, "1", away), hi);
    on_host(x, &w, hi, run2);
    settle(x, &w, run2);
    on_host(x, &w, hi, stopping);
    settle(x, &w, stopping);
    assert_int_equal(
        fsmtest_call(x, "StopVMInstance", &w.t, "VMID", stopping, NULL), 0);
    on_host(x, &w, hi, creating);
    on_host(x, &w, hi, del);
    settle(x, &w, del);
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", del, NULL), 0);

    expire_only(x, &w, hi);
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", w.h[hi], NULL),
        0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Unknown");
    /* its machines: Unknown, never Stopped */
    assert_string_equal(vm_str(x, run, "State"), "Unknown");
    assert_string_equal(vm_str(x, run, "ObservedState"), "Unknown");
    assert_string_equal(vm_str(x, run, "DesiredState"), "Running");
    assert_string_equal(vm_str(x, run2, "State"), "Unknown");
    assert_string_equal(vm_str(x, stopping, "State"), "Unknown");
    assert_string_equal(vm_str(x, stopping, "ObservedState"), "Unknown");
    assert_string_equal(vm_str(x, stopping, "DesiredState"), "Stopped");
    assert_string_equal(vm_str(x, creating, "State"), "Unknown");
    /* others' are not */
    assert_string_equal(vm_str(x, away, "State"), "Running");
    assert_string_equal(vm_str(x, away, "ObservedState"), "Running");
    /* a recycled one stays Recycled */
    assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &w.t, NULL),
                     0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 1);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Recycled");
    assert_string_equal(fsmtest_info_str(x, 0, "ObservedState"), "Running");
    /* a machine of an Unknown host is not migrated (no evacuation) nor
     * changed where a settled state is needed */
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", run, NULL),
        YH_ESTATE);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "Unknown"));
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  stopping, "Password", "new-pass-12", NULL),
                     YH_ESTATE);
    /* no new machine goes there */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                         w.img, "CPU", "1", "Memory", "512", NULL),
            0);
        id_of(x, "VMID", later);
        assert_int_not_equal(host_index(&w, fsmtest_res_str(x, "HostID")), hi);
    }
    /* the executor reports the stop it completed: the mark ends there */
    g = vm_int(x, stopping, "Generation");
    assert_int_equal(report(x, &w.agent[hi], stopping, "Stopped", g), 0);
    assert_string_equal(vm_str(x, stopping, "State"), "Stopped");
    assert_string_equal(vm_str(x, stopping, "ObservedState"), "Stopped");
    assert_false(vm_has(x, stopping, "_UnknownState"));
    /* a report of an older generation ends it too, without settling */
    g = vm_int(x, creating, "Generation");
    assert_int_equal(report(x, &w.agent[hi], creating, "Running", g - 1), 0);
    assert_string_equal(vm_str(x, creating, "State"), "Creating");
    assert_string_equal(vm_str(x, creating, "ObservedState"), "Running");
    /* a stop asked while Unknown is kept for the executor */
    assert_int_equal(fsmtest_call(x, "StopVMInstance", &w.t, "VMID", run, NULL),
                     0);
    assert_string_equal(vm_str(x, run, "State"), "Stopping");
    /* the host is back: the rest get their previous state */
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent[hi], NULL), 0);
    assert_string_equal(vm_str(x, run2, "State"), "Running");
    assert_string_equal(vm_str(x, run2, "ObservedState"), "Running");
    assert_string_equal(vm_str(x, run, "State"), "Stopping");
    assert_string_equal(vm_str(x, run, "ObservedState"), "Running");
    assert_string_equal(vm_str(x, stopping, "State"), "Stopped");
    assert_string_equal(vm_str(x, creating, "State"), "Creating");
    /* and no mark is left in the state */
    {
        char *d = fsmtest_dump_str(x->f);
        assert_null(strstr(d, "_UnknownState"));
        assert_null(strstr(d, "_UnknownObserved"));
        free(d);
    }
    /* a second heartbeat changes nothing */
    g = vm_int(x, run2, "Revision");
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent[hi], NULL), 0);
    assert_int_equal(vm_int(x, run2, "Revision"), g);

    /* a migration whose source goes Unknown: marked, then resolved by the
     * target's report */
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", run2, NULL), 0);
    g = vm_int(x, run2, "Generation");
    expire_only(x, &w, hi);
    assert_string_equal(vm_str(x, run2, "State"), "Unknown");
    assert_int_equal(
        report(x, &w.agent[host_index(&w, vm_str(x, run2, "HostID"))], run2,
               "Running", g),
        0);
    assert_string_equal(vm_str(x, run2, "State"), "Running");
    assert_string_equal(vm_str(x, run2, "ObservedState"), "Running");
    assert_false(vm_has(x, run2, "MigrateFromHostID"));
    assert_int_equal(host_int(x, w.h[hi], "UsedCPU"), 4); /* run2 left */
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &w.agent[hi], NULL), 0);
    assert_string_equal(vm_str(x, run2, "State"), "Running");
}

/* ---- machines by host ---- */

/* The "H" rows of 'res_list' are exactly the (host, machine) pairs the
 * machine records name: HostID, and MigrateFromHostID while migrating;
 * recycled machines included. Returns the number of pairs. */
struct pairs
{
    char (*p)[2 * FSM_ID_SIZE]; /* "host vm" */
    size_t n, cap;
};

static void pair_add(struct pairs *q, const char *host, const char *vm)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 256;
        q->p = realloc(q->p, q->cap * sizeof *q->p);
        assert_non_null(q->p);
    }
    snprintf(q->p[q->n++], sizeof q->p[0], "%s %s", host, vm);
}

static int pair_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

struct walk_arg
{
    struct pairs *q;
    const char *host;
};

static int walk_add(void *arg, const char *vm)
{
    struct walk_arg *w = arg;

    pair_add(w->q, w->host, vm);
    return 0;
}

static size_t host_index_exact(struct fsmtest *x)
{
    struct pairs recs = {NULL, 0, 0}, rows = {NULL, 0, 0};
    char hosts[64][FSM_ID_SIZE];
    unsigned nh = 0;
    struct fsm_rec r;
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    size_t n;
    int rc;

    assert_int_equal(fsm__rtxn_begin(x->f, &txn), 0);
    assert_int_equal(mdb_cursor_open(txn, x->f->dbis[FSM_TBL_RES], &cur), 0);
    fsm__rec_init(&r);
    k.mv_data = "uhost-";
    k.mv_size = 6;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > 6 && memcmp(k.mv_data, "uhost-", 6) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *hs[2];
        assert_int_equal(fsm__rec_decode(v.mv_data, v.mv_size, &r), 0);
        hs[0] = fsm__rec_s(&r, "HostID");
        hs[1] = fsm__rec_s(&r, "MigrateFromHostID");
        for (int i = 0; i < 2; i++) {
            unsigned j;
            if (hs[i][0] == '\0' || (i == 1 && strcmp(hs[0], hs[1]) == 0)) {
                continue;
            }
            pair_add(&recs, hs[i], fsm__rec_s(&r, "VMID"));
            for (j = 0; j < nh && strcmp(hosts[j], hs[i]) != 0; j++) {
            }
            if (j == nh) {
                assert_true(nh < 64);
                snprintf(hosts[nh++], FSM_ID_SIZE, "%s", hs[i]);
            }
        }
    }
    mdb_cursor_close(cur);
    fsm__rec_free(&r);
    /* every "H" row, whatever its host */
    assert_int_equal(mdb_cursor_open(txn, x->f->dbis[FSM_TBL_RES_LIST], &cur),
                     0);
    k.mv_data = "H";
    k.mv_size = 1;
    n = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size > 1 && ((const char *)k.mv_data)[0] == 'H';
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        n++;
    }
    mdb_cursor_close(cur);
    for (unsigned j = 0; j < nh; j++) {
        struct walk_arg w = {&rows, hosts[j]};
        assert_int_equal(fsm__host_vm_walk(x->f, txn, hosts[j], walk_add, &w),
                         0);
    }
    fsm__rtxn_end(x->f, txn);
    assert_int_equal(n, rows.n); /* no row of another host */
    assert_int_equal(recs.n, rows.n);
    qsort(recs.p, recs.n, sizeof recs.p[0], pair_cmp);
    qsort(rows.p, rows.n, sizeof rows.p[0], pair_cmp);
    for (size_t i = 0; i < recs.n; i++) {
        assert_string_equal(recs.p[i], rows.p[i]);
    }
    free(recs.p);
    free(rows.p);
    return n;
}

/* The machines of host @h per its rows, as "a,b,c". */
static void host_rows(struct fsmtest *x, const char *h, char *out, size_t size)
{
    struct pairs q = {NULL, 0, 0};
    struct walk_arg w = {&q, ""};
    size_t o = 0;
    MDB_txn *txn;

    assert_int_equal(fsm__rtxn_begin(x->f, &txn), 0);
    assert_int_equal(fsm__host_vm_walk(x->f, txn, h, walk_add, &w), 0);
    fsm__rtxn_end(x->f, txn);
    out[0] = '\0';
    for (size_t i = 0; i < q.n; i++) {
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "," : "",
                              q.p[i] + 1); /* after the empty host and ' ' */
        assert_true(o < size);
    }
    free(q.p);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
        n++;
    }
    return n;
}

#define N_OTHER 1000

static void unknown_by_host(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_actor t, ag[3];
    char tid[FSM_ID_SIZE], z[FSM_ID_SIZE], img[FSM_ID_SIZE];
    char h[3][FSM_ID_SIZE], mine[3][FSM_ID_SIZE], other[FSM_ID_SIZE];
    char list[256], want[256];
    struct fsmtest_tick tc;
    uint64_t reads;
    int64_t rev;
    char *d;

    fsmtest_make_tenant(x, "t@x.io", &t, tid);
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100000", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateZone", &x->admin, "Name", "z", NULL), 0);
    id_of(x, "ZoneID", z);
    fsmtest_pool(x, z, "Standard");
    assert_int_equal(fsmtest_call(x, "CreateImage", &x->admin, "Name", "os",
                                  "Size", "1", NULL),
                     0);
    id_of(x, "ImageID", img);
    for (int i = 0; i < 3; i++) {
        struct fsm_key k;
        assert_int_equal(fsmtest_call(x, "RegisterHost", &x->admin, "ZoneID", z,
                                      "CPU", i == 0 ? "8" : "4096", "Memory",
                                      i == 0 ? "16384" : "4194304", NULL),
                         0);
        id_of(x, "HostID", h[i]);
        assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k),
                         0);
        ag[i] = k.actor;
        if (i == 0) {
            assert_int_equal(fsmtest_call(x, "HostHeartbeat", &ag[0], NULL), 0);
            /* host 0 only: its three machines */
            for (int j = 0; j < 3; j++) {
                assert_int_equal(
                    fsmtest_call(x, "CreateVMInstance", &t, "ZoneID", z,
                                 "ImageID", img, "CPU", "1", "Memory", "512",
                                 NULL),
                    0);
                id_of(x, "VMID", mine[j]);
                assert_string_equal(fsmtest_res_str(x, "HostID"), h[0]);
            }
            assert_int_equal(
                fsmtest_call(x, "DisableHost", &x->admin, "HostID", h[0], NULL),
                0);
        } else {
            assert_int_equal(fsmtest_call(x, "HostHeartbeat", &ag[i], NULL), 0);
        }
    }
    /* 1,000 machines on the other two hosts */
    for (int j = 0; j < N_OTHER; j++) {
        assert_int_equal(
            fsmtest_call(x, "CreateVMInstance", &t, "ZoneID", z, "ImageID", img,
                         "CPU", "1", "Memory", "512", NULL),
            0);
        assert_string_not_equal(fsmtest_res_str(x, "HostID"), h[0]);
    }
    id_of(x, "VMID", other);
    assert_int_equal(
        fsmtest_call(x, "EnableHost", &x->admin, "HostID", h[0], NULL), 0);
    /* the rows say which machines each host has */
    assert_int_equal(host_index_exact(x), N_OTHER + 3);
    snprintf(want, sizeof want, "%s,%s,%s", mine[0], mine[1], mine[2]);
    host_rows(x, h[0], list, sizeof list);
    assert_string_equal(list, want);
    rev = vm_int(x, other, "Revision");

    /* host 0's lease ends first */
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &ag[0], NULL), 0);
    x->time += 50 * SEC;
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &ag[1], NULL), 0);
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &ag[2], NULL), 0);
    x->time += 48 * SEC;
    reads = x->f->stat_host_vm_reads;
    fsmtest_tick(x, &tc);
    assert_int_equal(
        fsmtest_call(x, "DescribeHost", &x->admin, "HostIDs.0", h[0], NULL), 0);
    assert_string_equal(fsmtest_info_str(x, 0, "State"), "Unknown");
    /* its three machines, and only they, were read and marked */
    assert_int_equal(x->f->stat_host_vm_reads - reads, 3);
    for (int j = 0; j < 3; j++) {
        assert_string_equal(vm_str(x, mine[j], "State"), "Unknown");
    }
    assert_string_not_equal(vm_str(x, other, "State"), "Unknown");
    assert_int_equal(vm_int(x, other, "Revision"), rev);
    d = fsmtest_dump_str(x->f);
    assert_int_equal(count_of(d, "\"_UnknownState\""), 3);
    free(d);
    /* back: the same three */
    reads = x->f->stat_host_vm_reads;
    assert_int_equal(fsmtest_call(x, "HostHeartbeat", &ag[0], NULL), 0);
    assert_int_equal(x->f->stat_host_vm_reads - reads, 3);
    for (int j = 0; j < 3; j++) {
        assert_string_equal(vm_str(x, mine[j], "State"), "Creating");
    }
    d = fsmtest_dump_str(x->f);
    assert_null(strstr(d, "_UnknownState"));
    free(d);
    assert_int_equal(fsmtest_call(x, "ModifyBillingConfig", &x->admin,
                                  "HostLease", "100000", NULL),
                     0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fsmtest_call(x, "HostHeartbeat", &ag[i], NULL), 0);
    }

    /* the rows follow a migration (both hosts while it runs, then the
     * target) and a purge */
    assert_int_equal(
        report(x, &ag[0], mine[0], "Running", vm_int(x, mine[0], "Generation")),
        0);
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID",
                                  mine[0], "TargetHostID", h[1], NULL),
                     0);
    host_rows(x, h[0], list, sizeof list);
    assert_string_equal(list, want);
    host_index_exact(x);
    assert_int_equal(
        report(x, &ag[1], mine[0], "Running", vm_int(x, mine[0], "Generation")),
        0);
    snprintf(want, sizeof want, "%s,%s", mine[1], mine[2]);
    host_rows(x, h[0], list, sizeof list);
    assert_string_equal(list, want);
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &t, "VMID", mine[1], NULL), 0);
    host_rows(x, h[0], list, sizeof list);
    assert_string_equal(list, want); /* recycled: still its host's */
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &t, "ResourceID", mine[1], NULL), 0);
    host_rows(x, h[0], list, sizeof list);
    assert_string_equal(list, mine[2]);
    assert_int_equal(host_index_exact(x), N_OTHER + 2);
}

/* ---- determinism ---- */

#define CALL(...) fsmtest_call(__VA_ARGS__, NULL)

static void determinism(void **state)
{
    struct fsmtest *x = *state;
    struct fsmtest *y = fsmtest_new();
    struct fsm_actor t, agent[4];
    char tid[FSM_ID_SIZE], z[FSM_ID_SIZE], h[4][FSM_ID_SIZE];
    char img[2][FSM_ID_SIZE], vm[FSM_ID_SIZE], a[32], b[32];
    uint64_t s = 0x2545f4914f6cdd1dull;
    unsigned long long n_vm = 0;
    struct yh_buf res = YH_BUF_INIT, bb = YH_BUF_INIT;
    unsigned migrated = 0, reinstalled = 0, reset = 0, unknowns = 0;
    char *dump1;
    int skipped;
    uint64_t tag;

    x->log = fsmtest_log_new(4000);
    assert_int_equal(
        fsm_cmd_bootstrap("adminpub", "adminpriv", NULL, 0, T0, &bb), 0);
    assert_int_equal(
        fsm_apply(y->f, 1, bb.data, bb.len, &res, NULL, &tag, &skipped), 0);
    yh_buf_release(&bb);
    CALL(x, "ModifyBillingConfig", &x->admin, "HostLease", "60");
    CALL(x, "CreateZone", &x->admin, "Name", "z", "CPUOvercommit", "150");
    snprintf(z, sizeof z, "%s", fsmtest_res_str(x, "ZoneID"));
    CALL(x, "CreateStoragePool", &x->admin, "ZoneID", z, "SetType", "Standard",
         "Backend", "ceph", "Pool", "std", "Capacity", "1000000");
    for (int i = 0; i < 2; i++) {
        CALL(x, "CreateImage", &x->admin, "Name", "i", "Size", i ? "5" : "8");
        snprintf(img[i], FSM_ID_SIZE, "%s", fsmtest_res_str(x, "ImageID"));
    }
    for (int i = 0; i < 4; i++) {
        struct fsm_key k;
        CALL(x, "RegisterHost", &x->admin, "ZoneID", z, "CPU", "8", "Memory",
             "16384");
        snprintf(h[i], FSM_ID_SIZE, "%s", fsmtest_res_str(x, "HostID"));
        assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k),
                         0);
        agent[i] = k.actor;
        CALL(x, "HostHeartbeat", &agent[i]);
    }
    CALL(x, "CreateUser", &x->admin, "UserEmail", "t@x.io", "PassWord",
         "secret-pass");
    snprintf(tid, FSM_ID_SIZE, "%s", fsmtest_res_str(x, "UserID"));
    {
        struct fsm_key k;
        CALL(x, "CreateAPIKey", &x->admin, "UserID", tid);
        assert_int_equal(fsm_key_get(x->f, fsmtest_res_str(x, "PublicKey"), &k),
                         0);
        t = k.actor;
    }
    for (unsigned i = 0; i < 700; i++) {
        unsigned hh = (unsigned)(fsmtest_rnd(&s) % 4);
        snprintf(vm, sizeof vm, "uhost-%08llu",
                 (unsigned long long)(n_vm > 5 ? n_vm - fsmtest_rnd(&s) % 6
                                               : 1 + fsmtest_rnd(&s) % 6));
        switch (fsmtest_rnd(&s) % 14) {
        case 0:
        case 1:
            snprintf(a, sizeof a, "%llu",
                     (unsigned long long)(1 + fsmtest_rnd(&s) % 3));
            CALL(x, "CreateVMInstance", &t, "ZoneID", z, "ImageID", img[0],
                 "CPU", a, "Memory", "1024", "Password", "pass-1234");
            if (strncmp(fsmtest_res_str(x, "VMID"), "uhost-", 6) == 0) {
                n_vm = strtoull(fsmtest_res_str(x, "VMID") + 6, NULL, 10);
            }
            break;
        case 2:
            CALL(x, fsmtest_rnd(&s) % 2 ? "StartVMInstance" : "StopVMInstance",
                 &t, "VMID", vm);
            break;
        case 3:
            if (fsmtest_rnd(&s) % 2) {
                reinstalled += CALL(x, "ReinstallVMInstance", &t, "VMID", vm,
                                    "ImageID", img[fsmtest_rnd(&s) % 2],
                                    "Password", "reinstall-pw") == 0;
            } else {
                reset += CALL(x, "ResetVMInstancePassword", &t, "VMID", vm,
                              "Password", "reset-pw-1") == 0;
            }
            break;
        case 4:
        case 5:
            if (fsmtest_rnd(&s) % 2) {
                migrated +=
                    CALL(x, "MigrateVMInstance", &x->admin, "VMID", vm) == 0;
            } else {
                migrated += CALL(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                 "TargetHostID", h[hh]) == 0;
            }
            break;
        case 6:
        case 7:
        case 8:
            /* a report from the machine's host, its source (during a
             * migration) or any host: the desired state, an error, or
             * the other state, of the current or an older generation */
            if (fsmtest_call(x, "DescribeVMInstance", &x->admin, "VMIDs.0", vm,
                             NULL) == 0 &&
                fsmtest_n_infos(x) == 1) {
                const char *on = fsmtest_info_str(x, 0, "HostID");
                const msgpack_object *from =
                    yh_mp_get(fsmtest_info(x, 0), "MigrateFromHostID");
                unsigned r = (unsigned)(fsmtest_rnd(&s) % 8);
                unknowns +=
                    strcmp(fsmtest_info_str(x, 0, "State"), "Unknown") == 0;
                if (from != NULL && r < 3) {
                    on = fsmtest_info_str(x, 0, "MigrateFromHostID");
                }
                for (int k = 0; k < 4; k++) {
                    if (r != 7 && strcmp(h[k], on) == 0) {
                        hh = (unsigned)k;
                    }
                }
                snprintf(
                    b, sizeof b, "%lld",
                    (long long)fsmtest_info_int(x, 0, "Generation") - (r == 6));
                snprintf(a, sizeof a, "%s",
                         r == 5   ? "Error"
                         : r == 4 ? "Stopped"
                                  : fsmtest_info_str(x, 0, "DesiredState"));
                CALL(x, "ReportState", &agent[hh], "ResourceID", vm, "State", a,
                     "Generation", b);
            }
            break;
        case 9:
        case 10:
            /* mostly every host (some leases end now and then) */
            for (unsigned k = 0; k < 4; k++) {
                if (k == hh || fsmtest_rnd(&s) % 4 != 0) {
                    CALL(x, "HostHeartbeat", &agent[k]);
                }
            }
            break;
        case 11:
            if (fsmtest_rnd(&s) % 3 == 0) {
                CALL(x,
                     fsmtest_rnd(&s) % 2 ? "DeleteVMInstance" : "PurgeResource",
                     &t, fsmtest_rnd(&s) % 3 ? "VMID" : "ResourceID", vm);
            }
            break;
        default:
            x->time += (1 + fsmtest_rnd(&s) % 10) * SEC;
            assert_int_equal(
                fsm_leader_tick(x->f, x->time, fsmtest_tick_apply_cb, x), 0);
            break;
        }
        if (fsmtest_rnd(&s) % 11 == 0) {
            assert_int_equal(fsm_flush(x->f), 0);
        }
    }
    print_message(
        "%u migrations, %u reinstalls, %u password resets, %u "
        "reports on Unknown machines\n",
        migrated, reinstalled, reset, unknowns);
    assert_true(migrated >= 5);
    assert_true(unknowns >= 1);
    assert_true(reinstalled >= 3);
    assert_true(reset >= 3);
    fsmtest_replay(y->f, x->log, 17, 0);
    dump1 = fsmtest_assert_same(x->f, y->f);
    assert_non_null(strstr(dump1, "\"Action\": \"MigrateVMInstance\""));
    assert_non_null(strstr(dump1, "\"Action\": \"_HostExpire\""));
    assert_null(strstr(dump1, "reinstall-pw"));
    assert_null(strstr(dump1, "reset-pw-1"));
    fsmtest_assert_restores(x->f, dump1);
    free(dump1);
    /* the capacity the hosts count is what their machines hold */
    for (int k = 0; k < 4; k++) {
        int64_t used = 0;
        assert_int_equal(fsmtest_call(x, "DescribeVMInstance", &x->admin,
                                      "Limit", "100", NULL),
                         0);
        for (unsigned i = 0; i < fsmtest_n_infos(x); i++) {
            const msgpack_object *from =
                yh_mp_get(fsmtest_info(x, i), "MigrateFromHostID");
            if (strcmp(fsmtest_info_str(x, i, "HostID"), h[k]) == 0 ||
                (from != NULL &&
                 strcmp(fsmtest_info_str(x, i, "MigrateFromHostID"), h[k]) ==
                     0)) {
                used += fsmtest_info_int(x, i, "CPU");
            }
        }
        assert_int_equal(fsmtest_call(x, "DescribeRecycledResource", &x->admin,
                                      "Limit", "100", NULL),
                         0);
        for (unsigned i = 0; i < fsmtest_n_infos(x); i++) {
            const msgpack_object *from =
                yh_mp_get(fsmtest_info(x, i), "MigrateFromHostID");
            if (strcmp(fsmtest_info_str(x, i, "HostID"), h[k]) == 0 ||
                (from != NULL &&
                 strcmp(fsmtest_info_str(x, i, "MigrateFromHostID"), h[k]) ==
                     0)) {
                used += fsmtest_info_int(x, i, "CPU");
            }
        }
        assert_int_equal(host_int(x, h[k], "UsedCPU"), used);
    }
    /* the machines-by-host rows match the records, here and restored */
    host_index_exact(x);
    host_index_exact(y);
    fsmtest_log_free(x->log);
    x->log = NULL;
    yh_buf_release(&res);
    fsmtest_free(y);
}

/* ---- DeleteImage ---- */

static void image_delete(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], vm2[FSM_ID_SIZE], cimg[FSM_ID_SIZE];

    world(x, &w);
    vm_new(x, &w, &w.t, w.img, "1", vm);
    stop(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "ModifyQuota", &x->admin, "UserID", w.tid,
                                  "ResourceType", "Image", "Limit", "1", NULL),
                     0);
    assert_int_equal(fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", vm,
                                  "Name", "mine", NULL),
                     0);
    id_of(x, "ImageID", cimg);
    assert_int_equal(fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", vm,
                                  "Name", "mine2", NULL),
                     YH_EQUOTA);
    /* validation, ownership */
    assert_int_equal(fsmtest_call(x, "DeleteImage", &w.t, NULL), YH_EMISSING);
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &w.t, "ImageID", "image-9", NULL),
        YH_ENOTFOUND);
    assert_int_equal(fsmtest_call(x, "DeleteImage", &w.t, "ImageID", vm, NULL),
                     YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &w.t2, "ImageID", cimg, NULL),
        YH_ENOTFOUND);
    /* a base image: the administrator only */
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &w.t, "ImageID", w.big, NULL), YH_EPERM);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), "base image"));
    /* in use by a machine */
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &x->admin, "ImageID", w.img, NULL),
        YH_ESTATE);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), vm));
    vm_new(x, &w, &w.t, cimg, "1", vm2);
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &w.t, "ImageID", cimg, NULL), YH_ESTATE);
    assert_non_null(strstr(fsmtest_res_str(x, "Message"), vm2));
    /* reinstalled from another image: no longer in use */
    stop(x, &w, vm2);
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm2, "ImageID",
                     w.img2, "Password", "second-pw-2", NULL),
        0);
    settle(x, &w, vm2);
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &w.t, "ImageID", cimg, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DescribeImage", &w.t, "ImageIDs.0", cimg, NULL), 0);
    assert_int_equal(fsmtest_res_int(x, "TotalCount"), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &w.t, "ImageID", cimg, NULL),
        YH_ENOTFOUND);
    /* its quota is free again; a create naming it finds nothing */
    assert_int_equal(fsmtest_call(x, "CreateCustomImage", &w.t, "VMID", vm,
                                  "Name", "mine3", NULL),
                     0);
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     cimg, "CPU", "1", "Memory", "1024", NULL),
        YH_ENOTFOUND);
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm2, "ImageID",
                     cimg, "Password", "third-pw-3", NULL),
        YH_ENOTFOUND);
    /* an unused base image */
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &x->admin, "ImageID", w.big, NULL), 0);
    /* a recycled machine still holds its image; purged, it does not */
    assert_int_equal(
        fsmtest_call(x, "DeleteVMInstance", &w.t, "VMID", vm, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &x->admin, "ImageID", w.img, NULL),
        YH_ESTATE);
    assert_int_equal(
        fsmtest_call(x, "PurgeResource", &w.t, "ResourceID", vm, NULL), 0);
    assert_int_equal(
        fsmtest_call(x, "DeleteImage", &x->admin, "ImageID", w.img, NULL), 0);
}

/* ---- the password sealed to the machine's host ---- */

static void hmac(const void *k,
                 size_t kl,
                 const void *a,
                 size_t al,
                 const void *b,
                 size_t bl,
                 unsigned char out[32])
{
    unsigned char buf[512];
    unsigned int n = 32;

    assert_true(al + bl <= sizeof buf);
    memcpy(buf, a, al);
    memcpy(buf + al, b, bl);
    assert_non_null(HMAC(EVP_sha256(), k, (int)kl, buf, al + bl, out, &n));
}

static void unhex(const char *h, unsigned char *out, size_t *n)
{
    *n = strlen(h) / 2;
    for (size_t i = 0; i < *n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

/* What the host's executor does: open CredentialSealed of @vm's spec with
 * the private key of the named PublicKey (which must be of @want_host, or
 * of @vm's host when NULL); its Generation in *gen. */
static void pw_open(struct fsmtest *x,
                    const char *vm,
                    const char *want_host,
                    char *out,
                    int64_t *gen)
{
    char h[FSM_ID_SIZE], also[FSM_ID_SIZE], field[300], nonce[64];
    char sealed_to[FSM_ID_SIZE];
    unsigned char k[32], blk[32], mac[32], ct[128], want[32];
    struct yh_buf raw = YH_BUF_INIT;
    const msgpack_object *sd, *v;
    msgpack_unpacked u;
    struct fsm_key key;
    size_t n, ml;

    msgpack_unpacked_init(&u);
    spec_get(x, vm, h, also, &u, &raw);
    sd = yh_mp_get(&u.data, "CredentialSealed");
    assert_non_null(sd);
    assert_int_equal(sd->type, MSGPACK_OBJECT_MAP);
#define SF(name)                                                 \
    (v = yh_mp_get(sd, name), assert_non_null(v),                \
     assert_int_equal(v->type, MSGPACK_OBJECT_STR),              \
     snprintf(field, sizeof field, "%.*s", (int)v->via.str.size, \
              v->via.str.ptr),                                   \
     field)
    snprintf(sealed_to, sizeof sealed_to, "%s", SF("HostID"));
    assert_string_equal(sealed_to, want_host != NULL ? want_host : h);
    assert_int_equal(fsm_key_get(x->f, SF("PublicKey"), &key), 0);
    assert_string_equal(key.actor.user_id, sealed_to);
    snprintf(nonce, sizeof nonce, "pw:%s", SF("Nonce"));
    hmac(key.private_key, strlen(key.private_key), "yunhan-psk-seal-v1",
         sizeof "yunhan-psk-seal-v1", nonce, strlen(nonce), k);
    unhex(SF("Ciphertext"), ct, &n);
    hmac(k, 32, "mac", 3, ct, n, mac);
    unhex(SF("MAC"), want, &ml);
    assert_int_equal(ml, 32);
    assert_memory_equal(mac, want, 32);
    for (size_t off = 0; off < n; off += 32) {
        unsigned char ctr[4] = {0, 0, 0, (unsigned char)(off / 32)};
        hmac(k, 32, "enc", 3, ctr, 4, blk);
        for (size_t j = 0; j < 32 && off + j < n; j++) {
            out[off + j] = (char)(ct[off + j] ^ blk[j]);
        }
    }
    out[n] = '\0';
#undef SF
    v = yh_mp_get(sd, "Generation");
    assert_non_null(v);
    *gen = v->via.i64;
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&raw);
}

static void password_sealed(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], vm2[FSM_ID_SIZE], pw[160];
    char h[FSM_ID_SIZE], also[FSM_ID_SIZE], from[FSM_ID_SIZE];
    struct yh_buf raw = YH_BUF_INIT;
    msgpack_unpacked u;
    int64_t gen, g2;

    msgpack_unpacked_init(&u);
    world(x, &w);
    assert_int_equal(fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z,
                                  "ImageID", w.img, "CPU", "1", "Memory",
                                  "1024", "Password", "sealed-pass-1", NULL),
                     0);
    id_of(x, "VMID", vm);
    gen = vm_int(x, vm, "Generation");
    pw_hidden(x, vm, "sealed-pass-1");
    pw_open(x, vm, NULL, pw, &g2);
    assert_string_equal(pw, "sealed-pass-1");
    assert_int_equal(g2, gen);
    settle(x, &w, vm);
    /* without a password: nothing sealed */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        0);
    id_of(x, "VMID", vm2);
    spec_get(x, vm2, h, also, &u, &raw);
    assert_int_equal(yh_mp_get(&u.data, "CredentialSealed")->type,
                     MSGPACK_OBJECT_NIL);
    /* a reset and a reinstall seal the new one (a new nonce each time) */
    stop(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "sealed-pass-two", NULL),
                     0);
    pw_hidden(x, vm, "sealed-pass-two");
    pw_open(x, vm, NULL, pw, &g2);
    assert_string_equal(pw, "sealed-pass-two");
    assert_int_equal(g2, vm_int(x, vm, "CredentialGeneration"));
    settle(x, &w, vm);
    assert_int_equal(
        fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm, "Password",
                     "a-much-longer-sealed-password-of-more-than-32-bytes",
                     NULL),
        0);
    pw_hidden(x, vm, "a-much-longer-sealed-password-of-more-than-32-bytes");
    pw_open(x, vm, NULL, pw, &g2);
    assert_string_equal(pw,
                        "a-much-longer-sealed-password-of-more-than-32-bytes");
    assert_int_equal(g2, vm_int(x, vm, "ReinstallGeneration"));
    settle(x, &w, vm);
    /* sealed by the leader to the host of then; moved before the apply */
    snprintf(from, sizeof from, "%s", vm_str(x, vm, "HostID"));
    {
        struct yh_buf env = YH_BUF_INIT;
        prepare(x, "ResetVMInstancePassword", &w.t, &env, "VMID", vm,
                "Password", "sealed-pass-three", NULL);
        absent(env.data, env.len, "sealed-pass-three");
        assert_int_equal(
            fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL),
            0);
        settle(x, &w, vm);
        assert_string_not_equal(vm_str(x, vm, "HostID"), from);
        assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ECONFLICT);
        yh_buf_release(&env);
    }
    /* still the reinstall's, re-sealed to the new host by the migration */
    pw_open(x, vm, NULL, pw, &g2);
    assert_string_equal(pw,
                        "a-much-longer-sealed-password-of-more-than-32-bytes");
    assert_int_equal(g2, vm_int(x, vm, "ReinstallGeneration"));
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&raw);
}

/* Whether @vm's CredentialSealed opens to @want with host @hi's private
 * key (a host that tries another host's seal: the MAC does not match). */
static int pw_opens(struct fsmtest *x,
                    const struct world *w,
                    const char *vm,
                    int hi,
                    const char *want)
{
    char h[FSM_ID_SIZE], also[FSM_ID_SIZE], nonce[64], out[160];
    unsigned char k[32], blk[32], mac[32], ct[128], wmac[32];
    struct yh_buf raw = YH_BUF_INIT;
    const msgpack_object *sd, *vn, *vc, *vm_;
    msgpack_unpacked u;
    struct fsm_key key;
    size_t n, ml;
    int ok;

    msgpack_unpacked_init(&u);
    spec_get(x, vm, h, also, &u, &raw);
    sd = yh_mp_get(&u.data, "CredentialSealed");
    assert_non_null(sd);
    if (sd->type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        yh_buf_release(&raw);
        return 0;
    }
    vn = yh_mp_get(sd, "Nonce");
    vc = yh_mp_get(sd, "Ciphertext");
    vm_ = yh_mp_get(sd, "MAC");
    assert_true(vn != NULL && vc != NULL && vm_ != NULL);
    assert_int_equal(fsm_key_get(x->f, w->pub[hi], &key), 0);
    snprintf(nonce, sizeof nonce, "pw:%.*s", (int)vn->via.str.size,
             vn->via.str.ptr);
    hmac(key.private_key, strlen(key.private_key), "yunhan-psk-seal-v1",
         sizeof "yunhan-psk-seal-v1", nonce, strlen(nonce), k);
    snprintf(out, sizeof out, "%.*s", (int)vc->via.str.size, vc->via.str.ptr);
    unhex(out, ct, &n);
    snprintf(out, sizeof out, "%.*s", (int)vm_->via.str.size, vm_->via.str.ptr);
    unhex(out, wmac, &ml);
    hmac(k, 32, "mac", 3, ct, n, mac);
    ok = ml == 32 && memcmp(mac, wmac, 32) == 0;
    for (size_t off = 0; ok && off < n; off += 32) {
        unsigned char ctr[4] = {0, 0, 0, (unsigned char)(off / 32)};
        hmac(k, 32, "enc", 3, ctr, 4, blk);
        for (size_t j = 0; j < 32 && off + j < n; j++) {
            out[off + j] = (char)(ct[off + j] ^ blk[j]);
        }
    }
    if (ok) {
        out[n] = '\0';
        ok = strcmp(out, want) == 0;
    }
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&raw);
    return ok;
}

static void password_migrated(void **state)
{
    struct fsmtest *x = *state;
    struct world w;
    char vm[FSM_ID_SIZE], bare[FSM_ID_SIZE], pw[160];
    char h[FSM_ID_SIZE], also[FSM_ID_SIZE];
    struct yh_buf raw = YH_BUF_INIT, env = YH_BUF_INIT;
    msgpack_unpacked u;
    int64_t g0, g, gen;
    int src, dst, third;

    msgpack_unpacked_init(&u);
    world(x, &w);
    src = vm_new(x, &w, &w.t, w.img, "1", vm); /* Password first-pass-1 */
    pw_open(x, vm, w.h[src], pw, &g0);
    assert_string_equal(pw, "first-pass-1");

    /* migrated: sealed to the target from the migration on, the same
     * password and Generation; the source's key no longer opens it */
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL), 0);
    dst = host_index(&w, fsmtest_res_str(x, "HostID"));
    absent(x->env.data, x->env.len, "first-pass-1");
    pw_hidden(x, vm, "first-pass-1");
    pw_open(x, vm, w.h[dst], pw, &gen);
    assert_string_equal(pw, "first-pass-1");
    assert_int_equal(gen, g0);
    assert_true(pw_opens(x, &w, vm, dst, "first-pass-1"));
    assert_false(pw_opens(x, &w, vm, src, "first-pass-1"));
    /* the target completes it: its seal stays, nothing of the source's */
    g = vm_int(x, vm, "Generation");
    assert_int_equal(report(x, &w.agent[dst], vm, "Running", g), 0);
    assert_false(vm_has(x, vm, "MigrateFromHostID"));
    assert_true(pw_opens(x, &w, vm, dst, "first-pass-1"));
    assert_false(pw_opens(x, &w, vm, src, "first-pass-1"));
    {
        char *d = fsmtest_dump_str(x->f);
        assert_null(strstr(d, "_PwSealPrev"));
        free(d);
    }

    /* rolled back (the source reports it still runs the machine): the
     * source's seal again */
    third = 3 - src - dst;
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", w.h[third], NULL),
                     0);
    assert_true(pw_opens(x, &w, vm, third, "first-pass-1"));
    assert_false(pw_opens(x, &w, vm, dst, "first-pass-1"));
    g = vm_int(x, vm, "Generation");
    assert_int_equal(report(x, &w.agent[dst], vm, "Running", g), 0);
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[dst]);
    assert_false(vm_has(x, vm, "MigrateFromHostID"));
    pw_open(x, vm, w.h[dst], pw, &gen);
    assert_string_equal(pw, "first-pass-1");
    assert_int_equal(gen, g0);
    assert_false(pw_opens(x, &w, vm, third, "first-pass-1"));

    /* a reinstall after the migration seals its password to where the
     * machine is */
    stop(x, &w, vm);
    assert_int_equal(fsmtest_call(x, "ReinstallVMInstance", &w.t, "VMID", vm,
                                  "Password", "after-the-move-2", NULL),
                     0);
    pw_open(x, vm, w.h[dst], pw, &gen);
    assert_string_equal(pw, "after-the-move-2");
    assert_int_equal(gen, vm_int(x, vm, "ReinstallGeneration"));
    settle(x, &w, vm);

    /* the password set between the leader's re-seal and the apply: the
     * migration is refused (160), nothing changed; a new one carries the
     * new password */
    prepare(x, "MigrateVMInstance", &x->admin, &env, "VMID", vm, NULL);
    assert_int_equal(fsmtest_call(x, "ResetVMInstancePassword", &w.t, "VMID",
                                  vm, "Password", "reset-between-3", NULL),
                     0);
    settle(x, &w, vm);
    assert_int_equal(fsmtest_apply_raw(x, env.data, env.len), YH_ECONFLICT);
    assert_false(vm_has(x, vm, "MigrateFromHostID"));
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[dst]);
    assert_true(pw_opens(x, &w, vm, dst, "reset-between-3"));
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm, NULL), 0);
    src = dst;
    dst = host_index(&w, fsmtest_res_str(x, "HostID"));
    assert_true(pw_opens(x, &w, vm, dst, "reset-between-3"));
    settle(x, &w, vm);
    assert_true(pw_opens(x, &w, vm, dst, "reset-between-3"));

    /* the key it is sealed with was deleted: it cannot be re-sealed, the
     * target gets none; a rollback gives the old one back */
    assert_int_equal(fsmtest_call(x, "DeleteAPIKey", &x->admin, "PublicKey",
                                  w.pub[dst], NULL),
                     0);
    third = 3 - src - dst;
    assert_int_equal(fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", vm,
                                  "TargetHostID", w.h[third], NULL),
                     0);
    spec_get(x, vm, h, also, &u, &raw);
    assert_int_equal(yh_mp_get(&u.data, "CredentialSealed")->type,
                     MSGPACK_OBJECT_NIL);
    g = vm_int(x, vm, "Generation");
    assert_int_equal(report(x, &w.agent[third], vm, "Error", g), 0);
    assert_string_equal(vm_str(x, vm, "HostID"), w.h[dst]);
    spec_get(x, vm, h, also, &u, &raw);
    assert_int_equal(yh_mp_get(&u.data, "CredentialSealed")->type,
                     MSGPACK_OBJECT_MAP);

    /* a machine without a password migrates without one */
    assert_int_equal(
        fsmtest_call(x, "CreateVMInstance", &w.t, "ZoneID", w.z, "ImageID",
                     w.img, "CPU", "1", "Memory", "1024", NULL),
        0);
    id_of(x, "VMID", bare);
    settle(x, &w, bare);
    assert_int_equal(
        fsmtest_call(x, "MigrateVMInstance", &x->admin, "VMID", bare, NULL), 0);
    spec_get(x, bare, h, also, &u, &raw);
    assert_int_equal(yh_mp_get(&u.data, "CredentialSealed")->type,
                     MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&u);
    yh_buf_release(&raw);
    yh_buf_release(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reinstall, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(reset_password, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(migrate_checks, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(migrate, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(migrate_stale, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(migrate_purged, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(unknown, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(unknown_by_host, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(image_delete, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(password_sealed, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(password_migrated, fsmtest_setup,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(determinism, fsmtest_setup,
                                        fsmtest_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
