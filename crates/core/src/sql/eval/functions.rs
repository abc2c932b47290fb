//! Scalar functions. A function over a value of the wrong type (or a NULL) answers
//! NULL; only a result larger than the statement's value limit is an error.

use std::net::IpAddr;

use regex::Regex;
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::expr::{check_size, truth, CastType, EvalContext};
use super::value::{format_float, sort_compare, Val};
use super::EvalError;

const NS_PER_SECOND: i64 = 1_000_000_000;

/// A scalar function, resolved at plan time (regular expressions compiled).
#[derive(Debug, Clone)]
pub enum Func {
    /// `if(cond, a[, b])`
    If,
    /// `coalesce(a, ...)`
    Coalesce,
    /// `nullif(a, b)`
    NullIf,
    /// `lower(s)`
    Lower,
    /// `upper(s)`
    Upper,
    /// `length(s)` in characters
    Length,
    /// `substr(s, start[, len])`, 1-based
    Substr,
    /// `concat(a, ...)`, NULLs skipped
    Concat,
    /// `trim(s)`
    Trim,
    /// `ltrim(s)`
    Ltrim,
    /// `rtrim(s)`
    Rtrim,
    /// `replace(s, from, to)`
    Replace,
    /// `split_part(s, delimiter, index)`, 1-based
    SplitPart,
    /// `strpos(s, sub)` / `position(sub IN s)`, 1-based, 0 when absent
    Position,
    /// `starts_with(s, prefix)`
    StartsWith,
    /// `ends_with(s, suffix)`
    EndsWith,
    /// `reverse(s)`
    Reverse,
    /// `regexp_like(s, pattern)`
    RegexpLike(Box<Regex>),
    /// `regexp_extract(s, pattern[, group])`
    RegexpExtract(Box<Regex>),
    /// `regexp_replace(s, pattern[, replacement])`, every match
    RegexpReplace(Box<Regex>),
    /// `json_extract(s, path)`: JSON text
    JsonExtract(JsonPath),
    /// `json_extract_scalar(s, path)`: the scalar as text
    JsonExtractScalar(JsonPath),
    /// `json_array_length(s)`
    JsonArrayLength,
    /// `url_extract_host(url)`
    UrlHost,
    /// `url_extract_path(url)`
    UrlPath,
    /// `url_extract_protocol(url)`
    UrlProtocol,
    /// `url_extract_port(url)`
    UrlPort,
    /// `url_extract_query(url)`
    UrlQuery,
    /// `url_extract_parameter(url, name)`
    UrlParameter,
    /// `ip_in_cidr(ip, cidr)`
    IpInCidr,
    /// `ip_prefix(ip, bits)`
    IpPrefix,
    /// `date_trunc(unit, t)`
    DateTrunc,
    /// `time_bucket(interval_ns, t)`: the interval is resolved at plan time
    TimeBucket(i64),
    /// `from_unixtime(seconds)`
    FromUnixtime,
    /// `to_unixtime(t)`
    ToUnixtime,
    /// `date_format(t, format)`, MySQL-style specifiers
    DateFormat,
    /// `now()`
    Now,
    /// `date_add(unit, n, t)`
    DateAdd,
    /// `date_diff(unit, t1, t2)`
    DateDiff,
    /// `abs(x)`
    Abs,
    /// `round(x[, digits])`
    Round,
    /// `floor(x)`
    Floor,
    /// `ceil(x)`
    Ceil,
    /// `ln(x)`
    Ln,
    /// `log10(x)`
    Log10,
    /// `log2(x)`
    Log2,
    /// `exp(x)`
    Exp,
    /// `sqrt(x)`
    Sqrt,
    /// `pow(x, y)`
    Pow,
    /// `sign(x)`
    Sign,
    /// `mod(x, y)`
    Mod,
    /// `greatest(a, ...)`
    Greatest,
    /// `least(a, ...)`
    Least,
    /// `width_bucket(x, low, high, count)`
    WidthBucket,
}

/// Resolves a function name to the function and its allowed argument counts
/// (`None` when the name is not a scalar function). Functions that need their
/// constant arguments compiled (regular expressions, JSON paths, intervals) are
/// built by the compiler instead and are listed here only for their arity.
pub fn lookup(name: &str) -> Option<(Option<Func>, usize, usize)> {
    let many = usize::MAX;
    Some(match name {
        "if" => (Some(Func::If), 2, 3),
        "coalesce" => (Some(Func::Coalesce), 1, many),
        "nullif" => (Some(Func::NullIf), 2, 2),
        "lower" | "lcase" => (Some(Func::Lower), 1, 1),
        "upper" | "ucase" => (Some(Func::Upper), 1, 1),
        "length" | "char_length" | "character_length" => (Some(Func::Length), 1, 1),
        "substr" | "substring" => (Some(Func::Substr), 2, 3),
        "concat" => (Some(Func::Concat), 1, many),
        "trim" => (Some(Func::Trim), 1, 1),
        "ltrim" => (Some(Func::Ltrim), 1, 1),
        "rtrim" => (Some(Func::Rtrim), 1, 1),
        "replace" => (Some(Func::Replace), 3, 3),
        "split_part" => (Some(Func::SplitPart), 3, 3),
        "strpos" | "instr" => (Some(Func::Position), 2, 2),
        "starts_with" => (Some(Func::StartsWith), 2, 2),
        "ends_with" => (Some(Func::EndsWith), 2, 2),
        "reverse" => (Some(Func::Reverse), 1, 1),
        "regexp_like" => (None, 2, 2),
        "regexp_extract" => (None, 2, 3),
        "regexp_replace" => (None, 2, 3),
        "json_extract" => (None, 2, 2),
        "json_extract_scalar" => (None, 2, 2),
        "json_array_length" => (Some(Func::JsonArrayLength), 1, 1),
        "url_extract_host" => (Some(Func::UrlHost), 1, 1),
        "url_extract_path" => (Some(Func::UrlPath), 1, 1),
        "url_extract_protocol" => (Some(Func::UrlProtocol), 1, 1),
        "url_extract_port" => (Some(Func::UrlPort), 1, 1),
        "url_extract_query" => (Some(Func::UrlQuery), 1, 1),
        "url_extract_parameter" => (Some(Func::UrlParameter), 2, 2),
        "ip_in_cidr" => (Some(Func::IpInCidr), 2, 2),
        "ip_prefix" => (Some(Func::IpPrefix), 2, 2),
        "date_trunc" => (Some(Func::DateTrunc), 2, 2),
        "time_bucket" => (None, 2, 2),
        "from_unixtime" => (Some(Func::FromUnixtime), 1, 1),
        "to_unixtime" => (Some(Func::ToUnixtime), 1, 1),
        "date_format" => (Some(Func::DateFormat), 2, 2),
        "now" | "current_timestamp" => (Some(Func::Now), 0, 0),
        "date_add" => (Some(Func::DateAdd), 3, 3),
        "date_diff" | "datediff" => (Some(Func::DateDiff), 3, 3),
        "abs" => (Some(Func::Abs), 1, 1),
        "round" => (Some(Func::Round), 1, 2),
        "floor" => (Some(Func::Floor), 1, 1),
        "ceil" | "ceiling" => (Some(Func::Ceil), 1, 1),
        "ln" => (Some(Func::Ln), 1, 1),
        "log10" => (Some(Func::Log10), 1, 1),
        "log2" => (Some(Func::Log2), 1, 1),
        "exp" => (Some(Func::Exp), 1, 1),
        "sqrt" => (Some(Func::Sqrt), 1, 1),
        "pow" | "power" => (Some(Func::Pow), 2, 2),
        "sign" => (Some(Func::Sign), 1, 1),
        "mod" => (Some(Func::Mod), 2, 2),
        "greatest" => (Some(Func::Greatest), 1, many),
        "least" => (Some(Func::Least), 1, many),
        "width_bucket" => (Some(Func::WidthBucket), 4, 4),
        _ => return None,
    })
}

/// Every scalar function name, for help texts and error messages.
pub const SCALAR_FUNCTIONS: &[&str] = &[
    "if",
    "coalesce",
    "nullif",
    "lower",
    "upper",
    "length",
    "substr",
    "concat",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "split_part",
    "strpos",
    "position",
    "starts_with",
    "ends_with",
    "reverse",
    "regexp_like",
    "regexp_extract",
    "regexp_replace",
    "json_extract",
    "json_extract_scalar",
    "json_array_length",
    "url_extract_host",
    "url_extract_path",
    "url_extract_protocol",
    "url_extract_port",
    "url_extract_query",
    "url_extract_parameter",
    "ip_in_cidr",
    "ip_prefix",
    "date_trunc",
    "time_bucket",
    "from_unixtime",
    "to_unixtime",
    "date_format",
    "now",
    "date_add",
    "date_diff",
    "abs",
    "round",
    "floor",
    "ceil",
    "ln",
    "log10",
    "log2",
    "exp",
    "sqrt",
    "pow",
    "sign",
    "mod",
    "greatest",
    "least",
    "width_bucket",
];

fn text(value: &Val) -> Option<std::borrow::Cow<'_, str>> {
    value.as_text()
}

fn string(value: String, function: &str, ctx: &EvalContext) -> Result<Val, EvalError> {
    check_size(value.len(), function, ctx)?;
    Ok(Val::Str(value))
}

fn float(x: f64) -> Val {
    if x.is_finite() {
        Val::Float(x)
    } else {
        Val::Null
    }
}

fn math(args: &[Val], f: impl Fn(f64) -> f64) -> Val {
    match args.first().and_then(Val::as_f64) {
        Some(x) => float(f(x)),
        None => Val::Null,
    }
}

/// Rounds integers to themselves; doubles with `f`.
fn integral(args: &[Val], f: impl Fn(f64) -> f64) -> Val {
    match args.first() {
        Some(Val::Int(i)) => Val::Int(*i),
        Some(value) => match value.as_f64() {
            Some(x) => float(f(x)),
            None => Val::Null,
        },
        None => Val::Null,
    }
}

impl Func {
    /// Calls the function on evaluated arguments.
    ///
    /// # Errors
    /// [`EvalError::ValueTooLarge`] for a string over the value limit.
    pub fn call(&self, args: &[Val], ctx: &EvalContext) -> Result<Val, EvalError> {
        let arg = |n: usize| args.get(n).unwrap_or(&Val::Null);
        Ok(match self {
            Func::If => match truth(arg(0)) {
                Some(true) => arg(1).clone(),
                _ => arg(2).clone(),
            },
            Func::Coalesce => args
                .iter()
                .find(|value| !value.is_null())
                .cloned()
                .unwrap_or(Val::Null),
            Func::NullIf => {
                if super::value::sql_compare(arg(0), arg(1)) == Some(std::cmp::Ordering::Equal) {
                    Val::Null
                } else {
                    arg(0).clone()
                }
            }
            Func::Lower => map_text(arg(0), |s| s.to_lowercase()),
            Func::Upper => map_text(arg(0), |s| s.to_uppercase()),
            Func::Length => match text(arg(0)) {
                Some(s) => Val::Int(s.chars().count() as i64),
                None => Val::Null,
            },
            Func::Substr => {
                let (Some(s), Some(start)) = (text(arg(0)), arg(1).as_i64()) else {
                    return Ok(Val::Null);
                };
                let length = match args.get(2) {
                    Some(value) => match value.as_i64() {
                        Some(length) => Some(length),
                        None => return Ok(Val::Null),
                    },
                    None => None,
                };
                Val::Str(substr(&s, start, length))
            }
            Func::Concat => {
                let mut out = String::new();
                for value in args {
                    if let Some(s) = text(value) {
                        out.push_str(&s);
                        check_size(out.len(), "concat", ctx)?;
                    }
                }
                Val::Str(out)
            }
            Func::Trim => map_text(arg(0), |s| s.trim().to_string()),
            Func::Ltrim => map_text(arg(0), |s| s.trim_start().to_string()),
            Func::Rtrim => map_text(arg(0), |s| s.trim_end().to_string()),
            Func::Replace => match (text(arg(0)), text(arg(1)), text(arg(2))) {
                (Some(s), Some(from), Some(to)) if !from.is_empty() => {
                    let count = s.matches(from.as_ref()).count();
                    check_size(
                        s.len() + count * to.len().saturating_sub(from.len()),
                        "replace",
                        ctx,
                    )?;
                    Val::Str(s.replace(from.as_ref(), &to))
                }
                (Some(s), Some(_), Some(_)) => Val::Str(s.into_owned()),
                _ => Val::Null,
            },
            Func::SplitPart => match (text(arg(0)), text(arg(1)), arg(2).as_i64()) {
                (Some(s), Some(delimiter), Some(index)) if index >= 1 => {
                    let part = if delimiter.is_empty() {
                        (index == 1).then(|| s.to_string())
                    } else {
                        s.split(delimiter.as_ref())
                            .nth(index as usize - 1)
                            .map(str::to_string)
                    };
                    Val::Str(part.unwrap_or_default())
                }
                _ => Val::Null,
            },
            Func::Position => match (text(arg(0)), text(arg(1))) {
                (Some(s), Some(sub)) => Val::Int(match s.find(sub.as_ref()) {
                    Some(byte) => s[..byte].chars().count() as i64 + 1,
                    None => 0,
                }),
                _ => Val::Null,
            },
            Func::StartsWith => match (text(arg(0)), text(arg(1))) {
                (Some(s), Some(prefix)) => Val::Bool(s.starts_with(prefix.as_ref())),
                _ => Val::Null,
            },
            Func::EndsWith => match (text(arg(0)), text(arg(1))) {
                (Some(s), Some(suffix)) => Val::Bool(s.ends_with(suffix.as_ref())),
                _ => Val::Null,
            },
            Func::Reverse => map_text(arg(0), |s| s.chars().rev().collect()),
            Func::RegexpLike(regex) => match text(arg(0)) {
                Some(s) => Val::Bool(regex.is_match(&s)),
                None => Val::Null,
            },
            Func::RegexpExtract(regex) => {
                let Some(s) = text(arg(0)) else {
                    return Ok(Val::Null);
                };
                let group = match args.get(2) {
                    Some(value) => match value.as_i64() {
                        Some(group) if group >= 0 => group as usize,
                        _ => return Ok(Val::Null),
                    },
                    None => 0,
                };
                match regex.captures(&s).and_then(|captures| captures.get(group)) {
                    Some(found) => Val::Str(found.as_str().to_string()),
                    None => Val::Null,
                }
            }
            Func::RegexpReplace(regex) => {
                let Some(s) = text(arg(0)) else {
                    return Ok(Val::Null);
                };
                let replacement = match args.get(2) {
                    Some(value) => match text(value) {
                        Some(r) => r.into_owned(),
                        None => return Ok(Val::Null),
                    },
                    None => String::new(),
                };
                // Built match by match, so a huge output stops at the limit instead
                // of being allocated first.
                let mut out = String::with_capacity(s.len());
                let mut last = 0;
                for captures in regex.captures_iter(&s) {
                    let Some(whole) = captures.get(0) else {
                        continue;
                    };
                    out.push_str(&s[last..whole.start()]);
                    captures.expand(&replacement, &mut out);
                    last = whole.end();
                    check_size(out.len(), "regexp_replace", ctx)?;
                }
                out.push_str(&s[last..]);
                string(out, "regexp_replace", ctx)?
            }
            Func::JsonExtract(path) => match parse_json(arg(0)).and_then(|json| path.find(&json)) {
                Some(found) => Val::Str(found.to_string()),
                None => Val::Null,
            },
            Func::JsonExtractScalar(path) => {
                match parse_json(arg(0)).and_then(|json| path.find(&json)) {
                    Some(Json::String(s)) => Val::Str(s),
                    Some(Json::Number(n)) => Val::Str(n.to_string()),
                    Some(Json::Bool(b)) => Val::Str(b.to_string()),
                    _ => Val::Null,
                }
            }
            Func::JsonArrayLength => match parse_json(arg(0)) {
                Some(Json::Array(items)) => Val::Int(items.len() as i64),
                _ => Val::Null,
            },
            Func::UrlHost => url_part(arg(0), |url| url.host.map(str::to_string)),
            Func::UrlPath => url_part(arg(0), |url| Some(url.path.to_string())),
            Func::UrlProtocol => url_part(arg(0), |url| url.scheme.map(str::to_string)),
            Func::UrlQuery => url_part(arg(0), |url| url.query.map(str::to_string)),
            Func::UrlPort => match text(arg(0)) {
                Some(s) => match Url::parse(&s).port.and_then(|p| p.parse::<i64>().ok()) {
                    Some(port) => Val::Int(port),
                    None => Val::Null,
                },
                None => Val::Null,
            },
            Func::UrlParameter => match (text(arg(0)), text(arg(1))) {
                (Some(s), Some(name)) => {
                    let url = Url::parse(&s);
                    url.query
                        .into_iter()
                        .flat_map(|query| query.split('&'))
                        .find_map(|pair| {
                            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                            (percent_decode(key) == name.as_ref()).then(|| percent_decode(value))
                        })
                        .map(Val::Str)
                        .unwrap_or(Val::Null)
                }
                _ => Val::Null,
            },
            Func::IpInCidr => match (text(arg(0)), text(arg(1))) {
                (Some(ip), Some(cidr)) => match (ip.trim().parse::<IpAddr>(), parse_cidr(&cidr)) {
                    (Ok(ip), Some((network, bits))) => {
                        match (mask(ip, bits), mask(network, bits)) {
                            (Some(a), Some(b)) => Val::Bool(a == b),
                            _ => Val::Bool(false),
                        }
                    }
                    _ => Val::Null,
                },
                _ => Val::Null,
            },
            Func::IpPrefix => match (text(arg(0)), arg(1).as_i64()) {
                (Some(ip), Some(bits)) if (0..=128).contains(&bits) => {
                    match ip.trim().parse::<IpAddr>() {
                        Ok(ip) => match mask(ip, bits as u32) {
                            Some(network) => Val::Str(format!("{network}/{bits}")),
                            None => Val::Null,
                        },
                        Err(_) => Val::Null,
                    }
                }
                _ => Val::Null,
            },
            Func::DateTrunc => match (text(arg(0)), time_of(arg(1))) {
                (Some(unit), Some(t)) => truncate(t, &unit).map(Val::Time).unwrap_or(Val::Null),
                _ => Val::Null,
            },
            Func::TimeBucket(interval) => match time_of(arg(1)) {
                Some(t) => Val::Time(t.div_euclid(*interval) * interval),
                None => Val::Null,
            },
            Func::FromUnixtime => match arg(0).as_f64() {
                Some(seconds) if seconds.abs() < 9.2e9 => {
                    Val::Time((seconds * NS_PER_SECOND as f64).round() as i64)
                }
                _ => Val::Null,
            },
            Func::ToUnixtime => match time_of(arg(0)) {
                Some(t) => Val::Float(t as f64 / NS_PER_SECOND as f64),
                None => Val::Null,
            },
            Func::DateFormat => match (time_of(arg(0)), text(arg(1))) {
                (Some(t), Some(format)) => {
                    check_size(format.len() * 16, "date_format", ctx)?;
                    date_format(t, &format).map(Val::Str).unwrap_or(Val::Null)
                }
                _ => Val::Null,
            },
            Func::Now => Val::Time(ctx.now_ns),
            Func::DateAdd => match (text(arg(0)), arg(1).as_i64(), time_of(arg(2))) {
                (Some(unit), Some(n), Some(t)) => {
                    date_add(t, &unit, n).map(Val::Time).unwrap_or(Val::Null)
                }
                _ => Val::Null,
            },
            Func::DateDiff => match (text(arg(0)), time_of(arg(1)), time_of(arg(2))) {
                (Some(unit), Some(a), Some(b)) => {
                    date_diff(&unit, a, b).map(Val::Int).unwrap_or(Val::Null)
                }
                _ => Val::Null,
            },
            Func::Abs => match arg(0) {
                Val::Int(i) => i.checked_abs().map(Val::Int).unwrap_or(Val::Null),
                other => math(std::slice::from_ref(other), f64::abs),
            },
            Func::Round => {
                let digits = match args.get(1) {
                    Some(value) => match value.as_i64() {
                        Some(d) => d.clamp(-18, 18) as i32,
                        None => return Ok(Val::Null),
                    },
                    None => 0,
                };
                match arg(0) {
                    Val::Int(i) if digits >= 0 => Val::Int(*i),
                    value => match value.as_f64() {
                        Some(x) => {
                            let scale = 10f64.powi(digits);
                            float((x * scale).round() / scale)
                        }
                        None => Val::Null,
                    },
                }
            }
            Func::Floor => integral(args, f64::floor),
            Func::Ceil => integral(args, f64::ceil),
            Func::Ln => math(args, |x| if x > 0.0 { x.ln() } else { f64::NAN }),
            Func::Log10 => math(args, |x| if x > 0.0 { x.log10() } else { f64::NAN }),
            Func::Log2 => math(args, |x| if x > 0.0 { x.log2() } else { f64::NAN }),
            Func::Exp => math(args, f64::exp),
            Func::Sqrt => math(args, |x| if x >= 0.0 { x.sqrt() } else { f64::NAN }),
            Func::Pow => match (arg(0).as_f64(), arg(1).as_f64()) {
                (Some(x), Some(y)) => float(x.powf(y)),
                _ => Val::Null,
            },
            Func::Sign => match arg(0) {
                Val::Int(i) => Val::Int(i.signum()),
                other => math(std::slice::from_ref(other), |x| {
                    if x == 0.0 {
                        0.0
                    } else {
                        x.signum()
                    }
                }),
            },
            Func::Mod => match (arg(0), arg(1)) {
                (Val::Int(x), Val::Int(y)) => x.checked_rem(*y).map(Val::Int).unwrap_or(Val::Null),
                (a, b) => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) if y != 0.0 => float(x % y),
                    _ => Val::Null,
                },
            },
            Func::Greatest | Func::Least => {
                let greatest = matches!(self, Func::Greatest);
                let mut best: Option<&Val> = None;
                for value in args {
                    if value.is_null() {
                        continue;
                    }
                    best = Some(match best {
                        None => value,
                        Some(known) => {
                            let ordering = sort_compare(value, known);
                            if (greatest && ordering.is_gt()) || (!greatest && ordering.is_lt()) {
                                value
                            } else {
                                known
                            }
                        }
                    });
                }
                best.cloned().unwrap_or(Val::Null)
            }
            Func::WidthBucket => match (
                arg(0).as_f64(),
                arg(1).as_f64(),
                arg(2).as_f64(),
                arg(3).as_i64(),
            ) {
                (Some(x), Some(low), Some(high), Some(count)) if count > 0 && low < high => {
                    Val::Int(if x < low {
                        0
                    } else if x >= high {
                        count + 1
                    } else {
                        ((x - low) / (high - low) * count as f64).floor() as i64 + 1
                    })
                }
                _ => Val::Null,
            },
        })
    }
}

fn map_text(value: &Val, f: impl Fn(&str) -> String) -> Val {
    match value.as_text() {
        Some(s) => Val::Str(f(&s)),
        None => Val::Null,
    }
}

/// SQL `substr`: 1-based, a negative start counts from the end.
fn substr(s: &str, start: i64, length: Option<i64>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let count = chars.len() as i64;
    let begin = if start > 0 {
        start - 1
    } else if start < 0 {
        (count + start).max(0)
    } else {
        0
    };
    let end = match length {
        Some(length) if length < 0 => return String::new(),
        Some(length) => begin.saturating_add(length).min(count),
        None => count,
    };
    if begin >= end {
        return String::new();
    }
    chars[begin as usize..end as usize].iter().collect()
}

/// Converts a value for CAST; `None` when it cannot be converted.
pub fn cast(value: &Val, to: CastType) -> Option<Val> {
    Some(match (to, value) {
        (_, Val::Null) => Val::Null,
        (CastType::Int, Val::Bool(b)) => Val::Int(i64::from(*b)),
        (CastType::Int, Val::Float(x)) if x.is_finite() && x.abs() < 9.2e18 => {
            Val::Int(x.round() as i64)
        }
        (CastType::Int, Val::Time(t)) => Val::Int(*t),
        (CastType::Int, Val::Str(s)) => Val::Int(match s.trim().parse::<i64>() {
            Ok(i) => i,
            Err(_) => {
                let x = s.trim().parse::<f64>().ok()?;
                if !x.is_finite() || x.abs() >= 9.2e18 {
                    return None;
                }
                x.round() as i64
            }
        }),
        (CastType::Int, Val::Int(i)) => Val::Int(*i),
        (CastType::Int, Val::Float(_)) => return None,
        (CastType::Float, Val::Bool(b)) => Val::Float(f64::from(u8::from(*b))),
        (CastType::Float, Val::Time(t)) => Val::Float(*t as f64),
        (CastType::Float, other) => Val::Float(other.as_f64()?),
        (CastType::Str, other) => Val::Str(other.as_text()?.into_owned()),
        (CastType::Bool, Val::Bool(b)) => Val::Bool(*b),
        (CastType::Bool, Val::Int(i)) => Val::Bool(*i != 0),
        (CastType::Bool, Val::Float(x)) => Val::Bool(*x != 0.0),
        (CastType::Bool, Val::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => Val::Bool(true),
            "false" | "f" | "0" | "no" => Val::Bool(false),
            _ => return None,
        },
        (CastType::Bool, Val::Time(_)) => return None,
        (CastType::Time, Val::Time(t)) => Val::Time(*t),
        (CastType::Time, Val::Str(s)) => Val::Time(parse_time_text(s)?),
        (CastType::Time, _) => return None,
    })
}

/// A value as a time: timestamps, and strings in RFC 3339 (or `YYYY-MM-DD
/// HH:MM:SS[.f]`, or a bare date), read as UTC.
fn time_of(value: &Val) -> Option<i64> {
    match value {
        Val::Time(t) => Some(*t),
        Val::Str(s) => parse_time_text(s),
        _ => None,
    }
}

/// Parses RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` (UTC) or `YYYY-MM-DD`.
pub fn parse_time_text(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return i64::try_from(t.unix_timestamp_nanos()).ok();
    }
    let (date, clock) = match s.split_once([' ', 'T']) {
        Some((date, clock)) => (date, Some(clock)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let mut nanos: i64 = 0;
    if let Some(clock) = clock {
        let clock = clock.trim_end_matches('Z');
        let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
        let mut hms = hms.split(':');
        let hours: i64 = hms.next()?.parse().ok()?;
        let minutes: i64 = hms.next().unwrap_or("0").parse().ok()?;
        let seconds: i64 = hms.next().unwrap_or("0").parse().ok()?;
        if hours > 23 || minutes > 59 || seconds > 60 {
            return None;
        }
        let digits: String = fraction.chars().take(9).collect();
        let fraction_ns: i64 = if digits.is_empty() {
            0
        } else {
            format!("{digits:0<9}").parse().ok()?
        };
        nanos = ((hours * 60 + minutes) * 60 + seconds) * NS_PER_SECOND + fraction_ns;
    }
    let midnight = date.midnight().assume_utc().unix_timestamp_nanos();
    i64::try_from(midnight).ok()?.checked_add(nanos)
}

fn datetime(t: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t)).ok()
}

fn nanos(t: OffsetDateTime) -> Option<i64> {
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// `date_trunc`: every unit from millisecond to year; weeks start on Monday.
pub fn truncate(t: i64, unit: &str) -> Option<i64> {
    let fixed = |width: i64| Some(t.div_euclid(width) * width);
    match unit.to_ascii_lowercase().trim_end_matches('s') {
        "millisecond" => fixed(1_000_000),
        "second" => fixed(NS_PER_SECOND),
        "minute" => fixed(60 * NS_PER_SECOND),
        "hour" => fixed(3_600 * NS_PER_SECOND),
        "day" => fixed(86_400 * NS_PER_SECOND),
        "week" => {
            let day = datetime(fixed(86_400 * NS_PER_SECOND)?)?;
            let back = i64::from(day.weekday().number_days_from_monday());
            nanos(day - time::Duration::days(back))
        }
        "month" | "quarter" | "year" => {
            let dt = datetime(t)?;
            let month = match unit.to_ascii_lowercase().trim_end_matches('s') {
                "month" => dt.month() as u8,
                "quarter" => (dt.month() as u8 - 1) / 3 * 3 + 1,
                _ => 1,
            };
            let date =
                time::Date::from_calendar_date(dt.year(), time::Month::try_from(month).ok()?, 1)
                    .ok()?;
            nanos(date.midnight().assume_utc())
        }
        _ => None,
    }
}

fn unit_ns(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().trim_end_matches('s') {
        "millisecond" => 1_000_000,
        "second" => NS_PER_SECOND,
        "minute" => 60 * NS_PER_SECOND,
        "hour" => 3_600 * NS_PER_SECOND,
        "day" => 86_400 * NS_PER_SECOND,
        "week" => 7 * 86_400 * NS_PER_SECOND,
        _ => return None,
    })
}

fn months_of(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().trim_end_matches('s') {
        "month" => 1,
        "quarter" => 3,
        "year" => 12,
        _ => return None,
    })
}

fn date_add(t: i64, unit: &str, n: i64) -> Option<i64> {
    if let Some(width) = unit_ns(unit) {
        return t.checked_add(width.checked_mul(n)?);
    }
    let months = months_of(unit)?.checked_mul(n)?;
    let dt = datetime(t)?;
    let total = i64::from(dt.year()) * 12 + i64::from(dt.month() as u8 - 1) + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = time::Month::try_from(total.rem_euclid(12) as u8 + 1).ok()?;
    let day = dt.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    nanos(dt.replace_date(date))
}

/// `date_diff(unit, a, b)`: whole units boundaries crossed from `a` to `b`, as in
/// DuckDB (`date_diff('day', '...23:59', '...+1 00:01')` is 1).
fn date_diff(unit: &str, a: i64, b: i64) -> Option<i64> {
    if let Some(width) = unit_ns(unit) {
        let truncate_to = |t: i64| {
            if unit.to_ascii_lowercase().starts_with("week") {
                truncate(t, "week")
            } else {
                Some(t.div_euclid(width) * width)
            }
        };
        return Some((truncate_to(b)? - truncate_to(a)?) / width);
    }
    let months = months_of(unit)?;
    let (x, y) = (datetime(a)?, datetime(b)?);
    let index = |dt: OffsetDateTime| i64::from(dt.year()) * 12 + i64::from(dt.month() as u8 - 1);
    Some(index(y) / months - index(x) / months)
}

/// MySQL / Presto `date_format` specifiers.
fn date_format(t: i64, format: &str) -> Option<String> {
    let dt = datetime(t)?;
    let mut out = String::with_capacity(format.len() * 2);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        let hour12 = match dt.hour() % 12 {
            0 => 12,
            h => h,
        };
        match spec {
            'Y' => out.push_str(&format!("{:04}", dt.year())),
            'y' => out.push_str(&format!("{:02}", dt.year().rem_euclid(100))),
            'm' => out.push_str(&format!("{:02}", dt.month() as u8)),
            'c' => out.push_str(&(dt.month() as u8).to_string()),
            'd' => out.push_str(&format!("{:02}", dt.day())),
            'e' => out.push_str(&dt.day().to_string()),
            'H' => out.push_str(&format!("{:02}", dt.hour())),
            'k' => out.push_str(&dt.hour().to_string()),
            'h' | 'I' => out.push_str(&format!("{hour12:02}")),
            'l' => out.push_str(&hour12.to_string()),
            'i' => out.push_str(&format!("{:02}", dt.minute())),
            's' | 'S' => out.push_str(&format!("{:02}", dt.second())),
            'f' => out.push_str(&format!("{:06}", dt.microsecond())),
            'p' => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
            'j' => out.push_str(&format!("{:03}", dt.ordinal())),
            'T' => out.push_str(&format!(
                "{:02}:{:02}:{:02}",
                dt.hour(),
                dt.minute(),
                dt.second()
            )),
            'W' => out.push_str(&dt.weekday().to_string()),
            'a' => out.push_str(&dt.weekday().to_string()[..3]),
            'M' => out.push_str(&dt.month().to_string()),
            'b' => out.push_str(&dt.month().to_string()[..3]),
            '%' => out.push('%'),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    Some(out)
}

fn parse_json(value: &Val) -> Option<Json> {
    match value {
        Val::Str(s) => serde_json::from_str(s).ok(),
        Val::Int(i) => Some(Json::from(*i)),
        Val::Float(x) => serde_json::Number::from_f64(*x).map(Json::Number),
        Val::Bool(b) => Some(Json::Bool(*b)),
        _ => None,
    }
}

/// A JSON path: `$`, `.key`, `["key"]`, `[index]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<PathStep>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathStep {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// Parses a path; the error says what is wrong.
    ///
    /// # Errors
    /// A message naming the character offset that cannot be read.
    pub fn parse(path: &str) -> Result<JsonPath, String> {
        let chars: Vec<char> = path.chars().collect();
        let mut index = 0;
        if chars.first() == Some(&'$') {
            index = 1;
        }
        let mut steps = Vec::new();
        while index < chars.len() {
            match chars[index] {
                '.' => {
                    let start = index + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        end += 1;
                    }
                    if end == start {
                        return Err(format!("empty key at offset {index} of the JSON path"));
                    }
                    steps.push(PathStep::Key(chars[start..end].iter().collect()));
                    index = end;
                }
                '[' => {
                    let close = chars[index..]
                        .iter()
                        .position(|c| *c == ']')
                        .map(|offset| index + offset)
                        .ok_or_else(|| {
                            format!("unclosed `[` at offset {index} of the JSON path")
                        })?;
                    let inner: String = chars[index + 1..close].iter().collect();
                    let inner = inner.trim();
                    let step = if let Some(quoted) = inner
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                    {
                        PathStep::Key(quoted.to_string())
                    } else {
                        PathStep::Index(inner.parse().map_err(|_| {
                            format!(
                                "`[{inner}]` at offset {index} of the JSON path is not an index"
                            )
                        })?)
                    };
                    steps.push(step);
                    index = close + 1;
                }
                _ if index == 0 => {
                    // A bare `a.b` is read as `$.a.b`.
                    return JsonPath::parse(&format!("$.{path}"));
                }
                other => {
                    return Err(format!(
                        "unexpected `{other}` at offset {index} of the JSON path"
                    ))
                }
            }
        }
        Ok(JsonPath(steps))
    }

    fn find(&self, json: &Json) -> Option<Json> {
        let mut current = json;
        for step in &self.0 {
            current = match step {
                PathStep::Key(key) => current.as_object()?.get(key)?,
                PathStep::Index(index) => current.as_array()?.get(*index)?,
            };
        }
        Some(current.clone())
    }
}

/// The parts of a URL, borrowed from its text.
struct Url<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Url<'a> {
    /// Splits `scheme://user@host:port/path?query#fragment`; a text without `://`
    /// is a path (and query), as in a request line.
    fn parse(text: &'a str) -> Url<'a> {
        let text = text.trim();
        let text = text.split_once('#').map_or(text, |(before, _)| before);
        let (before_query, query) = match text.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (text, None),
        };
        let Some((scheme, rest)) = before_query.split_once("://") else {
            return Url {
                scheme: None,
                host: None,
                port: None,
                path: before_query,
                query,
            };
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        let authority = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let (host, port) = if authority.starts_with('[') {
            match authority.find(']') {
                Some(close) => (
                    &authority[..=close],
                    authority[close + 1..].strip_prefix(':'),
                ),
                None => (authority, None),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        Url {
            scheme: Some(scheme),
            host: Some(host),
            port,
            path,
            query,
        }
    }
}

fn url_part(value: &Val, pick: impl Fn(Url<'_>) -> Option<String>) -> Val {
    match value.as_text() {
        Some(s) => pick(Url::parse(&s)).map(Val::Str).unwrap_or(Val::Null),
        None => Val::Null,
    }
}

fn percent_decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|digit| digit as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(index + 1).copied().and_then(hex),
                bytes.get(index + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    index += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_cidr(cidr: &str) -> Option<(IpAddr, u32)> {
    let (network, bits) = cidr.trim().split_once('/')?;
    let network: IpAddr = network.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((network, bits))
}

/// The network of `ip` with `bits` leading bits kept; `None` when the prefix is
/// longer than the address.
fn mask(ip: IpAddr, bits: u32) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) => {
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Some(IpAddr::V4((u32::from(v4) & mask).into()))
        }
        IpAddr::V6(v6) => {
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Some(IpAddr::V6((u128::from(v6) & mask).into()))
        }
    }
}

/// Prints a number the way a string function sees it.
pub fn number_text(x: f64) -> String {
    format_float(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: EvalContext = EvalContext {
        now_ns: 0,
        max_value_bytes: 1024,
    };

    fn call(func: Func, args: &[Val]) -> Val {
        func.call(args, &CTX).expect("call")
    }

    fn s(text: &str) -> Val {
        Val::Str(text.to_string())
    }

    #[test]
    fn test_string_functions_and_wrong_types_give_null() {
        assert_eq!(
            call(Func::Substr, &[s("hello"), Val::Int(2), Val::Int(3)]),
            s("ell")
        );
        assert_eq!(call(Func::Substr, &[s("hello"), Val::Int(-3)]), s("llo"));
        assert_eq!(
            call(Func::SplitPart, &[s("a,b,c"), s(","), Val::Int(2)]),
            s("b")
        );
        assert_eq!(
            call(Func::SplitPart, &[s("a,b,c"), s(","), Val::Int(9)]),
            s("")
        );
        assert_eq!(call(Func::Position, &[s("héllo"), s("l")]), Val::Int(3));
        assert_eq!(call(Func::Length, &[Val::Null]), Val::Null);
        assert_eq!(call(Func::Substr, &[s("x"), s("not a number")]), Val::Null);
        assert_eq!(call(Func::Abs, &[s("nope")]), Val::Null);
        assert_eq!(call(Func::Ln, &[Val::Int(0)]), Val::Null);
    }

    #[test]
    fn test_outputs_over_the_value_limit_are_refused() {
        let big = s(&"x".repeat(600));
        assert!(Func::Concat
            .call(&[big.clone(), big.clone()], &CTX)
            .is_err());
        assert!(Func::Replace.call(&[big, s("x"), s("yy")], &CTX).is_err());
    }

    #[test]
    fn test_urls_ips_and_json_paths() {
        let url = s("https://user@example.com:8443/a/b?q=1&name=J%C3%BCrgen+x#top");
        assert_eq!(
            call(Func::UrlHost, std::slice::from_ref(&url)),
            s("example.com")
        );
        assert_eq!(call(Func::UrlPath, std::slice::from_ref(&url)), s("/a/b"));
        assert_eq!(
            call(Func::UrlPort, std::slice::from_ref(&url)),
            Val::Int(8443)
        );
        assert_eq!(call(Func::UrlParameter, &[url, s("name")]), s("Jürgen x"));
        assert_eq!(
            call(Func::UrlPath, &[s("/index.html?x=1")]),
            s("/index.html")
        );
        assert_eq!(
            call(Func::IpInCidr, &[s("10.1.2.3"), s("10.0.0.0/8")]),
            Val::Bool(true)
        );
        assert_eq!(
            call(Func::IpPrefix, &[s("192.168.7.9"), Val::Int(24)]),
            s("192.168.7.0/24")
        );
        assert_eq!(
            call(Func::IpInCidr, &[s("nope"), s("10.0.0.0/8")]),
            Val::Null
        );
        let path = JsonPath::parse("$.a.b[1]").expect("path");
        assert_eq!(
            call(
                Func::JsonExtractScalar(path),
                &[s(r#"{"a":{"b":[1,"two"]}}"#)]
            ),
            s("two")
        );
        assert!(JsonPath::parse("$.a[").is_err());
    }

    #[test]
    fn test_time_functions() {
        let t = parse_time_text("2023-11-15T10:41:33.5Z").expect("time");
        let day = |text: &str| parse_time_text(text).expect("time");
        assert_eq!(truncate(t, "week"), Some(day("2023-11-13")));
        assert_eq!(truncate(t, "month"), Some(day("2023-11-01")));
        assert_eq!(truncate(t, "quarter"), Some(day("2023-10-01")));
        assert_eq!(
            date_add(day("2023-01-31"), "month", 1),
            Some(day("2023-02-28"))
        );
        assert_eq!(
            date_diff(
                "day",
                day("2023-01-31 23:59:00"),
                day("2023-02-01 00:01:00")
            ),
            Some(1)
        );
        assert_eq!(
            date_format(t, "%Y-%m-%d %H:%i:%s").as_deref(),
            Some("2023-11-15 10:41:33")
        );
    }
}
