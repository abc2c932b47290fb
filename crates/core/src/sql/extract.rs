//! Query-time field extraction: pipe stages between the search and the SQL.
//!
//! `status:500 | json | logfmt | pattern "<ip> - - [<_>] \"<method> <path> <_>\"" |
//! regexp "took=(?P<took>\d+)ms" | SELECT method, avg(took) GROUP BY method`
//!
//! Every stage reads one field (the raw line `message` unless `from <field>`
//! follows it) and adds the fields it finds to the record, replacing fields of the
//! same name; the following stages, `WHERE`, `GROUP BY` and the rest of the
//! statement see them like stored fields. A line a stage cannot read (not JSON, no
//! pattern match) simply gains no fields.
//!
//! - `json`: the line's JSON object; nested objects become dotted names (`a.b`),
//!   arrays their JSON text.
//! - `logfmt` (also `kv`): `key=value` and `key="quoted value"` pairs.
//! - `pattern "<name> literal <_>"`: literal text between captures, `<_>` skips.
//! - `regexp "(?P<name>...)"`: every named group.
//!
//! In a quoted stage argument `\"` is a quote and `\\` a backslash; any other
//! backslash is kept, so regular expressions need no double escaping.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value as Json};

use super::{split_pipe, SqlError};
use crate::record::MESSAGE_FIELD;

/// Compiled size bound of a stage's regular expression.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Fields one stage may add to a record; a line with more is read up to here.
const MAX_EXTRACTED_FIELDS: usize = 256;

/// What a stage extracts.
#[derive(Debug, Clone)]
pub enum StageKind {
    /// The line as JSON.
    Json,
    /// logfmt / key=value pairs.
    Logfmt,
    /// A named pattern or regular expression: its named groups.
    Captures(Box<Regex>),
}

/// One extraction stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// What it extracts.
    pub kind: StageKind,
    /// The field it reads.
    pub from: String,
}

/// A request split into the search, the extraction stages and the SQL.
#[derive(Debug, Clone)]
pub struct Pipeline<'a> {
    /// The search before the first pipe.
    pub query: &'a str,
    /// Extraction stages, in order.
    pub stages: Vec<Stage>,
    /// The SQL statement (`None`: the pipeline ends with a stage, read as
    /// `SELECT *`).
    pub sql: Option<&'a str>,
    /// Character offset of `sql` in the whole text.
    pub sql_offset: usize,
}

/// Splits `text` into its search, stages and SQL. `None` when there is no pipe.
///
/// # Errors
/// An [`SqlError`] for a stage that is not known or not valid, with its position
/// in `text`.
pub fn split_pipeline(text: &str) -> Result<Option<Pipeline<'_>>, SqlError> {
    let Some(first) = split_pipe(text) else {
        return Ok(None);
    };
    let mut pipeline = Pipeline {
        query: first.query,
        stages: Vec::new(),
        sql: None,
        sql_offset: first.sql_offset,
    };
    let mut rest = first.sql;
    let mut offset = first.sql_offset;
    loop {
        if starts_with_keyword(rest, "select") || starts_with_keyword(rest, "with") {
            pipeline.sql = Some(rest);
            pipeline.sql_offset = offset;
            return Ok(Some(pipeline));
        }
        let (stage_text, next) = match split_pipe(rest) {
            Some(split) => (split.query, Some((split.sql, split.sql_offset))),
            None => (rest, None),
        };
        pipeline.stages.push(parse_stage(stage_text, offset)?);
        match next {
            Some((sql, sql_offset)) => {
                rest = sql;
                offset += sql_offset;
            }
            None => return Ok(Some(pipeline)),
        }
    }
}

fn starts_with_keyword(text: &str, keyword: &str) -> bool {
    let trimmed = text.trim_start();
    // Compared as bytes: the text may hold a multi-byte character where the
    // keyword ends, and a str slice there would panic.
    trimmed.len() >= keyword.len()
        && trimmed.as_bytes()[..keyword.len()].eq_ignore_ascii_case(keyword.as_bytes())
        && !trimmed
            .get(keyword.len()..)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Reads one stage; `offset` is its character position in the whole request.
fn parse_stage(text: &str, offset: usize) -> Result<Stage, SqlError> {
    let leading = text.chars().take_while(|c| c.is_whitespace()).count();
    let body = text.trim_start();
    let start = offset + leading;
    let name_len = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .count();
    let name: String = body.chars().take(name_len).collect();
    let mut cursor = Cursor {
        chars: body.chars().collect(),
        index: name_len,
        offset: start,
    };
    let kind = match name.to_ascii_lowercase().as_str() {
        "json" => StageKind::Json,
        "logfmt" | "kv" => StageKind::Logfmt,
        "pattern" => {
            let (pattern, at) = cursor.quoted("pattern")?;
            StageKind::Captures(Box::new(compile_pattern(&pattern, at)?))
        }
        "regexp" => {
            let (pattern, at) = cursor.quoted("regexp")?;
            let regex = compile_regex(&pattern, at)?;
            if regex.capture_names().flatten().next().is_none() {
                return Err(SqlError::at(
                    "regexp needs at least one named group, e.g. `(?P<took>\\d+)`",
                    Some(at),
                ));
            }
            StageKind::Captures(Box::new(regex))
        }
        "" => {
            return Err(SqlError::at(
                "expected a stage (json, logfmt, pattern, regexp) or SELECT after `|`",
                Some(start),
            ))
        }
        other => {
            return Err(SqlError::at(
                format!(
                    "unknown stage `{other}`; after `|` come json, logfmt, kv, pattern \"...\", regexp \"...\" or SELECT"
                ),
                Some(start),
            ))
        }
    };
    let from = cursor.source_field()?;
    cursor.end()?;
    Ok(Stage { kind, from })
}

struct Cursor {
    chars: Vec<char>,
    index: usize,
    offset: usize,
}

impl Cursor {
    fn skip_space(&mut self) {
        while self
            .chars
            .get(self.index)
            .is_some_and(|c| c.is_whitespace())
        {
            self.index += 1;
        }
    }

    fn position(&self) -> usize {
        self.offset + self.index
    }

    /// A double-quoted argument and the position of its first character.
    fn quoted(&mut self, stage: &str) -> Result<(String, usize), SqlError> {
        self.skip_space();
        if self.chars.get(self.index) != Some(&'"') {
            return Err(SqlError::at(
                format!("{stage} needs a double-quoted argument"),
                Some(self.position()),
            ));
        }
        let open = self.position();
        self.index += 1;
        let at = self.position();
        let mut out = String::new();
        loop {
            match self.chars.get(self.index) {
                None => {
                    return Err(SqlError::at(
                        format!("unclosed quote in the {stage} stage"),
                        Some(open),
                    ))
                }
                Some('"') => {
                    self.index += 1;
                    return Ok((out, at));
                }
                Some('\\') => match self.chars.get(self.index + 1) {
                    Some(c @ ('"' | '\\')) => {
                        out.push(*c);
                        self.index += 2;
                    }
                    _ => {
                        out.push('\\');
                        self.index += 1;
                    }
                },
                Some(c) => {
                    out.push(*c);
                    self.index += 1;
                }
            }
        }
    }

    /// `from <field>`, or the raw line.
    fn source_field(&mut self) -> Result<String, SqlError> {
        self.skip_space();
        let word: String = self.chars[self.index..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        if !word.eq_ignore_ascii_case("from") {
            return Ok(MESSAGE_FIELD.to_string());
        }
        self.index += word.chars().count();
        self.skip_space();
        let field: String = self.chars[self.index..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'))
            .collect();
        if field.is_empty() {
            return Err(SqlError::at(
                "`from` needs a field name",
                Some(self.position()),
            ));
        }
        self.index += field.chars().count();
        Ok(field)
    }

    fn end(&mut self) -> Result<(), SqlError> {
        self.skip_space();
        match self.chars.get(self.index) {
            None => Ok(()),
            Some(_) => Err(SqlError::at(
                "unexpected text after the stage; stages are separated by `|`",
                Some(self.position()),
            )),
        }
    }
}

/// Compiles a regular expression with a bounded size; an invalid one is an error
/// at the position of the offending character (`at` is the pattern's first).
///
/// # Errors
/// The regex crate's message, with the position.
pub fn compile_regex(pattern: &str, at: usize) -> Result<Regex, SqlError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| {
            let text = error.to_string();
            let column = caret_column(&text);
            let reason = text
                .lines()
                .rev()
                .find(|line| line.starts_with("error:"))
                .map(|line| line.trim_start_matches("error:").trim().to_string())
                .unwrap_or_else(|| text.lines().last().unwrap_or_default().to_string());
            SqlError::at(
                format!("invalid regular expression `{pattern}`: {reason}"),
                Some(at + column.unwrap_or(0)),
            )
        })
}

/// The column of the `^` the regex crate puts under the offending character.
fn caret_column(message: &str) -> Option<usize> {
    let lines: Vec<&str> = message.lines().collect();
    let caret = lines
        .iter()
        .position(|line| line.trim_start().starts_with('^'))?;
    let pattern_line = lines.get(caret.checked_sub(1)?)?;
    let indent = pattern_line.len() - pattern_line.trim_start().len();
    let caret_line = lines[caret];
    let caret_at = caret_line.find('^')?;
    Some(caret_at.saturating_sub(indent))
}

/// `<name>` captures, `<_>` skipped, literal text between them; the last capture
/// takes the rest of the line.
fn compile_pattern(pattern: &str, at: usize) -> Result<Regex, SqlError> {
    let mut regex = String::from("^");
    let mut named = 0;
    let mut rest = pattern;
    let mut consumed = 0;
    let mut previous_was_capture = false;
    while !rest.is_empty() {
        match rest.find('<') {
            Some(open) => {
                if open > 0 {
                    regex.push_str(&regex::escape(&rest[..open]));
                    previous_was_capture = false;
                }
                let Some(close) = rest[open..].find('>') else {
                    regex.push_str(&regex::escape(&rest[open..]));
                    break;
                };
                let name = &rest[open + 1..open + close];
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    // Not a capture: literal `<...>` text.
                    regex.push_str(&regex::escape(&rest[..open + close + 1]));
                } else {
                    if previous_was_capture {
                        return Err(SqlError::at(
                            "pattern captures must be separated by literal text",
                            Some(at + pattern[..consumed + open].chars().count()),
                        ));
                    }
                    let last = rest[open + close + 1..].is_empty();
                    let body = if last { ".*" } else { ".*?" };
                    if name == "_" {
                        regex.push_str(&format!("(?:{body})"));
                    } else {
                        named += 1;
                        regex.push_str(&format!("(?P<{name}>{body})"));
                    }
                    previous_was_capture = true;
                }
                consumed += open + close + 1;
                rest = &rest[open + close + 1..];
            }
            None => {
                regex.push_str(&regex::escape(rest));
                break;
            }
        }
    }
    if named == 0 {
        return Err(SqlError::at(
            "pattern needs at least one named capture like `<status>`",
            Some(at),
        ));
    }
    compile_regex(&regex, at)
        .map_err(|error| SqlError::at(format!("invalid pattern: {}", error.message), Some(at)))
}

impl Stage {
    /// Adds the fields this stage finds in `fields[from]`.
    pub fn apply(&self, fields: &mut Map<String, Json>) {
        let Some(Json::String(line)) = fields.get(&self.from) else {
            return;
        };
        let mut found: Vec<(String, Json)> = Vec::new();
        match &self.kind {
            StageKind::Json => {
                if let Ok(Json::Object(object)) = serde_json::from_str::<Json>(line) {
                    flatten("", object, &mut found);
                }
            }
            StageKind::Logfmt => logfmt(line, &mut found),
            StageKind::Captures(regex) => {
                if let Some(captures) = regex.captures(line) {
                    for name in regex.capture_names().flatten() {
                        if let Some(value) = captures.name(name) {
                            found.push((name.to_string(), Json::String(value.as_str().into())));
                        }
                    }
                }
            }
        }
        for (name, value) in found.into_iter().take(MAX_EXTRACTED_FIELDS) {
            fields.insert(name, value);
        }
    }
}

fn flatten(prefix: &str, object: Map<String, Json>, out: &mut Vec<(String, Json)>) {
    // Iterative, so a deeply nested line cannot overflow the stack.
    let mut stack = vec![(prefix.to_string(), object)];
    while let Some((prefix, object)) = stack.pop() {
        for (key, value) in object {
            if out.len() >= MAX_EXTRACTED_FIELDS {
                return;
            }
            let name = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Json::Object(inner) => stack.push((name, inner)),
                Json::Array(_) => out.push((name, Json::String(value.to_string()))),
                scalar => out.push((name, scalar)),
            }
        }
    }
}

/// `key=value key2="quoted \" value" flag`; a bare key gets an empty value.
fn logfmt(line: &str, out: &mut Vec<(String, Json)>) {
    let chars: Vec<char> = line.chars().collect();
    let mut index = 0;
    while index < chars.len() && out.len() < MAX_EXTRACTED_FIELDS {
        while index < chars.len() && chars[index].is_whitespace() {
            index += 1;
        }
        let key_start = index;
        while index < chars.len() && !chars[index].is_whitespace() && chars[index] != '=' {
            index += 1;
        }
        let key: String = chars[key_start..index].iter().collect();
        let mut value = String::new();
        if index < chars.len() && chars[index] == '=' {
            index += 1;
            if index < chars.len() && chars[index] == '"' {
                index += 1;
                while index < chars.len() && chars[index] != '"' {
                    if chars[index] == '\\' && index + 1 < chars.len() {
                        index += 1;
                    }
                    value.push(chars[index]);
                    index += 1;
                }
                index += 1;
            } else {
                while index < chars.len() && !chars[index].is_whitespace() {
                    value.push(chars[index]);
                    index += 1;
                }
            }
        }
        let valid_key = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if valid_key {
            out.push((key, Json::String(value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stage_text: &str, line: &str) -> Map<String, Json> {
        let stage = parse_stage(stage_text, 0).expect("stage");
        let mut fields = Map::new();
        fields.insert("message".into(), Json::String(line.into()));
        stage.apply(&mut fields);
        fields
    }

    #[test]
    fn test_keywords_next_to_multibyte_characters() {
        for text in [
            "SELE\u{1059}T avg(x)",
            "\u{1574}\u{1f980}' | SELECT",
            "es\u{871}h",
            "js\u{1f980}",
        ] {
            assert!(!starts_with_keyword(text, "SELECT"), "{text}");
            assert!(!starts_with_keyword(text, "json"), "{text}");
        }
        assert!(starts_with_keyword("  select\u{1f980}", "SELECT"));
    }

    #[test]
    fn test_pipeline_splits_stages_and_sql() {
        let text = r#"status:500 | json | pattern "<a> <b>" | SELECT a || b"#;
        let pipeline = split_pipeline(text).expect("valid").expect("pipe");
        assert_eq!(pipeline.query, "status:500 ");
        assert_eq!(pipeline.stages.len(), 2);
        assert_eq!(pipeline.sql, Some(" SELECT a || b"));
        assert_eq!(
            &text.chars().skip(pipeline.sql_offset).collect::<String>(),
            " SELECT a || b"
        );
        let error = split_pipeline("x | jsn | SELECT 1").expect_err("unknown stage");
        assert_eq!(error.position, Some(4));
    }

    #[test]
    fn test_json_logfmt_pattern_and_regexp_stages() {
        let fields = run("json", r#"{"a":{"b":1},"c":"x","d":[1,2]}"#);
        assert_eq!(fields["a.b"], Json::from(1));
        assert_eq!(fields["d"], Json::String("[1,2]".into()));
        let fields = run("logfmt", r#"level=info msg="hello \"you\"" took=12ms"#);
        assert_eq!(fields["msg"], Json::String("hello \"you\"".into()));
        assert_eq!(fields["took"], Json::String("12ms".into()));
        let fields = run(
            r#"pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <size>""#,
            r#"10.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET /a/b HTTP/1.1" 404 512"#,
        );
        assert_eq!(fields["ip"], Json::String("10.0.0.1".into()));
        assert_eq!(fields["path"], Json::String("/a/b".into()));
        assert_eq!(fields["size"], Json::String("512".into()));
        let fields = run(r#"regexp "took=(?P<took>\d+)ms""#, "x took=42ms");
        assert_eq!(fields["took"], Json::String("42".into()));
    }

    #[test]
    fn test_invalid_regexp_is_an_error_at_its_position() {
        let error = split_pipeline(r#"* | regexp "(?P<x>a(b" | SELECT 1"#).expect_err("invalid");
        assert!(
            error.message.contains("invalid regular expression"),
            "{error:?}"
        );
        assert!(error.position.is_some_and(|p| p >= 12), "{error:?}");
    }
}
