/* exchange_topic.c - the topic exchange, with RabbitMQ's semantics.
 *
 * Keys are split on '.' into words exactly as rabbit_db_topic_exchange
 * split_topic_key does: "" is zero words, and every dot separates two
 * words, so "a..b" is a, "", b and "a." is a, "". In a binding key "*"
 * matches exactly one word and "#" zero or more; any other word (the empty
 * word included) matches itself.
 *
 * Index: a trie whose edges are binding-key words; a binding hangs on the
 * node its key's words lead to. Routing walks the trie as RabbitMQ's
 * trie_match does: from a node, with words left, follow the edge named
 * after the next word, the "*" edge, and the "#" edge (which may then
 * swallow any number of words); with no words left, take the node's
 * bindings and follow "#" edges. Only nodes the key can reach are visited.
 *
 * The walk is memoised per (node, word position): reaching the same pair
 * twice (e.g. "#.#" against a long key) cannot add destinations, so it is
 * skipped. That bounds a route by nodes x words instead of RabbitMQ's
 * exponential worst case, with the same result set.
 */
#include "xtype_impl.h"

#include <string.h>

#include "../common/alloc.h"
#include "../common/map.h"

/* Routing keys are shortstrs (at most 255 bytes), so at most 256 words;
 * positions past this are simply not memoised. */
#define TOPIC_MEMO_WORDS 256

typedef struct topic_node topic_node;
struct topic_node {
    topic_node *parent;
    uint8_t *word;           /* edge label from parent (owned) */
    size_t wlen;
    sb_map children;         /* word -> topic_node *, including "*" and "#" */
    topic_node *star, *hash; /* the "*" and "#" children, also in children */
    sb_broker__blist bindings;
    uint64_t memo_epoch;     /* route call that last touched memo */
    uint64_t memo[TOPIC_MEMO_WORDS / 64];
    uint64_t skip_epoch;     /* route call that last set skip_from */
    size_t skip_from;        /* positions >= this were already swallowed */
};

typedef struct topic_index {
    topic_node *root;
    size_t nodes;
    uint64_t epoch;          /* route calls so far */
    uint64_t last_visits;    /* nodes the last route visited (tests) */
} topic_index;

typedef struct topic_walk {
    topic_index *x;
    const sb_str *words;
    size_t nwords;
    sb_broker__sink *sink;
} topic_walk;

/* ---- words ---- */

/* The number of words in key (see split_words). */
static size_t
split_count(sb_str key)
{
    size_t n = key.len ? 1 : 0;

    for (size_t i = 0; i < key.len; i++)
        n += key.p[i] == '.';
    return n;
}

/* Fills words[0..split_count(key)) with views into key. */
static void
split_words(sb_str key, sb_str *words)
{
    size_t w = 0, start = 0;

    if (key.len == 0)
        return;
    for (size_t i = 0; i <= key.len; i++) {
        if (i == key.len || key.p[i] == '.') {
            words[w++] = sb_broker__str_safe(sb_str_make(key.p + start, i - start));
            start = i + 1;
        }
    }
}

static bool
word_is(sb_str w, char c)
{
    return w.len == 1 && w.p[0] == (uint8_t)c;
}

/* ---- trie nodes ---- */

static topic_node *
node_new(topic_index *x, topic_node *parent, sb_str word)
{
    topic_node *n = sb_calloc(1, sizeof *n);

    n->parent = parent;
    n->word = sb_memdup(word.p, word.len);
    n->wlen = word.len;
    n->children = SB_MAP_INIT;
    x->nodes++;
    return n;
}

static topic_node *
node_child(const topic_node *n, sb_str word)
{
    if (word_is(word, '*'))
        return n->star;
    if (word_is(word, '#'))
        return n->hash;
    return sb_map_get(&n->children, word);
}

static topic_node *
node_child_create(topic_index *x, topic_node *n, sb_str word)
{
    topic_node *c = node_child(n, word);

    if (c != NULL)
        return c;
    c = node_new(x, n, word);
    sb_map_put(&n->children, word, c, NULL);
    if (word_is(word, '*'))
        n->star = c;
    else if (word_is(word, '#'))
        n->hash = c;
    return c;
}

static void
node_free(topic_index *x, topic_node *n)
{
    sb_str k;
    void *v;

    for (size_t it = 0; sb_map_next(&n->children, &it, &k, &v);)
        node_free(x, v);
    sb_map_free(&n->children);
    sb_broker__blist_free(&n->bindings);
    sb_free(n->word);
    sb_free(n);
    x->nodes--;
}

/* Removes n and its now-empty ancestors (never the root). */
static void
node_prune(topic_index *x, topic_node *n)
{
    while (n != x->root && n->bindings.n == 0 && n->children.count == 0) {
        topic_node *p = n->parent;
        sb_str w = sb_broker__str_safe(sb_str_make(n->word, n->wlen));

        sb_map_del(&p->children, w);
        if (p->star == n)
            p->star = NULL;
        if (p->hash == n)
            p->hash = NULL;
        node_free(x, n);
        n = p;
    }
}

/* The node key's words lead to, creating it if create; NULL if absent. */
static topic_node *
node_for_key(topic_index *x, sb_str key, bool create)
{
    topic_node *n = x->root;
    size_t start = 0;

    if (key.len == 0)
        return n;
    for (size_t i = 0; i <= key.len && n != NULL; i++) {
        if (i < key.len && key.p[i] != '.')
            continue;
        sb_str w = sb_broker__str_safe(sb_str_make(key.p + start, i - start));
        n = create ? node_child_create(x, n, w) : node_child(n, w);
        start = i + 1;
    }
    return n;
}

/* ---- routing ---- */

static void walk(topic_walk *tw, topic_node *n, size_t i);

/* True the first time this route call reaches (n, i). */
static bool
memo_first(topic_walk *tw, topic_node *n, size_t i)
{
    uint64_t bit;

    tw->x->last_visits++;
    if (n->memo_epoch != tw->x->epoch) {
        n->memo_epoch = tw->x->epoch;
        memset(n->memo, 0, sizeof n->memo);
    }
    if (i >= TOPIC_MEMO_WORDS)
        return true;
    bit = (uint64_t)1 << (i % 64);
    if (n->memo[i / 64] & bit)
        return false;
    n->memo[i / 64] |= bit;
    return true;
}

/* n is a "#" node: it may swallow words i, i+1, ... up to all of them.
 * Positions an earlier call on n already covered are not walked again. */
static void
walk_skip_any(topic_walk *tw, topic_node *n, size_t i)
{
    size_t end = tw->nwords + 1;

    if (n->skip_epoch == tw->x->epoch) {
        if (n->skip_from <= i)
            return;
        end = n->skip_from;
    }
    n->skip_epoch = tw->x->epoch;
    n->skip_from = i;
    for (size_t j = i; j < end; j++)
        walk(tw, n, j);
}

static void
walk(topic_walk *tw, topic_node *n, size_t i)
{
    topic_node *c;

    if (!memo_first(tw, n, i))
        return;
    if (i == tw->nwords) {
        for (size_t b = 0; b < n->bindings.n; b++)
            sb_broker__sink_add(tw->sink, n->bindings.v[b].dest);
        if (n->hash)
            walk_skip_any(tw, n->hash, i);
        return;
    }
    /* A literal "*" or "#" word in the routing key reaches the same nodes
     * through the wildcard edges below, so look up only other words. */
    if (!word_is(tw->words[i], '*') && !word_is(tw->words[i], '#') &&
        (c = sb_map_get(&n->children, tw->words[i])) != NULL)
        walk(tw, c, i + 1);
    if (n->star)
        walk(tw, n->star, i + 1);
    if (n->hash)
        walk_skip_any(tw, n->hash, i);
}

static void
topic_route(void *index, sb_str routing_key, const sb_amqp_table *headers,
            sb_dest_vec *out)
{
    topic_index *x = index;
    size_t nwords = split_count(routing_key);
    sb_str small[32], *words = nwords <= 32 ? small : sb_calloc(nwords, sizeof *words);
    sb_broker__sink sink;
    topic_walk tw = { x, words, nwords, &sink };

    split_words(routing_key, words);
    sb_broker__sink_init(&sink, out);
    x->epoch++;
    x->last_visits = 0;
    walk(&tw, x->root, 0);
    sb_broker__sink_done(&sink);
    if (words != small)
        sb_free(words);
}

/* ---- index ---- */

static void *
topic_create(void)
{
    topic_index *x = sb_calloc(1, sizeof *x);

    x->root = node_new(x, NULL, SB_STR_LIT(""));
    return x;
}

static void
topic_destroy(void *index)
{
    topic_index *x = index;

    node_free(x, x->root);
    sb_free(x);
}

static int
topic_bind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    topic_index *x = index;
    topic_node *n = node_for_key(x, key, true);

    return sb_broker__blist_add(&n->bindings, SB_STR_NULL, args, dest);
}

static int
topic_unbind(void *index, sb_str key, const sb_amqp_table *args, void *dest)
{
    topic_index *x = index;
    topic_node *n = node_for_key(x, key, false);

    if (n == NULL || sb_broker__blist_del(&n->bindings, SB_STR_NULL, args, dest) != 0)
        return 1;
    node_prune(x, n);
    return 0;
}

uint64_t
sb_broker__topic_last_visits(const void *index)
{
    return ((const topic_index *)index)->last_visits;
}

size_t
sb_broker__topic_node_count(const void *index)
{
    return ((const topic_index *)index)->nodes;
}

const sb_xtype sb_xtype_topic = {
    .name = "topic",
    .create = topic_create,
    .destroy = topic_destroy,
    .bind = topic_bind,
    .unbind = topic_unbind,
    .route = topic_route,
    .check_args = NULL,   /* RabbitMQ validates nothing for topic */
};
