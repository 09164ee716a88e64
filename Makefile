# Two entry points for a fresh machine: `make demo` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test test-slow install clean pretrained-ds2 pretrained-demo

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hepfastsim demo --out demo_output

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests

# the shipped dataset-2 model (src/hepfastsim/models/pretrained/ds2_layer_fm.pt): 50 000 e- 1-100 GeV, built-in
# simulation on both cores, then layer_fm with its shipped config (times in benchmarks/RESULTS.md)
pretrained-ds2: $(STAMP)
	$(BIN)/hepfastsim simulate --out demo_output/ds2_train --n 50000 --energies log:1000:100000 --binning ds2 --shards 2 --seed 100 --resume
	$(BIN)/hepfastsim train --data demo_output/ds2_train --model layer_fm --config src/hepfastsim/configs/layer_fm.yaml \
	    --binning ds2 --val-fraction 0.1 --slim --overwrite --out src/hepfastsim/models/pretrained/ds2_layer_fm.pt

# the shipped demo-readout model (src/hepfastsim/models/pretrained/demo_fm.pt): 24 000 e- 1-20 GeV, built-in
# simulation, then fm with its shipped config for 300 epochs (times in benchmarks/RESULTS.md)
pretrained-demo: $(STAMP)
	$(BIN)/hepfastsim simulate --out demo_output/pretrained_demo_train.h5 --n 24000 --energies log:1000:20000 --seed 0 --overwrite
	$(BIN)/hepfastsim train --data demo_output/pretrained_demo_train.h5 --model fm --config src/hepfastsim/configs/fm.yaml \
	    --epochs 300 --val-fraction 0.1 --slim --overwrite --out src/hepfastsim/models/pretrained/demo_fm.pt

clean:
	rm -rf $(VENV) demo_output
