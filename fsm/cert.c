/* SSL certificates ("ssl-") for HTTPS vservers of load balancers.
 *
 * CreateCertificate takes a PEM certificate (the first certificate of the
 * text is the server's; a chain may follow) and its PEM private key
 * (unencrypted). Both are parsed with OpenSSL and the key must be the
 * certificate's (X509_check_private_key): the same bytes give the same
 * verdict on every replica, so apply re-checks what the leader checked.
 * The record keeps the certificate text and what is read from it
 * (CommonName, SHA-256 Fingerprint, NotBefore, NotAfter); the key is kept
 * in the internal field "_PrivateKey", which no Describe or oplog record
 * ever shows; the load balancer's agent spec carries it only sealed to
 * its host (gwhost.c). Like any request parameter the clear key is in the
 * CreateCertificate command of the replicated log. A certificate used by
 * a vserver ("C" \0 SSLID \0 VServerID rows) cannot be deleted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fsm/base/log.h"
#include "fsm/fsm_int.h"

YH_LOG_MODULE("fsm");

#define CERT_PREFIX "ssl"
#define PEM_MAX 32768

static int64_t now_s(const struct fsm_ctx *c)
{
    return (int64_t)(c->time_ns / 1000000000u);
}

/* A PEM text parameter: printable ASCII, tabs and line breaks. @out
 * borrows from the request. */
static int pem_arg(struct fsm_ctx *c,
                   const char *key,
                   const char **out,
                   size_t *len)
{
    char scratch[24];
    int rc = yh_mp_str(c->args, key, out, len, scratch);

    if (rc == YH_EMISSING || (rc == 0 && *len == 0)) {
        return fsm__reject(c, YH_EMISSING, "missing parameter '%s'", key);
    }
    if (rc != 0) {
        return fsm__reject(c, YH_EINVAL, "invalid parameter '%s': not a string",
                           key);
    }
    if (*len > PEM_MAX) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter '%s': longer than %d bytes", key,
                           PEM_MAX);
    }
    for (size_t i = 0; i < *len; i++) {
        unsigned char ch = (unsigned char)(*out)[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t') ||
            ch >= 0x7f) {
            return fsm__reject(c, YH_EINVAL,
                               "invalid parameter '%s': not PEM text", key);
        }
    }
    return 0;
}

/* Never prompt for a passphrase: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rw, void *u)
{
    (void)buf;
    (void)size;
    (void)rw;
    (void)u;
    return -1;
}

static int64_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return (int64_t)timegm(&tm);
}

struct cert_info
{
    char cn[128];         /* subject CommonName ("" if none) */
    char fingerprint[65]; /* SHA-256 of the DER, hex */
    int64_t not_before, not_after;
};

/* Parse and match; 0, a 121 rejection, or YH_ENOMEM. */
static int cert_verify(struct fsm_ctx *c,
                       const char *cert,
                       size_t cert_len,
                       const char *key,
                       size_t key_len,
                       struct cert_info *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    BIO *cb = NULL, *kb = NULL;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc = 0;

    memset(out, 0, sizeof *out);
    cb = BIO_new_mem_buf(cert, (int)cert_len);
    kb = BIO_new_mem_buf(key, (int)key_len);
    if (cb == NULL || kb == NULL) {
        rc = YH_ENOMEM;
        goto out;
    }
    x = PEM_read_bio_X509(cb, NULL, no_passphrase, NULL);
    if (x == NULL) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'Certificate': not a PEM X.509 "
                         "certificate");
        goto out;
    }
    k = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL);
    if (k == NULL) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'PrivateKey': not an unencrypted "
                         "PEM private key");
        goto out;
    }
    if (X509_check_private_key(x, k) != 1) {
        rc = fsm__reject(c, YH_EINVAL,
                         "invalid parameter 'PrivateKey': it does not match "
                         "the certificate");
        goto out;
    }
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  out->cn, sizeof out->cn) < 0) {
        out->cn[0] = '\0';
    }
    for (char *p = out->cn; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) {
            *p = '?';
        }
    }
    if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
        rc = YH_ENOMEM;
        goto out;
    }
    yh_hex(md, mdlen, out->fingerprint);
    out->not_before = asn1_time(X509_get0_notBefore(x));
    out->not_after = asn1_time(X509_get0_notAfter(x));
out:
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error();
    return rc;
}

struct cert_args
{
    char name[FSM_NAME_SIZE];
    const char *cert, *key;
    size_t cert_len, key_len;
    struct cert_info info;
};

static int cert_args(struct fsm_ctx *c, struct cert_args *a)
{
    TRY(fsm__name_arg(c, a->name));
    TRY(pem_arg(c, "Certificate", &a->cert, &a->cert_len));
    TRY(pem_arg(c, "PrivateKey", &a->key, &a->key_len));
    /* the certificate text is shown by Describe: no key may ride along */
    if (memmem(a->cert, a->cert_len, "PRIVATE KEY", 11) != NULL) {
        return fsm__reject(c, YH_EINVAL,
                           "invalid parameter 'Certificate': it contains a "
                           "private key (give it as 'PrivateKey')");
    }
    return cert_verify(c, a->cert, a->cert_len, a->key, a->key_len, &a->info);
}

int fsm__cert_create_check(struct fsm_ctx *c)
{
    struct cert_args a;
    char tenant[FSM_ID_SIZE];

    TRY(cert_args(c, &a));
    return fsm__owner_arg(c, tenant);
}

int fsm__cert_create_apply(struct fsm_ctx *c)
{
    struct cert_args a;
    char tenant[FSM_ID_SIZE], id[FSM_ID_SIZE];
    char *cert, *key;
    struct fsm_rec r;
    int rc;

    TRY(cert_args(c, &a));
    TRY(fsm__owner_arg(c, tenant));
    cert = strndup(a.cert, a.cert_len);
    key = strndup(a.key, a.key_len);
    fsm__rec_init(&r);
    rc = cert != NULL && key != NULL ? 0 : YH_ENOMEM;
    if (rc == 0) {
        rc = fsm__new_id(c, CERT_PREFIX, id);
    }
    if (rc == 0) {
        fsm__rec_set_s(&r, "SSLID", id);
        fsm__rec_set_s(&r, "ResourceType", "Certificate");
        fsm__rec_set_s(&r, "TenantID", tenant);
        fsm__rec_set_s(&r, "Name", a.name);
        fsm__rec_set_s(&r, "CommonName", a.info.cn);
        fsm__rec_set_s(&r, "Fingerprint", a.info.fingerprint);
        fsm__rec_set_i(&r, "NotBefore", a.info.not_before);
        fsm__rec_set_i(&r, "NotAfter", a.info.not_after);
        fsm__rec_set_s(&r, "Certificate", cert);
        fsm__rec_set_s(&r, "_PrivateKey", key);
        fsm__rec_set_i(&r, "VServerCount", 0);
        fsm__rec_set_s(&r, "State", "Available");
        fsm__rec_set_i(&r, "CreateTime", now_s(c));
        rc = fsm__net_save(c, id, &r);
    }
    if (rc == 0) {
        yh_mp_pack_str(fsm__field(c, "SSLID"), id);
        yh_mp_pack_str(fsm__field(c, "Fingerprint"), a.info.fingerprint);
    }
    /* the key leaves no copy behind in freed memory */
    for (unsigned i = 0; i < r.n; i++) {
        if (strcmp(r.f[i].k, "_PrivateKey") == 0 && r.f[i].s != NULL) {
            OPENSSL_cleanse(r.f[i].s, strlen(r.f[i].s));
        }
    }
    if (key != NULL) {
        OPENSSL_cleanse(key, a.key_len);
    }
    free(cert);
    free(key);
    fsm__rec_free(&r);
    return rc;
}

int fsm__cert_describe(struct fsm_ctx *c)
{
    struct fsm_desc d = {FSM_TBL_RES, CERT_PREFIX "-", "SSLIDs", 0, NULL, NULL,
                         NULL};

    return fsm__describe(c, &d);
}

int fsm__cert_delete_check(struct fsm_ctx *c)
{
    char id[FSM_ID_SIZE];

    return fsm__arg_str(c, "SSLID", 1, FSM_ID_SIZE - 1, id, NULL);
}

int fsm__cert_delete_apply(struct fsm_ctx *c)
{
    TRY(fsm__cert_delete_check(c));
    return fsm__net_delete_unused(c, "SSLID", CERT_PREFIX, "certificate");
}
