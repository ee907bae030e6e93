# The two commands a newcomer needs: `make run` and `make test`.
CARGO ?= cargo
PORT ?= 3000
SUB ?= 1
ROLES ?=
# Every Lambda function: each package under functions/ with a binary, but the local server.
FUNCTIONS := $(filter-out local,$(notdir $(patsubst %/src/main.rs,%,$(wildcard functions/*/src/main.rs))))

.PHONY: run token test unit lint fmt venv cfn-lint build deploy clean bench fuzz breaks mutants

## run: the whole API on 127.0.0.1:$(PORT) with the embedded store (no AWS, no Docker)
run:
	PORT=$(PORT) LOG_FORMAT=$${LOG_FORMAT:-text} $(CARGO) run --profile local -p local

## token: print a dev JWT (SUB=user id, ROLES="admin manager")
token:
	@$(CARGO) run -q --profile local -p local -- token $(SUB) $(ROLES)

## test: format and lint checks, template lint, every test (DynamoDB/SQS/SES against moto)
test: venv lint cfn-lint
	scripts/with-moto.sh $(CARGO) test --workspace --no-fail-fast
	$(CARGO) run -q -p local -- token 1 >/dev/null   # what make run / make token invoke (debug build)
	scripts/fail-closed.sh                           # a deployed process refuses blank or development secrets
	scripts/schemathesis.sh
	SCHEMATHESIS_STORE=dynamo SCHEMATHESIS_MAX_EXAMPLES=10 scripts/with-moto.sh scripts/schemathesis.sh
	scripts/browser-check.sh                         # the zoo-tickets email's QR images and /docs in headless Chromium

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

venv:
	scripts/venv.sh

cfn-lint: venv
	.venv/bin/cfn-lint template.yaml

## build: every function for arm64 with cargo-lambda (from PyPI), zipped, sizes printed
build:
	scripts/build.sh

## deploy: sam deploy of what `make build` built (needs `pip install aws-sam-cli` and AWS credentials)
deploy: build
	cd target/lambda && sam deploy --template-file template.yaml --capabilities CAPABILITY_IAM $${SAM_DEPLOY_ARGS:---guided}

clean:
	$(CARGO) clean
	rm -rf .venv

## bench: load on loopback (wrk) next to a bare axum hello-world; start time and peak RSS
bench:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	# The Lambda binaries as they ship (by package: without the local server's `local` feature of
	# the domain crate, which a build of the whole workspace would turn on for all), then the
	# local server.
	$(CARGO) build --release $(addprefix -p ,$(FUNCTIONS)) --bins
	$(CARGO) build --release -p local --bins
	python3 scripts/bench.py

## fuzz: the request-parser fuzzers at scale (make test runs a short pass)
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-50000} $(CARGO) test --release -p api-tests --test fuzz_requests

## breaks: each deliberate break of guarded code makes its test fail (not part of make test)
breaks: venv
	scripts/with-moto.sh python3 scripts/breaks.py

## mutants: cargo-mutants over the conditional writes, settlement and amount checks, seat holds,
## capacity and state machines; report in mutants.out/ (not part of make test; an hour or more)
mutants: venv
	scripts/mutants.sh
