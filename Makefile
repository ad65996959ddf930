# Thin wrapper over CMake. `make run` and `make test` do all set-up on a fresh
# Debian machine: scripts/deps installs what is missing (and, through
# scripts/web-deps, the page's npm packages of web/package-lock.json), then
# CMake builds.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps build asan test test-unit format format-check bench run clean fuzz fuzz-build fuzz-smoke \
  kafka kafka-stop mongo mongo-stop hdfs hdfs-stop hbase hbase-stop ferretdb ferretdb-stop spark airflow

all: build

deps:
	@scripts/deps

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DSS_SANITIZE=ON \
	  -DSS_FAULT_POINTS=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# libFuzzer targets of the parsers of outside input (tests/fuzz), built with
# clang. `make fuzz` runs each for FUZZ_SECONDS; `make test` runs a fixed,
# seeded number of inputs, so that its result does not depend on timing. New
# inputs go to the build directory; tests/fuzz/corpus holds the seeds only.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= 200000
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_C_COMPILER=clang-14 \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSS_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))

# Each target's closing line gives its executions and coverage (cov: edges,
# ft: features); docs/reliability.md records one run.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do mkdir -p $(FUZZ_BUILD)/corpus-$$t; \
	  $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	    $(FUZZ_BUILD)/corpus-$$t tests/fuzz/corpus/$$t >$(FUZZ_BUILD)/fuzz_$$t.log 2>&1 \
	    || { tail -40 $(FUZZ_BUILD)/fuzz_$$t.log; exit 1; }; \
	  echo "fuzz_$$t ($(FUZZ_SECONDS) s): $$(grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_BUILD)/fuzz_$$t.log)"; done

fuzz-smoke: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  runs=$(FUZZ_RUNS); case $$t in profile|fit) runs=$$(( $(FUZZ_RUNS) / 100 ));; esac; \
	  rm -rf $(FUZZ_BUILD)/smoke-$$t; mkdir -p $(FUZZ_BUILD)/smoke-$$t; \
	  $(FUZZ_BUILD)/fuzz_$$t -seed=1 -runs=$$runs -max_len=8192 $(FUZZ_BUILD)/smoke-$$t \
	    tests/fuzz/corpus/$$t \
	    >$(FUZZ_BUILD)/fuzz_$$t.log 2>&1 || { tail -40 $(FUZZ_BUILD)/fuzz_$$t.log; exit 1; }; \
	  echo "fuzz_$$t: $$runs inputs, no crash"; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check: deps
	@out=$$(for f in $$(git ls-files '*.c' '*.h'); do \
	  clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); \
	if [ -n "$$out" ]; then echo "not clang-formatted (run 'make format'):"; echo "$$out"; exit 1; fi; \
	echo "format-check: all sources clang-formatted"

# Unit tests and the quicker black-box tests under ASan+UBSan, then every
# test on the release build (which also feeds its bad-input corpus to the
# sanitizer binary).
test: build asan format-check fuzz-smoke
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(BUILD) && SHOPSTREAM_ASAN_BIN=$(CURDIR)/$(ASAN_BUILD)/shopstream ctest --output-on-failure -j $(JOBS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

bench: build
	bench/gen
	bench/fit
	bench/engine
	bench/archive
	bench/freshness
	bench/kafka
	bench/mongo
	bench/spark
	bench/query
	bench/longrun

run: build
	$(BUILD)/shopstream run --data ./data

# A local Kafka broker (KRaft, loopback; `make kafka ZOOKEEPER=1`: in
# ZooKeeper mode, with a ZooKeeper server) with its state in $(BUILD)/kafka;
# prints its bootstrap address. The jars come from Maven Central once.
kafka: deps
	@SHOPSTREAM_KAFKA_DIR=$(CURDIR)/$(BUILD)/kafka scripts/kafka start $(if $(ZOOKEEPER),--zookeeper)

kafka-stop:
	@SHOPSTREAM_KAFKA_DIR=$(CURDIR)/$(BUILD)/kafka scripts/kafka stop

# A local MongoDB-wire server (mongo-java-server, loopback) with its state in
# $(BUILD)/mongo; prints its mongodb:// URI. The jars come from Maven Central once.
mongo: deps
	@SHOPSTREAM_MONGO_DIR=$(CURDIR)/$(BUILD)/mongo scripts/mongo start

mongo-stop:
	@SHOPSTREAM_MONGO_DIR=$(CURDIR)/$(BUILD)/mongo scripts/mongo stop

# A local HDFS (one NameNode and one DataNode, loopback) with its state in
# $(BUILD)/hdfs; prints its webhdfs:// URI. The jars come from Maven Central once.
hdfs: deps
	@SHOPSTREAM_HDFS_DIR=$(CURDIR)/$(BUILD)/hdfs scripts/hdfs start

hdfs-stop:
	@SHOPSTREAM_HDFS_DIR=$(CURDIR)/$(BUILD)/hdfs scripts/hdfs stop

# A standalone HBase 2.6.1 (master, regionserver and ZooKeeper in one JVM)
# and its REST gateway (loopback), with its state in $(BUILD)/hbase; prints
# the gateway's http:// address, for --kpi-sink hbase+http://HOST:PORT/TABLE.
# The jars come from Maven Central once.
hbase: deps
	@SHOPSTREAM_HBASE_DIR=$(CURDIR)/$(BUILD)/hbase scripts/hbase start

hbase-stop:
	@SHOPSTREAM_HBASE_DIR=$(CURDIR)/$(BUILD)/hbase scripts/hbase stop

# PySpark 4.2.0 in a venv and the Kafka connector's jars, cached under
# ~/.cache/shopstream/spark (once); prints the venv. Run the jobs with
# `scripts/spark submit spark/analytics.py ...` (no server: local mode).
spark: deps
	@scripts/spark install

# Apache Airflow 3.3.2 in a venv, cached under ~/.cache/shopstream/airflow
# (once); prints the venv. Run the DAGs of airflow/dags with
# `scripts/airflow dags test shopstream_maintenance DATE` (README.md, "Airflow").
airflow: deps
	@scripts/airflow install

# FerretDB on its SQLite backend (loopback), the other MongoDB-wire server of
# the tests, with its state in $(BUILD)/ferretdb; prints its mongodb:// URI.
# Built once with go from the Go module proxy (scripts/ferretdb-server).
ferretdb: deps
	@SHOPSTREAM_MONGO_DIR=$(CURDIR)/$(BUILD)/ferretdb scripts/mongo start --ferretdb

ferretdb-stop:
	@SHOPSTREAM_MONGO_DIR=$(CURDIR)/$(BUILD)/ferretdb scripts/mongo stop

clean:
	@[ ! -d $(BUILD)/kafka ] || SHOPSTREAM_KAFKA_DIR=$(CURDIR)/$(BUILD)/kafka scripts/kafka stop
	@[ ! -d $(BUILD)/mongo ] || SHOPSTREAM_MONGO_DIR=$(CURDIR)/$(BUILD)/mongo scripts/mongo stop
	@[ ! -d $(BUILD)/hdfs ] || SHOPSTREAM_HDFS_DIR=$(CURDIR)/$(BUILD)/hdfs scripts/hdfs stop
	@[ ! -d $(BUILD)/hbase ] || SHOPSTREAM_HBASE_DIR=$(CURDIR)/$(BUILD)/hbase scripts/hbase stop
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
