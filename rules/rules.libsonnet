// Recording rules. The first group records figures that several panels and alerts share; they are
// month-to-date figures read as instant values (stat panels, alerts), never as per-day history, so the
// backfill does not write them. The second group sums (or counts) the per-member series of each
// quantity that per-day panels show over every member, and counts each day's new members, so that
// those panels read a few series instead of one per member (promql.membersDaily()); the backfill
// writes these for past days too (exporter/backfill.py, with_member_aggregates()).
local promql = import '../lib/promql.libsonnet';

{
  local c = $._config,
  local memberAggregates = [
    { quantity: 'sessions', agg: 'sum' },
    { quantity: 'sessions', agg: 'count' },
    { quantity: 'lines_added', agg: 'sum' },
    { quantity: 'lines_removed', agg: 'sum' },
    { quantity: 'commits', agg: 'sum' },
    { quantity: 'pull_requests', agg: 'sum' },
    { quantity: 'cost_usd', agg: 'sum' },
    { quantity: 'tool_decisions', agg: 'sum' },
  ],
  local org = c.organizationLabels,
  local dayStart = '%s_day_start_timestamp_seconds{%s}' % [c.metricPrefix, c.exporterSelector],
  // A sum that is 0, not absent, while the exporter reports an organization but holds no record of it
  // this month (early on the 1st): its day-start gauge is always exported, so a missing exporter
  // still gives no value.
  local orZero(sum) = '(%s\nor\n0 * max by (%s) (%s))' % [sum, org, dayStart],
  local mtd(name, extra='') =
    '%s_month_to_date_%s{%s}' % [c.metricPrefix, name, std.join(', ', [c.exporterSelector] + (if extra == '' then [] else [extra]))],
  // An organization's month-to-date total of a quantity, each series counted once (promql.once()).
  local total(name, extra='') = 'sum by (%s) (%s)' % [org, promql.once(mtd(name, extra))],
  // The month-to-date spend the group's first rule records. Prometheus evaluates a group's rules in
  // order at one timestamp, so the ratios read that sum instead of every member's series again (the
  // forecast spells the sum out: the alerts take its expression, and evaluate it in their own group).
  local mtdCost = '%s:month_to_date_cost_usd:sum' % c.metricPrefix,
  // Every organization the exporter reports, as a series of value 1 with its two labels.
  local organizations = 'group by (%s) (%s)' % [org, dayStart],
  // monthlyBudgetUSDByOrganization as one series per listed organization id, for `* on (id)`.
  local listedBudgets = std.join('\nor\n', [
    'label_replace(vector(%g), "%s", "%s", "", "")' % [c.monthlyBudgetUSDByOrganization[id], c.organizationIdLabel, id]
    for id in std.objectFields(c.monthlyBudgetUSDByOrganization)
  ]),
  // Each organization's monthly budget: its own where listed, else the default.
  local budget =
    local default = '%g * %s' % [c.monthlyBudgetUSD, organizations];
    if listedBudgets == '' then default
    else |||
      (
        %(organizations)s
        * on (%(id)s) group_left ()
        (
          %(listed)s
        )
      )
      or
        %(default)s
    ||| % { organizations: organizations, id: c.organizationIdLabel, listed: listedBudgets, default: default },

  prometheusRules+:: {
    groups+: [
      {
        name: 'claude-code-analytics.rules',
        rules: [
          {
            record: '%s:month_to_date_cost_usd:sum' % c.metricPrefix,
            expr: orZero(total('cost_usd')),
          },
          {
            // monthlyBudgetUSDByOrganization, or monthlyBudgetUSD, for every organization reported.
            record: '%s:monthly_budget_usd' % c.metricPrefix,
            expr: budget,
          },
          {
            // Month-to-date spend extrapolated to the whole month at the pace so far. The API is about an
            // hour late, so the elapsed time leaves out the last hour (and is at least one hour).
            record: '%s:month_end_forecast_cost_usd:sum' % c.metricPrefix,
            expr: |||
              %(cost)s
                / scalar(clamp_min(day_of_month() - 1 + (time() %% 86400 - 3600) / 86400, 1 / 24))
                * scalar(days_in_month())
            ||| % { cost: orZero(total('cost_usd')) },
          },
          {
            record: '%s:month_to_date_accept_rate:ratio' % c.metricPrefix,
            expr: promql.ratio(
              total('tool_decisions', 'tool=~"%s", decision="accepted"' % c.acceptRateTools),
              total('tool_decisions', 'tool=~"%s"' % c.acceptRateTools),
            ),
          },
          {
            record: '%s:month_to_date_cost_per_session_usd:ratio' % c.metricPrefix,
            expr: promql.ratio(mtdCost, total('sessions')),
          },
          {
            record: '%s:month_to_date_cost_per_line_usd:ratio' % c.metricPrefix,
            expr: promql.ratio(mtdCost, total('lines_added')),
          },
          {
            record: '%s:month_to_date_cache_read:ratio' % c.metricPrefix,
            expr: promql.ratio(
              total('model_tokens', 'token_type="cache_read"'),
              total('model_tokens', 'token_type=~"input|cache_read|cache_creation"'),
            ),
          },
        ],
      },
      {
        name: 'claude-code-analytics.members',
        rules: [
          {
            record: promql.memberAggregate(c.metricPrefix, a.quantity, a.agg) % period,
            expr: '%s without (member) (%s_%s_%s{%s})' % [a.agg, c.metricPrefix, period, a.quantity, c.exporterSelector],
          }
          for period in ['today', 'yesterday']
          for a in memberAggregates
        ] + [
          // Members whose first active day is the period's day: new members per day.
          {
            record: '%s:%s_new_members:count' % [c.metricPrefix, period],
            expr: |||
              count without (member) (
                %(first)s{%(sel)s}
                == ignoring (member, actor_type) group_left ()
                (%(today)s{%(sel)s}%(shift)s)
              )
            ||| % {
              first: c.metricPrefix + '_member_first_active_timestamp_seconds',
              today: c.metricPrefix + '_day_start_timestamp_seconds',
              sel: c.exporterSelector,
              shift: if period == 'yesterday' then ' - 86400' else '',
            },
          }
          for period in ['today', 'yesterday']
        ],
      },
    ],
  },
}
