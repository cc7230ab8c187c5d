# Merch Shop. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MODULES := gen pkg services/auth services/coins services/gateway services/info services/merch services/user tests/e2e

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
