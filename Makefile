# dlgrade: `make grade` installs everything and grades the bundled example; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSIGNMENT ?= linear_attention
SUBMISSION ?= examples/linear_attention_submission
RESULTS ?= results.json

.PHONY: install grade verify record package list test browser bench bench-batch clean train-minbert train-facenet train-mae train-summarization

install: $(STAMP)

# pip (not uv/poetry): the pinned CPU torch wheel is found through pip's configuration here.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,batch,ray]'
	touch $(STAMP)

grade: $(STAMP)
	$(BIN)/dlgrade grade $(ASSIGNMENT) $(SUBMISSION) --results $(RESULTS)

verify: $(STAMP)
	$(BIN)/dlgrade verify $(ASSIGNMENT)

record: $(STAMP)
	$(BIN)/dlgrade record $(ASSIGNMENT)

package: $(STAMP)
	$(BIN)/dlgrade package $(ASSIGNMENT)

list: $(STAMP)
	$(BIN)/dlgrade list

# two workers, a test file per worker at a time (module fixtures grade once); see tests/conftest.py
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The class report's test loads the page in a real headless Chromium: Debian's package, installed
# here as root when missing (apt-get update first).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "make: chromium is missing and only root can install it (apt-get install chromium): the report's browser test will fail"

# Grading cost side by side with a floor grader (no isolation), medians of 5 under a 768 MB cgroup,
# plus minbert; then where one grade's time goes. About 5 minutes on 2 quiet cores; bench/results/.
bench: $(STAMP)
	$(BIN)/python bench/grading_cost.py --assignment $(ASSIGNMENT) --submission $(SUBMISSION) \
		--repeats 5 --minbert --minbert-repeats 3 --out bench/results/grading_cost.json
	$(BIN)/python bench/profile_grading.py --assignment $(ASSIGNMENT) --submission $(SUBMISSION) \
		--out bench/results/profile.json

# Batch grading throughput: 40 submissions graded one by one with `dlgrade grade`, then with
# `grade-all --jobs 1` and `--jobs 2` (3 interleaved rounds, medians); bench/results/batch_cost.json.
# About 6 minutes on 2 cores.
bench-batch: $(STAMP)
	$(BIN)/python bench/batch_cost.py --students 40 --repeats 3 --out bench/results/batch_cost.json

clean:
	rm -rf $(VENV) dist *.egg-info

# Staff training check of the minbert reference (CPU preset by default; see README).
TASK ?= sst
OPTION ?= finetune
TRAIN_ARGS ?= --quick --out-dir runs/minbert

train-minbert: $(STAMP)
	$(BIN)/python -m reference.bert.train --task $(TASK) --option $(OPTION) $(TRAIN_ARGS)

# Staff training check of the FaceNet reference loss: semi-hard triplets on the 8x8 digits 0-6,
# VAL@FAR on the unseen digits 7-9 before and after training (CPU, well under a minute).
train-facenet: $(STAMP)
	$(BIN)/python -m reference.facenet.train --out runs/facenet/train.json

# Staff training check of the ViT / MAE reference: supervised ViT, MAE pretraining, linear probe and
# fine-tuning on the 8x8 digits upsampled to 32x32 (cpu setting, about 2-3 minutes on 2 cores).
train-mae: $(STAMP)
	$(BIN)/python -m reference.mae.train --out runs/mae/train.json

# Staff training check of the summarization Transformer: synthetic summarise task, cached/uncached greedy decoding.
train-summarization: $(STAMP)
	$(BIN)/python -m reference.seq2seq.train --out runs/summarization/train.json
