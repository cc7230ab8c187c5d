# Merch Shop. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MODULES := gen pkg services/auth services/coins services/gateway services/info services/merch services/user tests/chaos tests/e2e tests/load

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: run
run: ## install what is missing, start everything, serve the API on localhost:8080
	@scripts/run.sh

.PHONY: stop
stop: ## stop the services and the servers
	@scripts/stop.sh

.PHONY: test
test: ## unit, integration and e2e tests against real servers (started as needed)
	@scripts/test.sh

.PHONY: infra-up
infra-up: ## start PostgreSQL, Redis, Kafka and ClickHouse only
	@scripts/infra/up.sh

.PHONY: infra-down
infra-down: ## stop the servers
	@scripts/infra/down.sh

.PHONY: services
services: ## (re)build and (re)start the six services only
	@scripts/services.sh start

.PHONY: build
build: ## compile every module
	@go build ./gen/... ./pkg/... $(foreach m,$(filter services/%,$(MODULES)),./$(m)/...)

.PHONY: gen
gen: ## regenerate gen/ from proto/
	@scripts/gen.sh generate

.PHONY: check-gen
check-gen: ## fail when gen/ differs from a fresh generation
	@scripts/gen.sh check

.PHONY: lint
lint: ## gofmt, go vet and golangci-lint on every module
	@scripts/lint.sh

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && GOFLAGS=-mod=mod go mod tidy) || exit 1; done

.PHONY: chaos
chaos: ## fault suite: kill -9 each service, restart Kafka/PostgreSQL, stop Redis, check invariants (CHAOS_QUICK=1: CI subset)
	@scripts/chaos.sh

.PHONY: deploy-check
deploy-check: ## helm lint/template, strict checks of the rendered chart and compose file, actionlint
	@scripts/deploy-check.sh

# Load runs and benchmarks (docs/benchmarks.md). Loopback only; each run is
# bounded in time. PROFILE=mixed|info|auth for load-step.
.PHONY: load-seed load-mixed load-info load-auth load-step load-overload bench bench-history bench-chart
load-seed: ## register/log in the 100k load users (seeding uses bcrypt cost 4, see docs/benchmarks.md)
	@scripts/load.sh seed
load-mixed: ## 60 s at 2000 req/s: 70% info, 15% buy, 15% sendCoin (SLI p99<=50ms, 99.99%)
	@scripts/load.sh run mixed 2000
load-info: ## 60 s at 4000 req/s of GET /api/info
	@scripts/load.sh run info 4000
load-auth: ## 60 s at 1000 req/s of existing users logging in again
	@scripts/load.sh run auth 1000
load-step: ## raise the rate from 100 req/s in 30 s steps of 100 until the SLI breaks (PROFILE=mixed)
	@scripts/load.sh step $(or $(PROFILE),mixed)
load-overload: ## mixed at 1x, 2x, 4x of LOAD_SLI_RATE (1000) for 30 s each: goodput, p99 of 200s, 503s, 500s; reconcile; fails on a 500
	@scripts/load.sh overload
bench: ## Go benchmarks of the hot paths (transfer, login, token check, JSON)
	@scripts/bench.sh
bench-history: ## info's read and a transfer with 0, 10k, 100k and 1M transfers of history (BENCH_HISTORY_MAX caps it)
	@scripts/bench.sh history
bench-chart: ## redraw docs/benchmarks-latency.png from docs/benchmarks-data.csv
	@cd tests/load && go run ./cmd/chart -in ../../docs/benchmarks-data.csv -out ../../docs/benchmarks-latency.png

# Hostile input (docs/reliability.md, "Hostile input and abuse").
.PHONY: fuzz schemathesis secrets-check
fuzz: ## run every Go fuzz target for FUZZTIME each (default 10s)
	@scripts/fuzz.sh
schemathesis: ## schemathesis (pinned, from PyPI) against the running system: no 5xx, 200s match the OpenAPI schema
	@scripts/schemathesis.sh
secrets-check: ## fail when a private key, password or token is committed
	@scripts/secrets-check.sh --self-test && scripts/secrets-check.sh
