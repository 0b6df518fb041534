// PromQL building blocks shared by the dashboards and the rules. See docs/metrics.md, "Per-day values".
{
  // The samples that belong to a UTC day D: those from 00:05 to 23:59 of D, read as
  // `[dayWindow] offset -<D's 23:59 minus the query step>`.
  // - Its first 5 minutes are left out because a recording rule evaluated then may still read the last
  //   scrape before midnight (an instant vector looks back 5 minutes), while the exporter turns its
  //   periods over within seconds of its midnight.
  // - Its last minute is left out for clocks a little apart, and it holds the backfill's samples, which
  //   stand at 23:59:00.
  dayWindow:: '23h54m',

  // The series of `expr` counted once when the same organization's series arrive under several
  // `instance` labels: two exporter replicas scraped for availability, or a backfill written with
  // other labels than the scrape's. Each keeps the larger value, the view with more of the late data.
  // Every query and rule reads the exporter's data series through it before it aggregates.
  once(expr):: 'max without (instance) (%s)' % expr,

  // The last value of `metric` in the day window that ends `ahead` after the query's time, each series
  // counted once: ahead 23h59m is day D's window for a query at D's midnight, 47h59m the next day's.
  local inDay(metric, selector, ahead) =
    $.once('last_over_time(%s{%s}[%s] offset -%s)' % [metric, selector, $.dayWindow, ahead]),

  // Day D's value of a per-period quantity, for a query whose steps fall on UTC midnights.
  // `metric` is the quantity without its period, e.g. 'claude_code_analytics_%s_cost_usd' with %s the period;
  // `selector` goes inside the braces; `agg` aggregates the per-member series (sum by ..., count, ...).
  daily(metric, selector='', agg='sum')::
    |||
      (
        %(agg)s (%(yesterday)s)
      or
        %(agg)s (%(today)s)
      )
    ||| % {
      agg: agg,
      yesterday: inDay(metric % 'yesterday', selector, '47h59m'),
      today: inDay(metric % 'today', selector, '23h59m'),
    },

  // numerator / denominator where the denominator is above zero: with nothing to divide (no sessions,
  // no suggestions, no tokens) a ratio has no value, never +Inf or NaN, and its panel says so.
  ratio(numerator, denominator)::
    '%s\n/\n(%s > 0)' % [std.stripChars(numerator, '\n'), std.stripChars(denominator, '\n')],

  // The sum of a per-day expression (daily(), membersDaily()) over the days that start within the
  // dashboard's range.
  total(perDay)::
    'sum_over_time(%s[$__range:1d])' % std.stripChars(perDay, '\n'),

  // The sum of daily() over the days that start within the dashboard's range.
  rangeTotal(metric, selector='', agg='sum')::
    self.total(self.daily(metric, selector, agg)),

  // The recording rule that sums ('sum') or counts ('count') the per-member series of quantity `name`
  // (e.g. 'tool_decisions') over members, keeping every other label, with %s for the period.
  memberAggregate(prefix, name, agg='sum'):: '%s:%%s_%s:%s_without_member' % [prefix, name, agg],

  // daily() of a per-member quantity, summed ('sum', 'sum by (tool)') or counted ('count') over the
  // members that the regex `member` picks ('$member'; null where a dashboard has no member filter).
  // `recorded` names, with %s for the period like `metric`, the recording rule that has already
  // summed or counted the members away (`<agg> without (member)`, rules/rules.libsonnet), so that a
  // query over every member reads a few series instead of one per member and day. `all_members` is
  // a label no series has, so a matcher of it against the regex tells All (`.*`, the only choice
  // that matches the empty string) from picked members without reading the member label's values:
  // - the first half reads the recorded series; `all_members=~"$member"` keeps them only for All;
  // - the second half reads the picked members' own series; `all_members!~"$member"` drops them
  //   all for All. It comes first among the matchers: Prometheus looks the matchers up in the
  //   index in their order and stops at the first that selects nothing, before it would compare
  //   `member=~".*"` with every member's name in every block (seconds at 50,000 members).
  // Either way one half selects nothing, and Prometheus finds that from its index without reading
  // a sample or a member's name.
  membersDaily(metric, recorded, selector='', member=null, agg='sum')::
    local with(first, extra) = std.join(', ', [m for m in [first, selector, extra] if m != '']);
    local counted = std.startsWith(agg, 'count');
    local recordedAgg = if counted then 'sum' + std.substr(agg, 5, std.length(agg) - 5) else agg;
    if member == null then
      self.daily(recorded, selector, recordedAgg)
    else
      '(\n%s\nor\n%s\n)\n' % [
        std.stripChars(self.daily(recorded, with('', 'all_members=~"%s"' % member), recordedAgg), '\n'),
        std.stripChars(self.daily(metric, with('all_members!~"%s"' % member, 'member=~"%s"' % member), agg), '\n'),
      ],

  // daily() without aggregation: day D's series of each member (or other label set), taken from the
  // `yesterday` gauge when that day has any, else from the `today` gauge, like daily() does for a sum.
  // `per` lists the labels (an organization's) within which that choice is made: '' for all series.
  dailySeries(metric, selector='', per='')::
    $.once(|||
      (
        last_over_time(%(yesterday)s{%(selector)s}[%(window)s] offset -47h59m)
      or
        (
          last_over_time(%(today)s{%(selector)s}[%(window)s] offset -23h59m)
        unless on (%(per)s)
          last_over_time(%(yesterday)s{%(selector)s}[%(window)s] offset -47h59m)
        )
      )
    ||| % {
      selector: selector,
      per: per,
      window: $.dayWindow,
      yesterday: metric % 'yesterday',
      today: metric % 'today',
    }),

  // A month's per-member series at the query's time, for an instant query at the end of a dashboard's
  // range (aggregate around it); `metric` has %s for the period, as in daily().
  // - When that time is in a month's last minute (the end of Grafana's "Previous month"), the month
  //   is read from the `last_month` gauge as it stood during the next day, as daily() reads a day from
  //   `yesterday`: so the month's last hour, which the API delivers after midnight, is in.
  // - Otherwise, and before the next day has a sample, from `month_to_date` at that time.
  // `day_of_month` falls only where a month ends, so the comparison holds only in its last minute.
  monthAt(metric, selector='')::
    $.once(|||
      (
          last_over_time(%(last)s{%(selector)s}[1d] offset -1d)
        and on ()
          day_of_month(vector(time() + 60)) < day_of_month(vector(time()))
      )
      or
        %(mtd)s{%(selector)s}
    ||| % { selector: selector, last: metric % 'last_month', mtd: metric % 'month_to_date' }),

  // The last value of a gauge within day D (00:05 to 23:59 UTC, dayWindow), for a query whose steps fall on UTC
  // midnights: for gauges that describe "as of now" rather than one period (active members over the last
  // 7 days, first-active timestamps). `window` widens the look ahead for values that arrive late.
  endOfDay(metric, selector='', agg='', window=$.dayWindow, offset='23h59m')::
    '%s (%s)' % [agg, $.once('last_over_time(%s{%s}[%s] offset -%s)' % [metric, selector, window, offset])],
}
