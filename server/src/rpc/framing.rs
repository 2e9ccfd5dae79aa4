//! The two framings, cutting a byte stream into messages and putting messages back into one.
//!
//! The rules kept here: no message larger than [`MAX_MESSAGE_BYTES`] is ever held in memory
//! (an oversize body is skipped as it streams past), every other buffer is small and bounded,
//! and a damaged stream is resynchronised on the next `Content-Length` header rather than
//! given up on. The reader reports what went wrong as a [`Frame`]; answering it is the
//! server's business.

use std::fmt;
use std::str::FromStr;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// The largest message accepted, in bytes of JSON.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Header lines are short (`Content-Length: 4194304`); anything longer is garbage.
const MAX_HEADER_LINE_BYTES: usize = 1024;

/// Real clients send one or two header lines; a block longer than this is garbage.
const MAX_HEADER_LINES: usize = 32;

/// How much of the input is read at a time.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The header that resynchronisation looks for, lower case.
const CONTENT_LENGTH: &[u8] = b"content-length:";

/// How messages are delimited on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// `Content-Length: N\r\n\r\n` and N bytes of JSON, as language servers speak.
    Lsp,
    /// One JSON message per line.
    Ndjson,
}

impl Framing {
    /// The framing a connection speaks, judged from its first byte that is not white space.
    pub fn detect(first: u8) -> Framing {
        match first {
            b'{' | b'[' => Framing::Ndjson,
            _ => Framing::Lsp,
        }
    }

    /// One message, framed for the wire.
    pub fn encode(self, json: &[u8]) -> Vec<u8> {
        match self {
            Framing::Lsp => {
                let header = format!("Content-Length: {}\r\n\r\n", json.len());
                let mut framed = Vec::with_capacity(header.len() + json.len());
                framed.extend_from_slice(header.as_bytes());
                framed.extend_from_slice(json);
                framed
            }
            Framing::Ndjson => {
                let mut framed = Vec::with_capacity(json.len() + 1);
                framed.extend_from_slice(json);
                framed.push(b'\n');
                framed
            }
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Lsp => "lsp",
            Framing::Ndjson => "ndjson",
        })
    }
}

/// A framing name that is neither `lsp` nor `ndjson`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framing '{0}': expected lsp or ndjson")]
pub struct UnknownFraming(String);

impl FromStr for Framing {
    type Err = UnknownFraming;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "lsp" => Ok(Framing::Lsp),
            "ndjson" => Ok(Framing::Ndjson),
            other => Err(UnknownFraming(other.to_owned())),
        }
    }
}

/// One unit cut from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The bytes of one message, not yet parsed.
    Message(Vec<u8>),
    /// A message over [`MAX_MESSAGE_BYTES`], already skipped; `len` is its declared length
    /// (LSP) or the length of its line (ndjson).
    TooLarge { len: u64 },
    /// Framing that could not be understood; the reader resynchronises on the next header.
    Malformed(&'static str),
}

/// Cuts an input stream into [`Frame`]s.
#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    input: BufReader<R>,
    framing: Option<Framing>,
    /// LSP only: the stream is damaged and the next `Content-Length` header has not been
    /// found yet.
    resyncing: bool,
    /// Bytes already consumed from `input` that begin the next header line.
    carry: Vec<u8>,
    /// `carry` is the whole next header line, not just its start.
    carry_complete: bool,
}

/// How reading one header line ended.
enum HeaderLine {
    Line(Vec<u8>),
    /// The line exceeds the limit; holds what was read of it.
    TooLong(Vec<u8>),
    /// Input ended; `partial` says whether part of a line had been read.
    End {
        partial: bool,
    },
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader for `framing`, or one that detects it from the first byte when `None`.
    pub(crate) fn new(input: R, framing: Option<Framing>) -> Self {
        FrameReader {
            input: BufReader::with_capacity(READ_BUFFER_BYTES, input),
            framing,
            resyncing: false,
            carry: Vec::new(),
            carry_complete: false,
        }
    }

    /// The framing, detecting it first if needed: skips leading white space and looks at the
    /// next byte without consuming it. `None` when the input ends first.
    pub(crate) async fn framing(&mut self) -> std::io::Result<Option<Framing>> {
        if let Some(framing) = self.framing {
            return Ok(Some(framing));
        }
        loop {
            let buffer = self.input.fill_buf().await?;
            if buffer.is_empty() {
                return Ok(None);
            }
            match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
                Some(at) => {
                    let framing = Framing::detect(buffer[at]);
                    self.input.consume(at);
                    self.framing = Some(framing);
                    return Ok(Some(framing));
                }
                None => {
                    let len = buffer.len();
                    self.input.consume(len);
                }
            }
        }
    }

    /// The next frame, or `None` at the end of input. An I/O error means the stream is
    /// unusable.
    pub(crate) async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        match self.framing().await? {
            None => Ok(None),
            Some(Framing::Ndjson) => self.next_line().await,
            Some(Framing::Lsp) => self.next_lsp().await,
        }
    }

    async fn next_line(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            // One byte more than the limit is kept so that a trailing `\r` can be told apart
            // from a line that is genuinely too long.
            let mut line = Vec::new();
            let mut seen: u64 = 0;
            let mut too_large = false;
            let mut ended = false;
            loop {
                let buffer = self.input.fill_buf().await?;
                if buffer.is_empty() {
                    break;
                }
                let (chunk, used) = match buffer.iter().position(|&byte| byte == b'\n') {
                    Some(at) => (&buffer[..at], at + 1),
                    None => (buffer, buffer.len()),
                };
                ended = used > chunk.len();
                seen += chunk.len() as u64;
                if !too_large {
                    if line.len() + chunk.len() > MAX_MESSAGE_BYTES + 1 {
                        too_large = true;
                        line = Vec::new();
                    } else {
                        line.extend_from_slice(chunk);
                    }
                }
                self.input.consume(used);
                if ended {
                    break;
                }
            }
            if !ended && seen == 0 {
                return Ok(None);
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if too_large || line.len() > MAX_MESSAGE_BYTES {
                return Ok(Some(Frame::TooLarge { len: seen }));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Frame::Message(line)));
        }
    }

    async fn next_lsp(&mut self) -> std::io::Result<Option<Frame>> {
        if self.resyncing {
            if !self.find_content_length().await? {
                return Ok(None);
            }
            self.resyncing = false;
        }

        let mut content_length: Option<u64> = None;
        let mut lines = 0;
        loop {
            let line = match self.header_line().await? {
                HeaderLine::Line(line) => line,
                HeaderLine::TooLong(start) => {
                    return Ok(Some(self.malformed("header line too long", &start, false)));
                }
                HeaderLine::End { partial } => {
                    if partial || lines > 0 {
                        tracing::warn!("input ended inside a message header");
                    }
                    return Ok(None);
                }
            };
            if line.is_empty() {
                if lines == 0 {
                    // Blank lines between messages are harmless.
                    continue;
                }
                break;
            }
            lines += 1;
            if lines > MAX_HEADER_LINES {
                return Ok(Some(self.malformed("too many header lines", &line, true)));
            }
            let Some((name, value)) = split_header(&line) else {
                return Ok(Some(self.malformed("invalid header line", &line, true)));
            };
            if name.eq_ignore_ascii_case(b"content-length") {
                match (parse_length(value), content_length) {
                    (None, _) => {
                        return Ok(Some(self.malformed(
                            "invalid Content-Length header",
                            &line,
                            true,
                        )));
                    }
                    (Some(new), Some(old)) if new != old => {
                        return Ok(Some(self.malformed(
                            "conflicting Content-Length headers",
                            &line,
                            true,
                        )));
                    }
                    (Some(new), _) => content_length = Some(new),
                }
            }
            // Every other header, Content-Type included, is accepted and ignored.
        }

        let Some(len) = content_length else {
            return Ok(Some(self.malformed("missing Content-Length header", &[], true)));
        };
        if len > MAX_MESSAGE_BYTES as u64 {
            let skipped =
                tokio::io::copy(&mut (&mut self.input).take(len), &mut tokio::io::sink()).await?;
            if skipped < len {
                tracing::warn!("input ended inside an oversize message body");
            }
            return Ok(Some(Frame::TooLarge { len }));
        }
        let mut body = vec![0; len as usize];
        match self.input.read_exact(&mut body).await {
            Ok(_) => Ok(Some(Frame::Message(body))),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::warn!("input ended inside a message body");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Names the damage and decides where reading resumes. A `Content-Length` header inside
    /// the offending line (typically after the tail of a body shorter than announced) is used
    /// at once; otherwise the input is scanned for the next one. The search starts after the
    /// line's first byte, so a bad `Content-Length` line cannot be found again.
    fn malformed(&mut self, reason: &'static str, line: &[u8], complete: bool) -> Frame {
        self.carry.clear();
        self.carry_complete = false;
        self.resyncing = true;
        let lower = line.to_ascii_lowercase();
        if let Some(at) = (1..lower.len()).find(|&at| lower[at..].starts_with(CONTENT_LENGTH)) {
            self.carry = line[at..].to_vec();
            self.carry_complete = complete;
            self.resyncing = false;
        }
        Frame::Malformed(reason)
    }

    /// Reads one header line without its line ending (`\r\n`, or a bare `\n`).
    async fn header_line(&mut self) -> std::io::Result<HeaderLine> {
        let mut line = std::mem::take(&mut self.carry);
        if std::mem::take(&mut self.carry_complete) {
            return Ok(HeaderLine::Line(line));
        }
        loop {
            let buffer = self.input.fill_buf().await?;
            if buffer.is_empty() {
                return Ok(HeaderLine::End { partial: !line.is_empty() });
            }
            let (chunk, used) = match buffer.iter().position(|&byte| byte == b'\n') {
                Some(at) => (&buffer[..at], at + 1),
                None => (buffer, buffer.len()),
            };
            if line.len() + chunk.len() > MAX_HEADER_LINE_BYTES {
                // The rest of the line stays in the input for resynchronisation to scan.
                return Ok(HeaderLine::TooLong(line));
            }
            let done = used > chunk.len();
            line.extend_from_slice(chunk);
            self.input.consume(used);
            if done {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(HeaderLine::Line(line));
            }
        }
    }

    /// Skips input up to and including the next `content-length:` (in any case), leaving that
    /// text in `carry` so the header block parses as usual. `false` at the end of input.
    async fn find_content_length(&mut self) -> std::io::Result<bool> {
        // `c` occurs only at the start of the needle, so on a mismatch a match can only
        // restart at the current byte; no longer history is needed.
        let mut matched = 0;
        loop {
            let buffer = self.input.fill_buf().await?;
            if buffer.is_empty() {
                return Ok(false);
            }
            let mut used = buffer.len();
            for (at, byte) in buffer.iter().enumerate() {
                let byte = byte.to_ascii_lowercase();
                if byte == CONTENT_LENGTH[matched] {
                    matched += 1;
                } else {
                    matched = usize::from(byte == CONTENT_LENGTH[0]);
                }
                if matched == CONTENT_LENGTH.len() {
                    used = at + 1;
                    break;
                }
            }
            self.input.consume(used);
            if matched == CONTENT_LENGTH.len() {
                self.carry = CONTENT_LENGTH.to_vec();
                return Ok(true);
            }
        }
    }
}

/// A Content-Length value: decimal digits only, surrounding spaces allowed.
fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = std::str::from_utf8(value).ok()?.trim();
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Splits `Name: value`, checking that the name is an HTTP token.
fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&byte| byte == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let is_token = |byte: &u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(byte);
    if name.is_empty() || !name.iter().all(is_token) {
        return None;
    }
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// Feeds `chunks` through a small pipe, one write each, and collects every frame.
    async fn frames(framing: Option<Framing>, chunks: Vec<Vec<u8>>) -> Vec<Frame> {
        let (mut client, server) = tokio::io::duplex(256);
        let writer = tokio::spawn(async move {
            for chunk in chunks {
                client.write_all(&chunk).await.unwrap();
                client.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut reader = FrameReader::new(server, framing);
        let mut frames = Vec::new();
        while let Some(frame) = reader.next_frame().await.unwrap() {
            frames.push(frame);
        }
        writer.await.unwrap();
        frames
    }

    fn message(text: &str) -> Frame {
        Frame::Message(text.as_bytes().to_vec())
    }

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn framing_names_parse() {
        assert_eq!("lsp".parse::<Framing>(), Ok(Framing::Lsp));
        assert_eq!("ndjson".parse::<Framing>(), Ok(Framing::Ndjson));
        let error = "LSP".parse::<Framing>().unwrap_err();
        assert_eq!(error.to_string(), "unknown framing 'LSP': expected lsp or ndjson");
        assert_eq!(Framing::Ndjson.to_string(), "ndjson");
    }

    #[test]
    fn encodes_both_framings() {
        assert_eq!(Framing::Lsp.encode(b"{}"), b"Content-Length: 2\r\n\r\n{}");
        assert_eq!(Framing::Ndjson.encode(b"{}"), b"{}\n");
    }

    #[tokio::test]
    async fn detects_framing_after_white_space() {
        let found = frames(None, vec![bytes(" \r\n\t{\"a\":1}\n[1]\n")]).await;
        assert_eq!(found, vec![message("{\"a\":1}"), message("[1]")]);
        let found = frames(None, vec![bytes("\n\nContent-Length: 2\r\n\r\n{}")]).await;
        assert_eq!(found, vec![message("{}")]);
        assert!(frames(None, vec![bytes("  \n ")]).await.is_empty());
    }

    #[tokio::test]
    async fn ndjson_lines_split_across_reads() {
        let input = b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}".to_vec();
        let chunks = input.iter().map(|&byte| vec![byte]).collect();
        let found = frames(Some(Framing::Ndjson), chunks).await;
        assert_eq!(found, vec![message("{\"a\":1}"), message("{\"b\":2}"), message("{\"c\":3}")]);
    }

    #[tokio::test]
    async fn lsp_frames_split_across_reads() {
        let input = b"Content-Length: 7\r\nContent-Type: application/vscode-jsonrpc; \
            charset=utf-8\r\n\r\n{\"a\":1}content-length:2\n\n[]"
            .to_vec();
        let chunks = input.iter().map(|&byte| vec![byte]).collect();
        let found = frames(Some(Framing::Lsp), chunks).await;
        assert_eq!(found, vec![message("{\"a\":1}"), message("[]")]);
    }

    #[tokio::test]
    async fn oversize_messages_are_skipped() {
        let big = vec![b'x'; MAX_MESSAGE_BYTES + 1];
        let exact = vec![b' '; MAX_MESSAGE_BYTES - 2];

        let mut lsp = format!("Content-Length: {}\r\n\r\n", big.len()).into_bytes();
        lsp.extend_from_slice(&big);
        lsp.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        let found = frames(Some(Framing::Lsp), vec![lsp]).await;
        assert_eq!(found, vec![Frame::TooLarge { len: big.len() as u64 }, message("{}")]);

        let mut ndjson = big.clone();
        ndjson.extend_from_slice(b"\r\n{}\n");
        // A line of exactly the limit is accepted.
        ndjson.push(b'[');
        ndjson.extend_from_slice(&exact);
        ndjson.extend_from_slice(b"]\n");
        let found = frames(Some(Framing::Ndjson), vec![ndjson]).await;
        assert_eq!(found.len(), 3);
        assert_eq!(found[0], Frame::TooLarge { len: big.len() as u64 + 1 });
        assert_eq!(found[1], message("{}"));
        assert!(matches!(&found[2], Frame::Message(m) if m.len() == MAX_MESSAGE_BYTES));
    }

    #[tokio::test]
    async fn damaged_lsp_input_resynchronises() {
        let cases: Vec<(&str, &str)> = vec![
            ("hello\r\n\r\n", "invalid header line"),
            ("{\"jsonrpc\":\"2.0\"}\n", "invalid header line"),
            ("Content-Type: x\r\n\r\n{}", "missing Content-Length header"),
            ("Content-Length: abc\r\n\r\n{}", "invalid Content-Length header"),
            ("Content-Length: -1\r\n\r\n{}", "invalid Content-Length header"),
            (
                "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
                "conflicting Content-Length headers",
            ),
            ("Cont\u{e9}nt-Length: 2\r\n\r\n{}", "invalid header line"),
        ];
        for (garbage, reason) in cases {
            let mut input = garbage.as_bytes().to_vec();
            input.extend_from_slice(b"CONTENT-LENGTH: 2\r\n\r\n{}");
            let found = frames(Some(Framing::Lsp), vec![input]).await;
            assert_eq!(found, vec![Frame::Malformed(reason), message("{}")], "after {garbage:?}");
        }

        let mut long = vec![b'X'; MAX_HEADER_LINE_BYTES * 3];
        long.extend_from_slice(b": 1\r\n\r\nContent-Length: 2\r\n\r\n{}");
        let found = frames(Some(Framing::Lsp), vec![long]).await;
        assert_eq!(found, vec![Frame::Malformed("header line too long"), message("{}")]);

        // A body shorter than announced leaves its tail in front of the next header.
        let short = bytes("Content-Length: 3\r\n\r\n{\"a\":1}Content-Length: 2\r\n\r\n{}");
        let found = frames(Some(Framing::Lsp), vec![short]).await;
        assert_eq!(
            found,
            vec![message("{\"a"), Frame::Malformed("invalid header line"), message("{}")]
        );
    }

    #[tokio::test]
    async fn input_ending_inside_a_message_ends_cleanly() {
        let found = frames(Some(Framing::Lsp), vec![bytes("Content-Length: 10\r\n\r\n{}")]).await;
        assert!(found.is_empty());
        let found = frames(Some(Framing::Lsp), vec![bytes("Content-Len")]).await;
        assert!(found.is_empty());
        let found = frames(Some(Framing::Ndjson), vec![bytes("{\"a\":1}")]).await;
        assert_eq!(found, vec![message("{\"a\":1}")]);
    }
}
