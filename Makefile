# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATA := data/synthetic
# The image the demo infers, named by the package (recursive `=`: evaluated in the recipe, once .venv exists).
DEMO_IMAGE = $(shell $(PY) -c 'from segkit.data.synthetic import demo_image; print(demo_image("$(DEMO_DATA)"))')

.PHONY: demo test lint install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[torch,serve,test,mobile,quantize,cluster]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

# Synthetic Cityscapes-format city -> train the row-8 model (configs/demo.py) -> evaluate at full and half
# resolution -> infer one image. Everything lands in runs/demo/.
demo: $(STAMP)
	@test -d $(DEMO_DATA)/leftImg8bit/val || $(PY) tools/make_synthetic.py --out $(DEMO_DATA) --train 60 --val 10 --height 512 --width 1024
	$(PY) tools/train.py configs/demo.py --work-dir runs/demo
	$(PY) tools/eval.py --checkpoint runs/demo/best.pt --json runs/demo/eval.json
	$(PY) tools/infer.py $(DEMO_IMAGE) --checkpoint runs/demo/best.pt --out runs/demo
	@echo
	@echo "demo done: runs/demo/ holds best.pt, last.pt, log.jsonl, curves.png (loss, lr, mIoU), eval.json,"
	@echo "and the inferred image $(basename $(notdir $(DEMO_IMAGE)))_{color,overlay,labelIds}.png"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
