/* durable_wait.c - a REST publish of a persistent message to a durable
 * queue is answered only once the store has it on disk, as RabbitMQ's
 * management API answers after the publisher confirm. The request stays
 * suspended in MHD until sb_http_durable reports its log position. */
#include "http_int.h"

#include <string.h>

#include "../common/alloc.h"

struct sb_http_wait {
    sb_list node;          /* in sb_http.durable_waits, in log order */
    sb_http_req *r;
    uint64_t pos;
    bool routed;
};

void
sb_http__wait_durable(sb_http_req *r, uint64_t pos, bool routed)
{
    sb_http_wait *w = sb_calloc(1, sizeof *w);

    w->r = r;
    w->pos = pos;
    w->routed = routed;
    r->wait = w;
    sb_list_push_back(&r->h->durable_waits, &w->node);
}

void
sb_http__wait_abandon(sb_http_req *r)
{
    if (r->wait == NULL)
        return;
    sb_list_remove(&r->wait->node);
    sb_free(r->wait);
    r->wait = NULL;
}

void
sb_http_durable(sb_http *h, uint64_t pos, int err)
{
    sb_list *it, *tmp;

    if (h == NULL)
        return;
    sb_list_foreach_safe(it, tmp, &h->durable_waits) {
        sb_http_wait *w = SB_CONTAINER_OF(it, sb_http_wait, node);
        sb_http_req *r = w->r;
        bool routed = w->routed;
        if (w->pos > pos)
            break;
        sb_http__wait_abandon(r);  /* frees w */
        if (err < 0)
            sb_http__reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                                 "the message could not be written to disk: %s",
                                 strerror(-err));
        else
            sb_http__reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "routed", routed));
    }
}
