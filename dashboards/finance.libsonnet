// "Spend across organizations": every Anthropic organization in the data source, side by side and
// together, for a finance team allowed to see them all. The other dashboards show one organization at a
// time; this one is its own root, `grafanaFinanceDashboards`, rendered apart (dashboards/generated-finance/)
// so that it is provisioned only into the Grafana organization of those allowed (docs/dashboards.md).
local g = import 'lib/g.libsonnet';

{
  grafanaFinanceDashboards+:: {
    local c = $._config,
    local d = (import 'lib/common.libsonnet')(c),
    local q = d.promql,
    local sel = d.everyOrganization(),
    local org = d.organizationLabels,
    local rule(name) = '%s:%s' % [c.metricPrefix, name],
    local users = 'actor_type="user"',
    local apiKeys = 'actor_type!="user"',

    // People counted once across organizations: a user by email, whatever organizations they are active
    // in; an API key belongs to one organization, so it is counted by organization and name. `series`
    // gives the per-member series of a selector; the two sets never share a label set, so `or` unites them.
    local distinctActors(series) =
      |||
        count(
          count by (member) (%(users)s)
          or
          count by (%(id)s, member) (%(apiKeys)s)
        )
      ||| % {
        users: std.stripChars(series(d.everyOrganization(users)), '\n'),
        apiKeys: std.stripChars(series(d.everyOrganization(apiKeys)), '\n'),
        id: c.organizationIdLabel,
      },
    local monthAt(name, selector=sel) = q.monthAt(d.period(name), selector),
    local monthSpendBy(by) = 'sum by (%s) (%s)' % [by, monthAt('cost_usd')],
    local dailySpendBy(by) = d.membersDaily('cost_usd', sel, agg='sum by (%s)' % by),

    local thisMonth = [
      d.stat(
        'Spend this month',
        |||
          Estimated cost in USD of every organization together in the UTC month in which the time range
          ends, up to its end (Previous month: the whole month).
        |||,
        'currencyUSD',
        [d.instant('sum(%s)' % monthAt('cost_usd'), 'spend')],
        w=8,
      ) + g.panel.stat.standardOptions.withDecimals(2),
      d.stat(
        'Active members this month',
        |||
          Members with any Claude Code record in the month in which the time range ends, across every
          organization: a person active in two organizations (the same email) counts once; an API key
          belongs to its organization and counts there.
        |||,
        'short',
        [d.instant('%s\nor vector(0)' % std.stripChars(distinctActors(function(s) monthAt('sessions', s)), '\n'), 'members')],
        w=8,
      ),
      d.stat(
        'Spend over the range',
        'Estimated cost in USD of every organization together, over the UTC days that start within the selected range.',
        'currencyUSD',
        [d.instant('sum(%s)' % std.stripChars(q.total(dailySpendBy(org)), '\n'), 'spend')],
        w=8,
      ) + g.panel.stat.standardOptions.withDecimals(2),
    ],

    local t = g.panel.table,
    local byOrganization = d.tablePanel(
                             'Organizations this month',
                             |||
                               Each organization in the month in which the time range ends, up to its end: its spend, its monthly
                               budget (recording rule `%s:monthly_budget_usd`), the share of the budget spent, and its members
                               with any Claude Code record (a person active in two organizations counts in each).
                             ||| % c.metricPrefix,
                             'short',
                             [
                               d.table(monthSpendBy(org), 'A'),
                               d.table(rule('monthly_budget_usd'), 'B'),
                               d.table(q.ratio(monthSpendBy(org), rule('monthly_budget_usd')), 'C'),
                               d.table('count by (%s) (%s)' % [org, monthAt('sessions')], 'D'),
                             ],
                             h=8,
                           )
                           + t.queryOptions.withTransformations([
                             t.queryOptions.transformation.withId('merge'),
                             t.queryOptions.transformation.withId('organize')
                             + t.queryOptions.transformation.withOptions({
                               excludeByName: { Time: true, [c.organizationIdLabel]: true },
                               indexByName: { [c.organizationNameLabel]: 0, 'Value #A': 1, 'Value #B': 2, 'Value #C': 3, 'Value #D': 4 },
                               renameByName: {
                                 [c.organizationNameLabel]: 'Organization',
                                 'Value #A': 'Spend this month',
                                 'Value #B': 'Monthly budget',
                                 'Value #C': 'Budget used',
                                 'Value #D': 'Active members',
                               },
                             }),
                           ])
                           + t.options.withSortBy([{ displayName: 'Spend this month', desc: true }])
                           + t.options.footer.withShow(false)
                           + t.standardOptions.withOverrides([
                             t.standardOptions.override.byName.new(name)
                             + t.standardOptions.override.byName.withProperty('unit', 'currencyUSD')
                             + t.standardOptions.override.byName.withProperty('decimals', 2)
                             for name in ['Spend this month', 'Monthly budget']
                           ] + [
                             t.standardOptions.override.byName.new('Budget used')
                             + t.standardOptions.override.byName.withProperty('unit', 'percentunit')
                             + t.standardOptions.override.byName.withProperty('decimals', 1),
                             t.standardOptions.override.byName.new('Active members')
                             + t.standardOptions.override.byName.withProperty('decimals', 0),
                           ]),

    local perDay = [
      d.perDay(
        'Spend by organization per day',
        "Estimated cost in USD per UTC day, each organization's summed over its members, stacked.",
        'currencyUSD',
        [d.target(dailySpendBy(org), '{{%s}}' % c.organizationNameLabel)],
        stacked=true,
      ),
      d.timeSeries(
        'Active members per day',
        |||
          Members with any Claude Code record per UTC day: across every organization, a person active in
          two organizations (the same email) counted once and an API key in its organization; and in each
          organization.
        |||,
        'short',
        [
          d.target(distinctActors(function(s) q.dailySeries(d.period('sessions'), s, org)), 'all organizations', 'A'),
          d.target(d.membersDaily('sessions', sel, agg='count by (%s)' % org), '{{%s}}' % c.organizationNameLabel, 'B'),
        ],
      ) + g.panel.timeSeries.queryOptions.withInterval('1d')
      + g.panel.timeSeries.fieldConfig.defaults.custom.withShowPoints('always'),
      d.barGauge(
        'Spend by organization over the range',
        'Estimated cost in USD per organization, summed over the UTC days that start within the selected range.',
        'currencyUSD',
        [d.instant(q.total(dailySpendBy(org)), '{{%s}}' % c.organizationNameLabel)],
        w=24,
      ),
    ],

    'finance.json': d.dashboard(
      'finance',
      'Spend across organizations',
      'Spend, budgets and active members of every Anthropic organization, side by side and together. For a finance team allowed to see them all.',
      [d.datasourceVariable],
      [d.row('This month')] + thisMonth + [byOrganization, d.row('Per UTC day')] + perDay,
    ),
  },
}
