# Entry points. `make run` starts the all-in-one demo; `make test` runs every test. Both install
# what they need first (scripts/bootstrap.sh).
.PHONY: build release run test bench fuzz format lint clean

build:
	scripts/bootstrap.sh
	scripts/build-info.sh
	swift build

release:
	scripts/bootstrap.sh
	scripts/build-info.sh
	swift build -c release --product pomerium

run: release
	scripts/run-demo.sh

test:
	scripts/test.sh

bench: release
	scripts/bench.sh

fuzz:
	for target in request response text; do scripts/fuzz.sh $$target $${FUZZ_SECONDS:-300} || exit 1; done

format:
	swift format format -i --parallel -r Sources Tests Package.swift

lint:
	swift format lint --strict --parallel -r Sources Tests Package.swift

clean:
	rm -rf .build
