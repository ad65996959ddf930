#include "engine/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

#define BLOCK_SIZE (256u << 10)
#define NSLOT      (SS_BATCH_MAX * 2)

typedef struct ss_batch_block {
    struct ss_batch_block *next;
    size_t used, cap;
    char data[];
} ss_batch_block;

ss_batch *ss_batch_new(void)
{
    return ss_calloc(1, sizeof(ss_batch));
}

static void free_blocks(ss_batch_block *k)
{
    while (k) {
        ss_batch_block *next = k->next;
        free(k);
        k = next;
    }
}

void ss_batch_free(ss_batch *b)
{
    if (!b)
        return;
    free_blocks(b->blocks);
    free(b);
}

void ss_batch_reset(ss_batch *b)
{
    b->n = 0;
    memset(b->ids, 0, sizeof b->ids);
    memset(b->orders, 0, sizeof b->orders);
    /* The first block stays for the next batch. */
    if (b->blocks) {
        free_blocks(b->blocks->next);
        b->blocks->next = NULL;
        b->blocks->used = 0;
    }
}

static ss_str keep(ss_batch *b, ss_str s)
{
    if (!s.n)
        return (ss_str){"", 0};
    ss_batch_block *k = b->blocks;
    if (!k || k->cap - k->used < s.n) {
        size_t cap = s.n > BLOCK_SIZE ? s.n : BLOCK_SIZE;
        ss_batch_block *nk = ss_malloc(sizeof *nk + cap);
        nk->used = 0;
        nk->cap = cap;
        if (k && k->used == 0) {
            /* An empty first block too small for this string: replace it. */
            nk->next = k->next;
            free(k);
        } else {
            nk->next = k;
        }
        b->blocks = k = nk;
    }
    char *p = k->data + k->used;
    memcpy(p, s.p, s.n);
    k->used += s.n;
    return (ss_str){p, s.n};
}

static int same(ss_str a, ss_str b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static void slot_add(uint32_t *tab, uint64_t h, uint32_t v)
{
    size_t j = h & (NSLOT - 1);
    while (tab[j])
        j = (j + 1) & (NSLOT - 1);
    tab[j] = v;
}

void ss_batch_add(ss_batch *b, const ss_event *ev, const ss_attrib *at, const ss_batch_item *it)
{
    size_t i = b->n++;
    ss_event *x = &b->ev[i];
    *x = *ev;
    x->event_id = keep(b, ev->event_id);
    x->order_id = keep(b, ev->order_id);
    switch (ev->type) {
    case SS_EV_ORDER: {
        ss_order *o = &x->u.order;
        ss_str *f[] = {&o->customer_id,  &o->customer_segment, &o->product_id,
                       &o->product_name, &o->category,         &o->city,
                       &o->country,      &o->currency,         &o->payment_method};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
            *f[k] = keep(b, *f[k]);
        /* An order's attribution is its own fields. */
        b->at[i] = (ss_attrib){o->city, o->country, o->category, o->payment_method};
        slot_add(b->orders, ss_event_h_order(ev), (uint32_t)i + 1);
        break;
    }
    case SS_EV_PAYMENT:
        x->u.payment.payment_method = keep(b, ev->u.payment.payment_method);
        x->u.payment.failure_reason = keep(b, ev->u.payment.failure_reason);
        break;
    case SS_EV_CANCELLATION:
        x->u.cancel.reason = keep(b, ev->u.cancel.reason);
        break;
    }
    if (ev->type != SS_EV_ORDER)
        b->at[i] = (ss_attrib){keep(b, at->city), keep(b, at->country), keep(b, at->category),
                               keep(b, at->payment_method)};
    b->item[i] = *it;
    b->evp[i] = x;
    slot_add(b->ids, ss_event_h_event(ev), (uint32_t)i + 1);
}

int ss_batch_has(const ss_batch *b, ss_event_type type, ss_str event_id, uint64_t h)
{
    size_t j = h & (NSLOT - 1);
    for (; b->ids[j]; j = (j + 1) & (NSLOT - 1)) {
        const ss_event *x = &b->ev[b->ids[j] - 1];
        if (same(x->event_id, event_id) && (!type || x->type == type))
            return 1;
    }
    return 0;
}

int ss_batch_order(const ss_batch *b, ss_str order_id, uint64_t h, ss_attrib *at, uint64_t dh[4],
                   int *have_dh)
{
    size_t j = h & (NSLOT - 1), best = 0;
    for (; b->orders[j]; j = (j + 1) & (NSLOT - 1)) {
        size_t i = b->orders[j];
        if (same(b->ev[i - 1].order_id, order_id) && (!best || i < best))
            best = i;
    }
    if (!best)
        return 0;
    *at = b->at[best - 1];
    *have_dh = b->item[best - 1].have_dh;
    if (*have_dh)
        memcpy(dh, b->item[best - 1].dh, sizeof b->item[best - 1].dh);
    return 1;
}
