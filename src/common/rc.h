/* rc.h - intrusive reference count for objects shared across owners
 * (a message body shared by queues and by connection output queues).
 * Loop thread only: not atomic. */
#ifndef SB_RC_H
#define SB_RC_H

#include <stdint.h>

typedef struct sb_rc {
    uint32_t refs;
    void (*release)(struct sb_rc *); /* called when refs drops to 0 */
} sb_rc;

static inline void sb_rc_init(sb_rc *r, void (*release)(sb_rc *)) { r->refs = 1; r->release = release; }
/* Returns a new reference. */
static inline sb_rc *sb_rc_ref(sb_rc *r) { r->refs++; return r; }
static inline void sb_rc_unref(sb_rc *r) { if (r && --r->refs == 0) r->release(r); }

#endif /* SB_RC_H */
