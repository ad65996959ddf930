"""The HDFS of scripts/hdfs (the `hdfs` fixture) speaks the WebHDFS protocol
that the cold store's webhdfs:// backend relies on, step by step, and
Hadoop's own FsShell sees what was written through it.

Every request goes out with http.client, which never follows a redirect, so
that each step's status is seen as the server sends it.
"""
import http.client
import json
import subprocess
import urllib.parse

from harness import HDFS_SCRIPT, clean_env, hdfs  # noqa: F401

USER = "shopstream-test"


def call(address, method, path, op, body=None, **params):
    """One WebHDFS request to address ("host:port"), or to the full URL of a
    redirect's Location; returns (status, headers, body)."""
    if address.startswith("http://"):
        url = urllib.parse.urlsplit(address)
        host, target = url.netloc, f"{url.path}?{url.query}"
    else:
        q = urllib.parse.urlencode({"op": op, "user.name": USER, **params})
        host, target = address, f"/webhdfs/v1{path}?{q}"
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, target, body=body,
                     headers={"Content-Type": "application/octet-stream"} if body else {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def create(address, path, data):
    """CREATE in two steps: the NameNode's 307, then the body to its Location."""
    status, headers, body = call(address, "PUT", path, "CREATE", overwrite="false")
    assert status == 307, (status, body)
    location = headers["location"]
    assert location.startswith("http://127.0.0.1:"), location
    status, _, body = call(location, "PUT", None, None, body=data)
    return status, body


def rename(address, src, dst):
    status, _, body = call(address, "PUT", src, "RENAME", destination=dst)
    assert status == 200, (status, body)
    return json.loads(body)["boolean"]


def read(address, path):
    status, headers, body = call(address, "GET", path, "OPEN")
    if status != 307:
        return status, body
    status, _, body = call(headers["location"], "GET", None, None)
    return status, body


def fsshell(server, *args):
    proc = subprocess.run([str(HDFS_SCRIPT), "fs", "--dir", str(server.dir), *args],
                          capture_output=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc.stdout


def test_create_rename_list_open(hdfs):  # noqa: F811
    a = hdfs.address
    assert hdfs.uri == f"webhdfs://{a}/"
    data = b"".join(b'{"n":%d}\n' % i for i in range(20000))

    status, body = create(a, "/srv/dt=2026-11-02/hour=00/part-1.jsonl.tmp", data)
    assert status == 201, (status, body)
    # overwrite=false: a second CREATE of the same name is refused.
    status, body = create(a, "/srv/dt=2026-11-02/hour=00/part-1.jsonl.tmp", b"other")
    assert status == 403, (status, body)
    exc = json.loads(body)["RemoteException"]
    assert exc["exception"] == "FileAlreadyExistsException", exc

    assert rename(a, "/srv/dt=2026-11-02/hour=00/part-1.jsonl.tmp",
                  "/srv/dt=2026-11-02/hour=00/part-1.jsonl") is True
    # RENAME onto an existing file answers 200 with false, and changes nothing.
    status, _ = create(a, "/srv/dt=2026-11-02/hour=00/again.tmp", b"second")
    assert status == 201
    assert rename(a, "/srv/dt=2026-11-02/hour=00/again.tmp",
                  "/srv/dt=2026-11-02/hour=00/part-1.jsonl") is False
    # A missing source answers the same.
    assert rename(a, "/srv/missing", "/srv/elsewhere") is False

    status, _, body = call(a, "GET", "/srv/dt=2026-11-02/hour=00", "LISTSTATUS")
    assert status == 200, body
    files = {f["pathSuffix"]: f for f in json.loads(body)["FileStatuses"]["FileStatus"]}
    assert set(files) == {"part-1.jsonl", "again.tmp"}
    assert files["part-1.jsonl"]["type"] == "FILE"
    assert files["part-1.jsonl"]["length"] == len(data)

    assert read(a, "/srv/dt=2026-11-02/hour=00/part-1.jsonl") == (200, data)
    status, body = read(a, "/srv/none.jsonl")
    assert status == 404
    assert json.loads(body)["RemoteException"]["exception"] == "FileNotFoundException"

    # Hadoop's own client sees the same tree and bytes.
    listing = fsshell(hdfs, "-ls", "-R", "/srv").decode()
    assert "/srv/dt=2026-11-02/hour=00/part-1.jsonl" in listing, listing
    assert fsshell(hdfs, "-cat", "/srv/dt=2026-11-02/hour=00/part-1.jsonl") == data


def test_status_names_the_running_server(hdfs):  # noqa: F811
    proc = subprocess.run([str(HDFS_SCRIPT), "status", "--dir", str(hdfs.dir)],
                          capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == hdfs.uri
