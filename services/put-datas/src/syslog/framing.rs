//! RFC 6587 framing of a syslog byte stream (TCP and TLS), told apart per frame as
//! rsyslog and syslog-ng do: a frame that starts with a digit is octet-counted
//! (`LEN SP MSG`), any other ends at a line feed (non-transparent framing; a
//! carriage return before it is dropped). Frames longer than `max_message_bytes`
//! are cut there and the rest of them skipped: the frame is kept, flagged
//! `truncated`.

use bytes::{Buf, Bytes, BytesMut};

/// Most digits of an octet count (RFC 5425 allows any; ten are beyond any limit).
const MAX_COUNT_DIGITS: usize = 10;

/// One frame of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its bytes, at most `max_message_bytes`.
    pub bytes: Bytes,
    /// It was longer and was cut.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a frame.
    Start,
    /// Skipping the rest of a cut octet-counted frame: this many bytes.
    SkipOctets(usize),
    /// Skipping the rest of a cut line, up to its line feed.
    SkipLine,
}

/// Splits a byte stream into frames.
#[derive(Debug)]
pub struct FrameDecoder {
    max_message_bytes: usize,
    state: State,
}

impl FrameDecoder {
    /// A decoder that cuts frames at `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> FrameDecoder {
        FrameDecoder {
            max_message_bytes,
            state: State::Start,
        }
    }

    /// The next whole frame in `buffer` (consumed from it), or `None` until more
    /// bytes come. `buffer` never has to hold more than `max_message_bytes` plus an
    /// octet count for a frame to come out.
    pub fn next_frame(&mut self, buffer: &mut BytesMut) -> Option<Frame> {
        let max = self.max_message_bytes;
        loop {
            match self.state {
                State::SkipOctets(remaining) => {
                    let skipped = remaining.min(buffer.len());
                    buffer.advance(skipped);
                    if skipped < remaining {
                        self.state = State::SkipOctets(remaining - skipped);
                        return None;
                    }
                    self.state = State::Start;
                }
                State::SkipLine => match find_newline(buffer) {
                    Some(end) => {
                        buffer.advance(end + 1);
                        self.state = State::Start;
                    }
                    None => {
                        buffer.clear();
                        return None;
                    }
                },
                State::Start => {
                    // Blank lines and stray trailers (CR, LF, NUL) between frames.
                    let blank = buffer
                        .iter()
                        .take_while(|b| matches!(b, b'\n' | b'\r' | b'\0'))
                        .count();
                    buffer.advance(blank);
                    let first = *buffer.first()?;
                    if first.is_ascii_digit() {
                        match octet_count(buffer) {
                            Count::Incomplete => return None,
                            // An empty frame carries no message.
                            Count::Length { header, length: 0 } => {
                                buffer.advance(header);
                                continue;
                            }
                            Count::Length { header, length } => {
                                return self.octet_counted(buffer, header, length)
                            }
                            Count::Line => {}
                        }
                    }
                    return match find_newline(&buffer[..buffer.len().min(max + 2)]) {
                        Some(end) => {
                            let mut line = buffer.split_to(end + 1);
                            line.truncate(end);
                            if line.last() == Some(&b'\r') {
                                line.truncate(end - 1);
                            }
                            if line.len() > max {
                                line.truncate(max);
                                return Some(cut(line));
                            }
                            Some(whole(line))
                        }
                        None if buffer.len() > max => {
                            let line = buffer.split_to(max);
                            self.state = State::SkipLine;
                            Some(cut(line))
                        }
                        None => None,
                    };
                }
            }
        }
    }

    fn octet_counted(
        &mut self,
        buffer: &mut BytesMut,
        header: usize,
        length: usize,
    ) -> Option<Frame> {
        let kept = length.min(self.max_message_bytes);
        if buffer.len() < header + kept {
            return None;
        }
        buffer.advance(header);
        let frame = buffer.split_to(kept);
        if kept < length {
            self.state = State::SkipOctets(length - kept);
            return Some(cut(frame));
        }
        Some(whole(frame))
    }

    /// What is left when the stream ends: an unterminated last line (or the start
    /// of a frame the sender did not finish) as a frame of its own, so that nothing
    /// received is dropped.
    pub fn finish(&mut self, buffer: &mut BytesMut) -> Option<Frame> {
        if self.state != State::Start {
            buffer.clear();
            return None;
        }
        let rest = buffer.split();
        let end = rest
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0'))?;
        let mut rest = rest;
        rest.truncate(end + 1);
        let truncated = rest.len() > self.max_message_bytes;
        rest.truncate(self.max_message_bytes);
        Some(Frame {
            bytes: rest.freeze(),
            truncated,
        })
    }
}

enum Count {
    /// Digits so far, and no space yet.
    Incomplete,
    /// `LEN SP`: the header's length and LEN.
    Length { header: usize, length: usize },
    /// Digits not followed by a space: a line that starts with a digit, not a count.
    Line,
}

fn octet_count(buffer: &[u8]) -> Count {
    let digits = buffer.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_COUNT_DIGITS {
        return Count::Line;
    }
    match buffer.get(digits) {
        None => Count::Incomplete,
        Some(b' ') => std::str::from_utf8(&buffer[..digits])
            .ok()
            .and_then(|text| text.parse::<usize>().ok())
            .map_or(Count::Line, |length| Count::Length {
                header: digits + 1,
                length,
            }),
        Some(_) => Count::Line,
    }
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

fn whole(bytes: BytesMut) -> Frame {
    Frame {
        bytes: bytes.freeze(),
        truncated: false,
    }
}

fn cut(bytes: BytesMut) -> Frame {
    Frame {
        bytes: bytes.freeze(),
        truncated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes; gives every frame, then the rest.
    fn frames(input: &[u8], chunk: usize, max: usize) -> Vec<(String, bool)> {
        let mut decoder = FrameDecoder::new(max);
        let mut buffer = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            buffer.extend_from_slice(piece);
            while let Some(frame) = decoder.next_frame(&mut buffer) {
                out.push(frame);
            }
            assert!(buffer.len() <= max + MAX_COUNT_DIGITS + 1 + chunk);
        }
        out.extend(decoder.finish(&mut buffer));
        out.into_iter()
            .map(|f| (String::from_utf8_lossy(&f.bytes).into_owned(), f.truncated))
            .collect()
    }

    fn whole_frames(list: &[&str]) -> Vec<(String, bool)> {
        list.iter().map(|s| (s.to_string(), false)).collect()
    }

    #[test]
    fn test_octet_counting_and_lines_mix_per_frame() {
        let input = b"11 <13>1 - a\nb<14>line one\r\n\n0 9 <15>x y z<16>last";
        for chunk in [1, 2, 5, 64] {
            assert_eq!(
                frames(input, chunk, 480),
                whole_frames(&["<13>1 - a\nb", "<14>line one", "<15>x y z", "<16>last"]),
                "chunk {chunk}"
            );
        }
        // Digits without a space: a line that starts with a digit.
        assert_eq!(
            frames(b"2026-01-01 plain\n", 3, 480),
            whole_frames(&["2026-01-01 plain"])
        );
    }

    #[test]
    fn test_oversize_frames_are_cut_and_the_stream_goes_on() {
        let long = "x".repeat(20);
        let input = format!("24 <13>{long}<14>{long}yz\n3 abc");
        for chunk in [1, 7, 100] {
            assert_eq!(
                frames(input.as_bytes(), chunk, 10),
                vec![
                    ("<13>xxxxxx".to_string(), true),
                    ("<14>xxxxxx".to_string(), true),
                    ("abc".to_string(), false),
                ],
                "chunk {chunk}"
            );
        }
        // A line of exactly the limit is whole.
        assert_eq!(frames(b"0123456789\n", 4, 10).len(), 1);
        assert_eq!(
            frames(b"a123456789\r\n", 4, 10),
            whole_frames(&["a123456789"])
        );
    }

    #[test]
    fn test_an_unfinished_frame_at_the_end_is_kept() {
        assert_eq!(
            frames(b"40 <13>cut short", 4, 480),
            whole_frames(&["40 <13>cut short"])
        );
        assert_eq!(frames(b"\n\r\n", 1, 480), whole_frames(&[]));
    }
}
