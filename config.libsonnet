{
  _config+:: {
    // Selector that picks the exporter's series, added to every query.
    exporterSelector: 'job="claude-code-analytics"',
    // The labels that name an organization on every series the exporter exposes: its id (a UUID) and
    // its readable name. Every aggregation keeps them and every join matches on them, so that two
    // organizations in one Prometheus never mix, and every alert says which organization it is about.
    organizationIdLabel: 'organization_id',
    organizationNameLabel: 'organization_name',
    // Both, as `by (...)` and `on (...)` list them.
    organizationLabels: '%s, %s' % [self.organizationIdLabel, self.organizationNameLabel],
    // Selector of the organization picked in a dashboard's $organization variable (its id), added to
    // every query of the organization's dashboards.
    organizationSelector: '%s="$organization"' % self.organizationIdLabel,
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

    // Monthly Claude Code budget in USD of an organization not in monthlyBudgetUSDByOrganization: the
    // spend alerts and the cost dashboard compare the organization's spend against it.
    monthlyBudgetUSD: 10000,
    // Monthly budgets in USD of particular organizations, by organization id, e.g.
    // { '4c3b1a52-…': 25000 }; the recording rule `<metricPrefix>:monthly_budget_usd` gives each
    // organization its own, or monthlyBudgetUSD.
    monthlyBudgetUSDByOrganization: {},
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
