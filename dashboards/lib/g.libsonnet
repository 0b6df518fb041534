// A small dashboard library with grafonnet's names and shape, for the parts these dashboards use.
// grafonnet cannot be vendored here; an SRE who knows it reads these dashboards without a manual.
// Every function returns a small partial object that is merged with `+`; there is no builder state.
local fieldConfigOptions = {
  standardOptions: {
    withUnit(value): { fieldConfig+: { defaults+: { unit: value } } },
    withMin(value): { fieldConfig+: { defaults+: { min: value } } },
    withMax(value): { fieldConfig+: { defaults+: { max: value } } },
    withDecimals(value): { fieldConfig+: { defaults+: { decimals: value } } },
    withNoValue(value): { fieldConfig+: { defaults+: { noValue: value } } },
    withDisplayName(value): { fieldConfig+: { defaults+: { displayName: value } } },
    withLinks(value): { fieldConfig+: { defaults+: { links: value } } },
    withOverrides(value): { fieldConfig+: { overrides: value } },
    withOverridesMixin(value): { fieldConfig+: { overrides+: value } },
    color: {
      withMode(value): { fieldConfig+: { defaults+: { color+: { mode: value } } } },
      withFixedColor(value): { fieldConfig+: { defaults+: { color+: { mode: 'fixed', fixedColor: value } } } },
    },
    thresholds: {
      withMode(value): { fieldConfig+: { defaults+: { thresholds+: { mode: value } } } },
      withSteps(value): { fieldConfig+: { defaults+: { thresholds+: { steps: value } } } },
    },
    // Field overrides: `override.byName.new('spend') + override.byName.withProperty('unit', 'currencyUSD')`.
    override: {
      local matcher(id) = {
        new(value): { matcher: { id: id, options: value }, properties: [] },
        withProperty(id, value): { properties+: [{ id: id, value: value }] },
      },
      byName: matcher('byName'),
      byFrameRefID: matcher('byFrameRefID'),
    },
  },
  fieldConfig: {
    defaults: {
      custom: {
        withAxisPlacement(value): { fieldConfig+: { defaults+: { custom+: { axisPlacement: value } } } },
        withAxisLabel(value): { fieldConfig+: { defaults+: { custom+: { axisLabel: value } } } },
        withDrawStyle(value): { fieldConfig+: { defaults+: { custom+: { drawStyle: value } } } },
        withFillOpacity(value): { fieldConfig+: { defaults+: { custom+: { fillOpacity: value } } } },
        withLineWidth(value): { fieldConfig+: { defaults+: { custom+: { lineWidth: value } } } },
        withShowPoints(value): { fieldConfig+: { defaults+: { custom+: { showPoints: value } } } },
        withSpanNulls(value): { fieldConfig+: { defaults+: { custom+: { spanNulls: value } } } },
        withBarAlignment(value): { fieldConfig+: { defaults+: { custom+: { barAlignment: value } } } },
        withAlign(value): { fieldConfig+: { defaults+: { custom+: { align: value } } } },
        stacking: {
          withMode(value): { fieldConfig+: { defaults+: { custom+: { stacking+: { mode: value } } } } },
        },
      },
    },
  },
};

local panel(type) = fieldConfigOptions {
  new(title): {
    type: type,
    title: title,
    targets: [],
    fieldConfig: { defaults: {}, overrides: [] },
    options: {},
  },
  panelOptions: {
    withTitle(value): { title: value },
    withDescription(value): { description: value },
    withLinks(value): { links: value },
    withTransparent(value=true): { transparent: value },
  },
  queryOptions: {
    withDatasource(type, uid): { datasource: { type: type, uid: uid } },
    withTargets(value): { targets: value },
    withTargetsMixin(value): { targets+: value },
    withInterval(value): { interval: value },
    withMaxDataPoints(value): { maxDataPoints: value },
    withTransformations(value): { transformations: value },
    withTransformationsMixin(value): { transformations+: value },
  },
  gridPos: {
    withX(value): { gridPos+: { x: value } },
    withY(value): { gridPos+: { y: value } },
    withW(value): { gridPos+: { w: value } },
    withH(value): { gridPos+: { h: value } },
  },
};

local reduceOptions = {
  withCalcs(value): { options+: { reduceOptions+: { calcs: value } } },
  withFields(value): { options+: { reduceOptions+: { fields: value } } },
  withValues(value): { options+: { reduceOptions+: { values: value } } },
};

{
  dashboard: {
    new(title): {
      title: title,
      editable: false,
      schemaVersion: 39,
      panels: [],
      templating: { list: [] },
      annotations: { list: [] },
      links: [],
      tags: [],
      time: { from: 'now-6h', to: 'now' },
    },
    withUid(value): { uid: value },
    withTitle(value): { title: value },
    withDescription(value): { description: value },
    withTags(value): { tags: value },
    withTimezone(value): { timezone: value },
    withRefresh(value): { refresh: value },
    withEditable(value): { editable: value },
    withPanels(value): { panels: value },
    withVariables(value): { templating: { list: value } },
    withLinks(value): { links: value },
    withLinksMixin(value): { links+: value },
    time: {
      withFrom(value): { time+: { from: value } },
      withTo(value): { time+: { to: value } },
    },
    timepicker: {
      withRefreshIntervals(value): { timepicker+: { refresh_intervals: value } },
    },
    graphTooltip: {
      withSharedCrosshair(): { graphTooltip: 1 },
    },
    link: {
      // A link to another dashboard by its uid path, e.g. '/d/claude-code-member'.
      link: {
        new(title, url): {
          title: title,
          type: 'link',
          url: url,
          icon: 'dashboard',
          tags: [],
          asDropdown: false,
          targetBlank: false,
          includeVars: false,
          keepTime: false,
        },
        options: {
          withKeepTime(value=true): { keepTime: value },
          withIncludeVars(value=true): { includeVars: value },
        },
      },
    },
    variable: {
      local common = {
        generalOptions: {
          withLabel(value): { label: value },
          withDescription(value): { description: value },
          withCurrent(text, value=text): { current: { selected: true, text: text, value: value } },
        },
        selectionOptions: {
          withMulti(value=true): { multi: value },
          withIncludeAll(value=true, customAllValue=null):
            { includeAll: value }
            + (if customAllValue == null then {} else { allValue: customAllValue }),
        },
      },
      datasource: common {
        new(name, type): {
          type: 'datasource',
          name: name,
          query: type,
          regex: '',
          hide: 0,
          refresh: 1,
        },
        withRegex(value): { regex: value },
      },
      query: common {
        new(name, query=''): {
          type: 'query',
          name: name,
          query: query,
          hide: 0,
          regex: '',
          sort: 1,
          refresh: 1,
          options: [],
        },
        withDatasourceFromVariable(variable):
          { datasource: { type: variable.query, uid: '${%s}' % variable.name } },
        queryTypes: {
          // label_values(metric, label), the Prometheus datasource's variable query.
          withLabelValues(label, metric=''):
            local q = if metric == '' then 'label_values(%s)' % label
            else 'label_values(%s, %s)' % [metric, label];
            { query: q },
          // query_result(query): one option per series of the instant query at the range's end, as the
          // text `{label="value",...} value timestamp`; withRegex() picks the option's value and text.
          withQueryResult(query): { query: 'query_result(%s)' % query },
        },
        // A regex over the options; its named groups `value` and `text` give each option's two parts.
        withRegex(value): { regex: value },
        refresh: {
          onLoad(): { refresh: 1 },
          onTime(): { refresh: 2 },
        },
        withSort(value): { sort: value },
      },
    },
  },

  panel: {
    row: {
      new(title): { type: 'row', title: title, collapsed: false, panels: [], gridPos: { w: 24, h: 1 } },
    },
    timeSeries: panel('timeseries') {
      options: {
        legend: {
          withDisplayMode(value): { options+: { legend+: { displayMode: value } } },
          withPlacement(value): { options+: { legend+: { placement: value } } },
          withShowLegend(value=true): { options+: { legend+: { showLegend: value } } },
          withCalcs(value): { options+: { legend+: { calcs: value } } },
        },
        tooltip: {
          withMode(value): { options+: { tooltip+: { mode: value } } },
        },
      },
    },
    stat: panel('stat') {
      options: {
        reduceOptions: reduceOptions,
        withGraphMode(value): { options+: { graphMode: value } },
        withColorMode(value): { options+: { colorMode: value } },
        withTextMode(value): { options+: { textMode: value } },
        withJustifyMode(value): { options+: { justifyMode: value } },
      },
    },
    gauge: panel('gauge') {
      options: {
        reduceOptions: reduceOptions,
        withShowThresholdMarkers(value=true): { options+: { showThresholdMarkers: value } },
      },
    },
    barGauge: panel('bargauge') {
      options: {
        reduceOptions: reduceOptions,
        withDisplayMode(value): { options+: { displayMode: value } },
        withOrientation(value): { options+: { orientation: value } },
      },
    },
    table: panel('table') {
      options: {
        withSortBy(value): { options+: { sortBy: value } },
        withShowHeader(value=true): { options+: { showHeader: value } },
        footer: {
          withShow(value=true): { options+: { footer+: { show: value } } },
          withReducer(value): { options+: { footer+: { reducer: value } } },
        },
      },
      queryOptions+: {
        transformation: {
          withId(value): { id: value, options: {} },
          withOptions(value): { options: value },
        },
      },
    },
  },

  query: {
    prometheus: {
      new(datasource, expr): {
        datasource: { type: 'prometheus', uid: datasource },
        expr: expr,
        editorMode: 'code',
        range: true,
        instant: false,
      },
      withLegendFormat(value): { legendFormat: value },
      withRefId(value): { refId: value },
      withInstant(value=true): { instant: value, range: !value },
      withRange(value=true): { range: value, instant: !value },
      withFormat(value): { format: value },
      withInterval(value): { interval: value },
    },
  },

  util: {
    grid: {
      // Lay `panels` out left to right on the 24-column grid from row `startY`, wrapping when a row is
      // full, and number them from `startId`. A panel keeps its own gridPos.w/h when it has them.
      makeGrid(panels, panelWidth=8, panelHeight=8, startY=0, startId=1)::
        local step(acc, p) =
          local w = std.get(std.get(p, 'gridPos', {}), 'w', panelWidth);
          local h = std.get(std.get(p, 'gridPos', {}), 'h', panelHeight);
          local wrap = acc.x + w > 24;
          local x = if wrap then 0 else acc.x;
          local y = if wrap then acc.rowEnd else acc.y;
          {
            x: x + w,
            y: y,
            rowEnd: std.max(if wrap then y else acc.rowEnd, y + h),
            panels: acc.panels + [p { id: startId + std.length(acc.panels), gridPos: { x: x, y: y, w: w, h: h } }],
          };
        std.foldl(step, panels, { x: 0, y: startY, rowEnd: startY, panels: [] }).panels,
    },
  },
}
