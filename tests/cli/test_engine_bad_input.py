"""Bad input: a corpus of malformed lines interleaved with generated events.

Every malformed line must end in rejected_events with its position, its raw
bytes (a prefix for a record over the line limit, with raw_bytes the full
length) and a reason that names the problem; engine_state.rejected counts them;
every good line around them is stored; blank lines are skipped, not rejected;
the process exits 0. The corpus also runs through stdin and, when available,
through the ASan+UBSan build (SHOPSTREAM_ASAN_BIN, else build-asan/shopstream, which
`make test` builds),
which must give the same store.
"""

import os
from collections import Counter

import pytest

from conftest import (ENGINE_START, REPO, WALL_CLOCK_COLUMNS, RawJSON, assert_same_store, cancellation_fields,
                      connect_ro, engine_state, json_line, money, order_fields, order_total_cents,
                      payment_fields, process, ts_ms)

SEED, COUNT = 57, 3000
LINE_MAX = 1 << 20  # SS_LINE_MAX: the longest accepted record

ASAN_BIN = os.environ.get("SHOPSTREAM_ASAN_BIN") or str(REPO / "build-asan" / "shopstream")


def replaced(line, old, new, count=1):
    assert line.count(old) >= 1, (line, old)
    return line.replace(old, new, count)


def without(fields, *keys):
    return {k: v for k, v in fields.items() if k not in keys}


def with_(fields, **changes):
    out = dict(fields)
    out.update(changes)
    return out


def corpus(n, ts):
    """The malformed lines: (name, bytes, substrings the reason must contain).
    n numbers the events (unique ids), ts is a time inside the stream."""
    o = order_fields(n, ts, city="Berlin")
    ol = json_line(o)
    total = order_total_cents(o)
    p = payment_fields(n, ts + 1, total)
    pf = payment_fields(n + 1, ts + 1, total, success=False)
    c = cancellation_fields(n, ts + 2, total)
    deep = "[" * 40 + "]" * 40
    big_pad = "x" * (10 * LINE_MAX)

    def pad_to(size):
        """A valid order of exactly size bytes (an unknown field pads it)."""
        base = json_line(with_(order_fields(n + 7, ts), pad=""))
        return json_line(with_(order_fields(n + 7, ts), pad="y" * (size - len(base))))

    cases = [
        # broken JSON
        ("truncated", ol[: len(ol) // 2], ["invalid JSON", "unexpected end of line"]),
        ("truncated-after-comma", ol[: ol.index(b'"city"')],
         ["invalid JSON: unexpected end of line, expected a key in quotes"]),
        ("unclosed-object", ol[:-1], ["unexpected end of line", "expected ',' or '}'"]),
        ("trailing-garbage", ol + b" xyz", ["text after the object"]),
        ("two-objects", json_line(p) + json_line(c), ["text after the object"]),
        ("key-without-quotes", replaced(ol, b'"city":', b"city:"),
         ["invalid JSON at byte", "expected a key in quotes"]),
        ("value-missing-quote", replaced(ol, b'"Berlin"', b'"Berlin'),
         ["invalid JSON at byte", "expected ',' or '}'"]),
        ("single-quotes", b"{'type':'order'}", ["expected a key in quotes"]),
        ("trailing-comma", ol[:-1] + b",}", ["expected a key in quotes"]),
        ("missing-colon", replaced(ol, b'"city":"Berlin"', b'"city" "Berlin"'),
         ["expected ':'"]),
        ("bare-word", b"hello", ["expected '{' (each line must be one JSON object)"]),
        ("nul-byte", replaced(ol, b',"city"', b',\x00"city"'), ["invalid JSON at byte"]),
        ("bad-escape", replaced(ol, b"Test Product", b"Test\\xProduct"), ["bad escape"]),
        ("lone-surrogate", replaced(ol, b'"Berlin"', b'"Berl\\ud800in"'),
         ["unpaired surrogate"]),
        ("escaped-nul", replaced(ol, b'"Berlin"', b'"Berl\\u0000in"'),
         ["\\u0000 is not allowed"]),
        ("control-character", replaced(ol, b'"Berlin"', b'"Ber\tlin"'),
         ["control character in a string"]),
        ("nested-too-deep", json_line(with_(o, extra=RawJSON(deep))),
         ["nested deeper than 32 levels"]),
        # wrong types
        ("quantity-string", json_line(with_(o, quantity="2")),
         ["field 'quantity' must be a number, not a string"]),
        ("amount-boolean", json_line(with_(p, amount=True)),
         ["field 'amount' must be a number, not a boolean"]),
        ("attempt-fraction", json_line(with_(p, attempt=RawJSON("1.5"))),
         ["field 'attempt' must be a whole number"]),
        ("attempt-exponent", json_line(with_(p, attempt=RawJSON("1e0"))),
         ["field 'attempt' must be a whole number"]),
        ("quantity-array", json_line(with_(o, quantity=[2])),
         ["field 'quantity' must be a number, not an object or array"]),
        ("type-number", json_line(with_(o, type=5)), ["field 'type' must be a string"]),
        ("city-number", json_line(with_(o, city=42)), ["field 'city' must be a string"]),
        ("ts-number", json_line(with_(o, ts=1793628191123)), ["field 'ts' must be a string"]),
        ("refund-string", json_line(with_(c, refund="1.00")),
         ["field 'refund' must be a number, not a string"]),
        # missing fields
        ("order-without-total", json_line(without(o, "total_price")),
         ["missing field 'total_price'"]),
        ("payment-without-status", json_line(without(p, "status")), ["missing field 'status'"]),
        ("cancellation-without-refund", json_line(without(c, "refund")),
         ["missing field 'refund'"]),
        ("without-event-id", json_line(without(o, "event_id")), ["missing field 'event_id'"]),
        ("without-type", json_line(without(o, "type")), ["missing field 'type'"]),
        ("empty-object", b"{}", ["missing field 'type'"]),
        ("unknown-type", json_line(with_(c, type="refund")), ["unknown type 'refund'"]),
        # sizes
        ("ten-megabytes", json_line(with_(o, pad=big_pad)), ["exceeds the limit"]),
        ("one-byte-over-limit", pad_to(LINE_MAX + 1), ["exceeds the limit"]),
        ("event-id-too-long", json_line(with_(o, event_id="e-" + "7" * 200)),
         ["field 'event_id' is longer than 128 bytes"]),
        ("city-empty", json_line(with_(o, city="")), ["field 'city' is empty"]),
        # invalid UTF-8
        ("utf8-ff", replaced(ol, b"Berlin", b"Ber\xfflin"), ["invalid UTF-8 at byte"]),
        ("utf8-latin1", replaced(ol, b"Berlin", b"M\xfcnchen"), ["invalid UTF-8 at byte"]),
        ("utf8-overlong", replaced(ol, b"Berlin", b"Ber\xc0\xaflin"), ["invalid UTF-8 at byte"]),
        ("utf8-surrogate", replaced(ol, b"Berlin", b"Ber\xed\xa0\x80lin"),
         ["invalid UTF-8 at byte"]),
        ("utf8-truncated", ol + b"\xe2\x82", ["invalid UTF-8 at byte"]),
        # money
        ("negative-amount", json_line(with_(p, amount=RawJSON("-5.00"))),
         ["field 'amount' is negative", "must be >= 0"]),
        ("negative-discount", json_line(with_(o, discount=RawJSON("-1.00"))),
         ["field 'discount' is negative"]),
        ("three-decimals", json_line(with_(p, amount=RawJSON("60.175"))),
         ["field 'amount' has more than two decimals"]),
        ("money-exponent", json_line(with_(c, refund=RawJSON("6.0e1"))),
         ["field 'refund' must be written as a plain decimal, not with an exponent"]),
        ("money-13-digits", json_line(with_(p, amount=RawJSON("1234567890123.00"))),
         ["field 'amount' is out of range (more than 12 digits)"]),
        ("money-over-a-billion", json_line(with_(p, amount=RawJSON("1000000000.01"))),
         ["field 'amount' is out of range"]),
        ("amount-not-quantity-times-price", json_line(with_(o, amount=money(4000))),
         ["amount 40.00 does not equal quantity x unit_price = 39.98"]),
        ("total-off-by-a-cent", json_line(with_(o, total_price=money(total + 1))),
         [f"total_price {(total + 1) / 100:.2f} does not equal amount - discount + tax + "
          f"shipping = {total / 100:.2f}"]),
        ("discount-over-amount", json_line(with_(o, discount=money(5000))),
         ["discount is larger than amount"]),
        # payments
        ("failed-without-reason", json_line(without(pf, "failure_reason")),
         ["missing field 'failure_reason' for a failed payment"]),
        ("failed-with-null-reason", json_line(with_(pf, failure_reason=None)),
         ["missing field 'failure_reason' for a failed payment"]),
        ("success-with-reason", json_line(with_(p, failure_reason="declined")),
         ["failure_reason is given for a successful payment"]),
        ("status-pending", json_line(with_(p, status="pending")),
         ["field 'status' must be success or failed"]),
        ("attempt-zero", json_line(with_(p, attempt=0)),
         ["field 'attempt' must be from 1 to 1000 (got 0)"]),
        ("quantity-zero", json_line(with_(o, quantity=0, amount=money(0), total_price=money(0))),
         ["field 'quantity' must be from 1 to 100000 (got 0)"]),
        ("currency-four-letters", json_line(with_(o, currency="EURO")),
         ["field 'currency' must be a three-letter code"]),
        # time
        ("ts-with-space", json_line(with_(o, ts="2026-11-02 10:00:00.000")),
         ["field 'ts' is not a UTC ISO-8601 time"]),
        ("ts-february-30", json_line(with_(o, ts="2026-02-30T10:00:00.000Z")),
         ["field 'ts' is not a UTC ISO-8601 time"]),
        ("ts-hour-25", json_line(with_(o, ts="2026-11-02T25:00:00.000Z")),
         ["field 'ts' is not a UTC ISO-8601 time"]),
        ("ts-offset", json_line(with_(o, ts="2026-11-02T10:00:00.000+01:00")),
         ["field 'ts' is not a UTC ISO-8601 time"]),
        ("ts-words", json_line(with_(o, ts="yesterday")), ["field 'ts' is not a UTC ISO-8601"]),
        ("ts-before-1970", json_line(with_(o, ts="1969-12-31T23:59:59.999Z")),
         ["field 'ts' is outside the years 1970 to 9999"]),
        ("ts-empty", json_line(with_(o, ts="")), ["field 'ts' is empty"]),
        # null required fields
        ("city-null", json_line(with_(o, city=None)), ["field 'city' is null"]),
        ("event-id-null", json_line(with_(o, event_id=None)), ["field 'event_id' is null"]),
        ("refund-null", json_line(with_(c, refund=None)), ["field 'refund' is null"]),
        # not an object
        ("array", b"[1,2]", ["expected '{' (each line must be one JSON object)"]),
        ("string", b'"order"', ["expected '{'"]),
        ("number", b"42", ["expected '{'"]),
        ("null", b"null", ["expected '{'"]),
        # duplicate keys
        ("duplicate-amount", json_line(p)[:-1] + b',"amount":1.00}', ["duplicate field 'amount'"]),
        ("duplicate-type", b'{"type":"payment",' + json_line(o)[1:], ["duplicate field 'type'"]),
    ]
    names = [name for name, _, _ in cases]
    assert len(names) == len(set(names))
    assert len({line for _, line, _ in cases}) == len(cases), "every bad line is distinct"
    for name, line, _ in cases:
        assert b"\n" not in line, name
    return cases


@pytest.fixture(scope="module")
def bad_input(gen_file, tmp_path_factory):
    """The file: generated lines with a malformed line after every few, blank
    lines, a CRLF line, a valid line of exactly the limit and a last line
    without a newline. Returns (path, data, bad [(name, offset, line, needles)],
    good Counter by type, good event ids)."""
    good_lines = gen_file(SEED, COUNT, ENGINE_START).read_bytes().split(b"\n")[:-1]
    gap = len(good_lines) // 90
    out = bytearray()
    bad = []
    good = Counter()
    good_ids = set()
    pending = None
    k = 0

    def emit_good(line, crlf=False):
        start = line.index(b'"type":"') + 8
        good[line[start:line.index(b'"', start)].decode()] += 1
        out.extend(line + (b"\r\n" if crlf else b"\n"))

    for i, line in enumerate(good_lines):
        if i == len(good_lines) - 1:
            out.extend(line)  # the last record has no newline
            start = line.index(b'"type":"') + 8
            good[line[start:line.index(b'"', start)].decode()] += 1
            break
        emit_good(line, crlf=(i == 1000))
        if i % gap == 5:
            if pending is None:
                ts = ts_ms(line[line.index(b'"ts":"') + 6:][:24].decode())
                pending = corpus(10_000_000 + i * 10, ts)
            if k < len(pending):
                name, bad_line, needles = pending[k]
                bad.append((name, len(out), bad_line, needles))
                out.extend(bad_line + b"\n")
                k += 1
        if i % 997 == 3:
            out.extend(b"\n   \n\t\n\r\n")  # blank lines: skipped, not rejected
        if i == 2000:
            # A valid order of exactly the line limit (an unknown field pads it).
            ts = ts_ms(line[line.index(b'"ts":"') + 6:][:24].decode())
            o = order_fields(20_000_000, ts)
            base = json_line(dict(o, pad=""))
            big = json_line(dict(o, pad="z" * (LINE_MAX - len(base))))
            assert len(big) == LINE_MAX
            out.extend(big + b"\n")
            good["order"] += 1
    assert k == len(pending), f"only {k} of {len(pending)} bad lines placed"
    for ln in good_lines:
        start = ln.index(b'"event_id":"') + 12
        good_ids.add(ln[start:ln.index(b'"', start)].decode())
    good_ids.add("e-0123456789ab-20000000-o")
    base = tmp_path_factory.mktemp("bad-input")
    path = base / "corpus.jsonl"
    path.write_bytes(bytes(out))
    data = base / "data"
    proc = process(data, path)
    return path, data, bad, good, good_ids, proc


def test_every_bad_line_is_rejected_with_its_reason(bad_input):
    path, data, bad, _, _, _ = bad_input
    with connect_ro(data) as db:
        rows = db.execute("SELECT position, source, reason, raw, raw_bytes FROM rejected_events"
                          ).fetchall()
    by_pos = {r[0]: r for r in rows}
    assert len(by_pos) == len(rows)
    problems = []
    for name, offset, line, needles in bad:
        r = by_pos.get(offset)
        if r is None:
            problems.append(f"{name}: not rejected (offset {offset}): {line[:200]!r}")
            continue
        _, source, reason, raw, raw_bytes = r
        if source != f"file:{path.resolve()}":
            problems.append(f"{name}: source {source!r}")
        for needle in needles:
            if needle not in reason:
                problems.append(f"{name}: reason {reason!r} does not contain {needle!r}")
        if raw_bytes != len(line):
            problems.append(f"{name}: raw_bytes {raw_bytes}, line has {len(line)} bytes")
        if len(line) <= LINE_MAX:
            if raw != line:
                problems.append(f"{name}: raw {raw[:100]!r} is not the line {line[:100]!r}")
        elif not (0 < len(raw) <= LINE_MAX and raw == line[:len(raw)]):
            problems.append(f"{name}: raw of {len(raw)} bytes is not a prefix of the line")
    extra = set(by_pos) - {offset for _, offset, _, _ in bad}
    for pos in sorted(extra):
        problems.append(f"rejected but not in the corpus (offset {pos}): {by_pos[pos][2]!r} "
                        f"{by_pos[pos][3][:200]!r}")
    assert not problems, "\n".join(problems)


def test_ten_megabyte_line_keeps_a_prefix(bad_input):
    _, data, bad, _, _, _ = bad_input
    (name, offset, line, _), = [b for b in bad if b[0] == "ten-megabytes"]
    with connect_ro(data) as db:
        raw, raw_bytes, reason = db.execute(
            "SELECT raw, raw_bytes, reason FROM rejected_events WHERE position = ?", (offset,)
        ).fetchone()
    assert raw_bytes == len(line) > 10 * LINE_MAX
    assert 0 < len(raw) < len(line) and raw == line[:len(raw)]
    assert str(len(line)) in reason, reason


def test_utf8_reason_names_the_offset(bad_input):
    _, data, bad, _, _, _ = bad_input
    with connect_ro(data) as db:
        for name, offset, line, _ in bad:
            if not name.startswith("utf8-"):
                continue
            reason = db.execute("SELECT reason FROM rejected_events WHERE position = ?",
                                (offset,)).fetchone()[0]
            first_bad = None
            for i in range(len(line)):
                try:
                    line[:i + 1].decode()
                except UnicodeDecodeError as e:
                    if e.reason != "unexpected end of data" or i + 1 == len(line):
                        first_bad = e.start
                        break
            assert f"invalid UTF-8 at byte {first_bad}" in reason, (name, reason)


def test_counts_and_every_good_line_stored(bad_input):
    _, data, bad, good, good_ids, proc = bad_input
    st = engine_state(data)
    n_good = sum(good.values())
    assert st["rejected"] == len(bad)
    assert st["events_in"] == n_good + len(bad), "blank lines are not records"
    assert st["stored"] == n_good
    assert st["late"] == 0 and st["duplicates"] == 0
    with connect_ro(data) as db:
        counts = {t: db.execute(f"SELECT count(*) FROM {t}_data").fetchone()[0]
                  for t in ("orders", "payments", "cancellations")}
        assert db.execute("SELECT count(*) FROM rejected_events").fetchone()[0] == len(bad)
        assert db.execute("SELECT count(*) FROM late_events").fetchone()[0] == 0
        ids = {r[0] for t in ("orders", "payments", "cancellations")
               for r in db.execute(f"SELECT event_id FROM {t}_data")}
    assert counts == {"orders": good["order"], "payments": good["payment"],
                      "cancellations": good["cancellation"]}
    assert ids == good_ids
    assert proc.returncode == 0


def test_same_result_through_stdin(bad_input, tmp_path):
    path, data, _, _, _, _ = bad_input
    other = tmp_path / "stdin"
    process(other, "-", input=path.read_bytes())
    # The same rows, offsets included; only the name of the source differs.
    assert_same_store(data, other, exclude=WALL_CLOCK_COLUMNS + ("rejected_events.source",
                                                                 "ingest_positions.source"))
    assert engine_state(data) == engine_state(other)


def test_same_bad_bytes_twice_are_recorded_once(tmp_path):
    line = b'{"type":"order","oops"}'
    process(tmp_path, "-", input=line + b"\n" + line + b"\n")
    with connect_ro(tmp_path) as db:
        rows = db.execute("SELECT position, raw FROM rejected_events").fetchall()
    assert rows == [(0, line)]
    st = engine_state(tmp_path)
    assert st["rejected"] == 2 and st["events_in"] == 2


def test_asan_build_survives_the_corpus(bad_input, tmp_path):
    if not os.access(ASAN_BIN, os.X_OK):
        if os.environ.get("SHOPSTREAM_ASAN_BIN"):
            pytest.fail(f"SHOPSTREAM_ASAN_BIN={ASAN_BIN} is not an executable")
        pytest.skip(f"no ASan build at {ASAN_BIN} (make asan, or set SHOPSTREAM_ASAN_BIN)")
    path, data, _, _, _, _ = bad_input
    other = tmp_path / "asan"
    process(other, path, binary=ASAN_BIN, timeout=600)
    assert_same_store(data, other)


@pytest.mark.parametrize("size", [LINE_MAX + 1, 5 * LINE_MAX // 2, 12 * LINE_MAX])
def test_over_long_record_is_recorded_the_same_however_it_is_read(tmp_path, size):
    """Regression: a record over the limit whose end was already in the read
    buffer was kept whole, one whose end was not was cut to a prefix, so the
    same record got two different rejected_events rows when it was read again
    from a file (a restart seeks to it) or through stdin (a pipe fills the
    buffer in small pieces)."""
    head = b'{"type":"order","pad":"'
    line = head + b"x" * (size - len(head) - 2) + b'"}'
    assert len(line) == size
    path = tmp_path / "long.jsonl"
    path.write_bytes(line + b"\n")
    data = tmp_path / "data"
    process(data, path)
    process(data, "-", input=line + b"\n")
    with connect_ro(data) as db:
        rows = db.execute("SELECT position, length(raw), raw_bytes, reason FROM rejected_events"
                          ).fetchall()
    assert len(rows) == 1, rows
    position, kept, raw_bytes, reason = rows[0]
    assert position == 0 and raw_bytes == size and 0 < kept <= LINE_MAX, rows
    assert f"record of {size} bytes exceeds the limit" in reason
    assert engine_state(data)["rejected"] == 2
