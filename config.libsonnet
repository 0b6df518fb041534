{
  _config+:: {
    // Selector that picks the exporter's series, added to every query.
    exporterSelector: 'job="claude-code-analytics"',
    // Prefix of every data metric and of the exporter's own metrics.
    metricPrefix: 'claude_code_analytics',
    exporterMetricPrefix: 'claude_code_analytics_exporter',
  },
}
