// "Claude Code analytics": the Console's analytics page, panel for panel, with the same numbers.
local g = import 'lib/g.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local d = (import 'lib/common.libsonnet')(c),
    local q = d.promql,
    local sel = d.memberSelector(),
    // Per-day figures over the picked members, from the recording rules when All is picked.
    local pickedDaily(name, extra='', agg='sum') = d.membersDaily(name, d.actorTypeSelector(extra), '$member', agg),
    local tools = 'tool=~"%s"' % c.acceptRateTools,
    local toolNames = { edit: 'Edit', write: 'Write', notebook_edit: 'NotebookEdit', multi_edit: 'MultiEdit' },

    local linesTotal = d.stat(
      'Lines of code accepted',
      |||
        Lines of code written by Claude Code that users accepted, over the days that start within the
        selected range (`lines_of_code.added` summed over members and UTC days; rejected suggestions and
        later deletions are not counted).
      |||,
      'short',
      [d.instant(q.total(pickedDaily('lines_added')), 'lines accepted')],
      w=6,
      h=8,
    ),

    local linesPerDay = d.perDay(
      'Lines of code accepted per day',
      'Lines of code accepted per UTC day (`lines_of_code.added` summed over the selected members).',
      'short',
      [d.target(pickedDaily('lines_added'), 'lines accepted')],
      w=6,
      h=8,
    ),

    local acceptRate(selector, legend, refId) =
      d.instant(
        q.ratio(
          q.total(pickedDaily('tool_decisions', 'decision="accepted", ' + selector)),
          q.total(pickedDaily('tool_decisions', selector)),
        ),
        legend,
        refId,
      ),

    local acceptRateStat = d.ratioStat(
      'Suggestion accept rate',
      |||
        Accepted / (accepted + rejected) code edit suggestions over the selected range. "All" counts
        Edit, Write and NotebookEdit, as the Console does; each tool is also shown alone, and MultiEdit,
        which the API still reports, is shown apart and left out of "All".
      |||,
      'percentunit',
      [acceptRate(tools, 'All (Edit, Write, NotebookEdit)', 'A')]
      + [
        acceptRate('tool="%s"' % t, toolNames[t], std.char(std.codepoint('B') + i))
        for i in std.range(0, 3)
        for t in [['edit', 'write', 'notebook_edit', 'multi_edit'][i]]
      ],
      'no suggestions',
      w=6,
      h=8,
    ) + g.panel.stat.standardOptions.withDecimals(1),

    local acceptRatePerDay = d.perDay(
      'Suggestion accept rate per day',
      'Accepted / (accepted + rejected) Edit, Write and NotebookEdit suggestions per UTC day.',
      'percentunit',
      [d.target(
        q.ratio(
          pickedDaily('tool_decisions', 'decision="accepted", ' + tools),
          pickedDaily('tool_decisions', tools),
        ),
        'accept rate',
      )],
      w=6,
      h=8,
    ) + g.panel.timeSeries.standardOptions.withMax(1),

    local activeUsers = d.target(pickedDaily('sessions', agg='count'), 'users'),

    local activity = d.perDayTwoAxes(
      'Activity',
      |||
        Per UTC day: users is the number of selected members with any Claude Code record that day (left
        axis); sessions is `num_sessions` summed over them (right axis).
      |||,
      'short',
      'short',
      activeUsers,
      d.target(pickedDaily('sessions'), 'sessions'),
    ),

    local spend = d.perDayTwoAxes(
      'Spend',
      |||
        Per UTC day: users is the number of selected members with any Claude Code record that day (left
        axis); spend is their estimated cost in USD, the sum of `model_breakdown[].estimated_cost` (right
        axis).
      |||,
      'short',
      'currencyUSD',
      activeUsers,
      d.target(pickedDaily('cost_usd'), 'spend'),
    ),

    // Every member in member_info appears, with 0 when inactive this month.
    local monthToDate(name) =
      |||
        sum by (%(by)s) (%(m)s)
        or
        0 * group by (%(by)s) (%(info)s{%(sel)s})
      ||| % { by: d.by('member, actor_type'), m: q.monthAt(d.period(name), sel), info: d.metric('member_info'), sel: sel },

    local memberLink = '/d/%s?var-member=${__data.fields.member:percentencode}&${organization:queryparam}&${datasource:queryparam}&${__url_time_range}'
                       % d.uid('member'),
    local t = g.panel.table,
    local teamInsights = d.tablePanel(
                           'Team insights',
                           |||
                             Every member: users by email, API keys by name (all organization users and every actor seen,
                             from `member_info`). Spend this month and Lines this month are the member's estimated cost in USD
                             and accepted lines of code in the UTC month in which the time range ends, up to its end; for a
                             range that ends on a month's last minute (Previous month), the whole month, with the last hour
                             that the API delivers after midnight. Click a member to open their dashboard.
                           |||,
                           'short',
                           [d.table(monthToDate('cost_usd'), 'A'), d.table(monthToDate('lines_added'), 'B')],
                           h=14,
                         )
                         + t.queryOptions.withTransformations([
                           t.queryOptions.transformation.withId('merge'),
                           t.queryOptions.transformation.withId('organize')
                           + t.queryOptions.transformation.withOptions({
                             excludeByName: { Time: true, [c.organizationIdLabel]: true, [c.organizationNameLabel]: true },
                             indexByName: { member: 0, actor_type: 1, 'Value #A': 2, 'Value #B': 3 },
                             renameByName: {
                               member: 'Member',
                               actor_type: 'Actor type',
                               'Value #A': 'Spend this month',
                               'Value #B': 'Lines this month',
                             },
                           }),
                         ])
                         + t.options.withSortBy([{ displayName: 'Spend this month', desc: true }])
                         + t.options.footer.withShow(false)
                         + t.standardOptions.withOverrides([
                           t.standardOptions.override.byName.new('Spend this month')
                           + t.standardOptions.override.byName.withProperty('unit', 'currencyUSD')
                           + t.standardOptions.override.byName.withProperty('decimals', 2),
                           t.standardOptions.override.byName.new('Lines this month')
                           + t.standardOptions.override.byName.withProperty('decimals', 0),
                           t.standardOptions.override.byName.new('Member')
                           + t.standardOptions.override.byName.withProperty('links', [
                             { title: 'Open the member dashboard', url: memberLink },
                           ]),
                         ]),

    'analytics.json': d.dashboard(
      'analytics',
      'Claude Code analytics',
      "The Anthropic Console's Claude Code analytics page: lines accepted, accept rate, activity, spend and team insights.",
      [d.datasourceVariable, d.organizationVariable, d.memberVariable, d.actorTypeVariable],
      [
        linesTotal,
        linesPerDay,
        acceptRateStat,
        acceptRatePerDay,
        activity,
        spend,
        teamInsights,
      ],
    ),
  },
}
