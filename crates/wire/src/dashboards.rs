//! Dashboards of a project (`/v1/projects/{project}/dashboards`): named grids of
//! panels, each a search (histogram, count or results table) or a pipe-SQL chart, with
//! a dashboard-wide time range and auto-refresh.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The version of the export format [`DashboardExport`] this server writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// `POST /v1/projects/{project}/dashboards` and
/// `PUT /v1/projects/{project}/dashboards/{id}` (which replaces every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardBody {
    /// Name, unique in the project (1 to 100 characters).
    pub name: String,
    /// Free text (at most 1,000 characters).
    #[serde(default)]
    pub description: String,
    /// Start of the dashboard's range: relative (`now-24h`, `-15m`), RFC 3339 or
    /// epoch ms. Every panel uses it.
    #[serde(default = "default_from")]
    pub from: String,
    /// End of the range, in the same forms.
    #[serde(default = "default_to")]
    pub to: String,
    /// How often the console reloads every panel.
    #[serde(default)]
    pub refresh: Refresh,
    /// The panels (at most 50), in the order the console lists them.
    #[serde(default)]
    pub panels: Vec<Panel>,
}

fn default_from() -> String {
    "now-24h".to_string()
}

fn default_to() -> String {
    "now".to_string()
}

/// Auto-refresh period of a dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Refresh {
    /// Never reloads by itself.
    #[default]
    #[serde(rename = "off")]
    Off,
    /// Every 10 seconds.
    #[serde(rename = "10s")]
    TenSeconds,
    /// Every 30 seconds.
    #[serde(rename = "30s")]
    ThirtySeconds,
    /// Every minute.
    #[serde(rename = "1m")]
    OneMinute,
    /// Every 5 minutes.
    #[serde(rename = "5m")]
    FiveMinutes,
}

impl Refresh {
    /// The name it has in JSON (`off`, `10s`, ...), as it is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Refresh::Off => "off",
            Refresh::TenSeconds => "10s",
            Refresh::ThirtySeconds => "30s",
            Refresh::OneMinute => "1m",
            Refresh::FiveMinutes => "5m",
        }
    }

    /// The period named `text`, as [`Refresh::as_str`] writes it.
    pub fn parse(text: &str) -> Option<Refresh> {
        [
            Refresh::Off,
            Refresh::TenSeconds,
            Refresh::ThirtySeconds,
            Refresh::OneMinute,
            Refresh::FiveMinutes,
        ]
        .into_iter()
        .find(|refresh| refresh.as_str() == text)
    }
}

/// What a panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    /// Records over time of a search (`/histogram`).
    Histogram,
    /// How many records a search matches (one number).
    Count,
    /// The newest records a search matches.
    Table,
    /// A pipe-SQL result (`/query` with `query | sql`).
    Sql,
}

/// How a panel draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChartType {
    /// Lines over the x axis.
    Line,
    /// Filled lines.
    Area,
    /// Bars.
    Bar,
    /// One pie per value column.
    Pie,
    /// Rows and columns.
    Table,
    /// One number, coloured by the thresholds it reaches.
    Number,
}

/// A panel's chart settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PanelChart {
    /// How the panel draws; which types a panel kind allows is checked at save.
    #[serde(rename = "type")]
    pub chart_type: ChartType,
    /// Colours a single number takes from the highest threshold it reaches (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// Text after a single number (`ms`, `%`; at most 16 characters).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
}

/// From `value` up, a single number is shown in `color`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The lowest value that takes this colour.
    pub value: f64,
    /// A CSS colour: `#rgb`, `#rrggbb` or one of `green`, `orange`, `red`, `blue`,
    /// `grey`.
    pub color: String,
}

/// A panel's place in the dashboard's grid of 12 columns (rows are one unit high each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GridPlace {
    /// First column, 0 to 11.
    pub x: u32,
    /// First row, 0 to 1,000.
    pub y: u32,
    /// Columns wide, 1 to 12 (`x + w` at most 12).
    pub w: u32,
    /// Rows high, 1 to 24.
    pub h: u32,
}

/// One panel of a dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Its id in the dashboard (1 to 64 of `A-Z a-z 0-9 _ -`, unique in it).
    pub id: String,
    /// Title shown above it (at most 200 characters).
    #[serde(default)]
    pub title: String,
    /// What it shows.
    pub kind: PanelKind,
    /// The pool it searches.
    pub pool: String,
    /// The search part (query string); empty matches everything.
    #[serde(default)]
    pub query: String,
    /// For `sql` panels, the statement after the pipe (`SELECT ...`); `null` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Result columns of a `table` panel (at most 50 field names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// How it draws.
    pub chart: PanelChart,
    /// Where it sits in the grid.
    pub grid: GridPlace,
}

/// A dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Dashboard {
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Id of the key that created it.
    pub created_by: String,
    /// Free text.
    pub description: String,
    /// Start of the range, as saved.
    pub from: String,
    /// Its id in the project (names it in paths).
    pub id: String,
    /// Name, unique in the project.
    pub name: String,
    /// The panels.
    pub panels: Vec<Panel>,
    /// Auto-refresh period.
    pub refresh: Refresh,
    /// End of the range, as saved.
    pub to: String,
    /// When it was last changed, RFC 3339.
    pub updated_at: String,
    /// Id of the key that changed it last.
    pub updated_by: String,
}

/// `GET /v1/projects/{project}/dashboards`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DashboardList {
    /// The project's dashboards, by name.
    pub dashboards: Vec<Dashboard>,
}

/// `GET /v1/projects/{project}/dashboards/{id}/export`, and the body of
/// `POST /v1/projects/{project}/dashboards/import`: a dashboard without what the
/// server gives it (id, authors, times), so it can be imported into any project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardExport {
    /// The dashboard.
    pub dashboard: DashboardBody,
    /// The export format's version; this server reads and writes 1.
    pub logpool_dashboard: u32,
}
