// The Claude Code analytics mixin: one object with the four roots of a monitoring mixin, and a fifth,
// grafanaFinanceDashboards, for the dashboard across organizations that goes into a Grafana organization
// of its own (docs/dashboards.md).
// Use it from another Jsonnet file and override what you need:
//   (import 'mixin.libsonnet') + { _config+:: { monthlyBudgetUSD: 20000 } }
(import 'config.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
