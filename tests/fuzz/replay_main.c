/* Corpus replay without libFuzzer: runs LLVMFuzzerTestOneInput on every
 * file of the given directories (sorted by name) or on the given files, so
 * the fuzz targets run as ordinary tests (with ASan in `make asan`). A crash
 * is the failure; otherwise it prints how many inputs ran and exits 0. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f;
    struct stat st;
    uint8_t *data;
    size_t n;

    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    /* Exactly the file's size, so that ASan sees any read past the end. */
    data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (data == NULL) {
        fclose(f);
        fprintf(stderr, "replay: %s: out of memory\n", path);
        return -1;
    }
    n = fread(data, 1, (size_t)st.st_size, f);
    fclose(f);
    if (n != (size_t)st.st_size) {
        free(data);
        fprintf(stderr, "replay: %s: short read\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 0;
}

static int run_dir(const char *dir, unsigned *count)
{
    struct dirent **names;
    char path[4096];
    struct stat st;
    int n;
    int rc = 0;

    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0 && names[i]->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                rc = run_file(path);
                *count += rc == 0;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    struct stat st;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) != 0
                                : run_file(argv[i]) != 0) {
            return 1;
        }
        count += !S_ISDIR(st.st_mode);
    }
    printf("replayed %u inputs\n", count);
    return 0;
}
