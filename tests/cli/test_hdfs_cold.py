"""The HDFS cold store (`--cold webhdfs://HOST:PORT/PATH`) against the real
NameNode and DataNode of scripts/hdfs (the `hdfs` fixture).

One store is archived twice at a small threshold: into a local cold
directory and into HDFS. Everything is read back from outside, through
WebHDFS and Hadoop's own FsShell: every generated event is in the hot store
or in a committed archive on HDFS exactly once, and each file in HDFS holds
the very bytes the local backend wrote for the same input. `archive
--verify` reads HDFS, and catches a damaged and a missing file. The same
runs over HTTPS (swebhdfs://, both daemons with scripts/hdfs's certificate);
bad URIs,
an unreachable NameNode and a path that is a file give messages that name
the problem.
"""
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import Counter

import pytest

from archive_helpers import committed, file_event_ids, hot_event_ids, hot_size
from conftest import ENGINE_START, process
from harness import HDFS_SCRIPT, assert_ok, clean_env, cli, describe, free_port, hdfs  # noqa: F401

MB = 1_000_000
SEED, COUNT, MAX_MB = 31, 20_000, 0.6
EVENT_ID_RE = re.compile(rb'"event_id":"([^"]+)"')
ID_RE = re.compile(r"[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}")


def webhdfs(server, method, path, op, data=None, **params):
    """One WebHDFS call (urllib follows the NameNode's redirect to the
    DataNode); returns (status, body)."""
    q = urllib.parse.urlencode({"op": op, "user.name": "shopstream-test", **params})
    url = f"http://{server.address}/webhdfs/v1{urllib.parse.quote(path)}?{q}"
    if method == "PUT" and data is not None:
        # CREATE: the NameNode's 307, then the body to the DataNode.
        req = urllib.request.Request(url, method="PUT")
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(req, timeout=30)
            raise AssertionError("CREATE did not redirect")
        except urllib.error.HTTPError as e:
            assert e.code == 307, e.code
            url = e.headers["Location"]
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def hdfs_read(server, path):
    status, body = webhdfs(server, "GET", path, "OPEN")
    assert status == 200, (path, status, body[:300])
    return body


def hdfs_files(server, root):
    """{path relative to root: bytes} of every file below root (LISTSTATUS)."""
    out = {}

    def walk(rel):
        status, body = webhdfs(server, "GET", f"{root}/{rel}".rstrip("/"), "LISTSTATUS")
        assert status == 200, body
        for f in json.loads(body)["FileStatuses"]["FileStatus"]:
            p = f"{rel}/{f['pathSuffix']}".lstrip("/")
            if f["type"] == "DIRECTORY":
                walk(p)
            else:
                out[p] = f["length"]

    walk("")
    return out


def local_files(root):
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def by_place(data):
    """The committed archives' part, dimension and keys files in archiving
    order, each named by its place with the archive id replaced by its
    ordinal: {"orders/dt=.../hour=00/part-#0.jsonl": path}."""
    out = {}
    for n, (aid, m) in enumerate(committed(data)):
        for t in [*m["tables"].values(), *m["dims"].values()]:
            for f in t["files"]:
                out[f["path"].replace(aid, f"#{n}")] = f
        out[m["keys"]["path"].replace(aid, f"#{n}")] = m["keys"]
    return out


def fsshell(server, *args):
    proc = subprocess.run([str(HDFS_SCRIPT), "fs", "--dir", str(server.dir), *args],
                          capture_output=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def source(gen_file, tmp_path_factory):
    path = gen_file(SEED, COUNT, ENGINE_START)
    data = tmp_path_factory.mktemp("hdfs-src") / "data"
    process(data, path, "--archive-every", 0)
    assert hot_size(data) > 3 * MAX_MB * MB
    return data, file_event_ids(path)


def copy(src, dst):
    shutil.copytree(src, dst)
    shutil.rmtree(dst / "cold", ignore_errors=True)
    return dst


@pytest.fixture(scope="module")
def archived(source, hdfs, tmp_path_factory):  # noqa: F811
    """(local data dir, HDFS data dir, HDFS path, cold URI): the same store
    archived once into each cold store."""
    src, _ = source
    base = tmp_path_factory.mktemp("hdfs-archived")
    local = copy(src, base / "local")
    assert_ok(cli("archive", "--data", local, "--once", "--hot-max-mb", MAX_MB, timeout=300))
    remote = copy(src, base / "remote")
    root = "/shopstream/archived"
    uri = f"webhdfs://{hdfs.address}{root}?user=shopstream-test"
    proc = assert_ok(cli("archive", "--data", remote, "--cold", uri, "--once", "--hot-max-mb",
                         MAX_MB, timeout=300))
    assert len(committed(remote)) >= 2, describe(proc)
    assert len(committed(remote)) == len(committed(local))
    return local, remote, root, uri


def test_every_event_once_in_hot_or_hdfs(source, archived, hdfs):  # noqa: F811
    _, expected = source
    _, remote, root, _ = archived
    ids = hot_event_ids(remote)
    cold = Counter()
    for _, m in committed(remote):
        for t in m["tables"].values():
            for f in t["files"]:
                body = hdfs_read(hdfs, f"{root}/{f['path']}")
                assert len(body) == f["bytes"]
                assert f"{zlib.crc32(body):08x}" == f["crc32"]
                lines = body.count(b"\n")
                assert lines == f["records"]
                cold.update(m.decode() for m in EVENT_ID_RE.findall(body))
    assert sum(cold.values()) > 0
    assert max(cold.values()) == 1
    assert not set(cold) & set(ids), "events both hot and archived"
    assert ids + cold == expected
    # The hot store ended within its threshold, as with a local cold store.
    assert hot_size(remote) <= MAX_MB * MB


def test_hdfs_holds_the_bytes_the_local_store_holds(archived, hdfs):  # noqa: F811
    local, remote, root, _ = archived
    lp, rp = by_place(local), by_place(remote)
    assert set(lp) == set(rp)
    assert any(p.startswith("orders/dt=") for p in rp)
    # The dimension snapshots travel with each archive, as in a local store.
    assert {p.split("/")[1] for p in rp if p.startswith("dims/")} == {
        "customers", "products", "categories", "countries", "cities", "payment_methods",
        "time_minutes"}, sorted(rp)
    for place, f in rp.items():
        want = (local / "cold" / lp[place]["path"]).read_bytes()
        assert hdfs_read(hdfs, f"{root}/{f['path']}") == want, place
        assert (f["bytes"], f["crc32"]) == (lp[place]["bytes"], lp[place]["crc32"]), place
    # The same files, and nothing else: no temporary file is left.
    names = {ID_RE.sub("#", p) for p in hdfs_files(hdfs, root)}
    assert names == {ID_RE.sub("#", p) for p in local_files(local / "cold")}
    assert not [p for p in hdfs_files(hdfs, root) if "tmp" in p]


def test_fsshell_lists_and_reads_the_partitions(archived, hdfs):  # noqa: F811
    local, remote, root, _ = archived
    listing = fsshell(hdfs, "-ls", "-R", root).decode()
    parts = re.findall(r"(/\S+/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/part-\S+\.jsonl)$", listing, re.M)
    want = [f["path"] for _, m in committed(remote) for t in m["tables"].values()
            for f in t["files"]]
    assert sorted(p.removeprefix(root + "/") for p in parts) == sorted(want)
    one = want[0]
    lp = by_place(local)
    aid = next(a for a, _ in committed(remote) if a in one)
    n = [a for a, _ in committed(remote)].index(aid)
    assert fsshell(hdfs, "-cat", f"{root}/{one}") == \
        (local / "cold" / lp[one.replace(aid, f"#{n}")]["path"]).read_bytes()


def test_swebhdfs_archives_and_reads_over_https(source, archived, hdfs, tmp_path):  # noqa: F811
    """swebhdfs:// with scripts/hdfs's certificate given as ?ca=: the NameNode
    and the DataNodes of its redirects are reached over HTTPS, the files hold
    the local store's bytes, and SQL and --verify read them back."""
    src, _ = source
    local = archived[0]
    data = copy(src, tmp_path / "tls")
    root = "/shopstream/tls"
    base = f"{hdfs.https_uri.rstrip('/')}{root}?user=shopstream-test"
    uri = f"{base}&ca={hdfs.ca}"
    proc = assert_ok(cli("archive", "--data", data, "--cold", uri, "--once", "--hot-max-mb",
                         MAX_MB, "--log-level", "debug", timeout=300))
    log = proc.stderr.decode()
    assert re.search(r"CREATE '[^']+': DataNode https://127\.0\.0\.1:", log), log[-2000:]
    assert not re.search(r"DataNode http://", log), log[-2000:]
    lp, rp = by_place(local), by_place(data)
    assert set(lp) == set(rp) and rp
    for place, f in rp.items():
        assert hdfs_read(hdfs, f"{root}/{f['path']}") == \
            (local / "cold" / lp[place]["path"]).read_bytes(), place
    q = "SELECT count(*), sum(total_price) FROM orders"
    want = assert_ok(cli("sql", "--data", local, "--format", "csv", q)).stdout
    assert assert_ok(cli("sql", "--data", data, "--cold", uri, "--format", "csv", q)).stdout == want
    out = assert_ok(cli("archive", "--data", data, "--cold", uri, "--verify")).stdout.decode()
    assert "all files match" in out, out
    # Without the CA the certificate is not trusted: a usage error naming the fix.
    proc = cli("sql", "--data", data, "--cold", base, "--format", "csv", q)
    err = proc.stderr.decode()
    assert proc.returncode == 2, describe(proc)
    assert "TLS connection to the NameNode failed" in err and "?ca=PATH" in err, err
    # ca= is for https only.
    plain = f"webhdfs://{hdfs.address}{root}?ca={hdfs.ca}"
    proc = cli("sql", "--data", data, "--cold", plain, q)
    assert proc.returncode == 2 and "ca=PATH is for swebhdfs://" in proc.stderr.decode(), \
        describe(proc)


def test_status_and_verify_read_hdfs(archived, hdfs, tmp_path):  # noqa: F811
    _, remote, root, uri = archived
    st = assert_ok(cli("archive", "--data", remote, "--cold", uri, "--status", "--hot-max-mb",
                       MAX_MB)).stdout.decode()
    assert f"webhdfs://{hdfs.address}{root}/" in st, st
    out = assert_ok(cli("archive", "--data", remote, "--cold", uri, "--verify")).stdout.decode()
    assert "all files match" in out, out

    # A copy of the archives in HDFS, one file damaged and one missing.
    data = tmp_path / "data"
    shutil.copytree(remote, data)
    copy_root = "/shopstream/damaged"
    files = hdfs_files(hdfs, root)
    for p in files:
        status, _ = webhdfs(hdfs, "PUT", f"{copy_root}/{p}", "CREATE",
                            data=hdfs_read(hdfs, f"{root}/{p}"), overwrite="false")
        assert status == 201
    parts = sorted(p for p in files if p.endswith(".jsonl") and not p.startswith("dims/"))
    dims = sorted(p for p in files if p.startswith("dims/"))
    damaged, missing = parts[0], parts[-1]
    # A dimension snapshot damaged, another missing: reported as part files are.
    dim_damaged, dim_missing = dims[0], dims[-1]
    for p in (damaged, dim_damaged):
        body = bytearray(hdfs_read(hdfs, f"{copy_root}/{p}"))
        body[10] ^= 0x01
        status, _ = webhdfs(hdfs, "PUT", f"{copy_root}/{p}", "CREATE", data=bytes(body),
                            overwrite="true")
        assert status == 201
    for p in (missing, dim_missing):
        status, _ = webhdfs(hdfs, "DELETE", f"{copy_root}/{p}", "DELETE")
        assert status == 200
    proc = cli("archive", "--data", data, "--cold",
               f"webhdfs://{hdfs.address}{copy_root}", "--verify")
    assert proc.returncode == 1, describe(proc)
    out = proc.stdout.decode()
    for p in (damaged, dim_damaged):
        assert f"file {p} is damaged" in out, out
    for p in (missing, dim_missing):
        assert f"file {p} is missing" in out, out


@pytest.mark.parametrize("uri, fragment", [
    ("webhdfs://127.0.0.1/cold", "give the NameNode's HTTP address as webhdfs://HOST:PORT/PATH"),
    ("webhdfs://:9870/cold", "give the NameNode's HTTP address"),
    ("webhdfs://127.0.0.1:x/cold", "give the NameNode's HTTP address"),
    ("webhdfs://127.0.0.1:9870/a/../b", "must be a plain absolute path"),
    ("webhdfs://127.0.0.1:9870/cold?color=blue", "unknown parameter 'color=blue'"),
    ("ftp://127.0.0.1/cold", "webhdfs://HOST:PORT/PATH"),
])
def test_malformed_uri_exits_2(source, tmp_path, uri, fragment):
    src, _ = source
    data = copy(src, tmp_path / "data")
    proc = cli("archive", "--data", data, "--cold", uri, "--once", "--hot-max-mb", MAX_MB)
    assert proc.returncode == 2, describe(proc)
    assert fragment in proc.stderr.decode(), describe(proc)


def test_a_path_that_is_a_file(source, hdfs, tmp_path):  # noqa: F811
    status, _ = webhdfs(hdfs, "PUT", "/shopstream/a-file", "CREATE", data=b"x\n",
                        overwrite="true")
    assert status == 201
    src, _ = source
    data = copy(src, tmp_path / "data")
    proc = cli("archive", "--data", data, "--cold",
               f"webhdfs://{hdfs.address}/shopstream/a-file/cold", "--once", "--hot-max-mb",
               MAX_MB)
    assert proc.returncode == 2, describe(proc)
    err = proc.stderr.decode()
    assert "is a file, not a directory" in err and "ParentNotDirectoryException" in err, err


def test_unreachable_namenode_keeps_the_events_hot(source, tmp_path):
    src, _ = source
    data = copy(src, tmp_path / "data")
    before = hot_event_ids(data)
    uri = f"webhdfs://127.0.0.1:{free_port()}/cold"
    proc = cli("archive", "--data", data, "--cold", uri, "--once", "--hot-max-mb", MAX_MB)
    assert proc.returncode == 1, describe(proc)
    err = proc.stderr.decode()
    assert "cannot reach the NameNode" in err, err
    assert hot_event_ids(data) == before
    st = assert_ok(cli("archive", "--data", data, "--cold", uri, "--status", "--hot-max-mb",
                       MAX_MB)).stdout.decode()
    assert "unavailable" in st, st


def sql(data, query, *cold):
    proc = cli("sql", query, "--data", data, *cold, "--format", "json", timeout=120)
    assert proc.returncode == 0, describe(proc)
    return json.loads(proc.stdout)


def test_sql_over_hdfs_equals_sql_over_a_local_cold_store(archived):
    from test_queries import SECTIONS  # the queries of docs/queries.md

    local, remote, _, uri = archived
    queries = [q for _, _, _, blocks in SECTIONS for q, _ in blocks]
    assert len(queries) >= 10
    counts = "SELECT (SELECT count(*) FROM cold_orders), (SELECT count(*) FROM cold_payments)," \
             " (SELECT count(*) FROM cold_cancellations), (SELECT count(*) FROM orders)"
    cold_counts = sql(remote, counts, "--cold", uri)
    assert cold_counts == sql(local, counts)
    assert all(v > 0 for v in cold_counts[0].values()), cold_counts
    for q in queries:
        assert sql(remote, q, "--cold", uri) == sql(local, q), q
