// "Cost and models": where the money goes, by model and token type, and whether the month stays in budget.
local g = import 'lib/g.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local d = (import 'lib/common.libsonnet')(c),
    local q = d.promql,
    local sel = d.selector(),
    // The recording rules already select the exporter's series and aggregate its labels away but the
    // organization's; they are read for the organization picked.
    local rule(name) = '%s:%s{%s}' % [c.metricPrefix, name, c.organizationSelector],
    local budget = rule('monthly_budget_usd'),
    // Shares of the organization's budget: amber from budgetWarningRatio, red from the whole budget.
    local budgetSteps = [
      { color: 'green', value: null },
      { color: 'orange', value: c.budgetWarningRatio },
      { color: 'red', value: 1 },
    ],
    local ofBudget(expr) = q.ratio(expr, budget),

    local headline = [
      d.stat(
        'Month-to-date spend',
        |||
          Estimated cost in USD since the 1st of the current UTC month, summed over the organization's
          members (recording rule `%s:month_to_date_cost_usd:sum`).
        ||| % c.metricPrefix,
        'currencyUSD',
        [d.instant(rule('month_to_date_cost_usd:sum'), 'month to date')],
      ) + g.panel.stat.standardOptions.withDecimals(2),
      d.stat(
        'Monthly budget',
        |||
          The organization's monthly budget in USD: its entry in `monthlyBudgetUSDByOrganization`, or
          else `monthlyBudgetUSD` (%d USD), as the recording rule `%s:monthly_budget_usd` gives it.
        ||| % [c.monthlyBudgetUSD, c.metricPrefix],
        'currencyUSD',
        [d.instant(budget, 'budget')],
      ),
      d.gauge(
        'Budget used this month',
        |||
          Month-to-date spend / the organization's monthly budget. Amber from %d%% of the budget, red
          from all of it; a spend over the budget fills the gauge.
        ||| % (100 * c.budgetWarningRatio),
        'percentunit',
        [d.instant(ofBudget(rule('month_to_date_cost_usd:sum')), 'of the budget')],
        1,
        budgetSteps,
      ),
      d.stat(
        'Month-end forecast',
        |||
          Month-to-date spend extrapolated to the whole month at the pace so far: spend / elapsed days ×
          days in the month, with the elapsed time less the API's one-hour delay (recording rule
          `%s:month_end_forecast_cost_usd:sum`), and that as a share of the monthly budget: amber from
          %d%%, red over it.
        ||| % [c.metricPrefix, 100 * c.budgetWarningRatio],
        'currencyUSD',
        [
          d.instant(rule('month_end_forecast_cost_usd:sum'), 'forecast', 'A'),
          d.instant(ofBudget(rule('month_end_forecast_cost_usd:sum')), 'of the budget', 'B'),
        ],
      )
      + g.panel.stat.standardOptions.withOverrides([
        g.panel.stat.standardOptions.override.byFrameRefID.new('B')
        + g.panel.stat.standardOptions.override.byFrameRefID.withProperty('unit', 'percentunit')
        + g.panel.stat.standardOptions.override.byFrameRefID.withProperty('decimals', 0)
        + g.panel.stat.standardOptions.override.byFrameRefID.withProperty(
          'thresholds', { mode: 'absolute', steps: budgetSteps }
        ),
      ]),
      d.ratioStat(
        'Cost per session this month',
        "Month-to-date spend / month-to-date sessions, over the organization's members (recording rule).",
        'currencyUSD',
        [d.instant(rule('month_to_date_cost_per_session_usd:ratio'), 'per session')],
        'no sessions',
        w=8,
      ) + g.panel.stat.standardOptions.withDecimals(2),
      d.ratioStat(
        'Cost per accepted line this month',
        "Month-to-date spend / month-to-date lines of code accepted, over the organization's members (recording rule).",
        'currencyUSD',
        [d.instant(rule('month_to_date_cost_per_line_usd:ratio'), 'per line')],
        'no lines accepted',
        w=8,
      ) + g.panel.stat.standardOptions.withDecimals(4),
      d.ratioStat(
        'Cache read share this month',
        |||
          Cache read tokens / (input + cache read + cache creation tokens) this month, over all models
          (recording rule): the share of prompt tokens served from the prompt cache.
        |||,
        'percentunit',
        [d.instant(rule('month_to_date_cache_read:ratio'), 'cache read share')],
        'no tokens',
        w=8,
      ) + g.panel.stat.standardOptions.withDecimals(1),
    ],

    local perDay = [
      d.perDay(
        'Spend by model per day',
        'Estimated cost in USD per UTC day and model, summed over all members (`model_breakdown[].estimated_cost`).',
        'currencyUSD',
        [d.target(q.daily(d.period('model_cost_usd'), sel, 'sum by (model)'), '{{model}}')],
        stacked=true,
      ),
      d.perDay(
        'Tokens by model and type per day',
        'Tokens per UTC day, by model and token type (input, output, cache read, cache creation).',
        'short',
        [d.target(
          q.daily(d.period('model_tokens'), sel, 'sum by (model, token_type)'),
          '{{model}} {{token_type}}',
        )],
        stacked=true,
      ),
      d.perDay(
        'Cache read share per day',
        'Cache read tokens / (input + cache read + cache creation tokens) per UTC day, over all models.',
        'percentunit',
        [d.target(
          q.ratio(
            q.daily(d.period('model_tokens'), d.selector('token_type="cache_read"')),
            q.daily(d.period('model_tokens'), d.selector('token_type=~"input|cache_read|cache_creation"')),
          ),
          'cache read share',
        )],
        w=8,
      ) + g.panel.timeSeries.standardOptions.withMax(1),
      d.perDay(
        'Cost per session per day',
        'Spend / sessions per UTC day, over all members.',
        'currencyUSD',
        [d.target(q.ratio(d.membersDaily('cost_usd', sel), d.membersDaily('sessions', sel)), 'per session')],
        w=8,
      ),
      d.perDay(
        'Cost per accepted line per day',
        'Spend / lines of code accepted per UTC day, over all members.',
        'currencyUSD',
        [d.target(q.ratio(d.membersDaily('cost_usd', sel), d.membersDaily('lines_added', sel)), 'per line')],
        w=8,
      ),
      d.barGauge(
        'Spend by model over the range',
        'Estimated cost in USD per model, summed over the UTC days that start within the selected range.',
        'currencyUSD',
        [d.instant(q.rangeTotal(d.period('model_cost_usd'), sel, 'sum by (model)'), '{{model}}')],
        w=24,
      ),
    ],

    'cost.json': d.dashboard(
      'cost',
      'Cost and models',
      "Spend by model and token type, cache use, unit costs, and month-to-date spend against the organization's budget.",
      [d.datasourceVariable, d.organizationVariable],
      [d.row('This month')] + headline + [d.row('Per UTC day')] + perDay,
    ),
  },
}
