//! The records the benchmark sends: log lines (the Loghub samples or any directory of
//! log files) multiplied and re-stamped to the requested volume, each with the fields
//! a log shipper would parse out of it (level, host, component) and the raw line as
//! `message`.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

/// One source line with its parsed fields.
#[derive(Debug, Clone)]
pub struct SourceLine {
    /// The raw line.
    pub line: String,
    /// Lower-case level, `info` when the line names none.
    pub level: String,
    /// The host named in the line, if any.
    pub host: Option<String>,
    /// The emitting component (program, logger or class).
    pub component: String,
    /// The file the line came from (without extension), for synthetic host names.
    pub system: String,
}

/// The loaded lines, in a fixed order.
#[derive(Debug)]
pub struct Corpus {
    /// Every non-empty line of every file, the files interleaved line by line.
    pub lines: Vec<SourceLine>,
}

/// Hosts a line without a host name is spread over, so that `host` has realistic
/// cardinality when lines repeat.
const SYNTHETIC_HOSTS: usize = 16;

impl Corpus {
    /// Reads every `*.log` file of `dir` (sorted by name).
    ///
    /// # Errors
    /// Fails when the directory cannot be read or holds no lines.
    pub fn load(dir: &Path) -> anyhow::Result<Corpus> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the log directory {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        files.sort();
        let mut per_file = Vec::new();
        for file in files {
            let system = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("log")
                .split('_')
                .next()
                .unwrap_or("log")
                .to_lowercase();
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            per_file.push(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| parse_line(l, &system))
                    .collect::<Vec<_>>(),
            );
        }
        // Interleaved, as the logs of many systems arrive at one service: any range
        // of records then holds every system.
        let longest = per_file.iter().map(Vec::len).max().unwrap_or(0);
        let mut lines = Vec::new();
        for index in 0..longest {
            lines.extend(per_file.iter().filter_map(|file| file.get(index).cloned()));
        }
        if lines.is_empty() {
            anyhow::bail!("no lines in the *.log files of {}", dir.display());
        }
        Ok(Corpus { lines })
    }

    /// Record number `seq` as one NDJSON line: line `seq % len`, stamped
    /// `base_time_us + seq` microseconds. Returns the raw line's length in bytes.
    pub fn write_record(&self, seq: u64, base_time_us: i64, out: &mut Vec<u8>) -> usize {
        self.write_record_spaced(seq, base_time_us, 1, out)
    }

    /// As [`Corpus::write_record`], stamped `base_time_us + seq * spacing_us`.
    pub fn write_record_spaced(
        &self,
        seq: u64,
        base_time_us: i64,
        spacing_us: i64,
        out: &mut Vec<u8>,
    ) -> usize {
        let (source, host) = self.record_source(seq);
        let record = json!({
            "time": base_time_us + seq as i64 * spacing_us,
            "seq": seq,
            "level": source.level,
            "host": host,
            "component": source.component,
            "message": source.line,
        });
        // Writing a `Value` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &record);
        out.push(b'\n');
        source.line.len()
    }

    /// The source line of record number `seq` and the host it is sent from.
    pub fn record_source(&self, seq: u64) -> (&SourceLine, String) {
        let source = &self.lines[(seq % self.lines.len() as u64) as usize];
        let copy = seq / self.lines.len() as u64;
        let host = match &source.host {
            Some(host) => host.clone(),
            None => format!("{}-{}", source.system, copy % SYNTHETIC_HOSTS as u64),
        };
        (source, host)
    }

    /// The rarest word of at least five letters (first by name among equals): the
    /// selective term of the query set.
    pub fn rare_term(&self) -> String {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for source in &self.lines {
            for word in words(&source.line).filter(|w| w.len() >= 5) {
                *counts.entry(word).or_default() += 1;
            }
        }
        counts
            .iter()
            .min_by_key(|(_, count)| **count)
            .map(|(word, _)| word.clone())
            .unwrap_or_else(|| "error".to_string())
    }

    /// The word of at least five letters whose share of lines is nearest `share`
    /// (first by name among equals): the frequent term of the query set.
    pub fn frequent_term(&self, share: f64) -> String {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for source in &self.lines {
            let mut seen: Vec<String> = words(&source.line).filter(|w| w.len() >= 5).collect();
            seen.sort_unstable();
            seen.dedup();
            for word in seen {
                *counts.entry(word).or_default() += 1;
            }
        }
        let wanted = share * self.lines.len() as f64;
        counts
            .iter()
            .min_by(|a, b| {
                let distance = |count: usize| (count as f64 - wanted).abs();
                distance(*a.1).total_cmp(&distance(*b.1))
            })
            .map(|(word, _)| word.clone())
            .unwrap_or_else(|| "error".to_string())
    }

    /// The most frequent pair of adjacent words (three letters or more): the phrase
    /// of the query set, a query that has to read positions.
    pub fn common_phrase(&self) -> String {
        let mut counts = std::collections::BTreeMap::<(String, String), usize>::new();
        for source in &self.lines {
            let tokens: Vec<&str> = source.line.split_whitespace().collect();
            for pair in tokens.windows(2) {
                if pair.iter().all(|t| is_word(t)) {
                    let key = (pair[0].to_lowercase(), pair[1].to_lowercase());
                    *counts.entry(key).or_default() += 1;
                }
            }
        }
        counts
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|((a, b), _)| format!("{a} {b}"))
            .unwrap_or_else(|| "error state".to_string())
    }
}

fn is_word(token: &str) -> bool {
    token.len() >= 3 && token.chars().all(|c| c.is_ascii_alphabetic())
}

fn words(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::to_lowercase)
}

const LEVELS: [&str; 11] = [
    "trace", "debug", "info", "notice", "warn", "warning", "error", "severe", "fatal", "crit",
    "alert",
];

/// Parses the common shapes of the Loghub samples: syslog (`Mon DD HH:MM:SS host
/// prog[pid]: text`), bracketed levels (`[error]`), `LEVEL component: text` and
/// `LEVEL [thread] component: text`. Anything else keeps `info` and the first
/// token that looks like a name as component.
pub fn parse_line(line: &str, system: &str) -> SourceLine {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let level_at = tokens.iter().position(|t| {
        let bare = t.trim_matches(|c| c == '[' || c == ']');
        LEVELS.iter().any(|l| bare.eq_ignore_ascii_case(l))
    });
    let level = level_at
        .map(|i| {
            tokens[i]
                .trim_matches(|c| c == '[' || c == ']')
                .to_lowercase()
        })
        .map(|l| {
            if l == "warning" {
                "warn".to_string()
            } else {
                l
            }
        })
        .unwrap_or_else(|| "info".to_string());
    let is_syslog = tokens.len() > 4
        && tokens[0].len() == 3
        && tokens[0].chars().all(|c| c.is_ascii_alphabetic())
        && tokens[2].matches(':').count() == 2;
    let (host, component) = if is_syslog {
        (Some(tokens[3].to_string()), program_name(tokens[4]))
    } else {
        let after_level = level_at.map_or(0, |i| i + 1);
        let component = tokens
            .iter()
            .skip(after_level)
            .find(|t| t.ends_with(':') || t.contains('.') || t.contains('@'))
            .or_else(|| tokens.get(after_level))
            .map(|t| program_name(t))
            .unwrap_or_else(|| system.to_string());
        (None, component)
    };
    SourceLine {
        line: line.to_string(),
        level,
        host,
        component,
        system: system.to_string(),
    }
}

/// `sshd[24200]:` → `sshd`; `[main]` → `main`; `dfs.DataNode$PacketResponder:` stays
/// whole but without the colon.
fn program_name(token: &str) -> String {
    let token = token.trim_start_matches('[').trim_end_matches([':', ']']);
    let name = match token.find('[') {
        Some(i) if i > 0 => &token[..i],
        _ => token,
    };
    if name.is_empty() {
        "unknown".to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_syslog_lines() {
        let line = parse_line(
            "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 1.2.3.4",
            "openssh",
        );
        assert_eq!(line.host.as_deref(), Some("LabSZ"));
        assert_eq!(line.component, "sshd");
        assert_eq!(line.level, "info");
    }

    #[test]
    fn parses_level_and_component() {
        let line = parse_line(
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1",
            "hdfs",
        );
        assert_eq!(line.level, "info");
        assert_eq!(line.component, "dfs.DataNode$PacketResponder");
        let line = parse_line(
            "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
            "apache",
        );
        assert_eq!(line.level, "error");
        assert_eq!(line.host, None);
    }

    #[test]
    fn records_are_restamped_copies() {
        let corpus = Corpus {
            lines: vec![
                parse_line("INFO a: one", "x"),
                parse_line("WARN b: two", "x"),
            ],
        };
        let mut out = Vec::new();
        let raw = corpus.write_record(3, 1_000, &mut out);
        assert_eq!(raw, "WARN b: two".len());
        let value: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(value["time"], 1_003);
        assert_eq!(value["seq"], 3);
        assert_eq!(value["level"], "warn");
        assert_eq!(value["host"], "x-1");
        assert_eq!(value["message"], "WARN b: two");
    }
}
