"""Black-box tests of `shopstream fit`, which learns the generator's profile from
a sample of orders (docs/profile.md, "Learning a profile from orders").

- Round trip: 200,000 orders generated with a profile unlike the defaults are
  fitted, and every parameter comes back within the tolerance stated for it in
  TOLERANCES below.
- Real data: the CDNOW sample (../shared/samples/cdnow_sample.csv next to the
  repository) is fitted and a stream generated over its period reaches an
  overall fidelity of at least 0.85; every score is printed.
- Segments by behaviour: a sample of two kinds of customer (a segment column
  or none) comes back as two segments with their own BG/NBD parameters; a
  sample of one kind gets none, and CDNOW's raw sample neither.
- Determinism, bad input (exit 2 naming line and column), small samples
  (defaults kept with warnings), --columns, and the generator's new keys.
"""

import json
import math
import re

import pytest

from harness import BIN, REPO, assert_ok, cli, describe

SAMPLES = REPO.parent / "shared" / "samples"
CDNOW = SAMPLES / "cdnow_sample.csv"
START = "2026-01-05"  # a Monday

# The round trip's profile: every part of the model away from its default.
RT_WEEKLY = [0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 0.7]
RT_DAILY = [0.5, 0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.0, 1.2, 1.3, 1.4, 1.5, 1.5, 1.4, 1.3, 1.3,
            1.4, 1.6, 1.8, 1.9, 1.6, 1.2, 0.8]
RT_BGNBD = {"r": 0.6, "alpha_days": 8.0, "a": 1.2, "b": 4.0}
RT_QUANTITY = [0.5, 0.3, 0.15, 0.05]

# Tolerance per parameter: relative (rel) or absolute (abs), with the reason
# for its width where it is not a few standard errors of 200,000 orders.
TOLERANCES = {
    "arrivals.rate": ("rel", 0.10),
    "arrivals.weekly_curve[]": ("abs", 0.05),
    "arrivals.daily_curve[]": ("abs", 0.12),  # smoothed between hours
    "arrivals.trend_per_day": ("abs", 0.005),  # ~75 days with day dispersion 0.3
    "arrivals.day_dispersion": ("abs", 0.08),
    "customers.bgnbd.r": ("rel", 0.10),
    "customers.bgnbd.alpha_days": ("rel", 0.12),
    "customers.bgnbd.a": ("rel", 0.20),
    "customers.bgnbd.b": ("rel", 0.20),
    "customers.segments[].share": ("abs", 0.01),
    "basket.quantity_weights[]": ("abs", 0.01),
    "catalog.categories[].weight": ("abs", 0.005),
    # One value per product, and prices are rounded up to .99: categories of
    # 40 products or more.
    "catalog.categories[].price_median": ("rel", 0.20),
    "catalog.categories[].price_sigma": ("abs", 0.12),
    "catalog.products": ("abs", 0),
    "catalog.zipf_exponent": ("abs", 0.05),
    "countries[].weight": ("abs", 0.01),
    "countries[].payment_mix": ("abs", 0.03),  # countries of 5,000 orders or more
    # Category mix by country, as a preference over the shop's mix (neutral
    # regions: 1), for categories of 5 % of orders or more in those countries.
    "regions[<code>].category_preference": ("abs", 0.2),
    "payments.methods[].failure_rate": ("abs", 0.015),
    "cancellations.rate": ("abs", 0.01),
}


def within(name, got, want):
    kind, tol = TOLERANCES[name]
    err = abs(got - want) / abs(want) if kind == "rel" else abs(got - want)
    assert err <= tol, f"{name}: learned {got}, true {want} ({kind} error {err:.4f} > {tol})"


def fit(*args, timeout=600):
    return cli("fit", *args, timeout=timeout)


def default_profile():
    return json.loads(assert_ok(cli("gen", "--print-profile")).stdout)


def rt_override(defaults):
    cats = defaults["catalog"]["categories"]
    for i, c in enumerate(cats):
        c["price_median"] = round(c["price_median"] * 1.5, 2)
        c["price_sigma"] = 0.5
        c["trend"]["amplitude"] = 0
        c["weight"] = 1 + (i % 5)
    methods = defaults["payments"]["methods"]
    for m in methods:
        m["failure_rate"] = round(m["failure_rate"] * 1.5, 3)
    names = [c["name"] for c in cats]
    # Neutral regions: a category's share of orders is then its weight's share.
    regions = {r: {"category_preference": {n: 1.0 for n in names}}
               for r in defaults["regions"]}
    return {
        "arrivals": {"rate": 0.012, "weekly_curve": RT_WEEKLY, "daily_curve": RT_DAILY,
                     "day_dispersion": 0.3, "trend_per_day": 0.004},
        "customers": {"model": "bgnbd", "bgnbd": RT_BGNBD},
        "basket": {"quantity_weights": RT_QUANTITY},
        "catalog": {"zipf_exponent": 0.8, "products": 2000, "categories": cats},
        "regions": regions,
        "payments": {"methods": methods},
        "cancellations": {"rate": 0.1},
    }


@pytest.fixture(scope="module")
def binary():
    import os
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    return BIN


@pytest.fixture(scope="module")
def round_trip(binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rt")
    defaults = default_profile()
    over = rt_override(json.loads(json.dumps(defaults)))
    (tmp / "true.json").write_text(json.dumps(over))
    true = json.loads(assert_ok(cli("gen", "--profile", tmp / "true.json",
                                    "--print-profile")).stdout)
    sample = tmp / "sample.jsonl"
    assert_ok(cli("gen", "--profile", tmp / "true.json", "--seed", 7, "--count", 200000,
                  "--max", "--start", START, "--out", sample))
    proc = assert_ok(fit(sample, "--out", tmp / "learned.json"))
    learned = json.loads((tmp / "learned.json").read_text())
    return {"true": true, "learned": learned, "summary": proc.stdout.decode(), "tmp": tmp,
            "sample": sample}


def norm(v):
    m = sum(v) / len(v)
    return [x / m for x in v]


def test_round_trip_arrivals(round_trip):
    t, g = round_trip["true"]["arrivals"], round_trip["learned"]["arrivals"]
    within("arrivals.rate", g["rate"], t["rate"])
    for a, b in zip(norm(g["weekly_curve"]), norm(t["weekly_curve"])):
        within("arrivals.weekly_curve[]", a, b)
    for a, b in zip(norm(g["daily_curve"]), norm(t["daily_curve"])):
        within("arrivals.daily_curve[]", a, b)
    within("arrivals.trend_per_day", g["trend_per_day"], t["trend_per_day"])
    within("arrivals.day_dispersion", g["day_dispersion"], t["day_dispersion"])
    assert g["active_days"] == 0, "new customers arrive to the end: no cohort"


def test_round_trip_customers(round_trip):
    t, g = round_trip["true"]["customers"], round_trip["learned"]["customers"]
    assert g["model"] == "bgnbd"
    for k in ("r", "alpha_days", "a", "b"):
        within(f"customers.bgnbd.{k}", g["bgnbd"][k], t["bgnbd"][k])
    tshare = {s["name"]: s["share"] for s in t["segments"]}
    tot = sum(tshare.values())
    gsegs = {s["name"]: s["share"] for s in g["segments"]}
    assert set(gsegs) == set(tshare)
    for name, share in gsegs.items():
        within("customers.segments[].share", share, tshare[name] / tot)
    # The segments were generated alike: none gets parameters of its own.
    assert not any("bgnbd" in s for s in g["segments"]), g["segments"]
    assert re.search(r"customers\.segments\[\]\.bgnbd\s+kept\s.*buy alike",
                     round_trip["summary"]), round_trip["summary"]


def test_round_trip_baskets_and_products(round_trip):
    t, g = round_trip["true"], round_trip["learned"]
    q = g["basket"]["quantity_weights"]
    assert len(q) == len(RT_QUANTITY)
    for a, b in zip(q, RT_QUANTITY):
        within("basket.quantity_weights[]", a, b)
    within("catalog.products", g["catalog"]["products"], t["catalog"]["products"])
    within("catalog.zipf_exponent", g["catalog"]["zipf_exponent"],
           t["catalog"]["zipf_exponent"])
    tcats = {c["name"]: c for c in t["catalog"]["categories"]}
    tot = sum(c["weight"] for c in tcats.values())
    gcats = {c["name"]: c for c in g["catalog"]["categories"]}
    assert set(gcats) == set(tcats)
    checked = 0
    for name, c in gcats.items():
        within("catalog.categories[].weight", c["weight"], tcats[name]["weight"] / tot)
        products = t["catalog"]["products"] * tcats[name]["weight"] / tot
        if products >= 40:
            within("catalog.categories[].price_median", c["price_median"],
                   tcats[name]["price_median"])
            within("catalog.categories[].price_sigma", c["price_sigma"],
                   tcats[name]["price_sigma"])
            checked += 1
    assert checked >= 10


def test_round_trip_places_and_payments(round_trip):
    t, g = round_trip["true"], round_trip["learned"]
    tc = {c["code"]: c for c in t["countries"]}
    tot = sum(c["weight"] for c in tc.values())
    for c in g["countries"]:
        within("countries[].weight", c["weight"], tc[c["code"]]["weight"] / tot)
    # Checkout mixes of the countries with many orders.
    orders = {}
    for line in round_trip["sample"].open():
        if line.startswith('{"type":"order"'):
            country = json.loads(line)["country"]
            orders[country] = orders.get(country, 0) + 1
    checked = 0
    for c in g["countries"]:
        if orders.get(c["name"], 0) < 5000:
            continue
        want = tc[c["code"]].get("payment_mix") or t["regions"][tc[c["code"]]["region"]][
            "payment_mix"]
        wt = sum(want.values())
        for m, share in c["payment_mix"].items():
            within("countries[].payment_mix", share, want.get(m, 0) / wt)
        assert c["region"] == c["code"], "a country with many orders gets a region of its own"
        cats = t["catalog"]["categories"]
        tot = sum(k["weight"] for k in cats)
        for k in cats:
            if k["weight"] / tot >= 0.05:
                within("regions[<code>].category_preference",
                       g["regions"][c["code"]]["category_preference"][k["name"]], 1.0)
        checked += 1
    assert checked >= 5
    tm = {m["name"]: m["failure_rate"] for m in t["payments"]["methods"]}
    for m in g["payments"]["methods"]:
        within("payments.methods[].failure_rate", m["failure_rate"], tm[m["name"]])
    within("cancellations.rate", g["cancellations"]["rate"], t["cancellations"]["rate"])


def test_round_trip_summary_gives_standard_errors(round_trip):
    rows = {}
    for line in round_trip["summary"].splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ("learned", "kept"):
            rows[parts[0]] = parts
    for name in ("customers.bgnbd.r", "customers.bgnbd.alpha_days", "customers.bgnbd.a",
                 "customers.bgnbd.b", "arrivals.trend_per_day", "cancellations.rate"):
        assert rows[name][1] == "learned", rows[name]
        value, se = float(rows[name][2]), float(rows[name][3])
        assert 0 < se < abs(value), f"{name}: standard error {se} of {value}"
    assert rows["arrivals.active_days"][1] == "kept"


def test_learned_profile_generates(round_trip):
    """The profile is complete: gen takes it as it is, with --count exact."""
    proc = assert_ok(cli("gen", "--profile", round_trip["tmp"] / "learned.json", "--seed", 3,
                         "--count", 500, "--max", "--start", START))
    orders = [l for l in proc.stdout.splitlines() if l.startswith(b'{"type":"order"')]
    assert len(orders) == 500


# ---- segments by behaviour ----

# Two kinds of customer: 30 % buy often and stay, 70 % buy rarely and leave.
TWO_CLASSES = [
    {"name": "heavy", "share": 0.3, "repeat_weight": 1, "extra_discount_percent": 0,
     "bgnbd": {"r": 2.0, "alpha_days": 10.0, "a": 0.5, "b": 6.0}},
    {"name": "light", "share": 0.7, "repeat_weight": 1, "extra_discount_percent": 0,
     "bgnbd": {"r": 0.5, "alpha_days": 40.0, "a": 1.5, "b": 3.0}},
]


@pytest.fixture(scope="module")
def two_classes(binary, tmp_path_factory):
    """200,000 orders of TWO_CLASSES' customers, fitted twice: as generated
    (customer_segment names each customer's kind) and without that column."""
    tmp = tmp_path_factory.mktemp("classes")
    over = {"arrivals": {"rate": 0.012},
            "customers": {"model": "bgnbd", "segments": TWO_CLASSES}}
    (tmp / "true.json").write_text(json.dumps(over))
    named = tmp / "named.jsonl"
    assert_ok(cli("gen", "--profile", tmp / "true.json", "--seed", 7, "--count", 200000, "--max",
                  "--start", START, "--out", named))
    unnamed = tmp / "unnamed.jsonl"
    with open(named) as src, open(unnamed, "w") as dst:
        for line in src:
            event = json.loads(line)
            event.pop("customer_segment", None)
            dst.write(json.dumps(event) + "\n")
    out = {"tmp": tmp}
    for name, sample in (("named", named), ("unnamed", unnamed)):
        proc = assert_ok(fit(sample, "--out", tmp / f"{name}.json"))
        out[name] = json.loads((tmp / f"{name}.json").read_text())["customers"]
        out[name + "_summary"] = proc.stdout.decode()
    return out


def assert_class(got, want, label):
    """A class's behaviour: its live customers' mean rate r / alpha within
    10 %, its mean dropout a / (a + b) within 0.05 (a and b alone trade off
    along a ridge of the likelihood), and its share within 0.03."""
    g, w = got["bgnbd"], want["bgnbd"]
    rate, true_rate = g["r"] / g["alpha_days"], w["r"] / w["alpha_days"]
    assert abs(rate / true_rate - 1) <= 0.10, f"{label}: rate {rate:.4f}, true {true_rate:.4f}"
    drop, true_drop = g["a"] / (g["a"] + g["b"]), w["a"] / (w["a"] + w["b"])
    assert abs(drop - true_drop) <= 0.05, f"{label}: dropout {drop:.3f}, true {true_drop:.3f}"
    assert abs(got["share"] - want["share"]) <= 0.03, f"{label}: share {got['share']}"


def test_latent_classes_found_without_a_segment_column(two_classes):
    segs = two_classes["unnamed"]["segments"]
    assert [s["name"] for s in segs] == ["frequent", "occasional"], segs
    assert_class(segs[0], TWO_CLASSES[0], "frequent")
    assert_class(segs[1], TWO_CLASSES[1], "occasional")
    summary = two_classes["unnamed_summary"]
    assert re.search(r"customers\.segments\s+learned\s.*2 latent classes", summary), summary
    # Every class parameter comes with a standard error.
    for j in (0, 1):
        for k in ("share", "bgnbd.r", "bgnbd.alpha_days", "bgnbd.a", "bgnbd.b"):
            row = re.search(rf"customers\.segments\[{j}\]\.{re.escape(k)}\s+learned\s+(\S+)\s+(\S+)",
                            summary)
            assert row and 0 < float(row.group(2)) < float(row.group(1)), (j, k)


def test_named_segments_get_their_own_parameters(two_classes):
    segs = {s["name"]: s for s in two_classes["named"]["segments"]}
    assert set(segs) == {"heavy", "light"}
    for want in TWO_CLASSES:
        assert_class(segs[want["name"]], want, want["name"])
    assert re.search(r"customers\.segments\[\]\.bgnbd\s+learned\s.*2 segments buy apart",
                     two_classes["named_summary"])


def test_learned_classes_generate_their_behaviour(two_classes, tmp_path):
    """gen draws each new customer's rate and dropout from the segment's own
    parameters: the frequent class's customers order more each."""
    prof = json.loads((two_classes["tmp"] / "unnamed.json").read_text())
    (tmp_path / "p.json").write_text(json.dumps(prof))
    proc = assert_ok(cli("gen", "--profile", tmp_path / "p.json", "--seed", 3, "--count", 50000,
                         "--max", "--start", START))
    per = {"frequent": {}, "occasional": {}}
    for line in proc.stdout.splitlines():
        if line.startswith(b'{"type":"order"'):
            o = json.loads(line)
            c = per[o["customer_segment"]]
            c[o["customer_id"]] = c.get(o["customer_id"], 0) + 1
    mean = {k: sum(v.values()) / len(v) for k, v in per.items()}
    share = len(per["frequent"]) / (len(per["frequent"]) + len(per["occasional"]))
    assert mean["frequent"] > 2 * mean["occasional"], mean
    assert abs(share - prof["customers"]["segments"][0]["share"]) < 0.02, share


def test_segment_bgnbd_in_a_profile(binary, tmp_path):
    base = {"customers": {"model": "bgnbd", "segments": json.loads(json.dumps(TWO_CLASSES))}}
    bad = json.loads(json.dumps(base))
    bad["customers"]["segments"][1]["bgnbd"]["rr"] = 1
    (tmp_path / "p.json").write_text(json.dumps(bad))
    proc = cli("gen", "--profile", tmp_path / "p.json", "--count", 1, "--max")
    assert proc.returncode == 2
    assert b"customers.segments[1].bgnbd.rr" in proc.stderr and b"unknown key" in proc.stderr
    bad = json.loads(json.dumps(base))
    del bad["customers"]["segments"][0]["bgnbd"]["alpha_days"]
    (tmp_path / "p.json").write_text(json.dumps(bad))
    proc = cli("gen", "--profile", tmp_path / "p.json", "--count", 1, "--max")
    assert proc.returncode == 2 and b"customers.segments[0].bgnbd.alpha_days" in proc.stderr
    bad["customers"]["segments"][0]["bgnbd"] = 3
    (tmp_path / "p.json").write_text(json.dumps(bad))
    proc = cli("gen", "--profile", tmp_path / "p.json", "--count", 1, "--max")
    assert proc.returncode == 2 and b"must be an object" in proc.stderr
    # A segment without its own parameters takes the shop's.
    ok = json.loads(json.dumps(base))
    del ok["customers"]["segments"][1]["bgnbd"]
    (tmp_path / "p.json").write_text(json.dumps(ok))
    printed = json.loads(assert_ok(cli("gen", "--profile", tmp_path / "p.json",
                                       "--print-profile")).stdout)
    assert "bgnbd" in printed["customers"]["segments"][0]
    assert "bgnbd" not in printed["customers"]["segments"][1]


# ---- real data ----

@pytest.fixture(scope="module")
def cdnow(binary, tmp_path_factory):
    if not CDNOW.exists():
        pytest.fail(f"{CDNOW} is missing: the tests need the shared samples next to the "
                    "repository (../shared/samples)")
    tmp = tmp_path_factory.mktemp("cdnow")
    proc = assert_ok(fit(CDNOW, "--out", tmp / "cdnow.json", "--report", "--seed", 1))
    return {"profile": json.loads((tmp / "cdnow.json").read_text()),
            "text": (tmp / "cdnow.json").read_bytes(), "summary": proc.stdout.decode(),
            "tmp": tmp}


def scores(summary):
    out = {}
    for line in summary.split("fidelity:", 1)[1].splitlines()[2:]:
        m = re.match(r"(.+?)\s+([01]\.[0-9]{4})$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_cdnow_fidelity(cdnow):
    sc = scores(cdnow["summary"])
    print("\nCDNOW fidelity:")
    for name, v in sc.items():
        print(f"  {name:50s} {v:.4f}")
    expected = {"amount (KS complement)", "quantity (KS complement)",
                "gap between a customer's orders (KS complement)", "day of week (TV complement)",
                "orders per customer (TV complement)", "weekly volume (correlation)",
                "overall (mean)"}
    assert expected <= set(sc), sc
    parts = [v for k, v in sc.items() if k != "overall (mean)"]
    assert sc["overall (mean)"] == pytest.approx(sum(parts) / len(parts), abs=1e-3)
    assert sc["overall (mean)"] >= 0.85, sc


def test_cdnow_model(cdnow):
    """What CDNOW's records say: a cohort acquired over 12 weeks, BG/NBD repeat
    buying, dates without times (the daily curve keeps its default)."""
    p, d = cdnow["profile"], default_profile()
    assert p["customers"]["model"] == "bgnbd"
    bg = p["customers"]["bgnbd"]
    assert 0.1 < bg["r"] < 0.5 and 10 < bg["alpha_days"] < 60, bg
    assert 75 <= p["arrivals"]["active_days"] <= 90
    assert p["arrivals"]["daily_curve"] == d["arrivals"]["daily_curve"]
    assert "arrivals.daily_curve" in cdnow["summary"] and "dates alone" in cdnow["summary"]
    assert 10 < p["catalog"]["categories"][0]["price_median"] < 20


def test_cdnow_segments(cdnow):
    """CDNOW's raw sample does not separate into BG/NBD classes: the best two
    classes put one at the edge of the ranges (a point mass of customers who
    never come back, or buy twice on one day). With a customer's orders of
    one day counted once, two classes lower the BIC, and fit keeps them."""
    assert not any("bgnbd" in s for s in cdnow["profile"]["customers"]["segments"])
    assert re.search(r"customers\.segments\s+kept\s.*2 classes [0-9.]+, a class at the edge",
                     cdnow["summary"]), cdnow["summary"]
    tmp = cdnow["tmp"]
    lines = CDNOW.read_text().splitlines()
    seen, keep = set(), [lines[0]]
    for line in lines[1:]:
        key = tuple(line.split(",")[:2])
        if key not in seen:
            seen.add(key)
            keep.append(line)
    (tmp / "days.csv").write_text("\n".join(keep) + "\n")
    proc = assert_ok(fit(tmp / "days.csv", "--out", tmp / "days.json"))
    segs = json.loads((tmp / "days.json").read_text())["customers"]["segments"]
    assert [s["name"] for s in segs] == ["frequent", "occasional"]
    assert abs(sum(s["share"] for s in segs) - 1) < 1e-5
    rates = [s["bgnbd"]["r"] / s["bgnbd"]["alpha_days"] for s in segs]
    assert rates[0] > rates[1], rates
    m = re.search(r"BIC 1 class ([0-9.]+); 2 classes ([0-9.]+)", proc.stdout.decode())
    assert m and float(m.group(2)) < float(m.group(1))


def test_determinism(cdnow):
    tmp = cdnow["tmp"]
    proc = assert_ok(fit(CDNOW, "--out", tmp / "again.json", "--report", "--seed", 1))
    assert (tmp / "again.json").read_bytes() == cdnow["text"]
    assert proc.stdout.decode() == cdnow["summary"]
    # The profile on stdout is the same bytes; the summary then goes to stderr.
    proc = assert_ok(fit(CDNOW))
    assert proc.stdout == cdnow["text"]
    assert b"customers.bgnbd.r" in proc.stderr


def test_columns_map(cdnow):
    tmp = cdnow["tmp"]
    lines = CDNOW.read_text().splitlines()
    assert lines[0] == "customer_id,order_date,quantity,amount"
    (tmp / "renamed.csv").write_text("\n".join(["cust,day,qty_,paid"] + lines[1:]) + "\n")
    out = tmp / "renamed.json"
    assert_ok(fit(tmp / "renamed.csv", "--out", out,
                  "--columns", "ts=day,customer_id=cust,quantity=qty_,amount=paid"))
    assert out.read_bytes() == cdnow["text"]


# ---- bad input and small samples ----

BAD = [
    ("missing-column", "customer_id,quantity,amount\n1,2,3.00\n", [],
     ["line 1", "ts", "--columns"]),
    ("missing-mapped-column", "customer_id,order_date,amount\n1,1997-01-01,3.00\n",
     ["--columns", "ts=when"], ["line 1", "'when'"]),
    ("unparsable-date", "customer_id,order_date,quantity,amount\n1,1997-01-01,2,3.00\n"
     "2,1997-02-30,1,2.00\n", [], ["line 3", "column 2 (order_date)", "1997-02-30"]),
    ("negative-amount", "customer_id,order_date,quantity,amount\n1,1997-01-01,2,3.00\n"
     "2,1997-01-02,1,-2.50\n", [], ["line 3", "column 4 (amount)", "negative"]),
    ("not-a-number", "customer_id,order_date,quantity,amount\n1,1997-01-01,two,3.00\n", [],
     ["line 2", "column 3 (quantity)", "not a number"]),
    ("ragged-line", "customer_id,order_date,quantity,amount\n1,1997-01-01,2\n", [],
     ["line 2", "3 fields", "4"]),
    ("empty-file", "", [], ["empty"]),
    ("header-only", "customer_id,order_date,quantity,amount\n", [], ["no orders"]),
    ("jsonl-bad-date", '{"ts":"2026-01-01T10:00:00Z","amount":1}\n{"ts":"yesterday"}\n', [],
     ["line 2", 'field "ts"', "yesterday"]),
    ("jsonl-not-json", '{"ts":"2026-01-01T10:00:00Z"}\n{"ts":\n', [], ["line 2", "column"]),
    ("bad-columns-flag", "order_date\n1997-01-01\n", ["--columns", "when"],
     ["--columns", "FIELD=COLUMN"]),
]


@pytest.mark.parametrize("name,text,args,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_input(binary, tmp_path, name, text, args, needles):
    path = tmp_path / ("sample.jsonl" if name.startswith("jsonl") else "sample.csv")
    path.write_text(text)
    proc = fit(path, *args)
    assert proc.returncode == 2, describe(proc)
    assert proc.stdout == b"", describe(proc)
    err = proc.stderr.decode()
    assert err.startswith("shopstream fit: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, f"{n!r} not in: {err}"


def test_usage_mistakes(binary, tmp_path):
    proc = fit()
    assert proc.returncode == 2 and b"no sample" in proc.stderr
    proc = fit(tmp_path / "nonexistent.csv")
    assert proc.returncode == 2 and b"cannot open" in proc.stderr


def test_small_sample_keeps_defaults(binary, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("customer_id,order_date,quantity,amount\n1,1997-01-01,2,30.00\n"
                    "2,1997-01-02,1,12.50\n1,1997-01-05,1,9.99\n")
    proc = assert_ok(fit(path, "--out", tmp_path / "p.json", "--report"))
    out = proc.stdout.decode()
    assert "warning: the sample has 3 orders" in out
    assert "fit BG/NBD" in out
    p, d = json.loads((tmp_path / "p.json").read_text()), default_profile()
    assert p["customers"]["model"] == "pool"
    for key in ("weekly_curve", "daily_curve", "day_dispersion", "trend_per_day"):
        assert p["arrivals"][key] == d["arrivals"][key], key
    assert p["basket"] == d["basket"]
    assert "overall (mean)" in out


# ---- the generator's keys that fit writes ----

def gen_orders(tmp_path, override, count, start=START):
    (tmp_path / "p.json").write_text(json.dumps(override))
    proc = assert_ok(cli("gen", "--profile", tmp_path / "p.json", "--seed", 5, "--count", count,
                         "--max", "--start", start))
    return [json.loads(l) for l in proc.stdout.splitlines() if l.startswith(b'{"type":"order"')]


def test_gen_active_days_ends_arrivals(binary, tmp_path):
    """A cohort: no orders after active_days in the pool model, so the stream
    ends before --count; BG/NBD customers keep buying after it, first orders stop."""
    orders = gen_orders(tmp_path, {"arrivals": {"rate": 0.01, "active_days": 3}}, 100000)
    assert 0 < len(orders) < 100000
    assert max(o["ts"] for o in orders) < "2026-01-08"
    orders = gen_orders(tmp_path, {"arrivals": {"rate": 0.01, "active_days": 3},
                                   "customers": {"model": "bgnbd",
                                                 "bgnbd": {"r": 2, "alpha_days": 5, "a": 1,
                                                           "b": 20}}}, 100000)
    late = [o for o in orders if o["ts"] >= "2026-01-08"]
    first_seen = {}
    for o in orders:
        first_seen.setdefault(o["customer_id"], o["ts"])
    assert late, "BG/NBD customers buy again after acquisition ends"
    assert max(first_seen.values()) < "2026-01-08"


def test_gen_bgnbd_counts_and_repeats(binary, tmp_path):
    over = {"arrivals": {"rate": 0.02},
            "customers": {"model": "bgnbd", "bgnbd": {"r": 1, "alpha_days": 2, "a": 1, "b": 9}}}
    orders = gen_orders(tmp_path, over, 20000)
    assert len(orders) == 20000
    per = {}
    for o in orders:
        per[o["customer_id"]] = per.get(o["customer_id"], 0) + 1
    assert max(per.values()) > 3 and len(per) < 20000


def test_gen_bad_model_is_usage_error(binary, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"customers": {"model": "btyd"}}))
    proc = cli("gen", "--profile", tmp_path / "p.json", "--count", 1, "--max")
    assert proc.returncode == 2
    assert b"customers.model" in proc.stderr and b"bgnbd" in proc.stderr


def test_cdnow_calibration_period_matches_published_bgnbd(cdnow):
    """The BG/NBD fit of CDNOW's first 39 weeks, with a customer's orders of one
    day counted once (2,457 repeat transactions), against the estimates that
    Fader, Hardie and Lee (2005) publish for the same data: r = 0.243,
    alpha = 4.414 weeks, a = 0.793, b = 2.426."""
    tmp = cdnow["tmp"]
    lines = CDNOW.read_text().splitlines()
    seen, keep = set(), [lines[0]]
    for line in lines[1:]:
        cust, day = line.split(",")[:2]
        if day <= "1997-09-30" and (cust, day) not in seen:
            seen.add((cust, day))
            keep.append(line)
    assert len(keep) - 1 - len({k[0] for k in seen}) == 2457
    (tmp / "calibration.csv").write_text("\n".join(keep) + "\n")
    assert_ok(fit(tmp / "calibration.csv", "--out", tmp / "calibration.json"))
    bg = json.loads((tmp / "calibration.json").read_text())["customers"]["bgnbd"]
    assert bg["r"] == pytest.approx(0.243, rel=0.03)
    assert bg["alpha_days"] / 7 == pytest.approx(4.414, rel=0.03)
    assert bg["a"] == pytest.approx(0.793, rel=0.05)
    assert bg["b"] == pytest.approx(2.426, rel=0.05)


def test_jsonl_orders_give_the_csv_profile(cdnow):
    """The same orders as JSON Lines objects (numbers as numbers, times with a
    zone) learn the same profile as the CSV."""
    tmp = cdnow["tmp"]
    lines = CDNOW.read_text().splitlines()[1:]
    with (tmp / "cdnow.jsonl").open("w") as f:
        for line in lines:
            cust, day, qty, amount = line.split(",")
            f.write(json.dumps({"customer_id": cust, "order_date": day, "quantity": int(qty),
                                "amount": float(amount)}) + "\n")
    out = tmp / "jsonl.json"
    assert_ok(fit(tmp / "cdnow.jsonl", "--out", out))
    assert out.read_bytes() == cdnow["text"]


def test_sparse_sample_gives_a_loadable_profile(binary, tmp_path):
    """Two orders 30 years apart: the learned rate is below the profile's range,
    so the smallest rate it takes is written, with a warning, and gen loads it."""
    path = tmp_path / "sparse.csv"
    path.write_text("customer_id,order_date,amount\n1,1990-01-01,5.00\n2,2020-01-01,0.001\n")
    proc = assert_ok(fit(path, "--out", tmp_path / "p.json"))
    assert b"outside the profile's range; 1e-06 is used" in proc.stdout
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["arrivals"]["rate"] == 1e-06
    assert_ok(cli("gen", "--profile", tmp_path / "p.json", "--count", 2, "--max", "--start",
                  "1990-01-01"))


def test_fewer_products_than_categories(binary, tmp_path):
    """Regression: a sample naming fewer products than the profile has
    categories (the defaults' stay, with weight 0) learned a catalogue too
    small for them, and the profile did not load (found by fuzz_fit)."""
    sample = tmp_path / "events.jsonl"
    assert_ok(cli("gen", "--seed", 1, "--count", 8, "--max", "--start", START, "--out", sample))
    proc = fit(sample, "--out", tmp_path / "p.json")
    assert proc.returncode == 0, describe(proc)
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["catalog"]["products"] >= len(p["catalog"]["categories"])
    assert_ok(cli("gen", "--profile", tmp_path / "p.json", "--count", 3, "--max"))
