# make run  — set everything up and run the main job on the bundled default corpus
# make test — set everything up and run the tests (what CI runs)
.PHONY: setup run quick test test-slow

setup:
	bash scripts/setup.sh

run: setup
	HF_HUB_OFFLINE=1 .venv/bin/evmlm run --config configs/default.yaml

quick: setup
	HF_HUB_OFFLINE=1 .venv/bin/evmlm run --config configs/quick.yaml

test:
	bash scripts/test.sh

test-slow:
	bash scripts/test.sh -m slow
