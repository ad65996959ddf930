"""The measuring side of bench/longrun: BIN DAYS RATE PNG (see bench/longrun)."""
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

START = "2026-11-02T00:00:00Z"
START_MS = 1793577600000  # START in ms since the epoch
MAX_MB = 300
MB = 1_000_000
RUN_RE = re.compile(r"\[archive\] archive \S+: .* hot store ([0-9.]+) MB -> ([0-9.]+) MB")


def sampler(proc, db_path, out, stop):
    """(wall s, simulated days, hot MB, RSS MB) twice a second."""
    t0 = time.monotonic()
    con = None
    while not stop.is_set():
        rss = None
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) / 1024
        except OSError:
            return
        try:
            if con is None and os.path.exists(db_path):
                con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
            if con is not None and rss is not None:
                pages, free, size = con.execute(
                    "SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count "
                    "FROM pragma_freelist_count), (SELECT page_size FROM pragma_page_size)"
                ).fetchone()
                ts = con.execute("SELECT max(max_ts) FROM shard_state").fetchone()[0]
                if ts is not None:
                    day = (int(ts) - START_MS) / 86_400_000
                    out.append((time.monotonic() - t0, day, (pages - free) * size / MB, rss))
        except sqlite3.Error:
            pass
        stop.wait(0.5)
    if con is not None:
        con.close()


def process(binary, stream, data, archive_every, samples=None, gen=None):
    """Runs process over the stream (a file, or the output of gen's command
    line); returns (wall seconds, stderr text)."""
    t0 = time.monotonic()
    src = subprocess.Popen(gen, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) if gen else None
    proc = subprocess.Popen([binary, "process", "--from", "-" if gen else stream, "--data", data,
                             "--hot-max-mb", str(MAX_MB), "--archive-every", str(archive_every)],
                            stdin=src.stdout if src else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if src:
        src.stdout.close()
    stop = threading.Event()
    th = None
    if samples is not None:
        th = threading.Thread(target=sampler, args=(proc, f"{data}/hot.db", samples, stop))
        th.start()
    err = proc.stderr.read().decode(errors="replace")
    rc = proc.wait()
    if src and src.wait() != 0:
        sys.exit("gen failed")
    stop.set()
    if th:
        th.join()
    if rc != 0:
        sys.exit(f"process exited {rc}:\n{err[-3000:]}")
    return time.monotonic() - t0, err


def hot_mb(data):
    con = sqlite3.connect(f"file:{data}/hot.db?mode=ro", uri=True)
    pages, free, size = con.execute(
        "SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count FROM "
        "pragma_freelist_count), (SELECT page_size FROM pragma_page_size)").fetchone()
    con.close()
    return (pages - free) * size / MB


def main():
    binary, days, rate, speedup, png = (sys.argv[1], float(sys.argv[2]), float(sys.argv[3]),
                                        float(sys.argv[4]), sys.argv[5])
    orders = int(days * 86400 * rate)
    args = ["--seed", "1", "--rate", str(rate), "--count", str(orders), "--start", START]
    paced = [binary, "gen", *args, "--speedup", str(speedup)] if speedup > 0 else None
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
        stream = f"{tmp}/events.jsonl"
        subprocess.run([binary, "gen", *args, "--max", "--out", stream], check=True,
                       stderr=subprocess.DEVNULL)
        with open(stream, "rb") as f:
            events = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
        print(f"bench/longrun: {days:g} days at {rate:g} orders/s: {orders} orders, {events} "
              f"events, {os.path.getsize(stream) / MB:.0f} MB of JSON Lines; threshold {MAX_MB} MB; "
              + (f"paced at {speedup:g} times real time" if paced else "unpaced (a replay)"))

        samples = []
        wall, err = process(binary, stream, f"{tmp}/life", 1, samples, paced)
        runs = [(float(a), float(b)) for a, b in RUN_RE.findall(err)]
        base_wall, _ = process(binary, stream, f"{tmp}/base", 0)
        life_end, base_end = hot_mb(f"{tmp}/life"), hot_mb(f"{tmp}/base")

    print(f"with the lifecycle: {wall:.1f} s ({events / wall:,.0f} events/s), {len(runs)} archive "
          f"steps; hot store at the end {life_end:.1f} MB")
    print(f"baseline, no archiving: {base_wall:.1f} s ({events / base_wall:,.0f} events/s); hot "
          f"store at the end {base_end:.1f} MB")
    if not paced:  # a paced run's time is the stream's
        print(f"ratio of throughput (lifecycle / baseline): {base_wall / wall:.2f}")
    print(f"ratio of the hot store's size at the end (lifecycle / baseline): "
          f"{life_end / base_end:.3f}")
    if runs:
        after = [b for _, b in runs]
        print(f"hot store after the archive steps: max {max(after):.1f} MB, median "
              f"{sorted(after)[len(after) // 2]:.1f} MB (threshold {MAX_MB} MB)")
    third = len(samples) // 3
    if third:
        parts = [samples[:third], samples[third:2 * third], samples[2 * third:]]
        print("RSS by third of the run (max MB): " +
              ", ".join(f"{max(s[3] for s in p):.0f}" for p in parts))

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.plot([s[1] for s in samples], [s[2] for s in samples], label="hot store data (MB)",
            color="#2f6fde", linewidth=1)
    ax.plot([s[1] for s in samples], [s[3] for s in samples], label="process RSS (MB)",
            color="#e67e22", linewidth=1)
    ax.axhline(MAX_MB, color="#c0392b", linestyle="--", linewidth=1,
               label=f"threshold ({MAX_MB} MB)")
    ax.set_xlabel("simulated day of the stream (event time)")
    ax.set_ylabel("MB")
    ax.set_title(f"bench/longrun: {days:g} days at {rate:g} orders/s through one process, "
                 + (f"{speedup:g}× real time" if paced else "unpaced"))
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
