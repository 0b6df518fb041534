// What every dashboard of the mixin shares: variables, selectors and panel shapes, given the mixin's _config.
local promql = import '../../lib/promql.libsonnet';
local g = import 'g.libsonnet';

function(c) {
  local common = self,
  local ts = g.panel.timeSeries,
  local stat = g.panel.stat,

  promql: promql,
  datasource: '${datasource}',

  // Metric names: `metric('member_info')`, and `period('cost_usd')` with %s for today/yesterday/month_to_date/last_month.
  metric(name): '%s_%s' % [c.metricPrefix, name],
  exporterMetric(name): '%s_%s' % [c.exporterMetricPrefix, name],
  period(name): c.metricPrefix + '_%s_' + name,
  // promql.membersDaily() of the per-member quantity `name`, reading its recording rule over every member.
  membersDaily(name, selector, member=null, agg='sum'):
    local recorded = promql.memberAggregate(c.metricPrefix, name, if std.startsWith(agg, 'count') then 'count' else 'sum');
    promql.membersDaily(self.period(name), recorded, selector, member, agg),

  // Selectors, each starting with the exporter's and the organization picked in $organization:
  // `selector('tool="edit"')`. The cross-organization dashboard uses `everyOrganization()` instead.
  selector(extra=''): self.everyOrganization(std.join(', ', [c.organizationSelector] + (if extra == '' then [] else [extra]))),
  everyOrganization(extra=''): std.join(', ', [c.exporterSelector] + (if extra == '' then [] else [extra])),
  // The organization's labels, for `by (...)` and `on (...)`: `by('member, actor_type')` keeps them
  // beside the given ones, so that two organizations' series never merge, whatever is selected.
  organizationLabels: c.organizationLabels,
  by(labels=''): std.join(', ', [c.organizationLabels] + (if labels == '' then [] else [labels])),
  // The member and actor type variables of the Console dashboard.
  memberSelector(extra=''):
    self.selector(std.join(', ', ['member=~"$member"', 'actor_type=~"$actor_type"'] + (if extra == '' then [] else [extra]))),
  actorTypeSelector(extra=''):
    self.selector(std.join(', ', ['actor_type=~"$actor_type"'] + (if extra == '' then [] else [extra]))),

  uid(name): '%s-%s' % [c.dashboardUidPrefix, name],

  // Variables.
  datasourceVariable:
    g.dashboard.variable.datasource.new('datasource', 'prometheus')
    + g.dashboard.variable.datasource.withRegex(c.datasourceRegex)
    + g.dashboard.variable.datasource.generalOptions.withLabel('Data source')
    + g.dashboard.variable.datasource.generalOptions.withCurrent(c.datasourceDefault),

  // The organization, by id, shown by its name: Grafana takes the option's value and text from the named
  // groups of the regex, over the query's result lines `{organization_id="…",organization_name="…"} 1 …`.
  // Every organization the exporter reported within the dashboard's range is offered.
  organizationVariable:
    g.dashboard.variable.query.new('organization')
    + g.dashboard.variable.query.withDatasourceFromVariable(common.datasourceVariable)
    + g.dashboard.variable.query.queryTypes.withQueryResult(
      'group by (%s) (last_over_time(%s{%s}[$__range]))'
      % [c.organizationLabels, self.metric('day_start_timestamp_seconds'), c.exporterSelector]
    )
    + g.dashboard.variable.query.withRegex(
      '/%s="(?<value>[^"]+)"(?:,%s="(?<text>.*)")?\\}/' % [c.organizationIdLabel, c.organizationNameLabel]
    )
    + g.dashboard.variable.query.refresh.onTime()
    + g.dashboard.variable.query.generalOptions.withLabel('Organization')
    + g.dashboard.variable.query.generalOptions.withDescription(
      'The Anthropic organization: every figure of this dashboard is of this one organization alone.'
    ),

  local labelVariable(name, label, metric) =
    g.dashboard.variable.query.new(name)
    + g.dashboard.variable.query.withDatasourceFromVariable(common.datasourceVariable)
    + g.dashboard.variable.query.queryTypes.withLabelValues(label, metric)
    + g.dashboard.variable.query.refresh.onTime(),
  local memberInfo = '%s{%s}' % [self.metric('member_info'), self.selector()],

  memberVariable:
    labelVariable('member', 'member', memberInfo)
    + g.dashboard.variable.query.generalOptions.withLabel('Member')
    + g.dashboard.variable.query.generalOptions.withDescription('Email of a user, or name of an API key.')
    + g.dashboard.variable.query.selectionOptions.withMulti()
    // "All" as `.*`, not a regex of every member (10,000 members make it 300 KB per query).
    + g.dashboard.variable.query.selectionOptions.withIncludeAll(customAllValue='.*')
    + g.dashboard.variable.query.generalOptions.withCurrent('All', '$__all'),
  singleMemberVariable:
    labelVariable('member', 'member', memberInfo)
    + g.dashboard.variable.query.generalOptions.withLabel('Member')
    + g.dashboard.variable.query.generalOptions.withDescription('Email of a user, or name of an API key.'),
  actorTypeVariable:
    labelVariable('actor_type', 'actor_type', memberInfo)
    + g.dashboard.variable.query.generalOptions.withLabel('Actor type')
    + g.dashboard.variable.query.generalOptions.withDescription('user (signs in with OAuth) or api_key.')
    + g.dashboard.variable.query.selectionOptions.withMulti()
    + g.dashboard.variable.query.selectionOptions.withIncludeAll(customAllValue='.*')
    + g.dashboard.variable.query.generalOptions.withCurrent('All', '$__all'),

  // Targets.
  target(expr, legend='', refId='A'):
    g.query.prometheus.new(self.datasource, std.stripChars(expr, '\n'))
    + g.query.prometheus.withRefId(refId)
    + (if legend == '' then {} else g.query.prometheus.withLegendFormat(legend)),
  instant(expr, legend='', refId='A'):
    self.target(expr, legend, refId) + g.query.prometheus.withInstant(),
  table(expr, refId='A'):
    self.instant(expr, '', refId) + g.query.prometheus.withFormat('table'),

  // Panels. Each is given a title, a description of how its number is computed, a unit and targets.
  local base(p, title, description, unit, targets) =
    p.new(title)
    + p.panelOptions.withDescription(description)
    + p.queryOptions.withDatasource('prometheus', self.datasource)
    + p.queryOptions.withTargets(targets)
    + p.standardOptions.withUnit(unit),

  stat(title, description, unit, targets, w=6, h=5):
    base(stat, title, description, unit, targets)
    + stat.options.reduceOptions.withCalcs(['lastNotNull'])
    + stat.options.withGraphMode('none')
    + stat.options.withColorMode('value')
    + stat.standardOptions.color.withMode('thresholds')
    + stat.standardOptions.thresholds.withSteps([{ color: 'blue', value: null }])
    + stat.gridPos.withW(w) + stat.gridPos.withH(h),

  // A stat of ratios (promql.ratio()): with nothing to divide it shows `nothing`, in the panel's
  // own words, instead of "No data".
  ratioStat(title, description, unit, targets, nothing, w=6, h=5):
    self.stat(title, description, unit, targets, w, h)
    + stat.standardOptions.withNoValue(nothing),

  gauge(title, description, unit, targets, max, steps, w=6, h=5):
    base(g.panel.gauge, title, description, unit, targets)
    + g.panel.gauge.options.reduceOptions.withCalcs(['lastNotNull'])
    + g.panel.gauge.standardOptions.withMin(0)
    + g.panel.gauge.standardOptions.withMax(max)
    + g.panel.gauge.standardOptions.thresholds.withSteps(steps)
    + g.panel.gauge.gridPos.withW(w) + g.panel.gauge.gridPos.withH(h),

  barGauge(title, description, unit, targets, w=6, h=8):
    base(g.panel.barGauge, title, description, unit, targets)
    + g.panel.barGauge.options.reduceOptions.withCalcs(['lastNotNull'])
    + g.panel.barGauge.options.withDisplayMode('gradient')
    + g.panel.barGauge.options.withOrientation('horizontal')
    + g.panel.barGauge.gridPos.withW(w) + g.panel.barGauge.gridPos.withH(h),

  timeSeries(title, description, unit, targets, w=12, h=8):
    base(ts, title, description, unit, targets)
    + ts.options.tooltip.withMode('multi')
    + ts.options.legend.withDisplayMode('list')
    + ts.options.legend.withPlacement('bottom')
    + ts.gridPos.withW(w) + ts.gridPos.withH(h),

  // A per-UTC-day panel: the query's steps must fall on UTC midnights (docs/metrics.md), so its
  // minimum interval is one day; each day's value is drawn as a bar covering that day.
  perDay(title, description, unit, targets, w=12, h=8, stacked=false):
    self.timeSeries(title, description, unit, targets, w, h)
    + ts.queryOptions.withInterval('1d')
    + ts.fieldConfig.defaults.custom.withDrawStyle('bars')
    + ts.fieldConfig.defaults.custom.withBarAlignment(1)
    + ts.fieldConfig.defaults.custom.withFillOpacity(70)
    + ts.fieldConfig.defaults.custom.withLineWidth(1)
    + (if stacked then ts.fieldConfig.defaults.custom.stacking.withMode('normal') else {}),

  // A per-day panel with two quantities on two axes: refId A on the left, refId B on the right.
  perDayTwoAxes(title, description, leftUnit, rightUnit, left, right, w=12, h=8):
    local o = ts.standardOptions.override.byFrameRefID;
    self.timeSeries(title, description, leftUnit, [left { refId: 'A' }, right { refId: 'B' }], w, h)
    + ts.queryOptions.withInterval('1d')
    + ts.fieldConfig.defaults.custom.withDrawStyle('line')
    + ts.fieldConfig.defaults.custom.withShowPoints('always')
    + ts.fieldConfig.defaults.custom.withAxisPlacement('left')
    + ts.standardOptions.withOverrides([
      o.new('B')
      + o.withProperty('custom.axisPlacement', 'right')
      + o.withProperty('unit', rightUnit)
      + o.withProperty('custom.drawStyle', 'bars')
      + o.withProperty('custom.barAlignment', 1)
      + o.withProperty('custom.fillOpacity', 40),
    ]),

  tablePanel(title, description, unit, targets, w=24, h=10):
    base(g.panel.table, title, description, unit, targets)
    + g.panel.table.gridPos.withW(w) + g.panel.table.gridPos.withH(h),

  row(title): g.panel.row.new(title),


  // The dashboard shell: uid, title, tags, UTC, refresh, default range, variables, laid-out panels.
  dashboard(name, title, description, variables, panels):
    g.dashboard.new(c.dashboardTitlePrefix + title)
    + g.dashboard.withUid(self.uid(name))
    + g.dashboard.withDescription(description)
    + g.dashboard.withTags(c.dashboardTags)
    + g.dashboard.withTimezone(c.dashboardTimezone)
    + g.dashboard.withRefresh(c.dashboardRefresh)
    + g.dashboard.timepicker.withRefreshIntervals(c.dashboardRefreshIntervals)
    + g.dashboard.time.withFrom(c.dashboardFrom)
    + g.dashboard.graphTooltip.withSharedCrosshair()
    + g.dashboard.withVariables(variables)
    + g.dashboard.withPanels(g.util.grid.makeGrid(panels)),
}
