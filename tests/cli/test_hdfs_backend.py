"""The cold store's callbacks (ss_cold_ops) on HDFS and on a local directory,
driven by tests/cli/cold_ops_check.c: a 10 MiB file written in pieces (on
HDFS more than a chunk, so a streamed upload through a ring smaller than the
file) is invisible until its commit, then reads back whole and by ranges (on
HDFS by a read-ahead that fills its ring and waits), then one range out of
order; a reader closed early stops its read-ahead; missing files are SS_EOF
(2); writing the same bytes again under a name is done, an aborted write
(small, or streamed past a chunk) leaves nothing, listings show no temporary
file. Both backends print the same.
Then what differs: a different content under an existing name fails on HDFS
(RENAME answers false and the file holds other bytes), and nothing is
written.
"""
import subprocess
from pathlib import Path

from harness import BIN, clean_env, hdfs  # noqa: F401
from test_hdfs_cold import hdfs_files, webhdfs

CHECK = Path(BIN).parent / "cold_ops_check"


def check(uri):
    proc = subprocess.run([str(CHECK), uri], capture_output=True, timeout=300, env=clean_env())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode().splitlines(), proc.stderr.decode()


def test_hdfs_and_local_callbacks_agree(hdfs, tmp_path):  # noqa: F811
    local, _ = check(str(tmp_path / "cold"))
    remote, err = check(f"webhdfs://{hdfs.address}/backend/ops")
    assert remote == local, err
    assert "put_big=0" in local and "ranges=0 bytes=10485760 same=1" in local, local
    assert "read_big=0 same=1" in local and "visible_before_commit=0" in local, local
    assert [x for x in local if x.startswith("file=")] == [
        "file=t/dt=2026-11-02/big.jsonl 10485760", "file=t/empty.txt 0", "file=t/small.txt 6"]
    assert "get_open_missing=2" in local and "read_removed=2" in local, local
    assert "read_part_close=0 same=1" in local and "abort_big=0" in local, local
    assert "range_mid=0 same=1" in local, local
    # Outside view: the same names in HDFS, and nothing temporary.
    assert sorted(hdfs_files(hdfs, "/backend/ops")) == ["t/dt=2026-11-02/big.jsonl",
                                                        "t/empty.txt"]


def test_rename_onto_other_content_fails_on_hdfs(hdfs, tmp_path):  # noqa: F811
    root = "/backend/conflict"
    status, _ = webhdfs(hdfs, "PUT", f"{root}/t/small.txt", "CREATE", data=b"other\n",
                        overwrite="false")
    assert status == 201
    out, err = check(f"webhdfs://{hdfs.address}{root}")
    assert "put_small=-3" in out, out
    assert "put_same_again=-3" in out, out
    assert "'t/small.txt' exists with other content" in err, err
    assert not [p for p in hdfs_files(hdfs, root) if ".tmp-write" in p]
