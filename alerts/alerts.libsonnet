// The mixin's alerts: spend, adoption and the exporter's health. docs/alerts.md lists them with their
// defaults; alerts/runbook.md has one section per alert.
//
// The API's data is daily and about an hour late, so the alerts follow three patterns:
// - full-day figures come from the `yesterday` gauges, and only once the exporter's day is at least
//   `lateDataHours` old, so the previous day's last hour has arrived (`yesterdayComplete`);
// - norms come from Prometheus' own history, one sample per UTC day taken from the `yesterday` gauge as it
//   stood during the following day (`perDay`), so a fresh Prometheus has no norm and stays quiet;
// - figures that only grow within a period (month to date, today so far) alert as soon as they cross.
local promql = import '../lib/promql.libsonnet';

(import 'config.libsonnet') +
{
  local c = $._config,
  local name(short) = c.alertNamePrefix + short,
  local m(metric) = '%s_%s' % [c.metricPrefix, metric],
  local x(metric) = '%s_%s' % [c.exporterMetricPrefix, metric],
  local sel(extra='') = std.join(', ', [c.exporterSelector] + (if extra == '' then [] else [extra])),
  local tools = 'tool=~"%s"' % c.acceptRateTools,
  local accepted = tools + ', decision="accepted"',
  // The organization's total of a data series, each series counted once (promql.once()).
  local total(metric, extra='') = 'sum(%s)' % promql.once('%s{%s}' % [m(metric), sel(extra)]),
  local dayStart = '%s{%s}' % [m('day_start_timestamp_seconds'), sel()],
  // The expression of one of the mixin's recording rules, so that the alert computes the very figure the
  // dashboards show without waiting for another rule group's evaluation.
  local recorded(name) = std.stripChars([
    rule.expr
    for group in $.prometheusRules.groups
    for rule in group.rules
    if std.get(rule, 'record') == '%s:%s' % [c.metricPrefix, name]
  ][0], '\n'),

  // `on () (...)` for `and`: the exporter's UTC day began at least lateDataHours ago (and less than a day
  // ago), so the `yesterday` gauges hold the whole previous day.
  local yesterdayComplete =
    'on () (time() - max(%s) >= %d < 86400)' % [dayStart, c.lateDataHours * 3600],

  // A per-day series for subqueries with steps of one day: at 00:00 of day D it is day D-2's final value,
  // read from the `yesterday` gauge during day D-1 (00:05 to 23:59, promql.dayWindow as in promql.daily()).
  // A day on which the exporter was scraped but had no such series counts as 0; a day without the exporter
  // has no sample at all.
  local perDay(metric, extra='') =
    |||
      (
        sum(%(perMember)s)
      or
        0 * max(last_over_time(%(dayStart)s[%(window)s] offset 1m))
      )
    ||| % {
      perMember: promql.once('last_over_time(%s{%s}[%s] offset 1m)' % [m('yesterday_' + metric), sel(extra), promql.dayWindow]),
      dayStart: dayStart,
      window: promql.dayWindow,
    },
  // The per-day series over the `days` days before yesterday, for *_over_time functions.
  local lastDays(metric, extra='', days=c.normDays, offset='') =
    '(%s)[%dd:1d]%s' % [std.stripChars(perDay(metric, extra), '\n'), days, offset],

  local alert(short, category, severity, expr, summary, description, dashboard=category) = {
    alert: name(short),
    expr: expr,
    'for': c.alertFor[short],
    labels: { severity: severity, category: category },
    annotations: { summary: summary, description: description },
    dashboard:: dashboard,
  },

  local spend = [
    alert(
      'MonthToDateSpendHigh', 'spend', tier.severity,
      '%s > %g' % [recorded('month_to_date_cost_usd:sum'), c.monthlyBudgetUSD * tier.ratio],
      'Claude Code spend this month has reached %g%% of the monthly budget.' % (tier.ratio * 100),
      'Month-to-date Claude Code spend is ${{ $value | humanize }}, over %g%% of the monthly budget of $%g.'
      % [tier.ratio * 100, c.monthlyBudgetUSD],
    )
    for tier in [
      { severity: 'warning', ratio: c.budgetWarningRatio },
      { severity: 'critical', ratio: c.budgetCriticalRatio },
    ]
  ] + [
    alert(
      'MonthEndForecastOverBudget', 'spend', 'warning',
      |||
        (
          %(forecast)s
        ) > %(budget)g
        and on () day_of_month() - 1 >= %(minDays)d
      ||| % {
        forecast: recorded('month_end_forecast_cost_usd:sum'),
        budget: c.monthlyBudgetUSD,
        minDays: c.forecastMinDays,
      },
      'Claude Code spend is on course to exceed the monthly budget.',
      "At this month's pace so far, Claude Code spend will reach ${{ $value | humanize }} by the end"
      + ' of the month, over the monthly budget of $%g.' % c.monthlyBudgetUSD,
    ),
    alert(
      'DailySpendSpike', 'spend', 'warning',
      |||
        %(yesterday)s > %(minUSD)g
        and %(yesterday)s > %(factor)g * avg_over_time(%(norm)s)
        and on () count_over_time(%(norm)s) >= %(minDays)d
        and %(complete)s
      ||| % {
        yesterday: total('yesterday_cost_usd'),
        minUSD: c.spendSpikeMinUSD,
        factor: c.spendSpikeFactor,
        norm: lastDays('cost_usd'),
        minDays: c.normMinDays,
        complete: yesterdayComplete,
      },
      'Claude Code spend yesterday was far above its recent norm.',
      'Claude Code spend yesterday (UTC) was ${{ $value | humanize }}, more than %g times the average'
      % c.spendSpikeFactor + ' of the %d days before it.' % c.normDays,
    ),
    alert(
      'MemberDailySpendHigh', 'spend', 'warning',
      'sum by (member, actor_type) (%s) > %g'
      % [promql.once('%s{%s}' % [m('today_cost_usd'), sel()]), c.memberDailySpendCapUSD],
      'A member has spent more on Claude Code today than the daily cap.',
      '{{ $labels.member }} has spent ${{ $value | humanize }} on Claude Code today (UTC), over the'
      + ' daily cap of $%g.' % c.memberDailySpendCapUSD,
      dashboard='member',
    ),
  ],

  local dailyActive = lastDays('active_members', days=7),
  local dailyActiveWeekBefore = lastDays('active_members', days=7, offset=' offset 7d'),
  local acceptedYesterday = total('yesterday_tool_decisions', accepted),
  local decidedYesterday = total('yesterday_tool_decisions', tools),

  local adoption = [
    alert(
      'ActiveMembersFalling', 'adoption', 'warning',
      |||
        avg_over_time(%(thisWeek)s) / avg_over_time(%(weekBefore)s) < %(keep)g
        and on () avg_over_time(%(weekBefore)s) >= %(minAverage)g
        and on () count_over_time(%(thisWeek)s) >= %(minDays)d
        and on () count_over_time(%(weekBefore)s) >= %(minDays)d
      ||| % {
        thisWeek: dailyActive,
        weekBefore: dailyActiveWeekBefore,
        keep: 1 - c.activeMembersDropRatio,
        minAverage: c.activeMembersMinAverage,
        minDays: c.normMinDays,
      },
      'Fewer members use Claude Code each day than the week before.',
      'Daily active Claude Code members over the 7 complete days before yesterday averaged'
      + ' {{ $value | humanizePercentage }} of the week before (alert below %g%%).'
      % ((1 - c.activeMembersDropRatio) * 100),
    ),
    alert(
      'AcceptRateLow', 'adoption', 'warning',
      |||
        %(accepted)s / %(decided)s < %(floor)g
        and on () %(decided)s >= %(minDecisions)d
        and %(complete)s
      ||| % {
        accepted: acceptedYesterday,
        decided: decidedYesterday,
        floor: c.acceptRateFloor,
        minDecisions: c.acceptRateMinDecisions,
        complete: yesterdayComplete,
      },
      'The suggestion accept rate of Claude Code was low yesterday.',
      'Members accepted {{ $value | humanizePercentage }} of the Edit, Write and NotebookEdit suggestions'
      + ' of Claude Code yesterday (UTC), below the floor of %g%%.' % (c.acceptRateFloor * 100),
    ),
    alert(
      'AcceptRateFalling', 'adoption', 'warning',
      |||
        %(accepted)s / %(decided)s
          < sum_over_time(%(acceptedNorm)s) / sum_over_time(%(decidedNorm)s) - %(drop)g
        and on () %(decided)s >= %(minDecisions)d
        and on () count_over_time(%(decidedNorm)s) >= %(minDays)d
        and %(complete)s
      ||| % {
        accepted: acceptedYesterday,
        decided: decidedYesterday,
        acceptedNorm: lastDays('tool_decisions', accepted),
        decidedNorm: lastDays('tool_decisions', tools),
        drop: c.acceptRateDrop,
        minDecisions: c.acceptRateMinDecisions,
        minDays: c.normMinDays,
        complete: yesterdayComplete,
      },
      'The suggestion accept rate of Claude Code fell sharply yesterday.',
      'Members accepted {{ $value | humanizePercentage }} of the Edit, Write and NotebookEdit suggestions'
      + ' of Claude Code yesterday (UTC), more than %g points below the rate of the %d days before.'
      % [c.acceptRateDrop * 100, c.normDays],
    ),
    alert(
      'MemberInactive', 'adoption', 'info',
      |||
        (
          %(info)s
            * on (member, actor_type) group_left ()
          ((scalar(max(%(dayStart)s)) - %(lastActive)s) / 86400 - 1)
        or
          (
            %(info)s * scalar(max(%(storedDays)s) - 1)
          unless on (member, actor_type)
            %(lastActive)s
          and on (member, actor_type)
            max_over_time(%(memberInfo)s{%(sel)s}[1d] offset %(days)dd)
          )
        )
        >= %(days)d
      ||| % {
        info: promql.once('%s{%s}' % [m('member_info'), sel('role=~"%s"' % c.claudeCodeRoles)]),
        memberInfo: m('member_info'),
        dayStart: dayStart,
        lastActive: promql.once('%s{%s}' % [m('member_last_active_timestamp_seconds'), sel()]),
        storedDays: '%s{%s}' % [x('stored_days'), sel()],
        sel: sel(),
        days: c.inactiveDays,
      },
      'A member with a Claude Code role has not used Claude Code for days.',
      '{{ $labels.member }} ({{ $labels.role }}) has had no Claude Code activity for the last'
      + ' {{ $value }} complete days (UTC).',
      dashboard='member',
    ),
  ],

  local exporter = [
    alert(
      'ExporterDown', 'exporter', 'warning',
      'up{%(sel)s} == 0 or absent(up{%(sel)s})' % { sel: sel() },
      'Prometheus cannot scrape the Claude Code analytics exporter.',
      'Prometheus cannot scrape the Claude Code analytics exporter (job {{ $labels.job }}'
      + ' {{ $labels.instance }}), or it is missing from the targets.',
    ),
    alert(
      'AdminAPIFailing', 'exporter', 'warning',
      |||
        (
          sum by (job, instance) (increase(%(errors)s{%(sel)s}[1h]))
        or
          0 * %(up)s{%(sel)s}
        )
        and on (job, instance) %(up)s{%(sel)s} == 0
      ||| % { errors: x('api_errors_total'), up: x('up'), sel: sel() },
      'The exporter cannot fetch data from the Anthropic Admin API.',
      'The exporter {{ $labels.instance }} failed its polls of the Admin API; {{ $value }} requests'
      + ' failed in the last hour. It keeps serving its last good data.',
    ),
    alert(
      'AdminAPIAuthFailing', 'exporter', 'critical',
      'sum by (job, instance, endpoint, code) (increase(%s{%s}[%s])) > 0'
      % [x('api_requests_total'), sel('code=~"401|403"'), c.apiAuthFailureWindow],
      "The Anthropic Admin API rejects the exporter's admin key.",
      'The Admin API answered {{ $value | humanize }} requests of {{ $labels.instance }} to'
      + ' {{ $labels.endpoint }} with HTTP {{ $labels.code }} in the last %s; retrying will not help.'
      % c.apiAuthFailureWindow,
    ),
    alert(
      'DataStale', 'exporter', 'warning',
      'time() - max_over_time(%s{%s}[1d]) > %d'
      % [x('last_success_timestamp_seconds'), sel(), c.exporterStaleSeconds],
      'The Claude Code analytics data is stale.',
      'The exporter {{ $labels.instance }} last polled the Admin API successfully'
      + " {{ $value | humanizeDuration }} ago; its data is older than the API's usual hour of delay.",
    ),
    alert(
      'RecordsRejected', 'exporter', 'warning',
      // A duplicate record is dropped, not lost: the figures are right, so it is no alert.
      'sum by (job, instance, reason) (increase(%s{%s, reason!="duplicate"}[%s])) > 0'
      % [x('records_rejected_total'), sel(), c.recordsRejectedWindow],
      'The exporter skipped malformed records from the Admin API.',
      'The exporter {{ $labels.instance }} rejected {{ $value | humanize }} records in the last %s'
      % c.recordsRejectedWindow + ' ({{ $labels.reason }}); the figures leave them out.',
    ),
  ],

  // Every alert links to its runbook section and its dashboard, here in one place.
  local withLinks(rule) = rule {
    annotations+: {
      runbook_url: '%s#%s' % [c.runbookURLBase, std.asciiLower(rule.alert)],
      dashboard_url: '%s/d/%s-%s' % [c.grafanaURL, c.dashboardUidPrefix, c.alertDashboards[rule.dashboard]]
                     + (if rule.dashboard == 'member' then '?var-member={{ $labels.member }}' else ''),
    },
  },
  local group(title, rules) = {
    name: 'claude-code-analytics-' + title,
    rules: [withLinks(r) for r in rules],
  },

  prometheusAlerts+:: {
    groups+: [
      group('spend', spend),
      group('adoption', adoption),
      group('exporter', exporter),
    ],
  },
}
