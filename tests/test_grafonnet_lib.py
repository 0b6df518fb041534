"""The grafonnet-shaped library in dashboards/lib/: every function is a partial merged with +."""

from __future__ import annotations

from tools.generate import ROOT, evaluate

LIBRARY = ROOT / "dashboards" / "lib" / "g.libsonnet"


def render(expression: str) -> object:
    """Evaluate `expression` with the library bound to `g`."""
    return evaluate(LIBRARY, f"local g = m;\n{expression}")


def test_a_new_panel_is_a_minimal_panel_of_its_type():
    panel = render("g.panel.timeSeries.new('Spend')")
    assert panel == {
        "type": "timeseries",
        "title": "Spend",
        "targets": [],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }


def test_standard_options_merge_into_the_field_defaults_without_dropping_others():
    panel = render(
        "g.panel.stat.new('x') + g.panel.stat.standardOptions.withUnit('currencyUSD')"
        " + g.panel.stat.standardOptions.withMin(0)"
        " + g.panel.stat.fieldConfig.defaults.custom.withAxisPlacement('right')"
    )
    assert panel["fieldConfig"]["defaults"] == {
        "unit": "currencyUSD",
        "min": 0,
        "custom": {"axisPlacement": "right"},
    }


def test_with_targets_sets_and_the_mixin_appends():
    panel = render(
        "g.panel.table.new('x') + g.panel.table.queryOptions.withTargets([{refId: 'A'}])"
        " + g.panel.table.queryOptions.withTargetsMixin([{refId: 'B'}])"
    )
    assert [t["refId"] for t in panel["targets"]] == ["A", "B"]


def test_a_prometheus_query_is_a_range_query_until_made_instant():
    query = render("g.query.prometheus.new('${datasource}', 'up')")
    instant = render("g.query.prometheus.new('ds', 'up') + g.query.prometheus.withInstant()")
    assert query["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert (query["range"], query["instant"]) == (True, False)
    assert (instant["range"], instant["instant"]) == (False, True)


def test_an_override_matches_by_name_and_collects_its_properties_in_order():
    override = render(
        "local o = g.panel.timeSeries.standardOptions.override.byName;"
        "o.new('spend') + o.withProperty('unit', 'currencyUSD') + o.withProperty('decimals', 2)"
    )
    assert override == {
        "matcher": {"id": "byName", "options": "spend"},
        "properties": [{"id": "unit", "value": "currencyUSD"}, {"id": "decimals", "value": 2}],
    }


def test_make_grid_numbers_panels_and_wraps_below_the_tallest_panel_of_a_row():
    panels = render(
        "local p(w, h) = g.panel.stat.new('x') + g.panel.stat.gridPos.withW(w)"
        " + g.panel.stat.gridPos.withH(h);"
        "g.util.grid.makeGrid([p(12, 4), p(12, 9), p(8, 5), p(24, 2)])"
    )
    assert [(p["id"], p["gridPos"]) for p in panels] == [
        (1, {"x": 0, "y": 0, "w": 12, "h": 4}),
        (2, {"x": 12, "y": 0, "w": 12, "h": 9}),
        (3, {"x": 0, "y": 9, "w": 8, "h": 5}),
        (4, {"x": 0, "y": 14, "w": 24, "h": 2}),
    ]


def test_make_grid_gives_panels_without_a_size_the_default_size():
    panels = render("g.util.grid.makeGrid([g.panel.stat.new('a'), g.panel.stat.new('b')], 6, 3)")
    assert [p["gridPos"] for p in panels] == [
        {"x": 0, "y": 0, "w": 6, "h": 3},
        {"x": 6, "y": 0, "w": 6, "h": 3},
    ]


def test_a_row_takes_the_full_width_and_pushes_the_next_panel_below_it():
    panels = render(
        "local s = g.panel.stat.new('s');g.util.grid.makeGrid([s, g.panel.row.new('r'), s], 6, 3)"
    )
    assert [p["gridPos"] for p in panels] == [
        {"x": 0, "y": 0, "w": 6, "h": 3},
        {"x": 0, "y": 3, "w": 24, "h": 1},
        {"x": 0, "y": 4, "w": 6, "h": 3},
    ]


def test_a_query_variable_reads_label_values_from_the_datasource_variable():
    variable = render(
        "local v = g.dashboard.variable;"
        "v.query.new('member')"
        " + v.query.withDatasourceFromVariable(v.datasource.new('datasource', 'prometheus'))"
        " + v.query.queryTypes.withLabelValues('member', 'info{job=\"x\"}')"
        " + v.query.selectionOptions.withIncludeAll(true, '.*')"
    )
    assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert variable["query"] == 'label_values(info{job="x"}, member)'
    assert (variable["includeAll"], variable["allValue"]) == (True, ".*")


def test_a_query_variable_can_read_a_query_result_through_a_regex():
    variable = render(
        "local v = g.dashboard.variable;"
        "v.query.new('organization')"
        " + v.query.queryTypes.withQueryResult('group by (id) (info)')"
        ' + v.query.withRegex(\'/id="(?<value>[^"]+)"/\')'
    )
    assert variable["query"] == "query_result(group by (id) (info))"
    assert variable["regex"] == '/id="(?<value>[^"]+)"/'


def test_a_dashboard_link_points_at_a_url_and_can_keep_the_time_range():
    link = render(
        "local l = g.dashboard.link.link;l.new('Member', '/d/abc') + l.options.withKeepTime()"
    )
    assert (link["type"], link["url"], link["keepTime"]) == ("link", "/d/abc", True)


def test_a_new_dashboard_is_not_editable_and_has_empty_collections():
    dashboard = render("g.dashboard.new('T') + g.dashboard.withUid('u')")
    assert dashboard["editable"] is False
    assert (dashboard["panels"], dashboard["templating"], dashboard["links"]) == (
        [],
        {"list": []},
        [],
    )
