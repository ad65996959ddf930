/* Unit tests of event/encode: each event type encodes to exactly the JSON
 * Lines text of docs/data-dictionary.md, field order included. */
#include <stdlib.h>

#include <jansson.h>

#include "check.h"
#include "event/event.h"

/* 2026-11-02T14:03:11.123Z */
#define TS 1793628191123LL

static void encode_to(const ss_event *ev, ss_buf *b)
{
    b->len = 0;
    ss_event_encode(ev, b);
    ss_buf_cstr(b);
}

/* Each line is one JSON object terminated by exactly one newline. */
static void check_json_line(const char *text, const char *type)
{
    size_t n = strlen(text);
    if (!CHECK(n > 0 && text[n - 1] == '\n') || !CHECK(memchr(text, '\n', n - 1) == NULL))
        return;
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (check_report(v != NULL, __FILE__, __LINE__, "not JSON: %s (%s)", text, je.text)) {
        CHECK(json_is_object(v));
        CHECK_STR(json_string_value(json_object_get(v, "type")), type);
    }
    json_decref(v);
}

static ss_event order_event(void)
{
    ss_event ev = {
        .type = SS_EV_ORDER,
        .event_id = SS_STR("e-000001"),
        .order_id = SS_STR("o-000001"),
        .ts = TS,
    };
    ss_order *o = &ev.u.order;
    o->customer_id = SS_STR("C000017");
    o->customer_segment = SS_STR("regular");
    o->product_id = SS_STR("P000042");
    o->product_name = SS_STR("Aurora \"Pro\" Headphones\\X1");
    o->category = SS_STR("Electronics");
    o->city = SS_STR("Berlin");
    o->country = SS_STR("Germany");
    o->currency = SS_STR("EUR");
    o->payment_method = SS_STR("card");
    o->quantity = 2;
    o->unit_price = 5999;
    o->amount = 11998;
    o->discount = 1200;
    o->tax = 2052;
    o->shipping = 0;
    o->total_price = 12850;
    return ev;
}

static void test_order(ss_buf *b)
{
    ss_event ev = order_event();
    encode_to(&ev, b);
    CHECK_STR(b->data,
              "{\"type\":\"order\",\"event_id\":\"e-000001\",\"order_id\":\"o-000001\","
              "\"ts\":\"2026-11-02T14:03:11.123Z\",\"customer_id\":\"C000017\","
              "\"customer_segment\":\"regular\",\"product_id\":\"P000042\","
              "\"product_name\":\"Aurora \\\"Pro\\\" Headphones\\\\X1\","
              "\"category\":\"Electronics\",\"city\":\"Berlin\",\"country\":\"Germany\","
              "\"quantity\":2,\"unit_price\":59.99,\"amount\":119.98,\"discount\":12.00,"
              "\"tax\":20.52,\"shipping\":0.00,\"total_price\":128.50,\"currency\":\"EUR\","
              "\"payment_method\":\"card\"}\n");
    check_json_line(b->data, "order");

    /* Strings are slices: only n bytes are written, even without a NUL. */
    ev.u.order.city = (ss_str){"Munich, Bavaria", 6};
    ev.u.order.country = (ss_str){"Germany", 0};
    ev.u.order.product_name = SS_STR("Line\nbreak\x01");
    encode_to(&ev, b);
    CHECK_CONTAINS(b->data, "\"city\":\"Munich\",\"country\":\"\",");
    CHECK_CONTAINS(b->data, "\"product_name\":\"Line\\nbreak\\u0001\",");
    check_json_line(b->data, "order");
}

static void test_payment(ss_buf *b)
{
    ss_event ev = {
        .type = SS_EV_PAYMENT,
        .event_id = SS_STR("e-000002"),
        .order_id = SS_STR("o-000001"),
        .ts = TS + 45000,
    };
    ev.u.payment = (ss_payment){
        .payment_method = SS_STR("card"),
        .failure_reason = SS_STR(""),
        .amount = 12850,
        .attempt = 1,
        .success = 1,
    };
    encode_to(&ev, b);
    CHECK_STR(b->data, "{\"type\":\"payment\",\"event_id\":\"e-000002\",\"order_id\":\"o-000001\","
                       "\"ts\":\"2026-11-02T14:03:56.123Z\",\"payment_method\":\"card\","
                       "\"amount\":128.50,\"status\":\"success\",\"attempt\":1}\n");
    check_json_line(b->data, "payment");

    ev.event_id = SS_STR("e-000003");
    ev.ts = TS + 60000;
    ev.u.payment.failure_reason = SS_STR("insufficient_funds");
    ev.u.payment.attempt = 2;
    ev.u.payment.success = 0;
    encode_to(&ev, b);
    CHECK_STR(b->data, "{\"type\":\"payment\",\"event_id\":\"e-000003\",\"order_id\":\"o-000001\","
                       "\"ts\":\"2026-11-02T14:04:11.123Z\",\"payment_method\":\"card\","
                       "\"amount\":128.50,\"status\":\"failed\","
                       "\"failure_reason\":\"insufficient_funds\",\"attempt\":2}\n");
    check_json_line(b->data, "payment");
}

static void test_cancellation(ss_buf *b)
{
    ss_event ev = {
        .type = SS_EV_CANCELLATION,
        .event_id = SS_STR("e-000004"),
        .order_id = SS_STR("o-000001"),
        .ts = TS + 3 * 3600000LL,
    };
    ev.u.cancel = (ss_cancellation){.reason = SS_STR("changed_mind"), .refund = 12850};
    encode_to(&ev, b);
    CHECK_STR(
        b->data,
        "{\"type\":\"cancellation\",\"event_id\":\"e-000004\",\"order_id\":\"o-000001\","
        "\"ts\":\"2026-11-02T17:03:11.123Z\",\"reason\":\"changed_mind\",\"refund\":128.50}\n");
    check_json_line(b->data, "cancellation");

    /* An unpaid order is cancelled with nothing to refund. */
    ev.u.cancel = (ss_cancellation){.reason = SS_STR("payment_failed"), .refund = 0};
    encode_to(&ev, b);
    CHECK_CONTAINS(b->data, "\"reason\":\"payment_failed\",\"refund\":0.00}\n");
}

/* Encoding appends: several events build one JSON Lines chunk. */
static void test_append(ss_buf *b)
{
    ss_event ev = order_event();
    b->len = 0;
    for (int i = 0; i < 100; i++)
        ss_event_encode(&ev, b);
    ss_buf_cstr(b);
    size_t lines = 0;
    for (size_t i = 0; i < b->len; i++)
        lines += b->data[i] == '\n';
    CHECK_EQ_INT(lines, 100);
    CHECK_EQ_INT(b->len % 100, 0);
}

static void test_type_names(void)
{
    CHECK_STR(ss_event_type_name(SS_EV_ORDER), "order");
    CHECK_STR(ss_event_type_name(SS_EV_PAYMENT), "payment");
    CHECK_STR(ss_event_type_name(SS_EV_CANCELLATION), "cancellation");
    CHECK_STR(ss_event_type_name((ss_event_type)0), "unknown");
}

int main(void)
{
    ss_buf b;
    ss_buf_init(&b, 16); /* small, so that encoding grows it */
    test_order(&b);
    test_payment(&b);
    test_cancellation(&b);
    test_append(&b);
    test_type_names();
    ss_buf_free(&b);
    return check_done();
}
