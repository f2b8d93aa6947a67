/* defs.h - the durable definitions file: one opaque blob, replaced
 * atomically and crash-safely (write a temporary file, fsync, rename,
 * fsync the directory). The broker stores its durable exchanges, queues
 * and bindings in it as JSON; this module does not look inside.
 * Blocking: call it where a blocking write is acceptable (definitions
 * change rarely). Format in store/FORMAT.md, "Definitions".
 */
#ifndef SB_STORE_DEFS_H
#define SB_STORE_DEFS_H

#include <stddef.h>
#include <stdint.h>

#include "common/str.h"
#include "store/fileops.h"

#define SB_DEFS_MAX_BYTES (256u << 20)  /* largest blob accepted */

/* Replaces dir/definitions with blob. ops NULL means POSIX. Borrows blob
 * until the call returns. After a crash at any point, load returns either
 * the previous blob or this one. Returns 0 or -errno (-EMSGSIZE if blob is
 * over SB_DEFS_MAX_BYTES); on failure the previous blob is intact. */
int sb_defs_save(const char *dir, const sb_file_ops *ops, sb_str blob);

/* Reads dir/definitions. Sets *blob (OUT, a new allocation; free with
 * sb_free) and *len (OUT). Returns 0, -ENOENT if none was ever saved,
 * -EILSEQ if the file is damaged or of another format version (logged),
 * or another -errno. */
int sb_defs_load(const char *dir, const sb_file_ops *ops, uint8_t **blob, size_t *len);

#endif /* SB_STORE_DEFS_H */
