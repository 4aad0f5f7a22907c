# Two commands on a fresh machine:  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo_out

.PHONY: demo test venv clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,plot,mpi]'
	touch $@

venv: $(BIN)/.installed

# Synthetic line scans with known answers -> run (1 process, then 2 MPI ranks) -> summary ->
# measured vs true velocities -> CSV.
demo: venv
	rm -rf $(DEMO)
	$(BIN)/hpcacq synth $(DEMO)/data --n-files 8 --kind velocity
	$(BIN)/hpcacq run $(DEMO)/data -o $(DEMO)/velocity.h5 --analysis velocity --threads 2
	$(BIN)/hpcacq summary $(DEMO)/velocity.h5
	$(BIN)/hpcacq validate $(DEMO)/velocity.h5 --truth $(DEMO)/data
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/mpiexec -n 2 $(BIN)/python -m mpi4py -m hpcacq run $(DEMO)/data -o $(DEMO)/velocity_mpi.h5 --analysis velocity
	$(BIN)/hpcacq export $(DEMO)/velocity.h5 --format csv -o $(DEMO)/csv
	@echo "demo done: results in $(DEMO)/velocity.h5, CSV in $(DEMO)/csv"

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
