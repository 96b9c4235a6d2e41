/* Command-log archive: compacted raft segments are kept, not lost.
 *
 * raft_uv deletes closed segments that a snapshot made redundant. The
 * design keeps the full history (ARCHITECTURE.md §2: any past state can be
 * rebuilt, `yunhan audit` shows every command), so before each snapshot
 * the node hard-links every closed segment whose entries are all applied
 * (hence committed, hence never truncated again) into <data>/archive. When
 * raft_uv later unlinks its name, the archive's name keeps the bytes.
 *
 * Why by hand: libraft 0.15 has no hook for segment removal, and a hard
 * link costs no copy and no extra space. The snapshot hook is the right
 * moment: raft_uv removes segments only after a snapshot is stored, and
 * only those below the snapshot index, which are applied, so every segment
 * it could remove was linked first.
 *
 * When <data>/raft is on another filesystem than <data>/archive (link
 * fails with EXDEV) the segment is copied instead: a copy to a temporary
 * name, fsync'ed, then renamed, so the archive never holds half a segment.
 *
 * A node that received its state by InstallSnapshot never saw the entries
 * before that snapshot: its archive starts after them (yunhan replay then
 * starts from the snapshot; any complete node's archive has everything). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "fsm/base/log.h"

YH_LOG_MODULE("cluster");

/* A closed segment's name: 16-digit first index '-' 16-digit last index. */
int cluster_segment_range(const char *name, uint64_t *first, uint64_t *last)
{
    unsigned long long a, b;
    int n = 0;

    if (strlen(name) != 33 || name[16] != '-') {
        return -1;
    }
    for (int i = 0; i < 33; i++) {
        if (i != 16 && (name[i] < '0' || name[i] > '9')) {
            return -1;
        }
    }
    if (sscanf(name, "%16llu-%16llu%n", &a, &b, &n) != 2 || n != 33 || a == 0 ||
        b < a) {
        return -1;
    }
    *first = a;
    *last = b;
    return 0;
}

/* Copy @from to @to (another filesystem): via "@to.tmp", fsync, rename.
 * 0, or -1 with errno set. */
static int copy_segment(const char *from, const char *to)
{
    char tmp[4096 + 8];
    size_t cap = 1u << 20;
    char *buf = malloc(cap);
    int in = -1, out = -1, saved;
    ssize_t n = 0;

    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    in = open(from, O_RDONLY | O_CLOEXEC);
    if (in >= 0) {
        out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (in < 0 || out < 0) {
        goto fail;
    }
    while ((n = read(in, buf, cap)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                goto fail;
            }
            off += w;
        }
    }
    if (n < 0 || fsync(out) != 0 || close(out) != 0) {
        out = -1;
        goto fail;
    }
    out = -1;
    if (rename(tmp, to) != 0) {
        goto fail;
    }
    close(in);
    free(buf);
    return 0;

fail:
    saved = errno;
    if (out >= 0) {
        close(out);
    }
    if (in >= 0) {
        close(in);
    }
    (void)unlink(tmp);
    free(buf);
    errno = saved;
    return -1;
}

int cluster__archive_segments(const char *raft_dir,
                              const char *archive_dir,
                              uint64_t applied)
{
    char from[4096], to[4096];
    struct dirent *e;
    DIR *d;
    int linked = 0;

    if (mkdir(archive_dir, 0700) != 0 && errno != EEXIST) {
        YH_WARN("archive: cannot create '%s': %s", archive_dir,
                strerror(errno));
        return -1;
    }
    d = opendir(raft_dir);
    if (d == NULL) {
        YH_WARN("archive: cannot read '%s': %s", raft_dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        uint64_t first, last;

        if (cluster_segment_range(e->d_name, &first, &last) != 0 ||
            last > applied) {
            continue;
        }
        snprintf(from, sizeof from, "%s/%s", raft_dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", archive_dir, e->d_name);
        if (link(from, to) == 0) {
            linked++;
            continue;
        }
        if (errno == EXDEV) {
            if (access(to, F_OK) == 0) {
                continue; /* copied before */
            }
            if (copy_segment(from, to) == 0) {
                linked++;
                continue;
            }
        }
        if (errno != EEXIST) {
            YH_WARN("archive: cannot link '%s' to '%s': %s", from, to,
                    strerror(errno));
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    if (linked > 0) {
        YH_INFO("archive: %d segment(s) kept in '%s'", linked, archive_dir);
    }
    return linked;
}
