// PromQL building blocks shared by the dashboards and the rules. See docs/metrics.md, "Per-day values".
{
  // Day D's value of a per-period quantity, for a query whose steps fall on UTC midnights.
  // `metric` is the quantity without its period, e.g. 'claude_code_analytics_%s_cost_usd' with %s the period;
  // `selector` goes inside the braces; `agg` aggregates the per-member series (sum by ..., count, ...).
  daily(metric, selector='', agg='sum')::
    |||
      (
        %(agg)s (last_over_time(%(yesterday)s{%(selector)s}[23h] offset -47h59m))
      or
        %(agg)s (last_over_time(%(today)s{%(selector)s}[23h] offset -23h59m))
      )
    ||| % {
      agg: agg,
      selector: selector,
      yesterday: metric % 'yesterday',
      today: metric % 'today',
    },

  // The sum of daily() over the days that start within the dashboard's range.
  rangeTotal(metric, selector='', agg='sum')::
    'sum_over_time(%s[$__range:1d])' % std.stripChars(self.daily(metric, selector, agg), '\n'),
}
