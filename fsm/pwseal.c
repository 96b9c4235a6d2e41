/* A machine's password delivered to its executor, sealed to its host.
 *
 * The Password parameter never enters the log (cmd.c leaves it out of the
 * envelope): the leader's stamp of CreateVMInstance, ReinstallVMInstance
 * and ResetVMInstancePassword carries a salted PBKDF2 hash (tbl_vm.c) and,
 * here, the password sealed to the machine's host with the scheme that
 * seals VPN pre-shared keys (gwhost.c fsm__gw_seal), under a fresh random
 * nonce:
 *   K          = HMAC-SHA256(PrivateKey, "yunhan-psk-seal-v1" 0x00
 *                            "pw:" Nonce)
 *   Ciphertext = hex(password XOR HMAC-SHA256(K, "enc" be32(0)) || ...)
 *   MAC        = hex(HMAC-SHA256(K, "mac" raw ciphertext))
 * with PrivateKey the API secret of the host's lowest PublicKey (what
 * RegisterHost returned). Only the ciphertext is in the log, the state
 * (internal "_PwSeal*" fields, never described) and the machine's spec
 * (CredentialSealed {HostID, PublicKey, Nonce, Ciphertext, MAC,
 * Generation}); the clear text exists only in the request and in the
 * leader's memory while it stamps (MigrateVMInstance re-seals it to the
 * target, below). Like a VPN key, the host's PrivateKey is
 * itself part of the replicated state (the key records), so the seal
 * protects the password from everything that reads specs, logs and
 * snapshots without the key table, not from a holder of a full state. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "fsm/base/crypto.h"
#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define PW_MAX 128
#define CT_HEX (2 * PW_MAX + 1)
#define MAC_HEX (2 * YH_SHA256_SIZE + 1)

static const char *const seal_fields[][2] = {
    {"PwSealHost", "_PwSealHost"},   {"PwSealKey", "_PwSealKey"},
    {"PwSealNonce", "_PwSealNonce"}, {"PwSealCT", "_PwSealCT"},
    {"PwSealMAC", "_PwSealMAC"},
};
#define N_SEAL (sizeof seal_fields / sizeof seal_fields[0])

/* Seal @pw to @host's key with a fresh nonce and stamp the PwSeal* fields;
 * a host without a key gets nothing (nothing can be sealed to it). */
static int seal_and_stamp(struct fsm_ctx *c, const char *host, const char *pw)
{
    char pub[FSM_KEY_SIZE], priv[FSM_KEY_SIZE];
    char ctx[3 + 33], nonce_hex[33], ct[CT_HEX], mac[MAC_HEX];
    uint8_t nonce[16];
    int have = 0;
    int rc = fsm__host_key(c->f, c->txn, host, pub, priv, &have);

    if (rc == 0 && have) {
        rc = RAND_bytes(nonce, sizeof nonce) == 1 ? 0 : YH_EINTERNAL;
    }
    if (rc == 0 && have) {
        yh_hex(nonce, sizeof nonce, nonce_hex);
        snprintf(ctx, sizeof ctx, "pw:%s", nonce_hex);
        rc = fsm__gw_seal(priv, ctx, pw, strlen(pw), ct, mac);
    }
    OPENSSL_cleanse(priv, sizeof priv);
    TRY(rc);
    if (have) {
        yh_mp_pack_str(fsm__stamp_field(c, "PwSealHost"), host);
        yh_mp_pack_str(fsm__stamp_field(c, "PwSealKey"), pub);
        yh_mp_pack_str(fsm__stamp_field(c, "PwSealNonce"), nonce_hex);
        yh_mp_pack_str(fsm__stamp_field(c, "PwSealCT"), ct);
        yh_mp_pack_str(fsm__stamp_field(c, "PwSealMAC"), mac);
    }
    return 0;
}

int fsm__pw_seal_stamp(struct fsm_ctx *c, const char *host)
{
    char pw[PW_MAX + 1];
    int given;
    int rc;

    TRY(fsm__arg_str(c, "Password", 0, PW_MAX, pw, &given));
    if (!given) {
        return 0;
    }
    rc = seal_and_stamp(c, host, pw);
    OPENSSL_cleanse(pw, sizeof pw);
    return rc;
}

int fsm__pw_seal_stamp_vm(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE], host[FSM_ID_SIZE];
    struct fsm_rec r;
    int rc;

    TRY(fsm__vm_pw_stamp(c));
    TRY(fsm__arg_str(c, "VMID", 1, FSM_ID_SIZE - 1, id, NULL));
    fsm__rec_init(&r);
    rc = fsm__vm_load(c, id, &r);
    snprintf(host, sizeof host, "%s", rc == 0 ? fsm__rec_s(&r, "HostID") : "");
    fsm__rec_free(&r);
    TRY(rc);
    return fsm__pw_seal_stamp(c, host);
}

int fsm__pw_seal_get(struct fsm_ctx *c, const char *host, struct fsm_pw_seal *s)
{
    static const size_t max[N_SEAL] = {FSM_ID_SIZE - 1, FSM_KEY_SIZE - 1, 32,
                                       CT_HEX - 1, MAC_HEX - 1};
    char *out[N_SEAL] = {s->host, s->key, s->nonce, s->ct, s->mac};

    memset(s, 0, sizeof *s);
    if (yh_mp_get(c->stamp, "PwSealHost") == NULL) {
        return 0;
    }
    for (size_t i = 0; i < N_SEAL; i++) {
        TRY(fsm__stamp_str(c, seal_fields[i][0], max[i], out[i]));
    }
    if (strcmp(s->host, host) != 0) {
        /* the machine moved between the leader's stamp and this index */
        return fsm__reject(c, YH_ECONFLICT,
                           "the machine is now on '%s', not on '%s': retry",
                           host, s->host);
    }
    s->set = 1;
    return 0;
}

void fsm__pw_seal_put(struct fsm_ctx *c,
                      struct fsm_rec *r,
                      const struct fsm_pw_seal *s)
{
    const char *v[N_SEAL] = {s->host, s->key, s->nonce, s->ct, s->mac};

    if (!s->set) {
        return;
    }
    for (size_t i = 0; i < N_SEAL; i++) {
        fsm__rec_set_s(r, seal_fields[i][1], v[i]);
    }
    fsm__rec_set_i(r, "_PwSealGen", (int64_t)c->index);
}

void fsm__pw_seal_pack(msgpack_packer *pk, const struct fsm_rec *r)
{
    static const char *const names[N_SEAL] = {"HostID", "PublicKey", "Nonce",
                                              "Ciphertext", "MAC"};

    yh_mp_pack_str(pk, "CredentialSealed");
    if (!fsm__rec_has(r, "_PwSealCT")) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, N_SEAL + 1);
    for (size_t i = 0; i < N_SEAL; i++) {
        yh_mp_pack_kv_str(pk, names[i], fsm__rec_s(r, seal_fields[i][1]));
    }
    yh_mp_pack_kv_int(pk, "Generation", fsm__rec_i(r, "_PwSealGen"));
}

/* ---- MigrateVMInstance: the password re-sealed to the target ----
 *
 * The guest keeps its password when it moves, but the seal names the
 * source host: the target's executor could not open it (to set it again
 * in a re-created guest, or to check it). The leader, when it stamps the
 * migration, opens the machine's seal with the key it names (the host
 * keys are in the state) and seals the same password to the target under
 * a fresh nonce; the stamp says which seal it re-sealed (PwSealFrom =
 * _PwSealGen) so that the apply refuses (160) if the password was reset
 * meanwhile. The apply keeps the source's seal in _PwSealPrev ("\n"-joined
 * fields) until the migration ends: a rollback gives it back. _PwSealGen
 * does not move: it is still the password set at that index. If the seal
 * cannot be opened (its key deleted) or the target has no key, the stamp
 * carries PwSealFrom alone and the machine has no seal on the target. */

int fsm__pw_reseal_stamp(struct fsm_ctx *c, const char *vm, const char *host)
{
    char pw[PW_MAX + 1], ctx[3 + 33];
    struct fsm_key k;
    struct fsm_rec r;
    int opened = 0;
    int rc;

    fsm__rec_init(&r);
    memset(&k, 0, sizeof k);
    rc = fsm__rec_load(c->f, c->txn, FSM_TBL_RES, vm, strlen(vm), &r);
    if (rc != 0 || !fsm__rec_has(&r, "_PwSealCT")) {
        fsm__rec_free(&r);
        return rc; /* the caller loaded it already: no seal, nothing to do */
    }
    msgpack_pack_int64(fsm__stamp_field(c, "PwSealFrom"),
                       fsm__rec_i(&r, "_PwSealGen"));
    rc = fsm__key_lookup(c->f, c->txn, fsm__rec_s(&r, "_PwSealKey"), &k);
    if (rc == 0 &&
        strcmp(k.actor.user_id, fsm__rec_s(&r, "_PwSealHost")) == 0) {
        snprintf(ctx, sizeof ctx, "pw:%s", fsm__rec_s(&r, "_PwSealNonce"));
        rc = fsm__gw_unseal(k.private_key, ctx, fsm__rec_s(&r, "_PwSealCT"),
                            fsm__rec_s(&r, "_PwSealMAC"), pw, sizeof pw);
        opened = rc == 0;
        rc = rc == YH_EINVAL ? 0 : rc;
    }
    rc = rc == YH_ENOTFOUND ? 0 : rc;
    if (rc == 0 && !opened) {
        YH_WARN(
            "the password of '%s' cannot be opened (its key '%s' is "
            "gone): it is not sealed to '%s'",
            vm, fsm__rec_s(&r, "_PwSealKey"), host);
    }
    if (rc == 0 && opened) {
        rc = seal_and_stamp(c, host, pw);
    }
    OPENSSL_cleanse(pw, sizeof pw);
    OPENSSL_cleanse(&k, sizeof k);
    fsm__rec_free(&r);
    return rc;
}

int fsm__pw_reseal_get(struct fsm_ctx *c,
                       const char *vm,
                       const struct fsm_rec *r,
                       const char *host,
                       struct fsm_pw_seal *s)
{
    const msgpack_object *from = yh_mp_get(c->stamp, "PwSealFrom");
    int has = fsm__rec_has(r, "_PwSealCT");

    memset(s, 0, sizeof *s);
    if (from != NULL && from->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return fsm__reject(c, YH_EPROTO, "bad command: stamp 'PwSealFrom'");
    }
    if (!has && from == NULL) {
        return 0; /* no password to carry */
    }
    if (!has || from == NULL ||
        from->via.u64 != (uint64_t)fsm__rec_i(r, "_PwSealGen")) {
        return fsm__reject(c, YH_ECONFLICT,
                           "the password of VM '%s' was set since the leader "
                           "re-sealed it for the target: retry",
                           vm);
    }
    return fsm__pw_seal_get(c, host, s);
}

void fsm__pw_reseal_put(struct fsm_rec *r, const struct fsm_pw_seal *s)
{
    const char *v[N_SEAL] = {s->host, s->key, s->nonce, s->ct, s->mac};
    char prev[FSM_ID_SIZE + FSM_KEY_SIZE + 33 + CT_HEX + MAC_HEX + N_SEAL];
    size_t off = 0;

    if (!fsm__rec_has(r, "_PwSealCT")) {
        return;
    }
    for (size_t i = 0; i < N_SEAL; i++) {
        off += (size_t)snprintf(prev + off, sizeof prev - off, "%s%s",
                                i > 0 ? "\n" : "",
                                fsm__rec_s(r, seal_fields[i][1]));
    }
    fsm__rec_set_s(r, "_PwSealPrev", prev);
    for (size_t i = 0; i < N_SEAL; i++) {
        if (s->set) {
            fsm__rec_set_s(r, seal_fields[i][1], v[i]);
        } else {
            fsm__rec_del(r, seal_fields[i][1]);
        }
    }
}

void fsm__pw_reseal_end(struct fsm_rec *r, int done)
{
    char prev[FSM_ID_SIZE + FSM_KEY_SIZE + 33 + CT_HEX + MAC_HEX + N_SEAL];
    char *p = prev;

    if (!fsm__rec_has(r, "_PwSealPrev")) {
        return;
    }
    snprintf(prev, sizeof prev, "%s", fsm__rec_s(r, "_PwSealPrev"));
    fsm__rec_del(r, "_PwSealPrev");
    if (done) {
        return; /* on the target: its seal stays */
    }
    /* back on the source: its seal again */
    for (size_t i = 0; i < N_SEAL; i++) {
        char *e = strchr(p, '\n');
        if (e != NULL) {
            *e = '\0';
        }
        fsm__rec_set_s(r, seal_fields[i][1], p);
        p = e != NULL ? e + 1 : p + strlen(p);
    }
}
