//! A loopback relay between the `pulsar` crate and the test broker (pulsar-lite).
//!
//! pulsar-lite sends MESSAGE frames without the optional checksum part of the Pulsar
//! framing (magic `0x0e01` + CRC32C of everything after it), which Apache Pulsar
//! brokers always include and which the crate's decoder requires. The relay passes
//! every byte through unchanged, except that it inserts the magic and the CRC32C
//! (Castagnoli) of `[metadata_size][metadata][payload]` into a broker → client MESSAGE
//! frame that lacks them, and adds 6 to that frame's total size. It repairs framing
//! and mocks nothing: every command and every message comes from the real broker.
//!
//! One more rewrite is needed for the relay to stay in the path at all: a lookup
//! answer (LOOKUP_RESPONSE) names the broker's own address, and the crate connects
//! there for producers and consumers. The relay replaces that `brokerServiceUrl` with
//! its own URL, as a broker's advertised address would be set behind a proxy.
//!
//! Frame layout (big-endian sizes):
//! ```text
//! [total_size u32][command_size u32][BaseCommand]
//!     ([magic 0x0e01 u16][crc32c u32])? [metadata_size u32][metadata][payload]
//! ```

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// `BaseCommand.Type.MESSAGE`.
const COMMAND_MESSAGE: u64 = 9;
/// `BaseCommand.Type.LOOKUP_RESPONSE`, also the field number of `lookupTopicResponse`.
const COMMAND_LOOKUP_RESPONSE: u64 = 24;
/// `CommandLookupTopicResponse.brokerServiceUrl`.
const FIELD_BROKER_SERVICE_URL: u64 = 1;
/// The checksum magic of the Pulsar framing.
const MAGIC: [u8; 2] = [0x0e, 0x01];
/// Frames larger than this are refused (the broker's default limit is 5 MiB).
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// A running relay; dropping it stops accepting connections.
#[derive(Debug)]
pub struct TestRelay {
    addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl TestRelay {
    /// Starts a relay on `127.0.0.1:0` in front of the broker at `broker_url`
    /// (`pulsar://host:port`).
    pub async fn start(broker_url: &str) -> io::Result<TestRelay> {
        TestRelay::start_on(broker_url, "127.0.0.1:0").await
    }

    /// Starts a relay listening on `listen` (`host:port`) in front of the broker at
    /// `broker_url`.
    pub async fn start_on(broker_url: &str, listen: &str) -> io::Result<TestRelay> {
        let broker = broker_url
            .strip_prefix("pulsar://")
            .ok_or_else(|| io::Error::other(format!("not a pulsar:// url: {broker_url}")))?
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let advertised = format!("pulsar://{addr}");
        let accept_task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let broker = broker.clone();
                let advertised = advertised.clone();
                tokio::spawn(async move {
                    if let Err(error) = relay_connection(client, &broker, &advertised).await {
                        tracing::debug!(%error, "test relay connection ended");
                    }
                });
            }
        });
        Ok(TestRelay { addr, accept_task })
    }

    /// Returns the URL clients connect to.
    pub fn url(&self) -> String {
        format!("pulsar://{}", self.addr)
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Relays one client connection until either side closes.
async fn relay_connection(client: TcpStream, broker: &str, advertised: &str) -> io::Result<()> {
    let server = TcpStream::connect(broker).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let copied = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
        copied.map(drop)
    };
    let downstream = async {
        let repaired = repair_frames(&mut server_read, &mut client_write, advertised).await;
        let _ = client_write.shutdown().await;
        repaired
    };
    let (upstream, downstream) = tokio::join!(upstream, downstream);
    upstream.and(downstream)
}

/// Copies broker → client frames, repairing MESSAGE frames and pointing lookup
/// answers at the relay (`advertised`) on the way.
async fn repair_frames(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    advertised: &str,
) -> io::Result<()> {
    loop {
        let mut size = [0u8; 4];
        match from.read_exact(&mut size).await {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
        let total_size = u32::from_be_bytes(size) as usize;
        if total_size > MAX_FRAME_BYTES {
            return Err(io::Error::other(format!("frame of {total_size} bytes")));
        }
        let mut frame = vec![0u8; total_size];
        from.read_exact(&mut frame).await?;
        let frame = repair_frame(frame, advertised)?;
        let total_size = u32::try_from(frame.len()).map_err(io::Error::other)?;
        to.write_all(&total_size.to_be_bytes()).await?;
        to.write_all(&frame).await?;
    }
}

/// Returns the frame (without its total size) with the checksum inserted when it is a
/// MESSAGE frame without one, with the relay's URL in a lookup answer, and any other
/// frame unchanged.
fn repair_frame(frame: Vec<u8>, advertised: &str) -> io::Result<Vec<u8>> {
    let command_size = frame
        .get(0..4)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| io::Error::other("frame without a command size"))?
        as usize;
    let command_end = 4 + command_size;
    let (Some(command), Some(rest)) = (frame.get(4..command_end), frame.get(command_end..)) else {
        return Err(io::Error::other("frame shorter than its command"));
    };
    match command_type(command) {
        Some(COMMAND_LOOKUP_RESPONSE) => {
            let command = rewrite_lookup_response(command, advertised)
                .ok_or_else(|| io::Error::other("malformed lookup response"))?;
            let size = u32::try_from(command.len()).map_err(io::Error::other)?;
            let mut rewritten = Vec::with_capacity(4 + command.len() + rest.len());
            rewritten.extend_from_slice(&size.to_be_bytes());
            rewritten.extend_from_slice(&command);
            rewritten.extend_from_slice(rest);
            Ok(rewritten)
        }
        Some(COMMAND_MESSAGE) if !rest.is_empty() && !rest.starts_with(&MAGIC) => {
            let checksum = crc32c::crc32c(rest);
            let mut repaired = Vec::with_capacity(frame.len() + 6);
            repaired.extend_from_slice(&frame[..command_end]);
            repaired.extend_from_slice(&MAGIC);
            repaired.extend_from_slice(&checksum.to_be_bytes());
            repaired.extend_from_slice(rest);
            Ok(repaired)
        }
        _ => Ok(frame),
    }
}

/// Re-encodes a `BaseCommand` holding a lookup answer with `brokerServiceUrl` set to
/// `advertised`; every other field is copied byte for byte.
fn rewrite_lookup_response(command: &[u8], advertised: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(command.len() + advertised.len());
    for field in fields(command)? {
        match field {
            Field::Bytes {
                number: COMMAND_LOOKUP_RESPONSE,
                value,
                ..
            } => {
                let mut inner = Vec::with_capacity(value.len() + advertised.len());
                for inner_field in fields(value)? {
                    match inner_field {
                        Field::Bytes {
                            number: FIELD_BROKER_SERVICE_URL,
                            ..
                        } => {
                            write_bytes_field(
                                &mut inner,
                                FIELD_BROKER_SERVICE_URL,
                                advertised.as_bytes(),
                            );
                        }
                        other => inner.extend_from_slice(other.raw()),
                    }
                }
                write_bytes_field(&mut out, COMMAND_LOOKUP_RESPONSE, &inner);
            }
            other => out.extend_from_slice(other.raw()),
        }
    }
    Some(out)
}

/// One field of a serialized protobuf message.
enum Field<'a> {
    /// A length-delimited field: its number, value and whole encoding.
    Bytes {
        number: u64,
        value: &'a [u8],
        raw: &'a [u8],
    },
    /// Any other field, as encoded.
    Other { raw: &'a [u8] },
}

impl<'a> Field<'a> {
    fn raw(&self) -> &'a [u8] {
        match self {
            Field::Bytes { raw, .. } | Field::Other { raw } => raw,
        }
    }
}

/// Splits a serialized protobuf message into its fields.
fn fields(message: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut fields = Vec::new();
    let mut bytes = message;
    while !bytes.is_empty() {
        let start = bytes;
        let key = read_varint(&mut bytes)?;
        let (number, wire_type) = (key >> 3, key & 7);
        let value = match wire_type {
            0 => {
                read_varint(&mut bytes)?;
                None
            }
            1 => {
                bytes = bytes.get(8..)?;
                None
            }
            2 => {
                let len = usize::try_from(read_varint(&mut bytes)?).ok()?;
                let value = bytes.get(..len)?;
                bytes = bytes.get(len..)?;
                Some(value)
            }
            5 => {
                bytes = bytes.get(4..)?;
                None
            }
            _ => return None,
        };
        let raw = start.get(..start.len() - bytes.len())?;
        fields.push(match value {
            Some(value) => Field::Bytes { number, value, raw },
            None => Field::Other { raw },
        });
    }
    Some(fields)
}

fn write_bytes_field(out: &mut Vec<u8>, number: u64, value: &[u8]) {
    write_varint(out, (number << 3) | 2);
    write_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads field 1 (`type`, a varint) of a serialized `BaseCommand`.
fn command_type(mut bytes: &[u8]) -> Option<u64> {
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                let value = read_varint(&mut bytes)?;
                if field == 1 {
                    return Some(value);
                }
            }
            1 => bytes = bytes.get(8..)?,
            2 => {
                let len = usize::try_from(read_varint(&mut bytes)?).ok()?;
                bytes = bytes.get(len..)?;
            }
            5 => bytes = bytes.get(4..)?,
            _ => return None,
        }
    }
    None
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY: &str = "pulsar://127.0.0.1:1234";

    fn frame(command: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut frame = (command.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(command);
        frame.extend_from_slice(rest);
        frame
    }

    #[test]
    fn test_repair_inserts_checksum_into_message_frames_only() -> io::Result<()> {
        // type = MESSAGE (field 1 = 9), then a sub-message field.
        let message_command = [0x08, 0x09, 0x12, 0x02, 0x08, 0x01];
        let metadata_and_payload = [0, 0, 0, 2, 0xaa, 0xbb, b'h', b'i'];
        let repaired = repair_frame(frame(&message_command, &metadata_and_payload), RELAY)?;
        let expected_tail = {
            let mut tail = MAGIC.to_vec();
            tail.extend_from_slice(&crc32c::crc32c(&metadata_and_payload).to_be_bytes());
            tail.extend_from_slice(&metadata_and_payload);
            tail
        };
        assert_eq!(
            &repaired[4 + message_command.len()..],
            expected_tail.as_slice()
        );
        // Already repaired frames and other commands pass unchanged.
        assert_eq!(repair_frame(repaired.clone(), RELAY)?, repaired);
        let ping = frame(&[0x08, 0x12], &[]);
        assert_eq!(repair_frame(ping.clone(), RELAY)?, ping);
        let send_receipt_with_body = frame(&[0x08, 0x07], &metadata_and_payload);
        assert_eq!(
            repair_frame(send_receipt_with_body.clone(), RELAY)?,
            send_receipt_with_body
        );
        Ok(())
    }

    #[test]
    fn test_command_type_skips_other_fields() {
        assert_eq!(command_type(&[0x12, 0x01, 0x00, 0x08, 0x09]), Some(9));
        assert_eq!(command_type(&[0x08, 0x96, 0x01]), Some(150));
        assert_eq!(command_type(&[0x12, 0x05]), None);
    }

    #[test]
    fn test_lookup_answers_point_at_the_relay() -> io::Result<()> {
        // LOOKUP_RESPONSE { brokerServiceUrl = "pulsar://b:6650", response = CONNECT (1),
        // request_id = 5 }, then BaseCommand field 25 (another message) after it.
        let mut inner = Vec::new();
        write_bytes_field(&mut inner, 1, b"pulsar://b:6650");
        inner.extend_from_slice(&[0x18, 0x01, 0x20, 0x05]);
        let mut command = vec![0x08, 24];
        write_bytes_field(&mut command, 24, &inner);
        let rewritten = repair_frame(frame(&command, &[]), RELAY)?;
        let command_size =
            u32::from_be_bytes([rewritten[0], rewritten[1], rewritten[2], rewritten[3]]) as usize;
        assert_eq!(command_size, rewritten.len() - 4);
        let fields = fields(&rewritten[4..]).ok_or_else(|| io::Error::other("bad rewrite"))?;
        let Some(Field::Bytes { value, .. }) = fields.get(1) else {
            return Err(io::Error::other("no lookup response field"));
        };
        let inner_fields = super::fields(value).ok_or_else(|| io::Error::other("bad inner"))?;
        let Some(Field::Bytes { value: url, .. }) = inner_fields.first() else {
            return Err(io::Error::other("no url"));
        };
        assert_eq!(*url, RELAY.as_bytes());
        assert_eq!(inner_fields[1].raw(), &[0x18, 0x01]);
        assert_eq!(inner_fields[2].raw(), &[0x20, 0x05]);
        Ok(())
    }
}
