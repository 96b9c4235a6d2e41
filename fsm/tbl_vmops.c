/* Machine operations beyond the lifecycle of tbl_vm.c, and the machines of
 * hosts that went Unknown.
 *
 * ReinstallVMInstance and ResetVMInstancePassword act on a stopped machine
 * (State and DesiredState Stopped, UCloudStack's rule). The new password
 * is stamped by the leader as a salted PBKDF2 hash, exactly as at
 * CreateVMInstance: the clear text never enters the log, the state, a
 * result or an executor's spec. Both open a job and make this index the
 * machine's Generation, so its executor acts: a reinstall sets ImageID and
 * ReinstallGeneration (the executor re-creates the boot disk from the
 * image when ReinstallGeneration is newer than the last it applied), a
 * reset sets PasswordGeneration. The shown State is Reinstalling or
 * ResettingPassword until the executor reports that generation.
 *
 * MigrateVMInstance (administrator) moves a Running or Stopped machine to
 * another host of its zone. The target comes from TargetHostID or, if not
 * given, from the scheduler on the leader (tbl_vm.c, the machine's current
 * host excluded), stamped into the command; apply re-validates it against
 * the state at its index (health, architecture, GPUs, room after
 * overcommit, anti-affinity) and refuses a stale placement with 172. While
 * migrating, HostID is the target, MigrateFromHostID the source, the shown
 * State is Migrating and the machine holds capacity on both hosts; both
 * hosts' executors get its spec (fsm_host_spec2). The target completes the
 * migration by reporting Running or Stopped of a generation from the
 * migration on (the source's capacity is released); the source reporting
 * (the machine is still there) or the target reporting Error rolls it back
 * (HostID is the source again, the target's capacity is released). No
 * other change of the machine is accepted meanwhile (162). Its password's
 * seal follows it: re-sealed to the target by the leader's stamp, the
 * source's given back by a rollback (pwseal.c).
 *
 * When a host's lease ends (_HostExpire) its machines' State and
 * ObservedState become Unknown (never Stopped: they may still run); the
 * values before are kept in _UnknownState/_UnknownObserved. A report from
 * the executor ends the mark (the report is newer); the host's next
 * heartbeat gives the machines still marked their previous values back.
 * Both read the host's machines from its "H" rows of 'res_list' (rec.c),
 * not every machine record.
 * Evacuation (restarting an Unknown host's machines elsewhere) is not
 * built: it needs fencing of the lost host first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define VM_PREFIX "uhost-"

/* ---- shared ---- */

/* The machine named by parameter VMID. */
static int vm_arg(struct fsm_ctx *c, char id[FSM_ID_SIZE], struct fsm_rec *r)
{
    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__vm_load(c, id, r);
}

/* 162 unless the machine is settled Stopped. */
static int vm_stopped(struct fsm_ctx *c,
                      const char *id,
                      const struct fsm_rec *r)
{
    TRY(fsm__vm_not_migrating(c, id, r));
    if (strcmp(fsm__rec_s(r, "State"), "Stopped") != 0 ||
        strcmp(fsm__rec_s(r, "DesiredState"), "Stopped") != 0) {
        return fsm__reject(c, YH_ESTATE, "VM '%s' must be stopped (it is %s)",
                           id, fsm__rec_s(r, "State"));
    }
    return 0;
}

/* Host record @id (150 if absent). */
static int host_load(struct fsm_ctx *c, const char *id, struct fsm_rec *h)
{
    int rc = fsm__is_host_id(id)
                 ? fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, id, strlen(id), h)
                 : YH_ENOTFOUND;
    if (rc == YH_ENOTFOUND) {
        return fsm__reject(c, YH_ENOTFOUND, "host '%s' not found", id);
    }
    return rc;
}

/* ---- ReinstallVMInstance ---- */

/* VMID and the optional ImageID (*given), checked again at apply; the
 * Password only at prepare: it is not in the log. */
static int reinstall_args(struct fsm_ctx *c,
                          char id[FSM_ID_SIZE],
                          char image[FSM_ID_SIZE],
                          int *given)
{
    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_str(c, "ImageID", 0, FSM_ID_SIZE - 1, image, given);
}

int fsm__vm_reinstall_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], image[FSM_ID_SIZE];
    int given;

    TRY(reinstall_args(c, id, image, &given));
    return fsm__vm_pw_check(c, 1);
}

/* The image @image may be the boot disk of machine @m: it exists, is a
 * base image or one of the machine's tenant, is Available, has the
 * architecture of the machine's host and fits its boot disk. */
static int image_fits(struct fsm_ctx *c,
                      const struct fsm_rec *m,
                      const char *image)
{
    const char *host = fsm__rec_s(m, "HostID");
    const char *tenant;
    char arch[16];
    struct fsm_rec r;
    int rc;

    fsm__rec_init(&r);
    /* the host's architecture (hosts are never deleted; the machine's
     * own Arch, set from its host at creation, otherwise) */
    snprintf(arch, sizeof arch, "%s", fsm__rec_s(m, "Arch"));
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, host, strlen(host), &r);
    if (rc == 0) {
        snprintf(arch, sizeof arch, "%s", fsm__rec_s(&r, "Arch"));
    } else if (rc != YH_ENOTFOUND) {
        goto out;
    }
    rc = strncmp(image, "image-", 6) == 0
             ? fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, image, strlen(image),
                             &r)
             : YH_ENOTFOUND;
    tenant = rc == 0 ? fsm__rec_s(&r, "TenantID") : "";
    if (rc == 0 && tenant[0] != '\0' &&
        strcmp(tenant, fsm__rec_s(m, "TenantID")) != 0) {
        rc = YH_ENOTFOUND; /* another tenant's custom image */
    }
    if (rc == YH_ENOTFOUND) {
        rc = fsm__reject(c, YH_ENOTFOUND, "image '%s' not found", image);
    }
    if (rc != 0) {
        goto out;
    }
    if (strcmp(fsm__rec_s(&r, "State"), "Available") != 0) {
        rc = fsm__reject(c, YH_ESTATE, "image '%s' is %s", image,
                         fsm__rec_s(&r, "State"));
    } else if (strcmp(fsm__rec_s(&r, "Arch"), arch) != 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'ImageID': image '%s' is %s, "
                         "host '%s' is %s",
                         image, fsm__rec_s(&r, "Arch"), host, arch);
    } else if (fsm__rec_i(&r, "Size") > fsm__rec_i(m, "BootDiskSpace")) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'ImageID': image '%s' needs "
                         "%" PRId64 " GB, the boot disk has %" PRId64 " GB",
                         image, fsm__rec_i(&r, "Size"),
                         fsm__rec_i(m, "BootDiskSpace"));
    }
out:
    fsm__rec_free(&r);
    return rc;
}

int fsm__vm_reinstall_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], image[FSM_ID_SIZE];
    struct fsm_pw_seal seal;
    struct fsm_vm_pw pw;
    struct fsm_rec r;
    int given;
    int rc;

    TRY(reinstall_args(c, id, image, &given));
    TRY(fsm__vm_pw_get(c, 1, &pw));
    fsm__rec_init(&r);
    rc = fsm__vm_load(c, id, &r);
    if (rc == 0) {
        rc = vm_stopped(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__pw_seal_get(c, fsm__rec_s(&r, "HostID"), &seal);
    }
    if (rc == 0 && !given) {
        snprintf(image, sizeof image, "%s", fsm__rec_s(&r, "ImageID"));
    }
    if (rc == 0) {
        rc = image_fits(c, &r, image);
    }
    if (rc != 0) {
        goto out;
    }
    /* the boot disk is re-created from the image by the executor */
    if (strcmp(image, fsm__rec_s(&r, "ImageID")) != 0) {
        rc = fsm__net_unlink(c, 'I', fsm__rec_s(&r, "ImageID"), id);
        if (rc == 0) {
            rc = fsm__net_link(c, 'I', image, id);
        }
        if (rc != 0) {
            goto out;
        }
    }
    fsm__rec_set_s(&r, "ImageID", image);
    rc = fsm__boot_image(c, &r);
    if (rc != 0) {
        goto out;
    }
    fsm__vm_pw_put(&r, &pw);
    fsm__pw_seal_put(c, &r, &seal);
    fsm__rec_set_i(&r, "ReinstallGeneration", (int64_t)c->index);
    fsm__rec_set_s(&r, "State", "Reinstalling");
    rc = fsm__job_open(c, id, &r, c->type);
    if (rc == 0) {
        rc = fsm__vm_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "ImageID"), image);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- ResetVMInstancePassword ---- */

int fsm__vm_pwreset_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__vm_pw_check(c, 1);
}

int fsm__vm_pwreset_apply(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];
    struct fsm_pw_seal seal;
    struct fsm_vm_pw pw;
    struct fsm_rec r;
    int rc;

    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    TRY(fsm__vm_pw_get(c, 1, &pw));
    fsm__rec_init(&r);
    rc = fsm__vm_load(c, id, &r);
    if (rc == 0) {
        rc = vm_stopped(c, id, &r);
    }
    if (rc == 0) {
        rc = fsm__pw_seal_get(c, fsm__rec_s(&r, "HostID"), &seal);
    }
    if (rc != 0) {
        goto out;
    }
    fsm__vm_pw_put(&r, &pw);
    fsm__pw_seal_put(c, &r, &seal);
    fsm__rec_set_i(&r, "CredentialGeneration", (int64_t)c->index);
    fsm__rec_set_s(&r, "State", "ResettingPassword");
    rc = fsm__job_open(c, id, &r, c->type);
    if (rc == 0) {
        rc = fsm__vm_save(c, id, &r);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- MigrateVMInstance ---- */

/* What a migration of one machine needs to decide its target. */
struct migration
{
    char id[FSM_ID_SIZE];     /* VMID */
    char from[FSM_ID_SIZE];   /* its current host */
    char zone[FSM_ID_SIZE];   /* its zone */
    char arch[16];            /* its host's architecture */
    char aag[FSM_ID_SIZE];    /* its anti-affinity group */
    char target[FSM_ID_SIZE]; /* TargetHostID ("" = the scheduler's) */
    struct fsm_vm_spec spec;  /* CPU, Memory, GPU, GPUType */
    struct fsm_place place;   /* the scheduler's question */
};

int fsm__vm_migrate_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], target[FSM_ID_SIZE];

    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    return fsm__arg_str(c, "TargetHostID", 0, FSM_ID_SIZE - 1, target, NULL);
}

/* The machine may move (Running or Stopped, not migrating, its host's
 * executor Online to carry it out) and the placement question. */
static int migration(struct fsm_ctx *c, struct migration *m)
{
    struct fsm_rec r, h;
    const char *state;
    int64_t overcommit = 100;
    int rc;

    memset(m, 0, sizeof *m);
    TRY(fsm__arg_str(c, "TargetHostID", 0, FSM_ID_SIZE - 1, m->target, NULL));
    fsm__rec_init(&r);
    fsm__rec_init(&h);
    rc = vm_arg(c, m->id, &r);
    if (rc == 0) {
        rc = fsm__vm_not_migrating(c, m->id, &r);
    }
    if (rc != 0) {
        goto out;
    }
    state = fsm__rec_s(&r, "State");
    if (strcmp(state, "Running") != 0 && strcmp(state, "Stopped") != 0) {
        rc = fsm__reject(c, YH_ESTATE,
                         "VM '%s' must be Running or Stopped to migrate (it "
                         "is %s)",
                         m->id, state);
        goto out;
    }
    snprintf(m->from, sizeof m->from, "%s", fsm__rec_s(&r, "HostID"));
    snprintf(m->zone, sizeof m->zone, "%s", fsm__rec_s(&r, "ZoneID"));
    snprintf(m->aag, sizeof m->aag, "%s",
             fsm__rec_s(&r, "AntiAffinityGroupID"));
    m->spec.cpu = fsm__rec_i(&r, "CPU");
    m->spec.mem = fsm__rec_i(&r, "Memory");
    m->spec.gpu = fsm__rec_i(&r, "GPU");
    snprintf(m->spec.gpu_type, sizeof m->spec.gpu_type, "%s",
             fsm__rec_s(&r, "GPUType"));
    rc = host_load(c, m->from, &h);
    if (rc != 0) {
        goto out;
    }
    if (strcmp(fsm__rec_s(&h, "State"), "Online") != 0) {
        rc = fsm__reject(c, YH_ESTATE,
                         "host '%s' of VM '%s' is %s: a migration needs its "
                         "executor (evacuation is not built)",
                         m->from, m->id, fsm__rec_s(&h, "State"));
        goto out;
    }
    snprintf(m->arch, sizeof m->arch, "%s", fsm__rec_s(&h, "Arch"));
    if (fsm__rec_load(c->f, c->txn, FSM_TBL_INFRA, m->zone, strlen(m->zone),
                      &h) == 0) {
        overcommit = fsm__rec_i(&h, "CPUOvercommit");
    }
    if (m->target[0] != '\0' && strcmp(m->target, m->from) == 0) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'TargetHostID': VM '%s' is on "
                         "host '%s' already",
                         m->id, m->from);
        goto out;
    }
    m->place.zone = m->zone;
    m->place.overcommit = overcommit;
    m->place.arch = m->arch;
    m->place.spec = &m->spec;
    m->place.aag = m->aag;
    m->place.vm = m->id;
    m->place.exclude = m->from;
out:
    fsm__rec_free(&r);
    fsm__rec_free(&h);
    return rc;
}

/* 0 if @host may take the machine now; else 150 (no such host, when the
 * administrator named it) or 172. */
static int target_fits(struct fsm_ctx *c,
                       const struct migration *m,
                       const char *host)
{
    const char *why;

    TRY(fsm__place_why(c, &m->place, host, &why));
    if (why == NULL) {
        return 0;
    }
    if (m->target[0] == '\0') {
        /* the scheduler's choice, made on an older state */
        return fsm__reject(c, YH_ECAPACITY,
                           "stale placement: host '%s' is now %s", host, why);
    }
    if (strcmp(why, FSM_PLACE_GONE) == 0) {
        return fsm__reject(c, YH_ENOTFOUND, "host '%s' not found", host);
    }
    return fsm__reject(c, YH_ECAPACITY,
                       "insufficient capacity: host '%s' cannot take VM '%s': "
                       "it is %s",
                       host, m->id, why);
}

int fsm__vm_migrate_stamp(struct fsm_ctx *c)
{
    struct migration m;
    char host[FSM_ID_SIZE];

    TRY(migration(c, &m));
    if (m.target[0] != '\0') {
        TRY(target_fits(c, &m, m.target));
        snprintf(host, sizeof host, "%s", m.target);
    } else {
        TRY(fsm__place_pick(c, &m.place, host));
    }
    yh_mp_pack_str(fsm__stamp_field(c, "HostID"), host);
    /* its password, re-sealed to the target (pwseal.c) */
    return fsm__pw_reseal_stamp(c, m.id, host);
}

int fsm__vm_migrate_apply(struct fsm_ctx *c)
{
    struct migration m;
    char host[FSM_ID_SIZE];
    struct fsm_pw_seal seal;
    struct fsm_rec r;
    int rc;

    TRY(fsm__vm_migrate_check(c));
    TRY(fsm__stamp_str(c, "HostID", FSM_ID_SIZE - 1, host));
    TRY(migration(c, &m));
    if (m.target[0] != '\0' && strcmp(m.target, host) != 0) {
        return fsm__reject(c, YH_EPROTO, "bad command: stamp 'HostID'");
    }
    TRY(target_fits(c, &m, host));
    fsm__rec_init(&r);
    rc = fsm__vm_load(c, m.id, &r);
    if (rc == 0) {
        rc = fsm__pw_reseal_get(c, m.id, &r, host, &seal);
    }
    if (rc != 0) {
        goto out;
    }
    /* room on both hosts until the executors report the outcome */
    rc = fsm__host_use(c, host, m.spec.cpu, m.spec.mem, m.spec.gpu, 1);
    if (rc != 0) {
        goto out;
    }
    fsm__rec_set_s(&r, "HostID", host);
    fsm__rec_set_s(&r, "MigrateFromHostID", m.from);
    fsm__rec_set_i(&r, "_MigrateGeneration", (int64_t)c->index);
    fsm__pw_reseal_put(&r, &seal);
    fsm__rec_set_s(&r, "State", "Migrating");
    rc = fsm__job_open(c, m.id, &r, c->type);
    if (rc == 0) {
        rc = fsm__vm_save(c, m.id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "HostID"), host);
        yh_mp_pack_str(fsm__field(c, "MigrateFromHostID"), m.from);
    }
out:
    fsm__rec_free(&r);
    return rc;
}

/* ---- executor reports ---- */

int fsm__vm_reporter_ok(const struct fsm_rec *r, const char *host)
{
    const char *from = fsm__rec_s(r, "MigrateFromHostID");

    return strcmp(fsm__rec_s(r, "HostID"), host) == 0 ||
           (from[0] != '\0' && strcmp(from, host) == 0);
}

void fsm__unknown_drop(struct fsm_rec *r, int settles)
{
    if (!settles && strcmp(fsm__rec_s(r, "State"), "Unknown") == 0) {
        fsm__rec_set_s(r, "State", fsm__rec_s(r, "_UnknownState"));
    }
    fsm__rec_del(r, "_UnknownState");
    fsm__rec_del(r, "_UnknownObserved");
}

int fsm__vm_report_effects(struct fsm_ctx *c,
                           struct fsm_rec *r,
                           const char *state,
                           int64_t gen)
{
    char from[FSM_ID_SIZE], to[FSM_ID_SIZE];
    int64_t mgen = fsm__rec_i(r, "_MigrateGeneration");
    int64_t cpu = fsm__rec_i(r, "CPU"), mem = fsm__rec_i(r, "Memory");
    int64_t gpu = fsm__rec_i(r, "GPU");

    snprintf(from, sizeof from, "%s", fsm__rec_s(r, "MigrateFromHostID"));
    snprintf(to, sizeof to, "%s", fsm__rec_s(r, "HostID"));
    if (from[0] != '\0' && gen >= mgen) {
        int done =
            strcmp(c->actor->user_id, to) == 0 && strcmp(state, "Error") != 0;
        if (done) {
            /* on the target now: the source's room is free */
            TRY(fsm__host_use(c, from, -cpu, -mem, -gpu, -1));
        } else {
            /* still (or again) on the source */
            TRY(fsm__host_use(c, to, -cpu, -mem, -gpu, -1));
            fsm__rec_set_s(r, "HostID", from);
        }
        TRY(fsm__job_finish(c, r, mgen, done));
        fsm__rec_del(r, "MigrateFromHostID");
        fsm__rec_del(r, "_MigrateGeneration");
        fsm__pw_reseal_end(r, done); /* whose seal it keeps */
    }
    if (fsm__rec_has(r, "_UnknownState")) {
        fsm__unknown_drop(r, gen == fsm__rec_i(r, "Generation"));
    }
    return 0;
}

/* ---- machines of Unknown hosts ---- */

/* IDs of the machines on @host (placed there or migrating from it): the
 * host's rows of 'res_list' (rec.c), not every machine record. */
struct vm_ids
{
    char (*id)[FSM_ID_SIZE]; /* IDs (owned) */
    size_t n, cap;           /* count, room */
    int err;                 /* YH_ENOMEM if the list is short */
};

static int vm_id_add(void *arg, const char *vm)
{
    struct vm_ids *out = arg;

    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 16;
        void *p = realloc(out->id, cap * sizeof *out->id);
        if (p == NULL) {
            out->err = YH_ENOMEM;
            return 1; /* stop */
        }
        out->id = p;
        out->cap = cap;
    }
    snprintf(out->id[out->n++], FSM_ID_SIZE, "%s", vm);
    return 0;
}

static int host_vms(struct fsm_ctx *c, const char *host, struct vm_ids *out)
{
    TRY(fsm__host_vm_walk(c->f, c->txn, host, vm_id_add, out));
    return out->err;
}

void fsm__unknown_mark(struct fsm_rec *r, int unknown)
{
    if (unknown) {
        fsm__rec_set_s(r, "_UnknownState", fsm__rec_s(r, "State"));
        fsm__rec_set_s(r, "_UnknownObserved", fsm__rec_s(r, "ObservedState"));
        fsm__rec_set_s(r, "State", "Unknown");
        fsm__rec_set_s(r, "ObservedState", "Unknown");
        return;
    }
    if (strcmp(fsm__rec_s(r, "ObservedState"), "Unknown") == 0) {
        fsm__rec_set_s(r, "ObservedState", fsm__rec_s(r, "_UnknownObserved"));
    }
    fsm__unknown_drop(r, 0);
}

/* Mark (@unknown) or restore the machines of @host that are not (or are)
 * marked, recycled ones left out. */
static int host_vms_set(struct fsm_ctx *c, const char *host, int unknown)
{
    struct vm_ids ids = {NULL, 0, 0, 0};
    struct fsm_rec r;
    int rc;

    rc = host_vms(c, host, &ids);
    fsm__rec_init(&r);
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        const char *id = ids.id[i];
        rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, id, strlen(id), &r);
        if (rc == YH_ENOTFOUND) {
            snprintf(c->f->errmsg, sizeof c->f->errmsg,
                     "'res_list' row of host '%s' names a missing machine "
                     "'%s'",
                     host, id);
            rc = YH_ECORRUPT;
        }
        if (rc != 0) {
            break;
        }
        c->f->stat_host_vm_reads++;
        if ((strcmp(fsm__rec_s(&r, "HostID"), host) != 0 &&
             strcmp(fsm__rec_s(&r, "MigrateFromHostID"), host) != 0) ||
            !!fsm__rec_has(&r, "_UnknownState") != !unknown ||
            strcmp(fsm__rec_s(&r, "State"), "Recycled") == 0) {
            continue; /* (the row is exact; the record decides) */
        }
        fsm__unknown_mark(&r, unknown);
        fsm__rec_set_i(&r, "Revision", (int64_t)c->index);
        rc = fsm__rec_save(c, FSM_TBL_RES, id, strlen(id), &r);
    }
    fsm__rec_free(&r);
    free(ids.id);
    return rc;
}

int fsm__vm_host_unknown(struct fsm_ctx *c, const char *host)
{
    return host_vms_set(c, host, 1);
}

int fsm__vm_host_back(struct fsm_ctx *c, const char *host)
{
    return host_vms_set(c, host, 0);
}
