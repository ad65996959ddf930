"""The deployment tests: the Dockerfile and docker-compose.yml, checked with
the tools that work without a container engine (hadolint, the Compose CLI
built from its Go module) and against the binary's own option parser, and
run for real with podman (scripts/podman: the image, and the file's own
services against a broker of scripts/kafka). They share the black-box
tests' harness (tests/cli/harness.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
