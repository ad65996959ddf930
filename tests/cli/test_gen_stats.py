"""Statistical properties of `shopstream gen`: one test per property of the
model, each with an explicit threshold. Thresholds that depend on the model
are read from the effective profile (`gen --print-profile`), never copied from
it. Tolerances around expected rates are binomial: Z standard errors.

The streams are fixed (seed, start, count, rate), so results are
reproducible; the bands are wide enough to hold for other seeds too."""

import math
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

from conftest import MS_PER_DAY, MS_PER_HOUR, cents, ts_ms

Z = 4.0  # standard errors allowed around an expected rate


def note(name, measured, threshold):
    """Prints the measured value next to its threshold (shown with pytest -s)."""
    print(f"\n[measured] {name}: {measured} (threshold: {threshold})", end="")


def binom_se(p, n):
    return math.sqrt(max(p * (1.0 - p), 1e-12) / n)


def money_cents(x):
    """Cents of a money amount from the profile (a JSON number)."""
    return int(Decimal(repr(float(x))).scaleb(2).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def round_half_up(x):
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def first_orders(orders):
    """Splits orders into (first orders of their customer, repeat orders)."""
    seen, first, repeat = set(), [], []
    for o in orders:
        if o["customer_id"] in seen:
            repeat.append(o)
        else:
            seen.add(o["customer_id"])
            first.append(o)
    return first, repeat


def country_mix(profile, country):
    """The payment mix a country uses: its own, else its region's (normalised)."""
    mix = country.get("payment_mix") or profile["regions"][country["region"]]["payment_mix"]
    s = sum(mix.values())
    return {m: w / s for m, w in mix.items()}


def local_day_hour(profile, ms):
    off = profile["shop"]["utc_offset_minutes"] * 60_000
    return (ms + off) // MS_PER_DAY, (ms + off) % MS_PER_DAY // MS_PER_HOUR


# ---------------------------------------------------------------- popularity


def test_top_products_take_a_large_share(main_stream, profile):
    orders = main_stream.orders
    n_products = profile["catalog"]["products"]
    k = max(1, math.ceil(n_products / 100))
    counts = Counter(o["product_id"] for o in orders)
    share = sum(c for _, c in counts.most_common(k)) / len(orders)
    note(f"orders share of the top 1% ({k}) of {n_products} products", round(share, 4), ">= 0.10")
    assert share >= 0.10


def test_top_categories_take_well_over_their_count_share(main_stream, profile):
    orders = main_stream.orders
    ncat = len(profile["catalog"]["categories"])
    counts = Counter(o["category"] for o in orders)
    assert len(counts) == ncat, "every category should have orders"
    share = sum(c for _, c in counts.most_common(3)) / len(orders)
    note(f"orders share of the top 3 of {ncat} categories", round(share, 4), f">= 2 x 3/{ncat}")
    assert share >= 2 * 3 / ncat


# ---------------------------------------------------------------- arrivals over time


def _days(profile, orders):
    """Orders per complete local day, and per (local hour of day)."""
    per_day, per_hour = Counter(), Counter()
    for o in orders:
        d, h = local_day_hour(profile, ts_ms(o["ts"]))
        per_day[d] += 1
        per_hour[d, h] += 1
    # The last day is cut short by --count; the first starts at --start (midnight).
    last = max(per_day)
    first = min(per_day)
    days = list(range(first, last))
    assert len(days) >= 56, f"the long stream covers only {len(days)} complete days"
    return days, per_day, per_hour


def test_busiest_hour_has_three_times_the_quietest(long_orders, profile):
    days, _, per_hour = _days(profile, long_orders)
    hours = [sum(per_hour[d, h] for d in days) for h in range(24)]
    ratio = max(hours) / max(1, min(hours))
    note(
        f"busiest/quietest hour of day over {len(days)} days (hours {hours.index(max(hours))}/"
        f"{hours.index(min(hours))})",
        round(ratio, 2),
        ">= 3",
    )
    assert ratio >= 3


def test_weekly_curve_visible(long_orders, profile):
    days, per_day, _ = _days(profile, long_orders)
    # 1970-01-01 was a Thursday: weekday 0 = Monday.
    by_wd = defaultdict(list)
    for d in days:
        by_wd[(d + 3) % 7].append(per_day[d])
    mean = {wd: sum(v) / len(v) for wd, v in by_wd.items()}
    curve = profile["arrivals"]["weekly_curve"]
    expect = (curve[0] + curve[1]) / (curve[5] + curve[6])
    assert expect > 1.1, "the profile's weekly curve no longer puts Mon+Tue above Sat+Sun"
    ratio = (mean[0] + mean[1]) / (mean[5] + mean[6])
    need = 1 + 0.5 * (expect - 1)
    note("(Mon+Tue)/(Sat+Sun) orders per day", f"{ratio:.3f} (profile {expect:.3f})", f">= {need:.3f}")
    assert ratio >= need


def test_daily_totals_over_dispersed(long_orders, profile):
    """The variance of daily counts, after dividing out the weekly curve, is far
    above the Poisson variance: each day has its own volume factor."""
    days, per_day, _ = _days(profile, long_orders)
    curve = profile["arrivals"]["weekly_curve"]
    cmean = sum(curve) / 7
    w = {d: curve[(d + 3) % 7] / cmean for d in days}
    m = sum(per_day[d] for d in days) / sum(w.values())
    # Pearson dispersion index: about 1 for a Poisson process.
    disp = sum((per_day[d] - m * w[d]) ** 2 / (m * w[d]) for d in days) / (len(days) - 1)
    # The day factor's coefficient of variation, with the Poisson part removed.
    cv2 = sum(((per_day[d] / (m * w[d]) - 1) ** 2 - 1 / (m * w[d])) for d in days) / (len(days) - 1)
    cv = math.sqrt(max(cv2, 0.0))
    want_cv = profile["arrivals"]["day_dispersion"]
    note("daily dispersion index (Poisson = 1)", round(disp, 1), ">= 5")
    note("implied day-factor CV", f"{cv:.3f} (profile {want_cv})", f"within [{want_cv / 2}, {want_cv * 2}]")
    assert disp >= 5
    assert want_cv / 2 <= cv <= want_cv * 2


def _expected_category_shares(profile, day_from, day_to):
    """Each category's expected share of orders, averaged hourly over [day_from, day_to)
    (days since the epoch), from the category weights, regional preferences, the
    regions' weights and the trends."""
    cats = profile["catalog"]["categories"]
    region_w = Counter()
    for c in profile["countries"]:
        region_w[c["region"]] += c["weight"]
    total = sum(region_w.values())
    acc = [0.0] * len(cats)
    hours = range(int(day_from * 24), int(day_to * 24))
    for h in hours:
        day = h / 24
        trend = [
            1 + c["trend"]["amplitude"] * math.sin(2 * math.pi * day / c["trend"]["period_days"] + c["trend"]["phase"])
            for c in cats
        ]
        for r, rw in region_w.items():
            pref = profile["regions"][r].get("category_preference", {})
            v = [c["weight"] * pref.get(c["name"], 1.0) * t for c, t in zip(cats, trend)]
            s = sum(v)
            for i, x in enumerate(v):
                acc[i] += rw / total * x / s
    return {c["name"]: a / len(hours) for c, a in zip(cats, acc)}


def test_category_trend_moves_share_over_weeks(long_orders, profile):
    days, per_day, _ = _days(profile, long_orders)
    span = 14
    win_a, win_b = (days[0], days[0] + span), (days[-1] + 1 - span, days[-1] + 1)
    assert win_b[0] - win_a[1] >= 28, "the two periods should be weeks apart"
    # Hours since the epoch, in UTC: the trends are functions of UTC time.
    off_days = profile["shop"]["utc_offset_minutes"] / 1440
    exp_a = _expected_category_shares(profile, win_a[0] - off_days, win_a[1] - off_days)
    exp_b = _expected_category_shares(profile, win_b[0] - off_days, win_b[1] - off_days)
    n_a = sum(per_day[d] for d in range(*win_a))
    n_b = sum(per_day[d] for d in range(*win_b))

    # Among the categories with a large trend amplitude, the one whose share
    # should move most (in standard errors) between the two periods.
    def expected_z(name):
        pa, pb = exp_a[name], exp_b[name]
        p = (pa + pb) / 2
        return abs(pb - pa) / math.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))

    large = [c["name"] for c in profile["catalog"]["categories"] if c["trend"]["amplitude"] >= 0.25]
    assert large, "no category has a trend amplitude >= 0.25"
    cat = max(large, key=expected_z)
    exp_ratio = exp_b[cat] / exp_a[cat]
    assert abs(math.log(exp_ratio)) >= math.log(1.2), f"{cat}: expected change {exp_ratio:.3f} is too small to test"

    def share(win):
        n = k = 0
        for o in long_orders:
            d, _ = local_day_hour(profile, ts_ms(o["ts"]))
            if win[0] <= d < win[1]:
                n += 1
                k += o["category"] == cat
        return k / n, n

    (pa, na), (pb, nb) = share(win_a), share(win_b)
    p = (pa * na + pb * nb) / (na + nb)
    z = (pb - pa) / math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
    ratio = pb / pa
    note(
        f"{cat} share days {win_a} vs {win_b}",
        f"{pa:.4f} -> {pb:.4f}, ratio {ratio:.3f} (profile {exp_ratio:.3f}), z {z:.1f}",
        f"|z| >= {Z} in the profile's direction; log ratio within 50% of the profile's",
    )
    assert z * math.copysign(1, exp_ratio - 1) >= Z
    assert abs(math.log(ratio) - math.log(exp_ratio)) <= 0.5 * abs(math.log(exp_ratio))


# ---------------------------------------------------------------- places


def test_customer_always_orders_from_one_city(main_stream):
    home = {}
    repeat = 0
    for o in main_stream.orders:
        key = (o["city"], o["country"], o["customer_segment"])
        prev = home.setdefault(o["customer_id"], key)
        if prev is not key:
            repeat += 1
            assert prev == key, f"customer {o['customer_id']} moved: {prev} -> {key}"
    note("repeat orders checked for a fixed city/country/segment", repeat, "> 0, all consistent")
    assert repeat > 0


def test_cities_weighted_by_population(main_stream, profile):
    """Customers' home cities follow population within their country (each
    customer counted once: independent draws); the most populous city of each
    country gets the most orders when it clearly leads."""
    first, _ = first_orders(main_stream.orders)
    cust = Counter((o["country"], o["city"]) for o in first)
    orders = Counter((o["country"], o["city"]) for o in main_stream.orders)
    worst, checked, leaders = 0.0, 0, []
    for c in profile["countries"]:
        cities = c["cities"]
        if len(cities) < 2:
            continue
        n = sum(cust[c["name"], x["name"]] for x in cities)
        assert n >= 200, f"too few customers in {c['name']} to test"
        pop = sum(x["population"] for x in cities)
        for x in cities:
            p = x["population"] / pop
            z = (cust[c["name"], x["name"]] / n - p) / binom_se(p, n)
            worst = max(worst, abs(z))
            checked += 1
        by_pop = sorted(cities, key=lambda x: -x["population"])
        if by_pop[0]["population"] >= 1.25 * by_pop[1]["population"]:
            top = max(cities, key=lambda x: orders[c["name"], x["name"]])
            leaders.append(c["name"])
            assert top["name"] == by_pop[0]["name"], f"{c['name']}: {top['name']} has the most orders"
    note(f"largest |z| of a city's customer share vs population share ({checked} cities)", round(worst, 2), f"<= {Z}")
    note("countries whose most populous city leads in orders", f"{len(leaders)} of {len(leaders)}", "all")
    assert worst <= Z


def test_regions_differ_in_category_mix(main_stream, profile):
    region_of = {c["name"]: c["region"] for c in profile["countries"]}
    by_region = defaultdict(Counter)
    for o in main_stream.orders:
        by_region[region_of[o["country"]]][o["category"]] += 1
    a, b = by_region["middle_east_africa"], by_region["europe"]
    na, nb = sum(a.values()), sum(b.values())
    # Jewelry: preferred in middle_east_africa.
    pa, pb = a["Jewelry"] / na, b["Jewelry"] / nb
    pref = profile["regions"]["middle_east_africa"]["category_preference"]["Jewelry"] / profile["regions"][
        "europe"
    ].get("category_preference", {}).get("Jewelry", 1.0)
    p = (a["Jewelry"] + b["Jewelry"]) / (na + nb)
    z = (pa - pb) / math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
    note(
        "Jewelry share middle_east_africa vs europe",
        f"{pa:.4f} vs {pb:.4f}, ratio {pa / pb:.2f} (preference ratio {pref:.2f}), z {z:.1f}",
        f"ratio >= 1.5 and z >= {Z}",
    )
    assert pref >= 2, "the profile no longer prefers Jewelry in middle_east_africa"
    assert pa / pb >= 1.5 and z >= Z
    # The whole mix: chi-square of the 2 x K table, far beyond its null mean df.
    cats = sorted(set(a) | set(b))
    chi2 = 0.0
    for k in cats:
        tot = a[k] + b[k]
        for cnt, n in ((a[k], na), (b[k], nb)):
            e = tot * n / (na + nb)
            chi2 += (cnt - e) ** 2 / e
    df = len(cats) - 1
    need = df + 10 * math.sqrt(2 * df)
    note("chi-square of category mix, middle_east_africa vs europe", f"{chi2:.0f} (df {df})", f">= {need:.0f}")
    assert chi2 >= need


# ---------------------------------------------------------------- customers


def test_most_orders_from_first_time_customers(main_stream, profile):
    first, repeat = first_orders(main_stream.orders)
    share = len(repeat) / len(main_stream.orders)
    want = profile["customers"]["repeat_share"]
    note("repeat-buyer share of orders", f"{share:.4f} (profile repeat_share {want})", f"< 0.5 and within [{want} - 0.02, {want} + 0.01]")
    assert share < 0.5 < len(first) / len(main_stream.orders)
    # Slightly below repeat_share: a young shop has few customers to come back (repeat_warmup).
    assert want - 0.02 <= share <= want + 0.01


def test_repeat_buyers_concentrated_in_loyal_segments(main_stream, profile):
    """Returning customers are drawn in proportion to segment size x repeat_weight,
    so repeat orders per first order, by segment, follow repeat_weight."""
    first, repeat = first_orders(main_stream.orders)
    f = Counter(o["customer_segment"] for o in first)
    r = Counter(o["customer_segment"] for o in repeat)
    segs = {s["name"]: s["repeat_weight"] for s in profile["customers"]["segments"]}
    base = min(segs, key=segs.get)
    top = max(segs, key=segs.get)
    rel = {s: (r[s] / f[s]) / (r[base] / f[base]) for s in segs}
    want = {s: segs[s] / segs[base] for s in segs}
    note(
        f"repeat orders per first order, relative to {base}",
        ", ".join(f"{s} {rel[s]:.2f} (weight ratio {want[s]:.2f})" for s in segs),
        "each within 20% of the repeat_weight ratio",
    )
    for s in segs:
        assert abs(rel[s] / want[s] - 1) <= 0.2, s
    lift = (r[top] / len(repeat)) / (f[top] / len(first))
    note(f"{top} share among repeat orders / among first orders", round(lift, 2), ">= 2")
    assert lift >= 2


# ---------------------------------------------------------------- prices


def test_price_fixed_per_product(main_stream):
    price = {}
    for o in main_stream.orders:
        key = (o["unit_price"], o["product_name"], o["category"])
        assert price.setdefault(o["product_id"], key) == key, o["product_id"]
    note("distinct products seen, each with one unit_price", len(price), "> 0")


def test_prices_lognormal_per_category(main_stream, profile):
    prices = defaultdict(dict)
    for o in main_stream.orders:
        prices[o["category"]][o["product_id"]] = cents(o["unit_price"]) / 100
    tested = 0
    rows = []
    for c in profile["catalog"]["categories"]:
        v = [math.log(x) for x in prices[c["name"]].values()]
        n = len(v)
        if n < 30:
            continue
        tested += 1
        mu = sum(v) / n
        sd = math.sqrt(sum((x - mu) ** 2 for x in v) / (n - 1))
        med = sorted(v)[n // 2]
        skew = sum((x - mu) ** 3 for x in v) / n / sd**3
        sigma = c["price_sigma"]
        # Shelf prices are rounded up to x.99: allow 0.05 in log terms besides sampling error.
        sd_tol = Z / math.sqrt(2 * n) + 0.05
        med_tol = Z * 1.2533 * sigma / math.sqrt(n) + 0.05
        skew_tol = Z * math.sqrt(6 / n) + 0.1
        rows.append(
            f"{c['name']}: n {n}, sd(log) {sd:.3f}/{sigma}, median {math.exp(med):.2f}/{c['price_median']}, skew {skew:+.2f}"
        )
        assert abs(sd / sigma - 1) <= sd_tol, rows[-1]
        assert abs(med - math.log(c["price_median"])) <= med_tol, rows[-1]
        assert abs(skew) <= skew_tol, rows[-1]
    note(
        "per-category log-price spread / median / skew",
        "; ".join(rows),
        f"sd within {Z}/sqrt(2n)+5% of price_sigma, median within exp({Z}*1.25*sigma/sqrt(n)+0.05), "
        f"|skew of log| <= {Z}*sqrt(6/n)+0.1",
    )
    assert tested >= len(profile["catalog"]["categories"]) // 2


def test_quantity_mostly_one_with_a_tail(main_stream, profile):
    q = Counter(o["quantity"] for o in main_stream.orders)
    n = len(main_stream.orders)
    w = profile["basket"]["quantity_weights"]
    total = sum(w)
    assert set(q) <= set(range(1, len(w) + 1))
    for k, wk in enumerate(w, 1):
        p = wk / total
        assert abs(q[k] / n - p) <= Z * binom_se(p, n) + 1e-4, (k, q[k] / n, p)
    note(
        "quantity shares 1 / 2 / >=5, max",
        f"{q[1] / n:.4f} / {q[2] / n:.4f} / {sum(v for k, v in q.items() if k >= 5) / n:.4f}, {max(q)}",
        f"share(1) > 0.5, a tail to >= 5, each within {Z} SE of quantity_weights",
    )
    assert q[1] / n > 0.5
    assert max(q) >= 5


def _discount_pct(profile, o):
    """The discount percent of an order: the allowed percent whose rounded
    discount is nearest, and that distance in cents."""
    extra = {s["name"]: s["extra_discount_percent"] for s in profile["customers"]["segments"]}[o["customer_segment"]]
    amount, disc = cents(o["amount"]), cents(o["discount"])
    best = None
    for step in profile["discounts"]["steps_percent"]:
        pct = step + extra if step > 0 else step
        d = abs(disc - round_half_up(Decimal(amount * pct) / 100))
        if best is None or d < best[1]:
            best = (step, d)
    return best


def test_discounts_only_at_campaign_steps(main_stream, profile):
    worst = 0
    seen = Counter()
    for o in main_stream.orders:
        step, d = _discount_pct(profile, o)
        worst = max(worst, d)
        assert d <= 1, f"discount {o['discount']} of {o['amount']} is no campaign step: {o}"
        seen[step] += 1
    note("largest distance of a discount from step(+segment extra)", f"{worst} cent", "<= 1 cent")
    note("orders per campaign step", dict(sorted(seen.items())), "discounts only at steps")


def test_campaigns_set_one_step_per_category_and_period(long_orders, profile):
    """Each campaign period sets one step per category; over many periods the
    steps occur at about their weights."""
    period_ms = profile["discounts"]["period_hours"] * MS_PER_HOUR
    off = profile["shop"]["utc_offset_minutes"] * 60_000
    cell = {}
    for o in long_orders:
        step, d = _discount_pct(profile, o)
        assert d <= 1, o
        key = (o["category"], (ts_ms(o["ts"]) + off) // period_ms)
        assert cell.setdefault(key, step) == step, f"two discount steps in one campaign cell {key}"
    steps = profile["discounts"]["steps_percent"]
    weights = profile["discounts"]["step_weights"]
    got = Counter(cell.values())
    n = len(cell)
    rows = []
    for s, w in zip(steps, weights):
        p = w / sum(weights)
        rows.append(f"{s}%: {got[s] / n:.3f}/{p:.3f}")
        assert abs(got[s] / n - p) <= Z * binom_se(p, n), rows[-1]
    note(f"campaign steps over {n} (category, period) cells, measured/profile", ", ".join(rows), f"each within {Z} SE")


def test_tax_is_country_vat_of_net(main_stream, profile):
    vat = {c["name"]: Decimal(repr(float(c["vat"]))) for c in profile["countries"]}
    for o in main_stream.orders:
        net = cents(o["amount"]) - cents(o["discount"])
        assert cents(o["tax"]) == round_half_up(net * vat[o["country"]]), o
    note("orders whose tax != round((amount-discount) * vat)", 0, "0")


def test_free_shipping_threshold(main_stream, profile):
    threshold = money_cents(profile["shop"]["free_shipping_threshold"])
    fee = {c["name"]: money_cents(c["shipping"]) for c in profile["countries"]}
    free = paid = 0
    for o in main_stream.orders:
        net = cents(o["amount"]) - cents(o["discount"])
        if net >= threshold:
            assert cents(o["shipping"]) == 0, o
            free += 1
        else:
            assert cents(o["shipping"]) == fee[o["country"]], o
            paid += 1
    note("orders with free / paid shipping", f"{free} / {paid}", "both > 0, all consistent")
    assert free > 0 and paid > 0


# ---------------------------------------------------------------- payments


def test_payment_method_mix_differs_by_country(main_stream, profile):
    countries = {c["name"]: c for c in profile["countries"]}
    per = defaultdict(Counter)
    for o in main_stream.orders:
        per[o["country"]][o["payment_method"]] += 1
    worst = 0.0
    for name, c in countries.items():
        n = sum(per[name].values())
        for m, p in country_mix(profile, c).items():
            worst = max(worst, abs(per[name][m] / n - p) / (binom_se(p, n) if p > 0 else 1 / n))
            if p == 0:
                assert per[name][m] == 0, (name, m)
    nl = per["Netherlands"]["bank_transfer"] / sum(per["Netherlands"].values())
    us = per["United States"]["bank_transfer"] / sum(per["United States"].values())
    exp_nl = country_mix(profile, countries["Netherlands"])["bank_transfer"]
    exp_us = country_mix(profile, countries["United States"])["bank_transfer"]
    note("bank_transfer share Netherlands vs United States", f"{nl:.4f} vs {us:.4f} (profile {exp_nl} vs {exp_us})", ">= 0.3 apart")
    note("largest |z| of any country's method share vs its mix", round(worst, 2), f"<= {Z}")
    assert exp_nl - exp_us >= 0.3, "the profile no longer separates NL and US on bank_transfer"
    assert nl - us >= 0.3
    assert worst <= Z


def _failure_rates(stream):
    att, fail = Counter(), Counter()
    for p in stream.payments:
        att[p["payment_method"]] += 1
        fail[p["payment_method"]] += p["status"] == "failed"
    return att, fail


def test_failure_rate_per_method(main_stream, profile):
    att, fail = _failure_rates(main_stream)
    rows = []
    for m in profile["payments"]["methods"]:
        name, fr = m["name"], m["failure_rate"]
        n = att[name]
        assert n >= 1000, f"too few {name} payments to test"
        rate = fail[name] / n
        tol = Z * binom_se(fr, n)
        rows.append(f"{name} {rate:.4f}/{fr} (n {n}, +-{tol:.4f})")
        assert abs(rate - fr) <= tol, rows[-1]
    note("failure rate per method, measured/profile", "; ".join(rows), f"within {Z} binomial SE")


def test_cards_fail_more_than_vouchers(main_stream, profile):
    fr = {m["name"]: m["failure_rate"] for m in profile["payments"]["methods"]}
    assert fr["card"] > fr["voucher"], "the profile no longer makes cards fail more"
    att, fail = _failure_rates(main_stream)
    rc, rv = fail["card"] / att["card"], fail["voucher"] / att["voucher"]
    se = math.sqrt(rc * (1 - rc) / att["card"] + rv * (1 - rv) / att["voucher"])
    note("card vs voucher failure rate", f"{rc:.4f} vs {rv:.4f}", f"difference >= {Z} SE ({Z * se:.4f})")
    assert rc - rv >= Z * se


def _retries(stream, max_attempts):
    """(failed attempts that could be retried, those retried, retries with the same method)."""
    can = retried = same = 0
    for g in stream.by_order.values():
        pays = g["payments"]
        for prev, nxt in zip(pays, pays[1:]):
            same += prev["payment_method"] == nxt["payment_method"]
        for i, p in enumerate(pays):
            if p["status"] == "failed" and p["attempt"] < max_attempts:
                can += 1
                retried += i + 1 < len(pays)
    return can, retried, same


def test_failed_payments_retried_with_another_method(main_stream, profile):
    share = profile["payments"]["retry_share"]
    can, retried, same = _retries(main_stream, profile["payments"]["max_attempts"])
    rate = retried / can
    note("retried share of retryable failures", f"{rate:.4f}/{share} (n {can})", f"within {Z} SE ({Z * binom_se(share, can):.4f})")
    note("retries with the failed attempt's method", same, "0")
    assert abs(rate - share) <= Z * binom_se(share, can)
    assert same == 0


def test_retry_takes_another_method_when_one_dominates(gen, profile):
    """With a mix of 90% card and 10% voucher everywhere, a retry after a failed
    card payment must still be a voucher (and after a voucher, a card)."""
    countries = [dict(c, payment_mix={"card": 0.9, "voucher": 0.1}) for c in profile["countries"]]
    override = {"countries": countries}
    eff = gen.profile(override)
    assert all(c["payment_mix"] == {"card": 0.9, "voucher": 0.1} for c in eff["countries"])
    s = gen.stream(seed=21, count=30_000, override=override)
    can, retried, same = _retries(s, eff["payments"]["max_attempts"])
    share = eff["payments"]["retry_share"]
    note("card/voucher-only profile: retries, same-method retries", f"{retried}, {same}", "> 500, 0")
    note("card/voucher-only profile: retried share", f"{retried / can:.4f}/{share}", f"within {Z} SE")
    assert retried > 500
    assert same == 0
    assert abs(retried / can - share) <= Z * binom_se(share, can)


def test_cancellation_rate_of_paid_orders(main_stream, profile):
    want = profile["cancellations"]["rate"]
    paid = cancelled = 0
    for g in main_stream.by_order.values():
        if any(p["status"] == "success" for p in g["payments"]):
            paid += 1
            cancelled += bool(g["cancellations"])
    rate = cancelled / paid
    note("cancelled share of paid orders", f"{rate:.4f}/{want} (n {paid})", f"within {Z} SE ({Z * binom_se(want, paid):.4f})")
    assert abs(rate - want) <= Z * binom_se(want, paid)


# ---------------------------------------------------------------- profile overrides


def test_override_failure_rate_zero_removes_failures(gen, profile):
    """Arrays replace: the override gives the whole methods list, card at 0."""
    methods = [dict(m, failure_rate=0.0) if m["name"] == "card" else m for m in profile["payments"]["methods"]]
    override = {"payments": {"methods": methods}}
    eff = gen.profile(override)
    assert eff["payments"]["methods"] == methods
    # Objects merge: the rest of the profile is untouched.
    assert eff["payments"]["retry_share"] == profile["payments"]["retry_share"]
    assert eff["countries"] == profile["countries"]
    s = gen.stream(seed=13, count=30_000, override=override)
    att, fail = _failure_rates(s)
    others = sum(fail[m] for m in att if m != "card")
    note("card payments / failures with card failure_rate 0", f"{att['card']} / {fail['card']}", "> 1000 / 0")
    note("failures of other methods under the override", others, "> 0")
    assert att["card"] > 1000
    assert fail["card"] == 0
    assert others > 0
