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

  // daily() without aggregation: day D's series of each member (or other label set), taken from the
  // `yesterday` gauge when that day has any, else from the `today` gauge, like daily() does for a sum.
  dailySeries(metric, selector='')::
    |||
      (
        last_over_time(%(yesterday)s{%(selector)s}[23h] offset -47h59m)
      or
        (
          last_over_time(%(today)s{%(selector)s}[23h] offset -23h59m)
        unless on ()
          last_over_time(%(yesterday)s{%(selector)s}[23h] offset -47h59m)
        )
      )
    ||| % {
      selector: selector,
      yesterday: metric % 'yesterday',
      today: metric % 'today',
    },

  // The last value of a gauge within day D (00:59 to 23:59 UTC), for a query whose steps fall on UTC
  // midnights: for gauges that describe "as of now" rather than one period (active members over the last
  // 7 days, first-active timestamps). `window` widens the look ahead for values that arrive late.
  endOfDay(metric, selector='', agg='', window='23h', offset='23h59m')::
    '%s (last_over_time(%s{%s}[%s] offset -%s))' % [agg, metric, selector, window, offset],
}
