//! Every limit on a dashboard, checked before anything is stored: a 400 naming the
//! field (`panels[2].query`) and, for a size or count, the limit. Panel queries and
//! SQL are parsed here as the search API parses them, so a dashboard never saves a
//! panel that can only fail, and the error points at the character.

use std::collections::BTreeSet;

use logpool_api::ApiError;
use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::sql::plan_sql;
use logpool_core::timeexpr::parse_time_expr;
use logpool_engines::metadata::DashboardFields;
use logpool_wire::dashboards::{ChartType, DashboardBody, Panel, PanelKind};

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Longest `from` / `to` expression, in characters.
pub const MAX_TIME_CHARS: usize = 64;
/// Most panels on one dashboard.
pub const MAX_PANELS: usize = 50;
/// Longest panel id, in characters.
pub const MAX_PANEL_ID_CHARS: usize = 64;
/// Longest panel title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest panel query (search part), in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Longest panel SQL, in bytes.
pub const MAX_SQL_BYTES: usize = 8 * 1024;
/// Most result columns of a table panel.
pub const MAX_COLUMNS: usize = 50;
/// Longest column (field) name, in bytes.
pub const MAX_COLUMN_BYTES: usize = 256;
/// Most thresholds of one panel.
pub const MAX_THRESHOLDS: usize = 10;
/// Longest unit text, in characters.
pub const MAX_UNIT_CHARS: usize = 16;
/// Columns of the grid.
pub const GRID_COLUMNS: u32 = 12;
/// Highest first row of a panel.
pub const MAX_GRID_ROW: u32 = 1_000;
/// Most rows one panel spans.
pub const MAX_PANEL_ROWS: u32 = 24;

/// Named colours a threshold may take besides `#rgb` / `#rrggbb`.
const NAMED_COLOURS: [&str; 5] = ["green", "orange", "red", "blue", "grey"];

fn refused(field: &str, message: String) -> ApiError {
    ApiError::bad_request(message).with_detail("field", field)
}

fn over_limit(field: &str, what: &str, limit: usize) -> ApiError {
    refused(field, format!("`{field}` {what}")).with_detail("limit", limit)
}

fn check_chars(field: &str, value: &str, max: usize, unit: &str) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(over_limit(
            field,
            &format!("is longer than {max} {unit}"),
            max,
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(refused(
            field,
            format!("`{field}` must not hold control characters"),
        ));
    }
    Ok(())
}

/// Checks a body against every limit and turns it into what the store keeps.
pub(crate) fn checked_fields(body: &DashboardBody) -> Result<DashboardFields, ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() {
        return Err(refused("name", "`name` must not be empty".to_string()));
    }
    check_chars("name", &name, MAX_NAME_CHARS, "characters")?;
    if body.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(over_limit(
            "description",
            &format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
            MAX_DESCRIPTION_CHARS,
        ));
    }
    for (field, value) in [("from", &body.from), ("to", &body.to)] {
        check_chars(field, value, MAX_TIME_CHARS, "characters")?;
        // Relative times stay relative in storage; parsing now only proves the
        // expression is one the searches accept.
        parse_time_expr(value, logpool_api::time::now_ns())
            .map_err(|message| refused(field, format!("invalid `{field}`: {message}")))?;
    }
    if body.panels.len() > MAX_PANELS {
        return Err(over_limit(
            "panels",
            &format!("holds more than {MAX_PANELS} panels"),
            MAX_PANELS,
        ));
    }
    let mut ids = BTreeSet::new();
    for (index, panel) in body.panels.iter().enumerate() {
        check_panel(index, panel)?;
        if !ids.insert(panel.id.as_str()) {
            return Err(refused(
                &format!("panels[{index}].id"),
                format!("panel id `{}` is used twice", panel.id),
            ));
        }
    }
    let panels = serde_json::to_string(&body.panels).map_err(ApiError::internal)?;
    Ok(DashboardFields {
        name,
        description: body.description.clone(),
        from: body.from.clone(),
        to: body.to.clone(),
        refresh: body.refresh.as_str().to_string(),
        panels,
    })
}

fn check_panel(index: usize, panel: &Panel) -> Result<(), ApiError> {
    let field = |name: &str| format!("panels[{index}].{name}");
    let id_ok = !panel.id.is_empty()
        && panel.id.chars().count() <= MAX_PANEL_ID_CHARS
        && panel
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !id_ok {
        return Err(refused(
            &field("id"),
            format!(
                "`{}` must be 1 to {MAX_PANEL_ID_CHARS} of A-Z a-z 0-9 _ -",
                field("id")
            ),
        )
        .with_detail("limit", MAX_PANEL_ID_CHARS));
    }
    check_chars(&field("title"), &panel.title, MAX_TITLE_CHARS, "characters")?;
    crate::check_name(&field("pool"), &panel.pool)?;
    if panel.query.len() > MAX_QUERY_BYTES {
        return Err(over_limit(
            &field("query"),
            &format!("is longer than {MAX_QUERY_BYTES} bytes"),
            MAX_QUERY_BYTES,
        ));
    }
    let query = parse_query(&panel.query, DefaultOperator::And)
        .map_err(|error| ApiError::from(error).with_detail("field", field("query")))?;
    match (panel.kind, &panel.sql) {
        (PanelKind::Sql, Some(sql)) if !sql.trim().is_empty() => {
            if sql.len() > MAX_SQL_BYTES {
                return Err(over_limit(
                    &field("sql"),
                    &format!("is longer than {MAX_SQL_BYTES} bytes"),
                    MAX_SQL_BYTES,
                ));
            }
            plan_sql(sql, &panel.pool, query).map_err(|error| {
                let mut answer = refused(
                    &field("sql"),
                    format!("invalid `{}`: {}", field("sql"), error.message),
                );
                if let Some(position) = error.position {
                    answer = answer.with_detail("position", position);
                }
                if let Some(limit) = error.limit {
                    answer = answer.with_detail("limit", limit);
                }
                answer
            })?;
        }
        (PanelKind::Sql, _) => {
            return Err(refused(
                &field("sql"),
                format!("an `sql` panel needs `{}`: `SELECT ...`", field("sql")),
            ));
        }
        (_, Some(_)) => {
            return Err(refused(
                &field("sql"),
                format!("only `sql` panels take `{}`", field("sql")),
            ));
        }
        (_, None) => {}
    }
    check_columns(&field("columns"), &panel.columns)?;
    check_chart(index, panel)?;
    check_grid(index, panel)
}

fn check_columns(field: &str, columns: &[String]) -> Result<(), ApiError> {
    if columns.len() > MAX_COLUMNS {
        return Err(over_limit(
            field,
            &format!("holds more than {MAX_COLUMNS} columns"),
            MAX_COLUMNS,
        ));
    }
    if columns
        .iter()
        .any(|column| column.is_empty() || column.len() > MAX_COLUMN_BYTES)
    {
        return Err(over_limit(
            field,
            &format!("holds a name that is empty or longer than {MAX_COLUMN_BYTES} bytes"),
            MAX_COLUMN_BYTES,
        ));
    }
    Ok(())
}

/// The chart types a panel kind can draw.
fn allowed_charts(kind: PanelKind) -> &'static [ChartType] {
    match kind {
        PanelKind::Histogram => &[ChartType::Bar, ChartType::Line, ChartType::Area],
        PanelKind::Count => &[ChartType::Number],
        PanelKind::Table => &[ChartType::Table],
        PanelKind::Sql => &[
            ChartType::Line,
            ChartType::Area,
            ChartType::Bar,
            ChartType::Pie,
            ChartType::Table,
            ChartType::Number,
        ],
    }
}

fn check_chart(index: usize, panel: &Panel) -> Result<(), ApiError> {
    let allowed = allowed_charts(panel.kind);
    if !allowed.contains(&panel.chart.chart_type) {
        let names: Vec<String> = allowed
            .iter()
            .filter_map(|chart| serde_json::to_value(chart).ok())
            .filter_map(|value| value.as_str().map(str::to_string))
            .collect();
        return Err(refused(
            &format!("panels[{index}].chart.type"),
            format!(
                "a `{}` panel draws as {}",
                serde_json::to_value(panel.kind)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_string))
                    .unwrap_or_default(),
                names.join(", ")
            ),
        ));
    }
    let thresholds = format!("panels[{index}].chart.thresholds");
    if panel.chart.thresholds.len() > MAX_THRESHOLDS {
        return Err(over_limit(
            &thresholds,
            &format!("holds more than {MAX_THRESHOLDS} thresholds"),
            MAX_THRESHOLDS,
        ));
    }
    for threshold in &panel.chart.thresholds {
        if !threshold.value.is_finite() {
            return Err(refused(
                &thresholds,
                format!("`{thresholds}` values must be finite numbers"),
            ));
        }
        if !is_colour(&threshold.color) {
            return Err(refused(
                &thresholds,
                format!(
                    "`{thresholds}` colour `{}` is not #rgb, #rrggbb or one of {}",
                    threshold.color.chars().take(32).collect::<String>(),
                    NAMED_COLOURS.join(", ")
                ),
            ));
        }
    }
    check_chars(
        &format!("panels[{index}].chart.unit"),
        &panel.chart.unit,
        MAX_UNIT_CHARS,
        "characters",
    )
}

/// `#rgb`, `#rrggbb` or a named colour: values the console can put into a style
/// without it meaning anything else.
fn is_colour(text: &str) -> bool {
    if NAMED_COLOURS.contains(&text) {
        return true;
    }
    text.strip_prefix('#').is_some_and(|hex| {
        (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn check_grid(index: usize, panel: &Panel) -> Result<(), ApiError> {
    let field = format!("panels[{index}].grid");
    let grid = panel.grid;
    if grid.w == 0 || grid.x >= GRID_COLUMNS || grid.x.saturating_add(grid.w) > GRID_COLUMNS {
        return Err(refused(
            &field,
            format!("`{field}` must fit the {GRID_COLUMNS} columns: x + w at most {GRID_COLUMNS}, w at least 1"),
        )
        .with_detail("limit", GRID_COLUMNS));
    }
    if grid.h == 0 || grid.h > MAX_PANEL_ROWS {
        return Err(refused(
            &field,
            format!("`{field}.h` must be 1 to {MAX_PANEL_ROWS} rows"),
        )
        .with_detail("limit", MAX_PANEL_ROWS));
    }
    if grid.y > MAX_GRID_ROW {
        return Err(refused(
            &field,
            format!("`{field}.y` must be at most {MAX_GRID_ROW}"),
        )
        .with_detail("limit", MAX_GRID_ROW));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_colours_are_hex_or_named() {
        for good in ["#fff", "#12abEF", "red", "grey"] {
            assert!(is_colour(good), "{good}");
        }
        for bad in ["#ffff", "url(x)", "", "#12345g", "Red"] {
            assert!(!is_colour(bad), "{bad}");
        }
    }
}
