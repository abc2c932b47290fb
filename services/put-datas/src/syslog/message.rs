//! A parsed syslog message, whichever RFC it came in, and how it becomes a record:
//! the field names every listener writes (documented in `docs/api.md`, "Syslog").

use logpool_core::limits::IngestLimits;

use crate::protocol::RecordWriter;

/// Facility names as rsyslog and syslog-ng print them, by code (RFC 5424 table 1).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names as rsyslog and syslog-ng print them, by code (RFC 5424 table 2).
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Fields every record may carry besides structured data; structured data stops
/// before the record would pass `max_fields_per_record` with them.
const FIXED_FIELDS: usize = 16;

/// The facility and severity of a `<PRI>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// 0 to 23.
    pub facility: u8,
    /// 0 to 7.
    pub severity: u8,
}

impl Priority {
    /// The facility's name (`local0`, `auth`, ...).
    pub fn facility_name(self) -> &'static str {
        FACILITIES
            .get(usize::from(self.facility))
            .copied()
            .unwrap_or("unknown")
    }

    /// The severity's name (`err`, `info`, ...).
    pub fn severity_name(self) -> &'static str {
        SEVERITIES
            .get(usize::from(self.severity))
            .copied()
            .unwrap_or("unknown")
    }
}

/// Reads `<PRI>` at the start of `line`; gives the priority and the rest.
///
/// # Errors
/// Why the line does not start with a valid `<PRI>`.
pub fn split_priority(line: &str) -> Result<(Priority, &str), String> {
    let rest = line
        .strip_prefix('<')
        .ok_or_else(|| "no `<PRI>` at the start".to_string())?;
    let end = rest
        .find('>')
        .filter(|end| (1..=3).contains(end))
        .ok_or_else(|| "`<PRI>` is not 1 to 3 digits in angle brackets".to_string())?;
    let digits = &rest[..end];
    let value: u8 = digits
        .parse()
        .ok()
        .filter(|value| *value <= 191 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("`<{digits}>` is not a priority from 0 to 191"))?;
    Ok((
        Priority {
            facility: value / 8,
            severity: value % 8,
        },
        &rest[end + 1..],
    ))
}

/// One structured-data element: its id and parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    /// The SD-ID (`timeQuality`, `exampleSDID@32473`).
    pub id: String,
    /// Its parameters (name, unescaped value).
    pub params: Vec<(String, String)>,
}

/// A syslog message, RFC 5424 or RFC 3164.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyslogMessage {
    /// `<PRI>`.
    pub priority: Option<Priority>,
    /// The header time, nanoseconds since the epoch.
    pub time_ns: Option<i64>,
    /// HOSTNAME.
    pub hostname: Option<String>,
    /// APP-NAME (RFC 3164: the TAG).
    pub app_name: Option<String>,
    /// PROCID (RFC 3164: the pid in `tag[pid]:`).
    pub procid: Option<String>,
    /// MSGID (RFC 5424 only).
    pub msgid: Option<String>,
    /// STRUCTURED-DATA (RFC 5424 only).
    pub structured_data: Vec<SdElement>,
    /// MSG.
    pub message: String,
}

/// Where a message came from and what happened to it on the way in.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    /// The listener's name.
    pub listener: &'a str,
    /// The sender's IP address.
    pub peer: &'a str,
    /// The frame was longer than `max_message_bytes` and cut there.
    pub truncated: bool,
}

/// Writes one message as a record (see the module docs for the names).
pub fn write_record(
    record: &mut RecordWriter<'_>,
    message: &SyslogMessage,
    provenance: Provenance<'_>,
    limits: &IngestLimits,
) {
    if let Some(time_ns) = message.time_ns {
        record.field("time", &time_ns);
    }
    record.field("message", &message.message);
    let texts = [
        ("hostname", &message.hostname),
        ("app_name", &message.app_name),
        ("procid", &message.procid),
        ("msgid", &message.msgid),
    ];
    for (name, value) in texts {
        if let Some(value) = value {
            record.field(name, value);
        }
    }
    if let Some(priority) = message.priority {
        record.field("facility", &priority.facility_name());
        record.field("severity", &priority.severity_name());
    }
    let room = limits.max_fields_per_record.saturating_sub(FIXED_FIELDS);
    let mut written = 0usize;
    let mut dropped = false;
    for element in &message.structured_data {
        if element.params.is_empty() {
            // An element without parameters still says something (e.g. a marker).
            if written < room {
                record.field(&format!("sd.{}", element.id), &true);
                written += 1;
            } else {
                dropped = true;
            }
        }
        for (index, (name, _)) in element.params.iter().enumerate() {
            // A parameter may repeat within its element (RFC 5424 6.3.3): the values
            // are joined, in order, so that none is lost.
            if element.params[..index].iter().any(|(seen, _)| seen == name) {
                continue;
            }
            if written >= room {
                dropped = true;
                continue;
            }
            let values: Vec<&str> = element.params[index..]
                .iter()
                .filter(|(other, _)| other == name)
                .map(|(_, value)| value.as_str())
                .collect();
            record.field(&format!("sd.{}.{name}", element.id), &values.join(", "));
            written += 1;
        }
    }
    if dropped {
        record.field("sd_truncated", &true);
    }
    record.field("listener", &provenance.listener);
    record.field("peer", &provenance.peer);
    if provenance.truncated {
        record.field("truncated", &true);
    }
}

/// Writes a line that is not syslog as a record: the line itself as the message,
/// and the reason in `parse_error`.
pub fn write_unparsed(
    record: &mut RecordWriter<'_>,
    line: &str,
    reason: &str,
    provenance: Provenance<'_>,
) {
    record.field("message", &line);
    record.field("parse_error", &reason);
    record.field("listener", &provenance.listener);
    record.field("peer", &provenance.peer);
    if provenance.truncated {
        record.field("truncated", &true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RecordsWriter;

    fn written(message: &SyslogMessage, limits: &IngestLimits) -> serde_json::Value {
        let mut records = RecordsWriter::new(limits);
        let mut record = records.record();
        let provenance = Provenance {
            listener: "in",
            peer: "192.0.2.7",
            truncated: true,
        };
        write_record(&mut record, message, provenance, limits);
        record.finish().expect("within the budget");
        let body: serde_json::Value = serde_json::from_slice(&records.finish()).expect("JSON");
        body["logs"][0].clone()
    }

    #[test]
    fn test_fields_as_documented() {
        let element = |id: &str, params: &[(&str, &str)]| SdElement {
            id: id.to_string(),
            params: params
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        };
        let message = SyslogMessage {
            priority: Some(Priority {
                facility: 4,
                severity: 3,
            }),
            time_ns: Some(1_700_000_000_000_000_000),
            hostname: Some("web01".to_string()),
            app_name: Some("sshd".to_string()),
            procid: None,
            msgid: Some("LOGIN".to_string()),
            structured_data: vec![
                element(
                    "origin",
                    &[("ip", "192.0.2.1"), ("ip", "192.0.2.2"), ("x", "y")],
                ),
                element("marker", &[]),
            ],
            message: "failed".to_string(),
        };
        assert_eq!(
            written(&message, &IngestLimits::default()),
            serde_json::json!({
                "time": 1_700_000_000_000_000_000_i64,
                "message": "failed",
                "hostname": "web01",
                "app_name": "sshd",
                "msgid": "LOGIN",
                "facility": "auth",
                "severity": "err",
                "sd.origin.ip": "192.0.2.1, 192.0.2.2",
                "sd.origin.x": "y",
                "sd.marker": true,
                "listener": "in",
                "peer": "192.0.2.7",
                "truncated": true,
            })
        );
        // Structured data stops short of `max_fields_per_record`, and says so.
        let many = SyslogMessage {
            structured_data: vec![SdElement {
                id: "big".to_string(),
                params: (0..40)
                    .map(|n| (format!("p{n}"), "v".to_string()))
                    .collect(),
            }],
            ..SyslogMessage::default()
        };
        let limits = IngestLimits {
            max_fields_per_record: FIXED_FIELDS + 10,
            ..IngestLimits::default()
        };
        let record = written(&many, &limits);
        let fields = record.as_object().expect("object");
        assert_eq!(
            fields.keys().filter(|k| k.starts_with("sd.big.")).count(),
            10
        );
        assert_eq!(fields["sd_truncated"], true);
    }

    #[test]
    fn test_priority_is_facility_times_eight_plus_severity() {
        let (priority, rest) = split_priority("<165>1 rest").expect("valid");
        assert_eq!(priority.facility_name(), "local4");
        assert_eq!(priority.severity_name(), "notice");
        assert_eq!(rest, "1 rest");
        let (priority, _) = split_priority("<0>x").expect("valid");
        assert_eq!(
            (priority.facility_name(), priority.severity_name()),
            ("kern", "emerg")
        );
        for bad in [
            "no pri", "<>x", "<1234>x", "<192>x", "<1a>x", "<+1>x", "<13",
        ] {
            assert!(split_priority(bad).is_err(), "{bad}");
        }
    }
}
