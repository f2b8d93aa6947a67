/* replyto.c - direct reply-to (amq.rabbitmq.reply-to), as RabbitMQ defines
 * it: a caller consumes the pseudo-queue in no-ack mode; its requests carry
 * a generated address amq.rabbitmq.reply-to.<token>; a reply published to
 * the default exchange with that routing key goes straight to the caller's
 * channel, with no queue in between. A reply to a caller that has gone is
 * unroutable (dropped, or returned when mandatory). */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "../common/alloc.h"
#include "../common/clock.h"

#define REPLY_PREFIX SB_REPLY_TO_QUEUE "."

static void
make_token(char *out, size_t len)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t rnd[18];
    char tok[25];
    size_t i;

    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* No entropy yet: the caller retries until the token is unused. */
        uint64_t t = sb_clock_us();
        for (i = 0; i < sizeof rnd; i++)
            rnd[i] = (uint8_t)(t >> (i % 8 * 8)) ^ (uint8_t)i;
    }
    for (i = 0; i < 24; i++)
        tok[i] = b64[(rnd[i * 3 / 4] >> ((i % 4) * 2)) & 63];
    tok[24] = '\0';
    snprintf(out, len, REPLY_PREFIX "%s", tok);
}

int
sb_broker__reply_consume(sb_bchan *ch, const sb_consume_req *r, char *tag_out, sb_consumer **out,
                         sb_error *err)
{
    sb_map *reg = &ch->broker->reply_consumers;
    sb_consumer *c;

    if (!r->no_ack)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "reply consumer cannot acknowledge");
    if (ch->reply != NULL)
        return sb_error_set(err, SB_PRECONDITION_FAILED, "reply consumer already set");
    c = sb_calloc(1, sizeof *c);
    c->ch = ch;
    c->no_ack = true;
    c->ops = r->ops;
    c->ud = r->ud;
    if (r->tag.len > 0)
        snprintf(tag_out, 256, "%.*s", SB_STR_ARGS(r->tag));
    else
        sb_broker__generate_ctag(ch, tag_out, 256);
    c->tag = sb_strdup(tag_out);
    c->tag_len = strlen(c->tag);
    do
        make_token(ch->reply_address, sizeof ch->reply_address);
    while (sb_map_get(reg, sb_str_c(ch->reply_address)) != NULL);
    sb_map_put(reg, sb_str_c(ch->reply_address), c, NULL);
    sb_map_put(&ch->consumer_tags, sb_str_make(c->tag, c->tag_len), c, NULL);
    ch->reply = c;
    *out = c;
    return 0;
}

void
sb_broker__reply_cancel(sb_bchan *ch)
{
    sb_consumer *c = ch->reply;

    if (c == NULL)
        return;
    sb_map_del(&ch->broker->reply_consumers, sb_str_c(ch->reply_address));
    sb_map_del(&ch->consumer_tags, sb_str_make(c->tag, c->tag_len));
    ch->reply_address[0] = '\0';
    ch->reply = NULL;
    sb_free(c->tag);
    sb_free(c);
}

const char *
sb_bchan_reply_address(const sb_bchan *ch)
{
    return ch->reply ? ch->reply_address : NULL;
}

bool
sb_broker__reply_route(sb_broker *b, sb_str rk, sb_msg *m)
{
    sb_consumer *c = sb_map_get(&b->reply_consumers, rk);
    sb_deliver_info d = { 0 };

    if (c == NULL)
        return false;
    d.consumer_tag = sb_str_make(c->tag, c->tag_len);
    d.delivery_tag = ++c->ch->next_tag;
    d.msg = m;
    c->ops->deliver(c, &d, c->ud);
    return true;
}
