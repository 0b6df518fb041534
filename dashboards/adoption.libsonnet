// "Adoption": who uses Claude Code, who started, who stopped, and what it produces.
local g = import 'lib/g.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local d = (import 'lib/common.libsonnet')(c),
    local q = d.promql,
    local sel = d.actorTypeSelector(),
    // Members whose first active day is the day, counted by a recording rule (rules/rules.libsonnet).
    local newMembers = q.daily(c.metricPrefix + ':%s_new_members:count', sel),
    // 0 on the days that have any data, so that a day without new members shows 0 rather than nothing.
    local zeroWhereData = '0 * %s' % std.stripChars(q.daily(d.period('active_members'), sel), '\n'),
    local inactive =
      |||
        group by (%(by)s) (%(info)s{%(roles)s})
        unless on (%(on)s)
        (%(last)s{%(sel)s} > time() - %(days)d * 86400)
      ||| % {
        by: d.by('member, actor_type, role'),
        on: d.by('member, actor_type'),
        info: d.metric('member_info'),
        roles: d.actorTypeSelector('role=~"%s"' % c.claudeCodeRoles),
        last: d.metric('member_last_active_timestamp_seconds'),
        sel: sel,
        days: c.inactiveDays,
      },

    local activeMembers = d.timeSeries(
                            'Daily, weekly and monthly active members',
                            |||
                              Members with any Claude Code record: on each UTC day (daily), and on any of the 7 or 30 UTC days
                              ending that day (weekly, monthly; the exporter's `weekly_active_members` and `monthly_active_members` gauges as of the
                              end of the day).
                            |||,
                            'short',
                            [
                              d.target(q.daily(d.period('active_members'), sel), 'daily', 'A'),
                              d.target(q.endOfDay(d.metric('weekly_active_members'), sel, 'sum'), 'weekly', 'B'),
                              d.target(q.endOfDay(d.metric('monthly_active_members'), sel, 'sum'), 'monthly', 'C'),
                            ],
                            w=24,
                          ) + g.panel.timeSeries.queryOptions.withInterval('1d')
                          + g.panel.timeSeries.fieldConfig.defaults.custom.withShowPoints('always'),

    local newAndReturning = d.perDay(
      'New and returning members per day',
      |||
        Per UTC day: new members had their first stored Claude Code day that day
        (`member_first_active_timestamp_seconds`); returning members were active that day and before.
      |||,
      'short',
      [
        d.target('%s\nor\n%s' % [newMembers, zeroWhereData], 'new', 'A'),
        // Every member active on a day is new or returning that day.
        d.target(
          '%s\n-\n(\n%s\nor\n%s\n)' % [q.daily(d.period('active_members'), sel), newMembers, zeroWhereData],
          'returning',
          'B',
        ),
      ],
      stacked=true,
    ),

    local inactiveCount = d.stat(
      'Members with a Claude Code role inactive for %d days' % c.inactiveDays,
      |||
        Organization users whose role allows Claude Code (%s) and who have no Claude Code record in the
        last %d days, including those who never used it.
      ||| % [c.claudeCodeRoles, c.inactiveDays],
      'short',
      [d.instant('count(\n%s)\nor vector(0)' % inactive, 'inactive members')],
      w=6,
      h=8,
    ),

    local inactiveTable = d.tablePanel(
      'Inactive members with a Claude Code role',
      'The members counted on the left, with their role.',
      'short',
      [d.table(inactive)],
      w=6,
      h=8,
    ) + g.panel.table.queryOptions.withTransformations([
      g.panel.table.queryOptions.transformation.withId('organize')
      + g.panel.table.queryOptions.transformation.withOptions({
        excludeByName: { Time: true, Value: true, [c.organizationIdLabel]: true, [c.organizationNameLabel]: true },
        renameByName: { member: 'Member', actor_type: 'Actor type', role: 'Role' },
      }),
    ]),

    local output = d.perDay(
      'Commits and pull requests by Claude Code per day',
      'Git commits and pull requests made through Claude Code per UTC day, over the selected actor types.',
      'short',
      [
        d.target(d.membersDaily('commits', sel), 'commits', 'A'),
        d.target(d.membersDaily('pull_requests', sel), 'pull requests', 'B'),
      ],
    ),

    local terminals = d.perDay(
      'Active members by terminal type per day',
      |||
        Members with a record of each terminal type per UTC day, over all actor types (a member on two
        terminals counts once in each).
      |||,
      'short',
      [d.target(q.daily(d.period('terminal_active_members'), d.selector(), 'sum by (terminal_type)'), '{{terminal_type}}')],
      w=12,
    ),

    'adoption.json': d.dashboard(
      'adoption',
      'Adoption',
      'Active members by day, week and month, new and returning members, inactive members, what Claude Code produces, and where it runs.',
      [d.datasourceVariable, d.organizationVariable, d.actorTypeVariable],
      [activeMembers, newAndReturning, inactiveCount, inactiveTable, output, terminals],
    ),
  },
}
