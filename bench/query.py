"""The measuring side of bench/query: QUERIES_MD RUNS BEFORE_BIN BEFORE_DIR AFTER_BIN AFTER_DIR
(see bench/query). Times every SQL block of QUERIES_MD through `shopstream
sql` and the dashboard's API calls through `shopstream serve` and curl, for
the two binaries over their own stores, and checks that both answer alike.
Exit status 1 if any answer differs or fails, 0 otherwise (slower or not)."""
import calendar
import json
import re
import subprocess
import sys
import threading
import time

SLOWER = 1.10  # after/before past this is reported as slower
RANGES = [("15m", 15), ("1h", 60), ("24h", 1440), ("7d", 10080), ("30d", 43200)]
# What the page asks for each range (web/src/app.js, refresh): the totals,
# the minutes, the top cities, categories and payment methods by failures,
# and the cancellations by reason. The page asks for the minutes a day at a
# time; here one request takes the range, with --max-rows raised for it.
ENDPOINTS = [
    ("totals", "/api/totals?"),
    ("kpis", "/api/kpis?dimension=overall&"),
    ("top city", "/api/top?dimension=city&n=1000&"),
    ("top category", "/api/top?dimension=category&n=1000&"),
    ("top method", "/api/top?dimension=payment_method&metric=failed_payments&n=1000&"),
    ("cancellations", "/api/cancellations?"),
]
SERVE_RE = re.compile(r"serving .* on http://127\.0\.0\.1:(\d+)/")


def queries(path):
    """[(label, title, sql)] of every ```sql block, labelled by its section's
    number (a second block of a section gets 'b')."""
    out, num, title, seen = [], "0", "", {}
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"## (\d+)\. (.*)", lines[i])
        if m:
            num, title = m.group(1), m.group(2)
        if lines[i].strip() == "```sql":
            j = lines.index("```", i + 1)
            seen[num] = seen.get(num, 0) + 1
            label = num + ("" if seen[num] == 1 else "b" if seen[num] == 2 else f"#{seen[num]}")
            out.append((label, title, "\n".join(lines[i + 1:j]).strip()))
            i = j
        i += 1
    return out


def run_sql(binary, data, sql):
    """(seconds, exit code, stdout, stderr) of one `shopstream sql`."""
    t0 = time.perf_counter()
    r = subprocess.run([binary, "sql", "--data", data, "--format", "csv", sql],
                       capture_output=True, text=True)
    return time.perf_counter() - t0, r.returncode, r.stdout, r.stderr


class Server:
    """`shopstream serve` on a free loopback port (--port 0, read from its
    log), with the query time limit raised so that a slow answer is timed
    rather than cut off."""

    def __init__(self, binary, data):
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", data, "--port", "0", "--log-level", "info",
             "--query-timeout-ms", "3600000", "--max-rows", "1000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = None
        for line in self.proc.stderr:
            m = SERVE_RE.search(line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.wait()
            sys.exit(f"bench/query: {binary} serve did not start (exit {self.proc.returncode})")
        # Keep reading its log, so that a full pipe never blocks the server.
        self.drain = threading.Thread(target=self.proc.stderr.read, daemon=True)
        self.drain.start()

    def get(self, path):
        """(seconds as curl measured them, HTTP status, body)."""
        r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code} %{time_total}",
                            f"http://127.0.0.1:{self.port}{path}"], capture_output=True, text=True)
        if r.returncode != 0:
            return 0.0, 0, r.stderr.strip()
        body, _, tail = r.stdout.rpartition("\n")
        code, secs = tail.split()
        return float(secs), int(code), body

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.drain.join()


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".000Z"


def parse_iso(text):
    """Milliseconds since the epoch of 'YYYY-MM-DDTHH:MM:SS.mmmZ'."""
    t = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(text[20:23])


def count_rows(answer, csv):
    """Rows of a CSV answer (without its header), or of an API answer's
    "rows" (1 for /api/totals); 0 for an answer that is not one."""
    if csv:
        return max(answer.count("\n") - 1, 0)
    try:
        doc = json.loads(answer)
    except ValueError:
        return 0
    return len(doc["rows"]) if isinstance(doc, dict) and "rows" in doc else 1


def first_difference(a, b):
    """Where two answers part, for the report."""
    a, b = a.split("\n"), b.split("\n")
    k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    line = lambda x: x[k][:200] if k < len(x) else "(end)"  # noqa: E731
    return (f"first difference at line {k + 1} of {len(a)} before, {len(b)} after:\n"
            f"    before: {line(a)}\n    after:  {line(b)}")


def measure(cases, runs, call):
    """Each case once per side (warm-up, its answer kept), then RUNS times per
    side, before and after interleaved so that a busy moment of the machine
    hits both; returns [(case, best before, best after, answers, error)]."""
    results = []
    for case in cases:
        answers, error = [], None
        best = [float("inf"), float("inf")]
        for run in range(runs + 1):
            for side in (0, 1):
                secs, ok, text = call(side, case)
                if run == 0:
                    answers.append(text)
                else:
                    best[side] = min(best[side], secs)
                if not ok and not error:
                    error = f"{('before', 'after')[side]}: {text.strip()[:300]}"
        results.append((case, best[0], best[1], answers, error))
    return results


def main():
    md, runs = sys.argv[1], int(sys.argv[2])
    bins, dirs = (sys.argv[3], sys.argv[5]), (sys.argv[4], sys.argv[6])

    # The newest order, the same in both stores (or the stores differ).
    newest = []
    for b, d in zip(bins, dirs):
        _, rc, out, err = run_sql(b, d, "SELECT max(ts) FROM hot_orders")
        if rc != 0:
            sys.exit(f"bench/query: {b} sql failed: {err.strip()}")
        newest.append(out.split("\n")[1].strip())
    failed = []
    if newest[0] != newest[1]:
        failed.append(("newest order", f"{newest[0]} before, {newest[1]} after"))
    newest = newest[0]

    # Queries measured against the wall clock ('now') would read nothing of
    # simulated data: their 'now' becomes the newest order, as a literal
    # (unlike the sub-query of the others, which SQLite cannot push down).
    cases = []
    for label, title, sql in queries(md):
        if "'now'" in sql:
            sql, label = sql.replace("'now'", f"'{newest}'"), label + "*"
        cases.append((f"q{label}", title, sql))

    def sql_call(side, case):
        secs, rc, out, err = run_sql(bins[side], dirs[side], case[2])
        return secs, rc == 0, out if rc == 0 else err

    q_results = measure(cases, runs, sql_call)

    # The dashboard's ranges end with the newest minute in the store, which is
    # that of the stream's last cancellation, about two days after its last
    # order: so the short ranges are also asked for up to the newest order's
    # minute, over the busy end of the stream.
    to_order = parse_iso(newest) // 60000 * 60000 + 60000
    api_cases = []
    for rname, minutes in RANGES:
        for ename, path in ENDPOINTS:
            api_cases.append((f"{ename} {rname}", "", path + "range=" + rname))
    for rname, minutes in RANGES[:3]:
        q = f"from={iso(to_order - minutes * 60000)}&to={iso(to_order)}"
        for ename, path in ENDPOINTS:
            api_cases.append((f"{ename} {rname}@order", "", path + q))

    servers = [Server(b, d) for b, d in zip(bins, dirs)]
    try:
        def api_call(side, case):
            secs, code, body = servers[side].get(case[2])
            return secs, code == 200, body if code == 200 else f"HTTP {code}: {body}"

        a_results = measure(api_cases, runs, api_call)
    finally:
        for s in servers:
            s.stop()

    slower = []
    print(f"{'query / API call':<44} {'before (s)':>10} {'after (s)':>10} {'after/before':>12}  "
          f"{'rows':>5}  verdict")
    for results in (q_results, a_results):
        for (name, title, _), before, after, answers, error in results:
            ratio = after / before if before > 0 else float("inf")
            if error:
                verdict = "ANSWER FAILED"
                failed.append((name, error))
            elif answers[0] != answers[1]:
                verdict = "RESULTS DIFFER"
                failed.append((name, first_difference(answers[0], answers[1])))
            elif ratio > SLOWER:
                verdict = "SLOWER >10%"
            else:
                verdict = "ok"
            if ratio > SLOWER and not error:
                slower.append(name)
                if verdict != "SLOWER >10%":
                    verdict += ", SLOWER >10%"
            rows = count_rows(answers[1], results is q_results)
            label = f"{name} {title}"[:44]
            print(f"{label:<44} {before:>10.4f} {after:>10.4f} {ratio:>12.3f}  {rows:>5}  {verdict}")
        print()
    print("q*: 'now' replaced by the newest order, " + newest + "; @order: the range up to "
          "the newest order's minute instead of the store's newest minute")
    print("rows: of each answer (after); /api/totals counts as 1")
    total = len(q_results) + len(a_results)
    print(f"summary: {len(slower)} of {total} slower by more than 10 % after than before"
          + (f" ({', '.join(slower)})" if slower else ""))
    if failed:
        print(f"CORRECTNESS FAILURE: {len(failed)} of {total} answer differently or fail:")
        for (name, why) in failed:
            print(f"  {name}: {why}")
        sys.exit(1)
    print("results: every answer identical before and after")


if __name__ == "__main__":
    main()
