/* fuzz_store_recover.c - libFuzzer target for the store's recovery, the code
 * that parses bytes from disk: the input becomes the only segment file of a
 * store directory (named 0000000001.seg), which sb_store_open replays. Any
 * input must give either a store (torn tails truncated, corrupt records
 * skipped) or a clean -errno, never a crash, an overread or a leak. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "store/store.h"

static char dir[64];
static char seg[128];

static void
on_recover(void *arg, const sb_store_msg *m)
{
    size_t *n = arg;

    /* Touch every byte the store hands out: ASan checks they are readable. */
    for (size_t i = 0; i < m->hdr.len; i++)
        *n += m->hdr.p[i];
    for (size_t i = 0; i < m->body.len; i++)
        *n += m->body.p[i];
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

static void
cleanup(void)
{
    char path[160];

    for (int i = 1; i <= 4; i++) {
        snprintf(path, sizeof path, "%s/%010d.seg", dir, i);
        unlink(path);
    }
    rmdir(dir);
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(dir, sizeof dir, "/tmp/sb-fuzz-store-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(seg, sizeof seg, "%s/0000000001.seg", dir);
    atexit(cleanup);
    sb_log_set_level(SB_LOG_ERROR + 1);  /* the store logs every corruption it meets */
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    sb_store_opts o = { .segment_max_bytes = 1u << 20 };
    size_t seen = 0;
    sb_store *st = NULL;
    int fd;
    char path[160];

    /* A clean directory: the previous run may have started a new segment. */
    for (int i = 1; i <= 4; i++) {
        snprintf(path, sizeof path, "%s/%010d.seg", dir, i);
        unlink(path);
    }
    fd = open(seg, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (len > 0 && write(fd, data, len) != (ssize_t)len))
        abort();
    close(fd);
    o.on_recover = on_recover;
    o.recover_arg = &seen;
    if (sb_store_open(dir, &o, &st) == 0)
        sb_store_close(st);
    return 0;
}
