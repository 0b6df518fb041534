// Defaults of the alerts. The budget, the roles, the inactivity days, the accept-rate tools and the
// staleness limit are shared with the dashboards and live in the root config.libsonnet.
// Override any of them: (import 'mixin.libsonnet') + { _config+:: { memberDailySpendCapUSD: 500 } }
{
  _config+:: {
    // Every alert's name starts with this prefix.
    alertNamePrefix: 'ClaudeCode',
    // Where alerts/runbook.md is published; each alert links to its own section (`#<alertname>`).
    // By default the file's path in this bundle, which every reader's checkout has: set the URL
    // where you publish it to make the link one that opens (README, "Alerts").
    runbookURLBase: 'alerts/runbook.md',
    // Grafana's external URL, for the dashboard link of every alert.
    grafanaURL: 'http://localhost:3000',
    // The dashboard (uid without its prefix) each category's alerts link to; per-member alerts use 'member'.
    alertDashboards: { spend: 'cost', adoption: 'adoption', exporter: 'exporter', member: 'member' },

    // Share of the monthly budget at which month-to-date spend becomes critical (warning: budgetWarningRatio).
    budgetCriticalRatio: 1.0,
    // Complete days of the month needed before the month-end forecast may alert (early forecasts swing).
    forecastMinDays: 7,
    // Hours after the exporter's UTC midnight before yesterday's gauges count as complete (data is ~1h late).
    lateDataHours: 2,
    // Complete days before yesterday whose average is the norm for spikes and drops (a week balances weekends).
    normDays: 7,
    // Fewest of those days Prometheus must hold before the norm is trusted, so a fresh Prometheus stays quiet.
    normMinDays: 6,
    // Yesterday's spend counts as a spike above this multiple of the norm.
    spendSpikeFactor: 2,
    // ... and only above this many USD, so a small organization's few dollars do not page.
    spendSpikeMinUSD: 50,
    // One member's spend within one UTC day above which they are reported.
    memberDailySpendCapUSD: 200,
    // Average daily active members this week below (1 - this) times last week's average is a fall.
    activeMembersDropRatio: 0.3,
    // Last week's average daily active members must reach this for the fall to matter.
    activeMembersMinAverage: 5,
    // Yesterday's suggestion accept rate (0 to 1) below this floor is reported.
    acceptRateFloor: 0.6,
    // Yesterday's accept rate this far (0 to 1) below the norm's rate is a sharp fall.
    acceptRateDrop: 0.15,
    // Fewest accept/reject decisions yesterday for its accept rate to be judged.
    acceptRateMinDecisions: 100,
    // Window over which authentication failures (HTTP 401/403) of the Admin API are counted.
    apiAuthFailureWindow: '30m',
    // Window over which rejected records are counted.
    recordsRejectedWindow: '1h',

    // How long each condition must hold before its alert fires (keys are alert names without the prefix).
    alertFor: {
      MonthToDateSpendHigh: '15m',
      MonthEndForecastOverBudget: '1h',
      DailySpendSpike: '15m',
      MemberDailySpendHigh: '15m',
      ActiveMembersFalling: '1h',
      AcceptRateLow: '1h',
      AcceptRateFalling: '1h',
      MemberInactive: '1h',
      ExporterDown: '15m',
      AdminAPIFailing: '30m',
      AdminAPIAuthFailing: '5m',
      DataStale: '15m',
      RecordsRejected: '15m',
    },
  },
}
