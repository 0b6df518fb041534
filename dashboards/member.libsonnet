// "Member": one member's Claude Code use, opened from the Team insights table of the analytics dashboard.
local g = import 'lib/g.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local d = (import 'lib/common.libsonnet')(c),
    local q = d.promql,
    local sel = d.selector('member="$member"'),
    local mtd(name, extra='') = 'sum(%s)' % q.monthAt(d.period(name), sel + extra),
    local tools = ', tool=~"%s"' % c.acceptRateTools,

    local thisMonth = [
      d.stat(
        'Spend this month',
        "The member's estimated cost in USD in the UTC month in which the time range ends, up to its end (Previous month: the whole month).",
        'currencyUSD',
        [d.instant('%s or vector(0)' % mtd('cost_usd'), 'spend')],
        w=4,
      ) + g.panel.stat.standardOptions.withDecimals(2),
      d.stat(
        'Lines this month',
        'Lines of code the member accepted in the UTC month in which the time range ends, up to its end (Previous month: the whole month).',
        'short',
        [d.instant('%s or vector(0)' % mtd('lines_added'), 'lines')],
        w=4,
      ),
      d.stat(
        'Sessions this month',
        'Claude Code sessions the member started in the UTC month in which the time range ends, up to its end (Previous month: the whole month).',
        'short',
        [d.instant('%s or vector(0)' % mtd('sessions'), 'sessions')],
        w=4,
      ),
      d.ratioStat(
        'Suggestion accept rate this month',
        'Accepted / (accepted + rejected) Edit, Write and NotebookEdit suggestions of the member this month.',
        'percentunit',
        [d.instant(q.ratio(mtd('tool_decisions', tools + ', decision="accepted"'), mtd('tool_decisions', tools)), 'accept rate')],
        'no suggestions',
        w=4,
      ) + g.panel.stat.standardOptions.withDecimals(1),
      d.stat(
        'Last active day',
        'The latest UTC day with a Claude Code record of the member (the API gives days, not times).',
        'dateTimeAsIsoNoDateIfToday',
        [d.instant('1000 * max(%s{%s})' % [d.metric('member_last_active_timestamp_seconds'), sel], 'last active')],
        w=4,
      ),
      d.stat(
        'Role',
        'The Console role of the user (empty for API keys and for actors not in the member list).',
        'none',
        [d.instant('max by (%s) (%s{%s})' % [d.by('role'), d.metric('member_info'), sel], '{{role}}')],
        w=4,
      ) + g.panel.stat.options.withTextMode('name'),
    ],

    local perDay = [
      d.perDayTwoAxes(
        'Sessions and spend per day',
        "The member's sessions (left axis) and estimated cost in USD (right axis) per UTC day.",
        'short',
        'currencyUSD',
        d.target(q.daily(d.period('sessions'), sel), 'sessions'),
        d.target(q.daily(d.period('cost_usd'), sel), 'spend'),
      ),
      d.perDay(
        'Lines of code per day',
        'Lines of code the member accepted (added) and removed through Claude Code per UTC day.',
        'short',
        [
          d.target(q.daily(d.period('lines_added'), sel), 'added', 'A'),
          d.target(q.daily(d.period('lines_removed'), sel), 'removed', 'B'),
        ],
      ),
      d.perDay(
        'Suggestion accept rate by tool per day',
        'Accepted / (accepted + rejected) suggestions of the member per tool and UTC day.',
        'percentunit',
        [d.target(
          q.ratio(
            q.daily(d.period('tool_decisions'), sel + ', decision="accepted"', 'sum by (tool)'),
            q.daily(d.period('tool_decisions'), sel, 'sum by (tool)'),
          ),
          '{{tool}}',
        )],
      ) + g.panel.timeSeries.fieldConfig.defaults.custom.withDrawStyle('line')
      + g.panel.timeSeries.fieldConfig.defaults.custom.withShowPoints('always')
      + g.panel.timeSeries.standardOptions.withMax(1),
      d.perDay(
        'Commits and pull requests per day',
        'Git commits and pull requests the member made through Claude Code per UTC day.',
        'short',
        [
          d.target(q.daily(d.period('commits'), sel), 'commits', 'A'),
          d.target(q.daily(d.period('pull_requests'), sel), 'pull requests', 'B'),
        ],
      ),
    ],

    'member.json': d.dashboard(
      'member',
      'Member',
      "One member's spend, lines, sessions, accept rate and output. Open it from the Team insights table.",
      [d.datasourceVariable, d.organizationVariable, d.singleMemberVariable],
      thisMonth + perDay,
    ),
  },
}
