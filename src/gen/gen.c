#include "gen/gen.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/rng.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "gen/pending.h"
#include "gen/week.h"

#define PEND_PAYMENT  SS_PEND_PAYMENT
#define PEND_CANCEL   SS_PEND_CANCEL
#define PEND_REPEAT   SS_PEND_REPEAT
#define REASON_UNPAID 0xffffu

typedef ss_pending pending;

typedef struct customer {
    uint64_t num;
    uint32_t city;
} customer;

typedef struct seg_pool {
    customer *v;
    size_t n, cap;
} seg_pool;

struct ss_gen {
    const ss_profile *p;
    ss_gen_config cfg;
    ss_rng rng;
    char tag[16];
    size_t tag_len;

    /* arrivals: a non-homogeneous Poisson process sampled by thinning */
    double tf;         /* time of the last candidate, ms (fractional) */
    int64_t day;       /* local day index of the cached factors */
    double lam_max;    /* bound on the intensity for that day, per ms */
    double day_factor; /* that day's volume factor (mean 1) */
    double weekday_factor;
    int has_next;
    int arrivals_over; /* past arrivals.active_days */
    int64_t next_ts;
    int64_t arrivals_end; /* INT64_MAX when arrivals never stop */

    /* Payments and cancellations follow their order within hours: a small
     * heap that stays in the cache. bgnbd customers' next orders lie days
     * ahead, so there are as many as live customers: a heap of their own. */
    ss_pheap heap;
    ss_calq repeats;
    uint64_t seq;
    ss_week week; /* the shape of a bgnbd customer's buying over the week */

    seg_pool *pools;
    uint64_t pool_total, ncustomers;

    int64_t cat_hour; /* hour for which cat_cum holds */
    double *cat_cum;  /* cumulative category weights, nregions x ncategories */

    int64_t disc_period;
    int *disc_pct; /* discount step per category in the current period */

    /* names as slices, so that encoding never calls strlen */
    ss_str *s_cat, *s_city, *s_country, *s_method, *s_seg, *s_pname, *s_pid, *s_freason, *s_creason;
    ss_str s_currency;

    ss_gen_stats st;
    ss_event ev;
    char event_id[64], order_id[48], customer_id[48];
};

static ss_str *slices(uint32_t n, const void *base, size_t stride, size_t off)
{
    ss_str *s = ss_calloc(n ? n : 1, sizeof *s);
    for (uint32_t i = 0; i < n; i++) {
        const char *str;
        memcpy(&str, (const char *)base + i * stride + off, sizeof str);
        s[i] = (ss_str){str, (uint32_t)strlen(str)};
    }
    return s;
}

static ss_str *name_slices(uint32_t n, char **names)
{
    return slices(n, names, sizeof *names, 0);
}

ss_gen *ss_gen_new(const ss_profile *p, const ss_gen_config *cfg)
{
    ss_gen *g = ss_calloc(1, sizeof *g);
    g->p = p;
    g->cfg = *cfg;
    if (!(g->cfg.rate > 0.0))
        g->cfg.rate = p->rate;
    ss_rng_seed(&g->rng, ss_hash2(cfg->seed, 0x6f72646572730000ULL));
    snprintf(
        g->tag, sizeof g->tag, "%012llx",
        (unsigned long long)(ss_hash2(cfg->seed, (uint64_t)cfg->start_ms) & 0xffffffffffffULL));
    g->tag_len = strlen(g->tag);
    g->tf = (double)cfg->start_ms;
    g->day = INT64_MIN;
    g->cat_hour = INT64_MIN;
    g->disc_period = INT64_MIN;
    ss_calq_init(&g->repeats, cfg->start_ms);
    ss_week_init(&g->week, p);
    g->arrivals_end = p->active_days > 0.0
                          ? cfg->start_ms + (int64_t)(p->active_days * (double)SS_MS_PER_DAY)
                          : INT64_MAX;
    g->pools = ss_calloc(p->nsegments, sizeof *g->pools);
    g->cat_cum = ss_calloc((size_t)p->nregions * p->ncategories, sizeof *g->cat_cum);
    g->disc_pct = ss_calloc(p->ncategories, sizeof *g->disc_pct);

    g->s_cat = slices(p->ncategories, p->categories, sizeof *p->categories,
                      offsetof(ss_prof_category, name));
    g->s_city = slices(p->ncities, p->cities, sizeof *p->cities, offsetof(ss_prof_city, name));
    g->s_country =
        slices(p->ncountries, p->countries, sizeof *p->countries, offsetof(ss_prof_country, name));
    g->s_method =
        slices(p->nmethods, p->methods, sizeof *p->methods, offsetof(ss_prof_method, name));
    g->s_seg =
        slices(p->nsegments, p->segments, sizeof *p->segments, offsetof(ss_prof_segment, name));
    g->s_pname =
        slices(p->nproducts, p->products, sizeof *p->products, offsetof(ss_prof_product, name));
    g->s_pid = ss_calloc(p->nproducts, sizeof *g->s_pid);
    for (uint32_t i = 0; i < p->nproducts; i++)
        g->s_pid[i] = (ss_str){p->products[i].id, (uint32_t)strlen(p->products[i].id)};
    g->s_freason = name_slices(p->failure_reasons.n, p->failure_reasons.names);
    g->s_creason = name_slices(p->cancel_reasons.n, p->cancel_reasons.names);
    g->s_currency = (ss_str){p->currency, (uint32_t)strlen(p->currency)};
    return g;
}

void ss_gen_free(ss_gen *g)
{
    if (!g)
        return;
    ss_pheap_free(&g->heap);
    ss_calq_free(&g->repeats);
    if (g->pools)
        for (uint32_t i = 0; i < g->p->nsegments; i++)
            free(g->pools[i].v);
    free(g->pools);
    free(g->cat_cum);
    free(g->disc_pct);
    free(g->s_cat);
    free(g->s_city);
    free(g->s_country);
    free(g->s_method);
    free(g->s_seg);
    free(g->s_pname);
    free(g->s_pid);
    free(g->s_freason);
    free(g->s_creason);
    free(g);
}

const char *ss_gen_tag(const ss_gen *g)
{
    return g->tag;
}

void ss_gen_get_stats(const ss_gen *g, ss_gen_stats *st)
{
    *st = g->st;
    st->customers = g->ncustomers;
    st->pending = g->heap.n + g->repeats.n;
}

/* ---- the queues of pending events ---- */

static void push(ss_gen *g, ss_pheap *h, pending e)
{
    e.seq = g->seq++;
    ss_pheap_push(h, &e);
}

/* ---- arrivals ---- */

static void set_day(ss_gen *g, int64_t day)
{
    const ss_profile *p = g->p;
    g->day = day;
    /* The day's volume factor depends only on (seed, day), not on how much
     * randomness earlier days consumed. Gamma with mean 1 and the profile's
     * coefficient of variation gives the over-dispersion of real daily totals. */
    double f = 1.0;
    if (p->day_dispersion > 0.0) {
        ss_rng r;
        ss_rng_seed(&r, ss_hash2(g->cfg.seed ^ 0x646179ULL, (uint64_t)day));
        double k = 1.0 / (p->day_dispersion * p->day_dispersion);
        f = ss_rng_gamma(&r, k, 1.0 / k);
    }
    if (p->trend_per_day != 0.0) {
        /* Constant within a local day, at its value at midday. */
        double mid = (double)day * SS_MS_PER_DAY - (double)p->utc_offset_ms + SS_MS_PER_DAY / 2.0 -
                     (double)g->cfg.start_ms;
        f *= exp(p->trend_per_day * mid / (double)SS_MS_PER_DAY);
    }
    g->day_factor = f;
    g->weekday_factor = p->weekly_curve[ss_time_weekday(day * SS_MS_PER_DAY)];
    g->lam_max = g->cfg.rate / 1000.0 * p->daily_max * g->weekday_factor * f;
}

/* Intensity at local time-of-day (ms into the local day), per ms. The daily
 * curve is interpolated linearly between its hourly points. */
static double intensity(const ss_gen *g, double ms_of_day)
{
    double h = ms_of_day / (double)SS_MS_PER_HOUR;
    int i = (int)h;
    if (i > 23)
        i = 23;
    double f = h - i;
    double d = g->p->daily_curve[i] * (1.0 - f) + g->p->daily_curve[(i + 1) % 24] * f;
    return g->cfg.rate / 1000.0 * d * g->weekday_factor * g->day_factor;
}

/* The next arrival's time, or INT64_MAX once arrivals have stopped. */
static int64_t next_arrival(ss_gen *g)
{
    const double off = (double)g->p->utc_offset_ms, dayms = (double)SS_MS_PER_DAY;
    for (;;) {
        if (g->tf >= (double)g->arrivals_end)
            return INT64_MAX;
        int64_t day = (int64_t)floor((g->tf + off) / dayms);
        if (day != g->day)
            set_day(g, day);
        double day_end = (double)(day + 1) * dayms - off;
        if (!(g->lam_max > 0.0)) {
            g->tf = day_end;
            continue;
        }
        double cand = g->tf + ss_rng_exponential(&g->rng, g->lam_max);
        if (cand >= day_end) {
            /* The process is memoryless: restart at the day boundary with the
             * next day's bound. */
            g->tf = day_end;
            continue;
        }
        g->tf = cand;
        double lam = intensity(g, cand + off - (double)day * dayms);
        if (ss_rng_uniform(&g->rng) * g->lam_max < lam)
            return (int64_t)floor(cand);
    }
}

/* ---- the shop ---- */

static void refresh_categories(ss_gen *g, int64_t ts)
{
    const ss_profile *p = g->p;
    int64_t hour = ss_time_floor(ts, SS_MS_PER_HOUR) / SS_MS_PER_HOUR;
    if (hour == g->cat_hour)
        return;
    g->cat_hour = hour;
    double days = (double)(hour * SS_MS_PER_HOUR) / (double)SS_MS_PER_DAY;
    for (uint32_t r = 0; r < p->nregions; r++) {
        double sum = 0.0;
        for (uint32_t c = 0; c < p->ncategories; c++) {
            const ss_prof_category *k = &p->categories[c];
            double trend = 1.0 + k->trend_amplitude *
                                     sin(2.0 * M_PI * days / k->trend_period_days + k->trend_phase);
            sum += k->weight * p->regions[r].category_pref[c] * trend;
            g->cat_cum[(size_t)r * p->ncategories + c] = sum;
        }
    }
}

static void refresh_discounts(ss_gen *g, int64_t ts)
{
    const ss_profile *p = g->p;
    int64_t period =
        ss_time_floor(ts + p->utc_offset_ms, p->discount_period_ms) / p->discount_period_ms;
    if (period == g->disc_period)
        return;
    g->disc_period = period;
    /* Each campaign period sets one discount step per category. */
    ss_rng r;
    ss_rng_seed(&r, ss_hash2(g->cfg.seed ^ 0x63616d706169676eULL, (uint64_t)period));
    for (uint32_t c = 0; c < p->ncategories; c++)
        g->disc_pct[c] =
            p->discount_steps[ss_rng_pick_cum(&r, p->discount_step_cum, p->ndiscount_steps)];
}

static void pick_customer(ss_gen *g, customer *cu, uint32_t *seg)
{
    const ss_profile *p = g->p;
    if (p->bgnbd) {
        /* Arrivals are first orders; returning customers come from the heap. */
        const ss_prof_country *k = &p->countries[ss_alias_draw(&p->country_alias, &g->rng)];
        *seg = ss_alias_draw(&p->segment_alias, &g->rng);
        cu->city = k->first_city + ss_alias_draw(&k->city_alias, &g->rng);
        cu->num = ++g->ncustomers;
        return;
    }
    /* A young shop has few customers to come back: the share of repeat
     * orders ramps up with the customer base until repeat_warmup. */
    double repeat = p->repeat_share;
    if ((double)g->pool_total < p->repeat_warmup)
        repeat *= (double)g->pool_total / p->repeat_warmup;
    if (g->pool_total > 0 && ss_rng_uniform(&g->rng) < repeat) {
        /* A returning customer: loyal segments come back more often. */
        double tot = 0.0;
        for (uint32_t s = 0; s < p->nsegments; s++)
            tot += (double)g->pools[s].n * p->segments[s].repeat_weight;
        if (tot > 0.0) {
            double x = ss_rng_uniform(&g->rng) * tot;
            uint32_t s = 0;
            for (; s + 1 < p->nsegments; s++) {
                x -= (double)g->pools[s].n * p->segments[s].repeat_weight;
                if (x < 0.0)
                    break;
            }
            while (g->pools[s].n == 0 || p->segments[s].repeat_weight <= 0.0)
                s = (s + 1) % p->nsegments;
            *cu = g->pools[s].v[ss_rng_below(&g->rng, (uint32_t)g->pools[s].n)];
            *seg = s;
            return;
        }
    }
    /* A first-time customer: a home city for life, chosen by the country's
     * share of the shop's market and the city's population within it. */
    uint32_t s = ss_alias_draw(&p->segment_alias, &g->rng);
    const ss_prof_country *k = &p->countries[ss_alias_draw(&p->country_alias, &g->rng)];
    cu->city = k->first_city + ss_alias_draw(&k->city_alias, &g->rng);
    cu->num = ++g->ncustomers;
    *seg = s;
    seg_pool *pool = &g->pools[s];
    if (g->pool_total >= p->max_pool && pool->n > 0) {
        /* The pool is full: this customer takes the place of a churned one. */
        pool->v[ss_rng_below(&g->rng, (uint32_t)pool->n)] = *cu;
        return;
    }
    if (pool->n == pool->cap) {
        pool->cap = pool->cap ? pool->cap * 2 : 1024;
        pool->v = ss_realloc(pool->v, pool->cap * sizeof *pool->v);
    }
    pool->v[pool->n++] = *cu;
    g->pool_total++;
}

/* Writes "<prefix>-<tag>-<n>" and returns its length. */
static size_t make_id(const ss_gen *g, char *out, char prefix, uint64_t n)
{
    out[0] = prefix;
    out[1] = '-';
    memcpy(out + 2, g->tag, g->tag_len);
    size_t len = 2 + g->tag_len;
    out[len++] = '-';
    /* Fixed width keeps ids in creation order when sorted as text, so a
     * store's indexes on them grow at one end instead of everywhere. */
    if (n < 10000000000ULL) {
        ss_fmt_u64_width(out + len, 10, n);
        return len + 10;
    }
    return len + ss_fmt_u64(out + len, n);
}

static void set_ids(ss_gen *g, uint64_t order_no, const char *suffix, size_t slen)
{
    size_t n = make_id(g, g->order_id, 'o', order_no);
    g->ev.order_id = (ss_str){g->order_id, (uint32_t)n};
    n = make_id(g, g->event_id, 'e', order_no);
    memcpy(g->event_id + n, suffix, slen);
    g->ev.event_id = (ss_str){g->event_id, (uint32_t)(n + slen)};
}

static int64_t delay_ms(ss_gen *g, double min_s, double mean_s)
{
    double s = min_s + (mean_s > min_s ? ss_rng_exponential(&g->rng, 1.0 / (mean_s - min_s)) : 0);
    int64_t ms = (int64_t)(s * 1000.0);
    return ms < 1 ? 1 : ms;
}

static int64_t round_cents(double x)
{
    return (int64_t)llround(x);
}

/* A bgnbd customer's next order: after each repeat order the customer drops
 * out with probability drop; otherwise the next order follows a Poisson
 * process of the customer's rate shaped by the daily and weekly curves
 * (without the day factor or trend: those describe the shop's acquisition,
 * not a customer's habits), drawn by inverting its integral. */
static void schedule_repeat(ss_gen *g, int64_t ts, const customer *cu, uint32_t seg, double lam,
                            float drop, int first)
{
    if (!first && ss_rng_uniform(&g->rng) < drop)
        return;
    double mass = ss_rng_exponential(&g->rng, 1.0) / (lam * (double)SS_MS_PER_HOUR);
    double t = ss_week_advance(&g->week, (double)ts, mass);
    if (!(t >= (double)ts && t < 253402300799999.0))
        return; /* a week without intensity, or past the year 9999, which timestamps cannot write */
    pending e = {
        .ts = (int64_t)t,
        .order_no = cu->num,
        .lam = lam,
        .country = cu->city,
        .drop = drop,
        .kind = PEND_REPEAT,
        .method = (uint8_t)seg,
        .seq = g->seq++,
    };
    ss_calq_push(&g->repeats, &e);
}

static void emit_order(ss_gen *g, int64_t ts, const pending *repeat)
{
    const ss_profile *p = g->p;
    uint64_t order_no = ++g->st.orders;
    customer cu;
    uint32_t seg;
    if (repeat) {
        cu = (customer){.num = repeat->order_no, .city = repeat->country};
        seg = repeat->method;
        schedule_repeat(g, ts, &cu, seg, repeat->lam, repeat->drop, 0);
    } else {
        pick_customer(g, &cu, &seg);
        if (p->bgnbd) {
            const ss_prof_bgnbd *bg = &p->segments[seg].bg;
            double lam = ss_rng_gamma(&g->rng, bg->r, 1.0 / bg->alpha_days) / (double)SS_MS_PER_DAY;
            double x = ss_rng_gamma(&g->rng, bg->a, 1.0), y = ss_rng_gamma(&g->rng, bg->b, 1.0);
            double drop = x + y > 0.0 ? x / (x + y) : 1.0;
            if (lam > 0.0)
                schedule_repeat(g, ts, &cu, seg, lam, (float)drop, 1);
        }
    }
    const ss_prof_city *city = &p->cities[cu.city];
    const ss_prof_country *k = &p->countries[city->country];

    refresh_categories(g, ts);
    const double *cum = &g->cat_cum[(size_t)k->region * p->ncategories];
    uint32_t ci = ss_rng_pick_cum(&g->rng, cum, p->ncategories);
    const ss_prof_category *cat = &p->categories[ci];
    uint32_t pi = cat->first_product + ss_alias_draw(&cat->zipf, &g->rng);
    const ss_prof_product *prod = &p->products[pi];

    refresh_discounts(g, ts);
    int32_t qty = (int32_t)ss_alias_draw(&p->quantity_alias, &g->rng) + 1;
    int64_t amount = prod->price * qty;
    int pct = g->disc_pct[ci] + (g->disc_pct[ci] > 0 ? p->segments[seg].extra_discount_percent : 0);
    int64_t discount = round_cents((double)amount * pct / 100.0);
    int64_t net = amount - discount;
    int64_t tax = round_cents((double)net * k->vat);
    int64_t shipping = net >= p->free_shipping_threshold ? 0 : k->shipping;
    uint32_t method = ss_alias_draw(&k->method_alias, &g->rng);

    g->ev.type = SS_EV_ORDER;
    g->ev.ts = ts;
    set_ids(g, order_no, "-o", 2);
    ss_order *o = &g->ev.u.order;
    size_t n = make_id(g, g->customer_id, 'c', cu.num);
    o->customer_id = (ss_str){g->customer_id, (uint32_t)n};
    o->customer_segment = g->s_seg[seg];
    o->product_id = g->s_pid[pi];
    o->product_name = g->s_pname[pi];
    o->category = g->s_cat[ci];
    o->city = g->s_city[cu.city];
    o->country = g->s_country[city->country];
    o->quantity = qty;
    o->unit_price = prod->price;
    o->amount = amount;
    o->discount = discount;
    o->tax = tax;
    o->shipping = shipping;
    o->total_price = net + tax + shipping;
    o->currency = g->s_currency;
    o->payment_method = g->s_method[method];

    push(g, &g->heap,
         (pending){
             .ts = ts + delay_ms(g, p->first_delay_min_s, p->first_delay_mean_s),
             .order_no = order_no,
             .total = o->total_price,
             .country = city->country,
             .kind = PEND_PAYMENT,
             .attempt = 1,
             .method = (uint8_t)method,
         });
}

static void emit_payment(ss_gen *g, const pending *e)
{
    const ss_profile *p = g->p;
    char suffix[24] = "-p";
    size_t sl = 2 + ss_fmt_u64(suffix + 2, e->attempt);
    g->ev.type = SS_EV_PAYMENT;
    g->ev.ts = e->ts;
    set_ids(g, e->order_no, suffix, sl);
    ss_payment *pay = &g->ev.u.payment;
    pay->payment_method = g->s_method[e->method];
    pay->amount = e->total;
    pay->attempt = e->attempt;
    g->st.payments++;

    if (ss_rng_uniform(&g->rng) >= p->methods[e->method].failure_rate) {
        pay->success = 1;
        pay->failure_reason = (ss_str){"", 0};
        if (ss_rng_uniform(&g->rng) < p->cancel_rate) {
            double minutes =
                exp(log(p->cancel_median_min) + p->cancel_sigma * ss_rng_normal(&g->rng));
            if (minutes < p->cancel_min_min)
                minutes = p->cancel_min_min;
            if (minutes > p->cancel_max_h * 60.0)
                minutes = p->cancel_max_h * 60.0;
            push(g, &g->heap,
                 (pending){
                     .ts = e->ts + (int64_t)(minutes * 60000.0),
                     .order_no = e->order_no,
                     .total = e->total,
                     .kind = PEND_CANCEL,
                     .reason = (uint16_t)ss_alias_draw(&p->cancel_reasons.alias, &g->rng),
                 });
        }
        return;
    }

    pay->success = 0;
    pay->failure_reason = g->s_freason[ss_alias_draw(&p->failure_reasons.alias, &g->rng)];
    g->st.failed_payments++;
    if (e->attempt < p->max_attempts && ss_rng_uniform(&g->rng) < p->retry_share) {
        /* The customer tries again with another method of their country: a
         * draw from its mix without the method that failed (a country with a
         * single method keeps it). Redrawing from the whole mix a bounded
         * number of times could return the failed method again. */
        const ss_prof_country *k = &p->countries[e->country];
        double others = 0.0;
        for (uint32_t i = 0; i < p->nmethods; i++)
            if (i != e->method)
                others += k->payment_mix[i];
        double x = ss_rng_uniform(&g->rng) * others;
        uint32_t m = e->method;
        for (uint32_t i = 0; i < p->nmethods && others > 0.0; i++) {
            if (i == e->method || !(k->payment_mix[i] > 0.0))
                continue;
            m = i; /* the last candidate also absorbs rounding at the end */
            x -= k->payment_mix[i];
            if (x < 0.0)
                break;
        }
        pending next = *e;
        next.ts = e->ts + delay_ms(g, p->retry_delay_min_s, p->retry_delay_mean_s);
        next.attempt = (uint8_t)(e->attempt + 1);
        next.method = (uint8_t)m;
        push(g, &g->heap, next);
        return;
    }
    double minutes =
        p->unpaid_cancel_min_min +
        ss_rng_uniform(&g->rng) * (p->unpaid_cancel_max_min - p->unpaid_cancel_min_min);
    push(g, &g->heap,
         (pending){
             .ts = e->ts + 1 + (int64_t)(minutes * 60000.0),
             .order_no = e->order_no,
             .total = 0,
             .kind = PEND_CANCEL,
             .reason = REASON_UNPAID,
         });
}

static void emit_cancel(ss_gen *g, const pending *e)
{
    g->ev.type = SS_EV_CANCELLATION;
    g->ev.ts = e->ts;
    set_ids(g, e->order_no, "-c", 2);
    ss_cancellation *c = &g->ev.u.cancel;
    c->reason = e->reason == REASON_UNPAID ? SS_STR("payment_failed") : g->s_creason[e->reason];
    c->refund = e->total;
    g->st.cancellations++;
}

int ss_gen_next(ss_gen *g, const ss_event **ev)
{
    *ev = NULL;
    for (;;) {
        int more = g->cfg.count == 0 || g->st.orders < g->cfg.count;
        if (!g->has_next && !g->arrivals_over && more) {
            g->next_ts = next_arrival(g);
            if (g->next_ts == INT64_MAX)
                g->arrivals_over = 1;
            else
                g->has_next = 1;
        }
        /* The earlier of the two queues' tops (by sequence on a tie). Once
         * --count orders are made, customers' next orders no longer matter. */
        const pending *top = g->heap.n ? &g->heap.v[0] : NULL, *rtop = NULL;
        if (more) {
            int64_t until = g->has_next ? g->next_ts : INT64_MAX;
            if (top && top->ts < until)
                until = top->ts;
            rtop = ss_calq_peek(&g->repeats, until);
        }
        int rep = rtop && (!top || ss_pending_before(rtop, top));
        if (rep)
            top = rtop;
        if (top && (!g->has_next || top->ts <= g->next_ts)) {
            pending e;
            if (rep)
                ss_calq_pop(&g->repeats, &e);
            else
                ss_pheap_pop(&g->heap, &e);
            if (e.kind == PEND_PAYMENT)
                emit_payment(g, &e);
            else if (e.kind == PEND_CANCEL)
                emit_cancel(g, &e);
            else
                emit_order(g, e.ts, &e);
        } else if (g->has_next) {
            g->has_next = 0;
            if (!more)
                continue;
            emit_order(g, g->next_ts, NULL);
        } else {
            return SS_EOF;
        }
        *ev = &g->ev;
        return SS_OK;
    }
}
