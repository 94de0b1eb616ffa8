# Two commands for a fresh machine (Python 3.11+ and pip):
#   make lab    install what is missing, then open the course in JupyterLab
#   make test   install what is missing, then run the whole test suite
# Everything is installed into .venv inside the repository.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CHAPTER ?=
SUBMISSIONS ?=
OUT ?= grading-output
WORKERS ?= 2
NOTEBOOK ?=
EXERCISE ?=

.PHONY: lab lab-instructor test install release grade lint validate mutate bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=70.1"
	$(PY) -m pip install --quiet -e ".[course,test,cluster]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	@touch $(STAMP)

install: $(STAMP)

# JupyterLab refuses to start as root (containers, some CI) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# A student's JupyterLab (jupyter/student_lab.py says what it changes): Validate, no instructor tools.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --config=$(CURDIR)/jupyter/student_lab.py --notebook-dir=notebooks $(ROOT_FLAG)

# The instructor's JupyterLab: all of nbgrader's tools (Formgrader, Create Assignment) on the whole
# repository, with the course's nbgrader settings (nbgrader reads nbgrader_config.py where it starts).
lab-instructor: $(STAMP)
	cd autograde && $(abspath $(VENV))/bin/jupyter lab --notebook-dir=$(CURDIR) $(ROOT_FLAG)

# pytest exits with 5 when it collected nothing: that must never count as a pass.
# Two pytest workers already fill two cores; a BLAS thread pool in each would
# oversubscribe them and slow training down many times over.
test: $(STAMP)
	@OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; \
	exit $$rc

release: $(STAMP)
	$(PY) -m autograde release $(CHAPTER)

grade: $(STAMP)
	@test -n "$(CHAPTER)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade CHAPTER=02_mlp SUBMISSIONS=path/to/submissions [OUT=dir] [WORKERS=2]"; exit 2; }
	$(PY) -m autograde grade $(CHAPTER) $(SUBMISSIONS) --out $(OUT) --workers $(WORKERS)

lint: $(STAMP)
	$(PY) -m autograde lint

# Run a notebook the way the grader does, against the visible tests; print every message in full.
validate: $(STAMP)
	@test -n "$(NOTEBOOK)" || { echo "usage: make validate NOTEBOOK=notebooks/01_neurons/01_neurons.ipynb"; exit 2; }
	$(PY) -m autograde validate $(NOTEBOOK)

# Mutation analysis of the hidden tests: every chapter, or CHAPTER=01_neurons [EXERCISE=sigmoid].
mutate: $(STAMP)
	$(PY) -m autograde mutate $(CHAPTER) $(if $(EXERCISE),--exercise $(EXERCISE)) --workers $(WORKERS)

# The student-safe course tree (release, course_lib, validate; no solutions or hidden tests).
publish: $(STAMP)
	@test -n "$(DIR)" || { echo "usage: make publish DIR=path/to/student-course [COURSE_ID=nn101]"; exit 2; }
	$(PY) -m autograde publish $(DIR) $(if $(COURSE_ID),--course-id $(COURSE_ID))

# Grades of every chapter graded into OUT as CSV, Canvas and Moodle imports, and nbgrader's gradebook.
export: $(STAMP)
	$(PY) -m autograde export $(OUT)

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis autograde/state
