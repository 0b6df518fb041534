# The mixin's conventional targets, as other monitoring mixins name them, over the Python tools.
#
#   make                       dashboards_out/, prometheus_alerts.yaml, prometheus_rules.yaml
#   make generate              the committed output: dashboards/generated*, alerts/generated, deploy/kubernetes/mixin
#   make fmt                   format every Jsonnet file in place
#   make lint                  jsonnetfmt --test, ruff, promtool check rules, generated output up to date
#   make test                  the whole suite (scripts/test.sh, as CI runs it)
#
# MIXIN=my-mixin.libsonnet renders your own overrides instead of mixin.libsonnet.

PYTHON ?= .venv/bin/python
JSONNETFMT ?= jsonnetfmt
MIXIN ?= mixin.libsonnet
BUILD := build/make
JSONNET_FILES := $(shell find . -path ./.venv -prune -o -path ./build -prune -o -path ./vendor -prune \
	-o \( -name '*.libsonnet' -o -name '*.jsonnet' \) -print)

.PHONY: all generate fmt lint test clean
all: dashboards_out prometheus_alerts.yaml prometheus_rules.yaml

$(BUILD)/.rendered: $(JSONNET_FILES) tools/generate.py
	rm -rf $(BUILD)
	$(PYTHON) tools/generate.py --mixin $(MIXIN) --out $(BUILD)
	touch $@

dashboards_out: $(BUILD)/.rendered
	rm -rf $@
	cp -r $(BUILD)/dashboards $@

prometheus_alerts.yaml: $(BUILD)/.rendered
	cp $(BUILD)/rules/alerts.yaml $@

prometheus_rules.yaml: $(BUILD)/.rendered
	cp $(BUILD)/rules/rules.yaml $@

generate:
	$(PYTHON) tools/generate.py

fmt:
	$(JSONNETFMT) -i $(JSONNET_FILES)

lint:
	$(JSONNETFMT) --test $(JSONNET_FILES)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) tools/generate.py --check
	promtool check rules alerts/generated/*.yaml

test:
	bash scripts/test.sh

clean:
	rm -rf $(BUILD) dashboards_out prometheus_alerts.yaml prometheus_rules.yaml
