// The mixin's dashboards, post-processed in one place: every dashboard links to every other one by uid,
// keeping the time range and the organization.
local g = import 'lib/g.libsonnet';

local dashboards =
  (import 'analytics.libsonnet')
  + (import 'cost.libsonnet')
  + (import 'adoption.libsonnet')
  + (import 'member.libsonnet')
  + (import 'exporter.libsonnet');

local linked(all) = {
  [name]: all[name] + g.dashboard.withLinksMixin([
    g.dashboard.link.link.new(all[other].title, '/d/%s?${organization:queryparam}' % all[other].uid)
    + g.dashboard.link.link.options.withKeepTime()
    for other in std.objectFields(all)
    if other != name
  ])
  for name in std.objectFields(all)
};

// The cross-organization dashboard is a root of its own, rendered apart and linked to none of the
// others: it goes into another Grafana organization than theirs (docs/dashboards.md).
dashboards + (import 'finance.libsonnet') + {
  grafanaDashboards:: linked(super.grafanaDashboards),
}
