/* The data contract every stage shares: three append-only event streams,
 * keyed by order_id, one JSON object per line. Field meanings, units and
 * constraints: docs/data-dictionary.md.
 *
 * An ss_event does not own its strings: they point into a generator's
 * catalogue or a decoder's input buffer and live as long as that does. */
#ifndef SS_EVENT_H
#define SS_EVENT_H

#include <stdint.h>

#include "common/buf.h"
#include "common/hash.h"

typedef enum ss_event_type {
    SS_EV_ORDER = 1,
    SS_EV_PAYMENT = 2,
    SS_EV_CANCELLATION = 3,
} ss_event_type;

/* A string slice: not NUL-terminated in general. */
typedef struct ss_str {
    const char *p;
    uint32_t n;
} ss_str;

#define SS_STR(lit) ((ss_str){(lit), sizeof(lit) - 1})

typedef struct ss_order {
    ss_str customer_id, customer_segment;
    ss_str product_id, product_name, category;
    ss_str city, country;
    ss_str currency, payment_method;
    int32_t quantity;
    /* Money in cents: amount = quantity * unit_price,
     * total_price = amount - discount + tax + shipping. */
    int64_t unit_price, amount, discount, tax, shipping, total_price;
} ss_order;

typedef struct ss_payment {
    ss_str payment_method;
    ss_str failure_reason; /* empty when the payment succeeded */
    int64_t amount;        /* cents: the order's total_price */
    int32_t attempt;       /* 1, 2, ... */
    int32_t success;       /* 1 = "success", 0 = "failed" */
} ss_payment;

typedef struct ss_cancellation {
    ss_str reason;
    int64_t refund; /* cents */
} ss_cancellation;

typedef struct ss_event {
    ss_event_type type;
    ss_str event_id, order_id;
    int64_t ts; /* event time, ms since the epoch, UTC */
    union {
        ss_order order;
        ss_payment payment;
        ss_cancellation cancel;
    } u;
    /* The hashes that the engine's and the store's tables key the ids by
     * (ss_event_hash), computed once where the event is decoded, on the
     * reader's thread; 0 when not computed (ss_event_hashes). */
    uint64_t h_event, h_order;
} ss_event;

/* The hash of an id by which tables in memory find it. */
static inline uint64_t ss_event_hash(ss_str id)
{
    return ss_hash_bytes(id.p, id.n, 0x1dULL);
}

/* Fills the event's id hashes. */
static inline void ss_event_hashes(ss_event *ev)
{
    ev->h_event = ss_event_hash(ev->event_id);
    ev->h_order = ss_event_hash(ev->order_id);
}

/* The id hashes of an event, computed here when its maker did not. */
static inline uint64_t ss_event_h_event(const ss_event *ev)
{
    return ev->h_event ? ev->h_event : ss_event_hash(ev->event_id);
}

static inline uint64_t ss_event_h_order(const ss_event *ev)
{
    return ev->h_order ? ev->h_order : ss_event_hash(ev->order_id);
}

/* The JSON name of a type ("order", "payment", "cancellation"). */
const char *ss_event_type_name(ss_event_type type);

/* Appends the event as one JSON Lines record, newline included. */
void ss_event_encode(const ss_event *ev, ss_buf *out);

#endif
