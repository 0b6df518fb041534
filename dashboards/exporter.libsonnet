// "Exporter": is the data fresh and complete, and is the Admin API answering?
local g = import 'lib/g.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local d = (import 'lib/common.libsonnet')(c),
    local sel = d.selector(),
    local m(name) = '%s{%s}' % [d.exporterMetric(name), sel],
    // Prometheus' `up` of the targets that served the organization within the last day: `up` is the
    // target's and has no organization labels, so it is matched by job and instance.
    local up = 'up{%s} and on (job, instance) last_over_time(%s[1d])' % [d.everyOrganization(), m('up')],
    local upMappings = {
      fieldConfig+: { defaults+: { mappings: [{
        type: 'value',
        options: {
          '0': { text: 'down', color: 'red', index: 0 },
          '1': { text: 'up', color: 'green', index: 1 },
        },
      }] } },
    },
    local rate(name, by) = 'sum by (%s) (rate(%s[$__rate_interval]))' % [by, m(name)],

    local status = [
      d.stat(
        'Scraped',
        "Whether Prometheus reached the exporter's target of the organization at its last scrape (`up`).",
        'none',
        [d.instant('min(%s)' % up, 'up')],
      ) + upMappings,
      d.stat(
        'Last poll',
        'Whether the last poll fetched every day and the member list (`%s`).' % d.exporterMetric('up'),
        'none',
        [d.instant('min(%s)' % m('up'), 'poll')],
      ) + upMappings,
      d.stat(
        'Poll age',
        'Time since the last fully successful poll. Red when older than %d s; the API itself is about an hour late.'
        % c.exporterStaleSeconds,
        's',
        [d.instant('time() - max(%s)' % m('last_success_timestamp_seconds'), 'age')],
      ) + g.panel.stat.standardOptions.thresholds.withSteps([
        { color: 'green', value: null },
        { color: 'red', value: c.exporterStaleSeconds },
      ]),
      d.stat(
        'Oldest stored day',
        "The oldest UTC day of API records held in the exporter's store.",
        'dateTimeAsIsoNoDateIfToday',
        [d.instant('1000 * min(%s)' % m('store_oldest_day_timestamp_seconds'), 'oldest day')],
      ),
    ],

    local trends = [
      d.timeSeries(
        'Poll age',
        'Time since the last fully successful poll, over time.',
        's',
        [d.target('time() - max(%s)' % m('last_success_timestamp_seconds'), 'age')],
        w=12,
      ),
      d.timeSeries(
        'Poll duration',
        'Wall time of the last poll.',
        's',
        [d.target('max(%s)' % m('poll_duration_seconds'), 'duration')],
        w=12,
      ),
      d.timeSeries(
        'Admin API requests by code',
        'HTTP requests to the Admin API per second, by endpoint and status code (or timeout, connection_error).',
        'reqps',
        [d.target(rate('api_requests_total', 'endpoint, code'), '{{endpoint}} {{code}}')],
        w=12,
      ),
      d.timeSeries(
        'Admin API errors by code',
        'Failed Admin API requests per second, by endpoint and code; 0 per endpoint when none failed.',
        'reqps',
        [d.target(
          '%s\nor\n0 * %s' % [rate('api_errors_total', 'endpoint, code'), rate('api_requests_total', 'endpoint')],
          '{{endpoint}} {{code}}',
        )],
        w=12,
      ),
      d.timeSeries(
        'Records ingested and rejected',
        'API records stored per second, and records skipped as malformed per second by reason (0 when none).',
        'cps',
        [
          d.target('sum(rate(%s[$__rate_interval]))' % m('records_ingested_total'), 'ingested', 'A'),
          d.target(
            '%s\nor\n0 * sum(rate(%s[$__rate_interval]))'
            % [rate('records_rejected_total', 'reason'), m('records_ingested_total')],
            'rejected {{reason}}',
            'B',
          ),
        ],
        w=12,
      ),
      d.tablePanel(
        'Build',
        'Version of the exporter and of Python it runs on, per instance.',
        'none',
        [d.table('max by (instance, version, python_version) (%s)' % m('build_info'))],
        w=12,
        h=8,
      ) + g.panel.table.queryOptions.withTransformations([
        g.panel.table.queryOptions.transformation.withId('organize')
        + g.panel.table.queryOptions.transformation.withOptions({ excludeByName: { Time: true, Value: true } }),
      ]),
    ],

    'exporter.json': d.dashboard(
      'exporter',
      'Exporter',
      "The exporter's health: scraped, polling, fresh, and how the Admin API answers.",
      [d.datasourceVariable, d.organizationVariable],
      status + trends,
    ),
  },
}
