"""The Dockerfile: hadolint (scripts/hadolint, from PyPI) finds nothing, and
every rule it is told to ignore has its reason in a comment above; the
image is multi-stage (Debian 12 to build, its slim variant to run) with
selectable bases, a non-root user, shopstream as its entrypoint and a health
check on /healthz; the runtime stage installs the Debian package of every
shared library the binary links; .dockerignore keeps build trees, installed
npm packages and history out of the build context, and the build stage's
steps, run on this machine in a copy of that context, build a binary that
runs. The image's health check passes on `serve` and fails without it."""
import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

from harness import BIN, REPO, clean_env, describe, start_server, stop_server

HADOLINT = REPO / "scripts" / "hadolint"
DOCKERFILE = REPO / "Dockerfile"


def hadolint(path):
    proc = subprocess.run([str(HADOLINT), "--format", "json", str(path)], capture_output=True,
                          timeout=600)
    out = proc.stdout.decode()
    assert out.strip().startswith("["), f"hadolint: {proc.stderr.decode()[-2000:]}"
    return proc.returncode, json.loads(out)


def instructions(text):
    """(instruction, arguments) of each Dockerfile instruction, continuation
    lines joined and comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        cur += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def stages(text):
    """The instructions of each stage, by stage (FROM starts one)."""
    result = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_hadolint_finds_nothing():
    rc, findings = hadolint(DOCKERFILE)
    assert findings == [] and rc == 0, findings


def test_hadolint_reports_what_it_is_there_for(tmp_path):
    # The same linter on a Dockerfile with the usual faults: a clean result
    # above means the rules ran.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\nUSER root\n")
    rc, findings = hadolint(bad)
    codes = {f["code"] for f in findings}
    assert rc != 0 and {"DL3006", "DL3008", "DL3014", "DL3015"} <= codes, findings


def test_every_ignored_rule_has_its_reason_above():
    lines = DOCKERFILE.read_text().splitlines()
    ignores = [i for i, ln in enumerate(lines) if re.match(r"\s*#\s*hadolint\s+ignore=", ln)]
    assert ignores, "the Dockerfile ignores no rule: drop this test's premise"
    for i in ignores:
        reason = lines[i - 1].strip() if i else ""
        assert reason.startswith("#") and "hadolint" not in reason and len(reason) > 20, \
            f"line {i + 1} ({lines[i]!r}) has no reason in the comment above it"
    # Only inline ignores, no global ones that would hide findings elsewhere.
    assert not (REPO / ".hadolint.yaml").exists() and not (REPO / ".hadolint.yml").exists()


def test_stages_bases_user_entrypoint_and_health_check():
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    assert args.get("BASE") == "debian:bookworm"
    assert args.get("RUNTIME_BASE") == "debian:bookworm-slim"
    build, run = stages(text)
    assert build[0] == ("FROM", "${BASE} AS build")
    assert run[0] == ("FROM", "${RUNTIME_BASE}")
    users = [a for i, a in run if i == "USER"]
    assert len(users) == 1 and not re.match(r"(0|root)(:|$)", users[0]), users
    assert ("ENTRYPOINT", '["shopstream"]') in run
    health = [a for i, a in run if i == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0], health
    cmd = json.loads(next(a for i, a in run if i == "CMD"))
    assert cmd[0] == "serve" and "0.0.0.0" in cmd
    # The runtime stage takes the binary from the build stage, no compiler.
    copies = [a for i, a in run if i == "COPY"]
    assert copies == ["--from=build /src/build/shopstream /usr/local/bin/shopstream"]
    runtime_install = " ".join(a for i, a in run if i == "RUN")
    for tool in ("build-essential", "cmake", "-dev ", "npm"):
        assert tool not in runtime_install, tool


def linked_packages():
    """The Debian package of each shared library the binary names (NEEDED)."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]",
                        subprocess.run(["readelf", "-d", BIN], capture_output=True,
                                       check=True).stdout.decode())
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
        ["ldd", BIN], capture_output=True, check=True).stdout.decode(), re.M))
    pkgs = {}
    for lib in needed:
        owner = subprocess.run(["dpkg", "-S", paths[lib]], capture_output=True).stdout.decode()
        if not owner:  # merged /usr: dpkg may know the file under the other name
            alt = paths[lib].replace("/usr/lib/", "/lib/", 1) if paths[lib].startswith("/usr/") \
                else "/usr" + paths[lib]
            owner = subprocess.run(["dpkg", "-S", alt], capture_output=True).stdout.decode()
        assert owner, f"no Debian package holds {paths[lib]}"
        pkgs[lib] = owner.split(":")[0]
    return pkgs


def test_runtime_stage_installs_the_package_of_every_linked_library():
    run = stages(DOCKERFILE.read_text())[1]
    install = " ".join(a for i, a in run if i == "RUN").split()
    in_base = {"libc6"}  # in every Debian image
    missing = {lib: pkg for lib, pkg in linked_packages().items()
               if pkg not in in_base and pkg not in install}
    assert not missing, f"the runtime stage does not install {missing}"
    assert len(linked_packages()) >= 7


def test_dockerignore_keeps_the_context_to_the_sources():
    ignored = {ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    assert {".git", "build", "build-*", "web/node_modules", "data"} <= ignored
    # What the build stage copies by name is in the context.
    for name in ("web/package.json", "web/package-lock.json", "CMakeLists.txt", "src"):
        assert name not in ignored and (REPO / name).exists(), name


def test_health_check_passes_on_serve_and_fails_without_it(tmp_path):
    # The image's health check, run here against `shopstream serve` on the
    # port it would read from SHOPSTREAM_PORT in the container.
    run = stages(DOCKERFILE.read_text())[1]
    health = next(a for i, a in run if i == "HEALTHCHECK")
    check = json.loads(health[health.index("CMD ") + 4:])
    assert check[:2] == ["bash", "-c"]
    proc, port = start_server(tmp_path / "data")
    try:
        ok = subprocess.run(check, capture_output=True, timeout=30,
                            env=clean_env({"SHOPSTREAM_PORT": str(port)}))
        assert ok.returncode == 0, describe(ok)
    finally:
        stop_server(proc)
    down = subprocess.run(check, capture_output=True, timeout=30,
                          env=clean_env({"SHOPSTREAM_PORT": str(port)}))
    assert down.returncode != 0


def ignored(path, patterns):
    """Whether .dockerignore's patterns leave path (relative, with /) out of
    the build context: a pattern names a file or a folder with all below it;
    **/ stands for any folders."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pat in patterns:
        if pat.startswith("**/"):
            if any(fnmatch.fnmatchcase(p, pat[3:]) for p in parts):
                return True
        elif any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            return True
    return False


def test_build_stage_builds_from_the_context_alone(tmp_path):
    # The build stage's steps on this machine (Debian 12, with the packages
    # of scripts/deps in place of its apt-get line), in a copy of the build
    # context that .dockerignore leaves: what the stage copies is there, and
    # the binary builds and runs.
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().splitlines()
    context = tmp_path / "context"
    kept = [f for f in files if not ignored(f, patterns)]
    assert "src/cli/main.c" in kept and not any(f.startswith("tests/") for f in kept)
    for f in kept:
        (context / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, context / f)
    build = stages(DOCKERFILE.read_text())[0]
    src = tmp_path / "src"
    workdir = None
    for ins, arg in build[1:]:
        if ins == "WORKDIR":
            workdir = src
            workdir.mkdir()
        elif ins == "COPY":
            *sources, dest = arg.split()
            target = workdir / dest
            for s in sources:
                if s == ".":
                    shutil.copytree(context, target, dirs_exist_ok=True)
                else:
                    (target if dest.endswith("/") else target.parent).mkdir(parents=True,
                                                                           exist_ok=True)
                    shutil.copy2(context / s, target / Path(s).name if dest.endswith("/")
                                 else target)
        elif ins == "RUN" and "apt-get" not in arg:
            cmd = arg.replace("cmake --build build ", "cmake --build build -j 2 ")
            proc = subprocess.run(["sh", "-ec", cmd], cwd=workdir, capture_output=True,
                                  timeout=1200, env=clean_env())
            assert proc.returncode == 0, f"RUN {arg}\n{describe(proc)}"
    assert (src / "build" / "shopstream").is_file()
    out = subprocess.run([str(src / "build" / "shopstream"), "version"], capture_output=True,
                         timeout=30)
    assert out.returncode == 0 and out.stdout.startswith(b"shopstream "), describe(out)
