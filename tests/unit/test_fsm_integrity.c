/* Corruption on disk: LMDB has no checksums, so the fsm keeps a content hash
 * of every record. A store whose records no longer match it must be
 * refused at open (the node does not start rather than serve or snapshot
 * flipped bits); an intact store reopens, and the hash follows puts,
 * deletes, restores and token purges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsm/fsm.h"
#include "tests/lib/fsmtest.h"

/* Flip one byte of the first occurrence of @needle in @path, @after bytes
 * past its end (0: its first byte). */
static int flip_at(const char *path, const char *needle, long after)
{
    FILE *fp = fopen(path, "r+b");
    size_t n = strlen(needle);
    char *buf;
    long size;
    int done = 0;

    if (fp == NULL) {
        return 0;
    }
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)size);
    if (buf != NULL && fread(buf, 1, (size_t)size, fp) == (size_t)size) {
        for (long i = 0; i + (long)n <= size; i++) {
            if (memcmp(buf + i, needle, n) == 0) {
                long at = after > 0 ? i + (long)n + after - 1 : i;
                char c = (char)(buf[at] ^ 0x20);
                fseek(fp, at, SEEK_SET);
                done = fwrite(&c, 1, 1, fp) == 1;
                break;
            }
        }
    }
    free(buf);
    fclose(fp);
    return done;
}

static void reopen_intact(void **state)
{
    struct fsmtest *x = *state;
    char d1[2 * FSM_DIGEST_SIZE + 1];
    char d2[2 * FSM_DIGEST_SIZE + 1];
    struct fsm_actor t;

    fsmtest_make_tenant(x, "intact@corrupt.example", &t, NULL);
    /* updates and deletes move the hash too */
    assert_int_equal(fsmtest_call(x, "ModifyNameAndRemark", &t, "ResourceID",
                                  t.user_id, "Remark", "changed", NULL),
                     0);
    assert_int_equal(fsm_flush(x->f), 0);
    fsm_digest_hex(x->f, d1);
    fsm_close(x->f);
    fsmtest_open(x);
    fsm_digest_hex(x->f, d2);
    assert_string_equal(d1, d2);
}

/* Make tenant @email, close, flip the byte @after bytes past @needle in
 * the state file: the store must be refused at open. */
static void refused_after_flip(struct fsmtest *x,
                               const char *email,
                               const char *needle,
                               long after)
{
    struct fsm_config cfg = {0};
    char err[YH_ERRMSG_SIZE];
    char path[128];
    struct fsm *f = NULL;
    struct fsm_actor t;

    fsmtest_make_tenant(x, email, &t, NULL);
    assert_int_equal(fsm_flush(x->f), 0);
    fsm_close(x->f);
    x->f = NULL;
    snprintf(path, sizeof path, "%s/data.mdb", x->dir);
    assert_true(flip_at(path, needle, after));
    cfg.nosync = 1;
    assert_int_equal(fsm_open(&f, x->dir, &cfg, err), YH_ECORRUPT);
    assert_non_null(strstr(err, "corrupt"));
}

static void reopen_flipped_record(void **state)
{
    refused_after_flip(*state, "victim@corrupt.example",
                       "victim@corrupt.example", 0);
}

/* A counter in meta (the next user number) changed on disk: covered by
 * the content hash too, or the next create would reuse an ID. LMDB's leaf
 * holds the key, then the value: flip the counter's low byte. */
static void reopen_flipped_counter(void **state)
{
    refused_after_flip(*state, "counted@corrupt.example", "ctr.user", 8);
}

/* Garbage over the headers of the B-tree pages (not the two meta pages):
 * LMDB trusts its pages and may crash reading them. The isolated check
 * must turn that into a refusal; this process never reads them itself. */
static void refuse_crashing_pages(void **state)
{
    struct fsmtest *x = *state;
    struct fsm_config cfg = {0};
    char err[YH_ERRMSG_SIZE];
    char path[128];
    struct fsm_actor t;
    FILE *fp;
    long size;

    for (int i = 0; i < 40; i++) {
        char email[64];
        snprintf(email, sizeof email, "pages%d@corrupt.example", i);
        fsmtest_make_tenant(x, email, &t, NULL);
    }
    assert_int_equal(fsm_flush(x->f), 0);
    fsm_close(x->f);
    x->f = NULL;
    snprintf(path, sizeof path, "%s/data.mdb", x->dir);
    fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    for (long off = 2 * 4096; off + 16 <= size; off += 4096) {
        static const unsigned char junk[16] = {
            0xff, 0xff, 0xff, 0x7f, 0x13, 0x00, 0xff, 0xff,
            0x01, 0x00, 0xf0, 0xff, 0xff, 0xff, 0xff, 0x7f};
        fseek(fp, off, SEEK_SET);
        assert_int_equal(fwrite(junk, 1, sizeof junk, fp), sizeof junk);
    }
    fclose(fp);
    cfg.nosync = 1;
    {
        int rc = fsm_check_isolated(x->dir, &cfg, err);
        if (rc == 0) {
            /* the child did not crash: the ordinary open must refuse */
            struct fsm *f = NULL;
            rc = fsm_open(&f, x->dir, &cfg, err);
            assert_int_not_equal(rc, 0);
        } else {
            assert_int_equal(rc, YH_ECORRUPT);
            assert_non_null(strstr(err, "crashed"));
        }
    }
}

static int setup_fresh(void **state)
{
    int rc = fsmtest_setup(state);
    return rc;
}

static int teardown_fresh(void **state)
{
    struct fsmtest *x = *state;

    (void)x; /* x->f is NULL after the refused open: teardown copes */
    return fsmtest_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reopen_intact, setup_fresh,
                                        teardown_fresh),
        cmocka_unit_test_setup_teardown(refuse_crashing_pages, setup_fresh,
                                        teardown_fresh),
        cmocka_unit_test_setup_teardown(reopen_flipped_counter, setup_fresh,
                                        fsmtest_teardown),
        cmocka_unit_test_setup_teardown(reopen_flipped_record, setup_fresh,
                                        teardown_fresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
