// The mixin's alerts: spend, adoption and the exporter's health. docs/alerts.md lists them with their
// defaults; alerts/runbook.md has one section per alert.
//
// The API's data is daily and about an hour late, so the alerts follow three patterns:
// - full-day figures come from the `yesterday` gauges, and only once the exporter's day is at least
//   `lateDataHours` old, so the previous day's last hour has arrived (`yesterdayComplete`);
// - norms come from Prometheus' own history, one sample per UTC day taken from the `yesterday` gauge as it
//   stood during the following day (`perDay`), so a fresh Prometheus has no norm and stays quiet;
// - figures that only grow within a period (month to date, today so far) alert as soon as they cross.
// Every alert is about one organization: its sums are `by` the organization's labels and its joins
// `on` them (`org`), so two organizations in one Prometheus never mix, and each alert carries both.
local promql = import '../lib/promql.libsonnet';

(import 'config.libsonnet') +
{
  local c = $._config,
  local name(short) = c.alertNamePrefix + short,
  local m(metric) = '%s_%s' % [c.metricPrefix, metric],
  local x(metric) = '%s_%s' % [c.exporterMetricPrefix, metric],
  local sel(extra='') = std.join(', ', [c.exporterSelector] + (if extra == '' then [] else [extra])),
  local org = c.organizationLabels,
  local onOrg = 'on (%s)' % org,
  local tools = 'tool=~"%s"' % c.acceptRateTools,
  local accepted = tools + ', decision="accepted"',
  // Each organization's total of a data series, each series counted once (promql.once()).
  local total(metric, extra='') = 'sum by (%s) (%s)' % [org, promql.once('%s{%s}' % [m(metric), sel(extra)])],
  local dayStart = '%s{%s}' % [m('day_start_timestamp_seconds'), sel()],
  // The expression of one of the mixin's recording rules, so that the alert computes the very figure the
  // dashboards show without waiting for another rule group's evaluation.
  local recorded(name) = std.stripChars([
    rule.expr
    for group in $.prometheusRules.groups
    for rule in group.rules
    if std.get(rule, 'record') == '%s:%s' % [c.metricPrefix, name]
  ][0], '\n'),

  // `on (org) (...)` for `and`: the organization's exporter day began at least lateDataHours ago (and
  // less than a day ago), so its `yesterday` gauges hold the whole previous day.
  local yesterdayComplete =
    '%s (time() - max by (%s) (%s) >= %d < 86400)' % [onOrg, org, dayStart, c.lateDataHours * 3600],

  // A per-day series of each organization for subqueries with steps of one day: at 00:00 of day D it is
  // day D-2's final value, read from the `yesterday` gauge during day D-1 (00:05 to 23:59,
  // promql.dayWindow as in promql.daily()). A day on which the exporter reported the organization but
  // had no such series counts as 0; a day without it has no sample at all.
  local perDay(metric, extra='') =
    |||
      (
        sum by (%(org)s) (%(perMember)s)
      or
        0 * max by (%(org)s) (last_over_time(%(dayStart)s[%(window)s] offset 1m))
      )
    ||| % {
      org: org,
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

  // Each organization's monthly budget (the recording rule's expression), and the same in an
  // annotation: its own where monthlyBudgetUSDByOrganization lists it, else monthlyBudgetUSD.
  local budget = recorded('monthly_budget_usd'),
  local listed = c.monthlyBudgetUSDByOrganization,
  local budgetText =
    std.join('', [
      '{{ %s eq $labels.%s "%s" }}%g' % [if i == 0 then 'if' else 'else if', c.organizationIdLabel, std.objectFields(listed)[i], listed[std.objectFields(listed)[i]]]
      for i in std.range(0, std.length(listed) - 1)
    ])
    + (if std.length(listed) == 0 then '%g' % c.monthlyBudgetUSD else '{{ else }}%g{{ end }}' % c.monthlyBudgetUSD),
  local ofOrganization = ' of {{ $labels.%s }}' % c.organizationNameLabel,

  local spend = [
    alert(
      'MonthToDateSpendHigh',
      'spend',
      tier.severity,
      |||
        (
          %(mtd)s
        )
        > %(onOrg)s %(threshold)s
      ||| % {
        mtd: recorded('month_to_date_cost_usd:sum'),
        onOrg: onOrg,
        threshold: if tier.ratio == 1 then '(%s)' % budget else '%g * (%s)' % [tier.ratio, budget],
      },
      "Claude Code spend this month has reached %g%% of the organization's monthly budget." % (tier.ratio * 100),
      'Month-to-date Claude Code spend%s is ${{ $value | humanize }}, over %g%% of its monthly budget of $%s.'
      % [ofOrganization, tier.ratio * 100, budgetText],
    )
    for tier in [
      { severity: 'warning', ratio: c.budgetWarningRatio },
      { severity: 'critical', ratio: c.budgetCriticalRatio },
    ]
  ] + [
    alert(
      'MonthEndForecastOverBudget',
      'spend',
      'warning',
      |||
        (
          %(forecast)s
        )
        > %(onOrg)s (%(budget)s)
        and on () day_of_month() - 1 >= %(minDays)d
      ||| % {
        forecast: recorded('month_end_forecast_cost_usd:sum'),
        onOrg: onOrg,
        budget: budget,
        minDays: c.forecastMinDays,
      },
      "Claude Code spend is on course to exceed the organization's monthly budget.",
      "At this month's pace so far, Claude Code spend%s will reach ${{ $value | humanize }} by the end"
      % ofOrganization + ' of the month, over its monthly budget of $%s.' % budgetText,
    ),
    alert(
      'DailySpendSpike',
      'spend',
      'warning',
      |||
        %(yesterday)s > %(minUSD)g
        and %(yesterday)s > %(factor)g * avg_over_time(%(norm)s)
        and %(onOrg)s count_over_time(%(norm)s) >= %(minDays)d
        and %(complete)s
      ||| % {
        onOrg: onOrg,
        yesterday: total('yesterday_cost_usd'),
        minUSD: c.spendSpikeMinUSD,
        factor: c.spendSpikeFactor,
        norm: lastDays('cost_usd'),
        minDays: c.normMinDays,
        complete: yesterdayComplete,
      },
      'Claude Code spend yesterday was far above its recent norm.',
      'Claude Code spend%s yesterday (UTC) was ${{ $value | humanize }}, more than %g times the average'
      % [ofOrganization, c.spendSpikeFactor] + ' of the %d days before it.' % c.normDays,
    ),
    alert(
      'MemberDailySpendHigh',
      'spend',
      'warning',
      'sum by (%s, member, actor_type) (%s) > %g'
      % [org, promql.once('%s{%s}' % [m('today_cost_usd'), sel()]), c.memberDailySpendCapUSD],
      'A member has spent more on Claude Code today than the daily cap.',
      '{{ $labels.member }}%s has spent ${{ $value | humanize }} on Claude Code today (UTC), over the'
      % ofOrganization + ' daily cap of $%g.' % c.memberDailySpendCapUSD,
      dashboard='member',
    ),
  ],

  local dailyActive = lastDays('active_members', days=7),
  local dailyActiveWeekBefore = lastDays('active_members', days=7, offset=' offset 7d'),
  local acceptedYesterday = total('yesterday_tool_decisions', accepted),
  local decidedYesterday = total('yesterday_tool_decisions', tools),

  local adoption = [
    alert(
      'ActiveMembersFalling',
      'adoption',
      'warning',
      |||
        avg_over_time(%(thisWeek)s) / avg_over_time(%(weekBefore)s) < %(keep)g
        and %(onOrg)s avg_over_time(%(weekBefore)s) >= %(minAverage)g
        and %(onOrg)s count_over_time(%(thisWeek)s) >= %(minDays)d
        and %(onOrg)s count_over_time(%(weekBefore)s) >= %(minDays)d
      ||| % {
        onOrg: onOrg,
        thisWeek: dailyActive,
        weekBefore: dailyActiveWeekBefore,
        keep: 1 - c.activeMembersDropRatio,
        minAverage: c.activeMembersMinAverage,
        minDays: c.normMinDays,
      },
      'Fewer members use Claude Code each day than the week before.',
      'Daily active Claude Code members%s over the 7 complete days before yesterday averaged'
      % ofOrganization + ' {{ $value | humanizePercentage }} of the week before (alert below %g%%).'
                         % ((1 - c.activeMembersDropRatio) * 100),
    ),
    alert(
      'AcceptRateLow',
      'adoption',
      'warning',
      |||
        %(accepted)s / %(decided)s < %(floor)g
        and %(onOrg)s %(decided)s >= %(minDecisions)d
        and %(complete)s
      ||| % {
        onOrg: onOrg,
        accepted: acceptedYesterday,
        decided: decidedYesterday,
        floor: c.acceptRateFloor,
        minDecisions: c.acceptRateMinDecisions,
        complete: yesterdayComplete,
      },
      'The suggestion accept rate of Claude Code was low yesterday.',
      'Members%s accepted {{ $value | humanizePercentage }} of the Edit, Write and NotebookEdit'
      % ofOrganization + ' suggestions of Claude Code yesterday (UTC), below the floor of %g%%.'
                         % (c.acceptRateFloor * 100),
    ),
    alert(
      'AcceptRateFalling',
      'adoption',
      'warning',
      |||
        %(accepted)s / %(decided)s
          < sum_over_time(%(acceptedNorm)s) / sum_over_time(%(decidedNorm)s) - %(drop)g
        and %(onOrg)s %(decided)s >= %(minDecisions)d
        and %(onOrg)s count_over_time(%(decidedNorm)s) >= %(minDays)d
        and %(complete)s
      ||| % {
        onOrg: onOrg,
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
      'Members%s accepted {{ $value | humanizePercentage }} of the Edit, Write and NotebookEdit'
      % ofOrganization + ' suggestions of Claude Code yesterday (UTC), more than %g points below the'
                         % (c.acceptRateDrop * 100) + ' rate of the %d days before.' % c.normDays,
    ),
    alert(
      'MemberInactive',
      'adoption',
      'info',
      |||
        (
          %(info)s
            * on (%(org)s, member, actor_type) group_left ()
          (
            (max by (%(org)s) (%(dayStart)s) - on (%(org)s) group_right () %(lastActive)s) / 86400 - 1
          )
        or
          (
            %(info)s * on (%(org)s) group_left () (max by (%(org)s) (%(storedDays)s) - 1)
          unless on (%(org)s, member, actor_type)
            %(lastActive)s
          and on (%(org)s, member, actor_type)
            max_over_time(%(memberInfo)s{%(sel)s}[1d] offset %(days)dd)
          )
        )
        >= %(days)d
      ||| % {
        org: org,
        info: promql.once('%s{%s}' % [m('member_info'), sel('role=~"%s"' % c.claudeCodeRoles)]),
        memberInfo: m('member_info'),
        dayStart: dayStart,
        lastActive: promql.once('%s{%s}' % [m('member_last_active_timestamp_seconds'), sel()]),
        storedDays: '%s{%s}' % [x('stored_days'), sel()],
        sel: sel(),
        days: c.inactiveDays,
      },
      'A member with a Claude Code role has not used Claude Code for days.',
      '{{ $labels.member }} ({{ $labels.role }})%s has had no Claude Code activity for the last'
      % ofOrganization + ' {{ $value }} complete days (UTC).',
      dashboard='member',
    ),
  ],

  // The organizations each exporter target reported within the last day, by its job and instance: a
  // target that is down no longer reports them, so they are read from its last day of samples.
  local forOrganization = ' for {{ $labels.%s }}' % c.organizationNameLabel,
  local served = 'group by (job, instance, %s) (last_over_time(%s{%s}[1d]))' % [org, x('up'), sel()],

  local exporter = [
    alert(
      // One alert per organization the target served, so that each organization's receiver hears
      // that its data stopped; a target never seen, or without organizations, alerts once.
      'ExporterDown',
      'exporter',
      'warning',
      |||
        %(served)s * on (job, instance) group_left () (up{%(sel)s} == 0)
        or
        (up{%(sel)s} == 0 unless on (job, instance) %(served)s)
        or
        absent(up{%(sel)s})
      ||| % { served: served, sel: sel() },
      'Prometheus cannot scrape the Claude Code analytics exporter.',
      'Prometheus cannot scrape the Claude Code analytics exporter (job {{ $labels.job }}'
      + ' {{ $labels.instance }})%s, or it is missing from the targets.'
        % ('{{ with $labels.%s }} serving {{ . }}{{ end }}' % c.organizationNameLabel),
    ),
    alert(
      'AdminAPIFailing',
      'exporter',
      'warning',
      |||
        (
          sum by (job, instance, %(org)s) (increase(%(errors)s{%(sel)s}[1h]))
        or
          0 * %(up)s{%(sel)s}
        )
        and on (job, instance, %(org)s) %(up)s{%(sel)s} == 0
      ||| % { org: org, errors: x('api_errors_total'), up: x('up'), sel: sel() },
      'The exporter cannot fetch data from the Anthropic Admin API.',
      'The exporter {{ $labels.instance }} failed its polls of the Admin API%s; {{ $value }} requests'
      % forOrganization + ' failed in the last hour. It keeps serving its last good data.',
    ),
    alert(
      'AdminAPIAuthFailing',
      'exporter',
      'critical',
      'sum by (job, instance, %s, endpoint, code) (increase(%s{%s}[%s])) > 0'
      % [org, x('api_requests_total'), sel('code=~"401|403"'), c.apiAuthFailureWindow],
      "The Anthropic Admin API rejects the exporter's admin key.",
      'The Admin API answered {{ $value | humanize }} requests of {{ $labels.instance }} to'
      + ' {{ $labels.endpoint }}%s with HTTP {{ $labels.code }} in the last %s; retrying will not help.'
        % [forOrganization, c.apiAuthFailureWindow],
    ),
    alert(
      'DataStale',
      'exporter',
      'warning',
      'time() - max_over_time(%s{%s}[1d]) > %d'
      % [x('last_success_timestamp_seconds'), sel(), c.exporterStaleSeconds],
      'The Claude Code analytics data is stale.',
      'The exporter {{ $labels.instance }} last polled the Admin API%s successfully' % forOrganization
      + " {{ $value | humanizeDuration }} ago; its data is older than the API's usual hour of delay.",
    ),
    alert(
      'RecordsRejected',
      'exporter',
      'warning',
      // A duplicate record is dropped, not lost: the figures are right, so it is no alert.
      'sum by (job, instance, %s, reason) (increase(%s{%s, reason!="duplicate"}[%s])) > 0'
      % [org, x('records_rejected_total'), sel(), c.recordsRejectedWindow],
      'The exporter skipped malformed records from the Admin API.',
      'The exporter {{ $labels.instance }} rejected {{ $value | humanize }} records%s in the last %s'
      % [forOrganization, c.recordsRejectedWindow] + ' ({{ $labels.reason }}); the figures leave them out.',
    ),
  ],

  // Every alert links to its runbook section and its dashboard, here in one place.
  local withLinks(rule) = rule {
    annotations+: {
      runbook_url: '%s#%s' % [c.runbookURLBase, std.asciiLower(rule.alert)],
      dashboard_url: '%s/d/%s-%s?var-organization={{ $labels.%s }}'
                     % [c.grafanaURL, c.dashboardUidPrefix, c.alertDashboards[rule.dashboard], c.organizationIdLabel]
                     + (if rule.dashboard == 'member' then '&var-member={{ $labels.member }}' else ''),
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
