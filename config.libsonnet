{
  _config+:: {
    // Selector that picks the exporter's series, added to every query.
    exporterSelector: 'job="claude-code-analytics"',
    // Prefix of every data metric and of the exporter's own metrics.
    metricPrefix: 'claude_code_analytics',
    exporterMetricPrefix: 'claude_code_analytics_exporter',

    // Dashboards: uids are `<dashboardUidPrefix>-<name>`, e.g. claude-code-analytics.
    dashboardUidPrefix: 'claude-code',
    // Tags put on every dashboard.
    dashboardTags: ['claude-code'],
    // Title prefix of every dashboard.
    dashboardTitlePrefix: 'Claude Code / ',
    // The API's days are UTC days, so the dashboards show UTC.
    dashboardTimezone: 'utc',
    // The data changes hourly; refreshing faster only repeats queries.
    dashboardRefresh: '30m',
    // Refresh intervals offered in the picker (none faster than the data changes).
    dashboardRefreshIntervals: ['15m', '30m', '1h', '2h', '1d'],
    // Default time range of the dashboards.
    dashboardFrom: 'now-30d',
    // Regex limiting the Prometheus datasources offered by the $datasource variable ('' for all).
    datasourceRegex: '',
    // Name of the default datasource picked by the $datasource variable.
    datasourceDefault: 'default',

    // Monthly Claude Code budget in USD: the cost dashboard's forecast and gauge compare against it.
    monthlyBudgetUSD: 10000,
    // Share of the budget at which the month-to-date gauge turns amber.
    budgetWarningRatio: 0.8,
    // Console roles that allow using Claude Code (roles in docs/metrics.md, `role` label).
    claudeCodeRoles: 'claude_code_user|developer|admin|owner|primary_owner',
    // A member with such a role and no activity for this many days counts as inactive.
    inactiveDays: 14,
    // Tools whose decisions make the Console's suggestion accept rate (MultiEdit is shown apart).
    acceptRateTools: 'edit|write|notebook_edit',
    // The poll age above which the exporter's data is called stale (the API is about an hour late).
    exporterStaleSeconds: 2 * 3600,
  },
}
