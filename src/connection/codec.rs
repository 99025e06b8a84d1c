//! Request decoding: RESP multibulk and inline commands, with Redis's limits and errors.
//!
//! The parser is incremental like Redis's `processMultibulkBuffer`: arguments are split off the
//! read buffer as soon as they are complete (zero-copy `Bytes` slices of it), and the count and
//! length already read are remembered, so a request that arrives in many reads is never
//! re-scanned. Every length a client sends is checked before anything is reserved for it:
//! `proto-max-bulk-len` bounds one argument, the multibulk count must fit Redis's `INT_MAX`, and
//! `client-query-buffer-limit` bounds the unparsed input plus the arguments held so far.

use crate::error::ProtocolError;
use bytes::{Buf, Bytes, BytesMut};

/// Longest inline request or header line (Redis's PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Bulk arguments at least this large get a buffer reserved for exactly their size.
const BIG_ARG: usize = 32 * 1024;
/// Bookkeeping charged per held argument when checking the query buffer limit.
const ARG_OVERHEAD: usize = 32;

#[derive(Debug, Clone, Copy)]
pub struct ParserLimits {
    pub max_bulk_len: u64,
    pub query_buffer_limit: u64,
}

#[derive(Default)]
pub struct RequestParser {
    args: Vec<Bytes>,
    /// Arguments still expected in the current multibulk (0 = between requests).
    remaining: usize,
    /// Length of the bulk argument whose header has been read, if any.
    bulk_len: Option<usize>,
    held_bytes: usize,
}

impl RequestParser {
    /// Bytes held by a partially received request (for CLIENT LIST qbuf and the limit).
    pub fn held(&self) -> usize {
        self.held_bytes
    }

    /// How many bytes the next read should make room for.
    ///
    /// For a large argument the buffer grows geometrically as its bytes arrive (never more than
    /// doubling what has been received), so announcing a huge length costs the sender as much
    /// memory as it costs the server.
    pub fn wanted(&self, buf: &BytesMut) -> usize {
        match self.bulk_len {
            Some(len) if len + 2 >= BIG_ARG => (len + 2)
                .saturating_sub(buf.len())
                .min(buf.len().max(BIG_ARG)),
            _ => 0,
        }
    }

    /// Parse one complete request from `buf`. `Ok(None)` means more input is needed;
    /// `Ok(Some(args))` may be empty (a blank inline line), which callers skip.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParserLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let result = if self.remaining == 0 && self.args.is_empty() {
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => self.multibulk(buf, limits),
                Some(_) => inline(buf),
            }
        } else {
            self.multibulk(buf, limits)
        };
        if let Ok(None) = result {
            let held = buf.len() + self.held_bytes;
            if held as u64 > limits.query_buffer_limit {
                return Err(ProtocolError::QueryBufferLimit);
            }
        }
        result
    }

    fn multibulk(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParserLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.remaining == 0 {
            // Header "*<count>\r\n".
            let Some(cr) = header_end(buf) else {
                if buf.len() > INLINE_MAX {
                    return Err(ProtocolError::TooBigMbulkCount);
                }
                return Ok(None);
            };
            if cr > INLINE_MAX {
                return Err(ProtocolError::TooBigMbulkCount);
            }
            let count = parse_len(&buf[1..cr]);
            buf.advance(cr + 2);
            let count = match count {
                Some(n) if n <= i32::MAX as i64 => n,
                _ => return Err(ProtocolError::InvalidMultibulkLength),
            };
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            self.remaining = count as usize;
            self.args = Vec::with_capacity(self.remaining.min(1024));
        }
        while self.remaining > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = header_end(buf) else {
                        if buf.len() > INLINE_MAX {
                            return Err(ProtocolError::TooBigBulkCount);
                        }
                        return Ok(None);
                    };
                    if cr > INLINE_MAX {
                        return Err(ProtocolError::TooBigBulkCount);
                    }
                    if buf[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[0]));
                    }
                    let len = parse_len(&buf[1..cr]);
                    buf.advance(cr + 2);
                    let len = match len {
                        Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len => n as usize,
                        _ => return Err(ProtocolError::InvalidBulkLength),
                    };
                    self.bulk_len = Some(len);
                    len
                }
            };
            if buf.len() < len + 2 {
                return Ok(None);
            }
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            self.bulk_len = None;
            self.held_bytes += arg.len() + ARG_OVERHEAD;
            self.args.push(arg);
            self.remaining -= 1;
        }
        self.held_bytes = 0;
        Ok(Some(std::mem::take(&mut self.args)))
    }
}

fn find_newline(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', &buf[..buf.len().min(INLINE_MAX + 2)])
}

/// Where a multibulk or bulk header ends: Redis looks for the first `\r` and skips it and the
/// byte after it, so the header is complete once one more byte has arrived.
fn header_end(buf: &[u8]) -> Option<usize> {
    let cr = memchr::memchr(b'\r', &buf[..buf.len().min(INLINE_MAX + 2)])?;
    (cr + 1 < buf.len()).then_some(cr)
}

/// End of a header line, excluding the `\r` before `\n` if present.
fn line_end(buf: &[u8], nl: usize) -> usize {
    if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    }
}

/// Redis's `string2ll` for header lengths: optional '-', digits only, no '+' or spaces.
fn parse_len(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((d - b'0') as i64)?;
    }
    Some(if neg { -n } else { n })
}

/// An inline command: one line split like Redis's `sdssplitargs` (quotes and escapes).
fn inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = find_newline(buf) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(None);
    };
    if nl > INLINE_MAX {
        return Err(ProtocolError::TooBigInline);
    }
    let line = buf.split_to(nl + 1);
    let text = &line[..line_end(&line, nl)];
    split_args(text)
        .map(Some)
        .ok_or(ProtocolError::UnbalancedQuotes)
}

/// Port of `sdssplitargs`: whitespace-separated words, "double quotes" with \n \r \t \b \a
/// \\ \" and \xHH escapes, 'single quotes' with only \' escaped. A closing quote must be
/// followed by whitespace or the end. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if line[i] == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    other => cur.push(other),
                }
            }
            i += 1;
        }
        out.push(Bytes::from(cur));
    }
}

/// C's `isspace`: space, \t, \n, \v, \f, \r.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParserLimits = ParserLimits {
        max_bulk_len: 512 * 1024 * 1024,
        query_buffer_limit: 1 << 30,
    };

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(input);
        let mut out = vec![];
        while let Some(args) = p.parse(&mut buf, &LIMITS)? {
            out.push(args);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_mix() {
        let got = parse_all(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                vec![Bytes::from("ECHO"), Bytes::from("hi")],
                vec![Bytes::from("PING")]
            ]
        );
    }

    #[test]
    fn request_split_across_reads_is_resumed() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nEC"[..]);
        assert_eq!(p.parse(&mut buf, &LIMITS).unwrap(), None);
        buf.extend_from_slice(b"HO\r\n$2\r\nhi\r\n");
        assert_eq!(
            p.parse(&mut buf, &LIMITS).unwrap(),
            Some(vec![Bytes::from("ECHO"), Bytes::from("hi")])
        );
    }

    #[test]
    fn errors_match_redis() {
        assert_eq!(
            parse_all(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n+a\r\n"),
            Err(ProtocolError::ExpectedDollar(b'+'))
        );
        assert_eq!(
            parse_all(b"*1\r\n$-5\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$999999999999\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*3000000000\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"SET \"a\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(&vec![b'a'; INLINE_MAX + 10]),
            Err(ProtocolError::TooBigInline)
        );
    }

    #[test]
    fn inline_quotes_and_escapes() {
        let got = split_args(br#"set "a b" 'c\'d' "\x41\n""#).unwrap();
        assert_eq!(
            got,
            vec![
                Bytes::from("set"),
                Bytes::from("a b"),
                Bytes::from("c'd"),
                Bytes::from("A\n")
            ]
        );
        assert_eq!(split_args(b"   ").unwrap(), Vec::<Bytes>::new());
        assert!(split_args(b"\"a\"b").is_none());
    }

    #[test]
    fn announced_huge_bulk_does_not_reserve_its_size_up_front() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$500000000\r\n"[..]);
        assert_eq!(p.parse(&mut buf, &LIMITS).unwrap(), None);
        assert!(
            buf.capacity() < 1 << 20,
            "reserved {} bytes",
            buf.capacity()
        );
        assert!(p.wanted(&buf) <= BIG_ARG);
    }

    #[test]
    fn zero_and_negative_counts_are_empty_requests() {
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n").unwrap(),
            vec![Vec::<Bytes>::new(), vec![]]
        );
    }

    #[test]
    fn query_buffer_limit_applies_to_held_input() {
        let limits = ParserLimits {
            max_bulk_len: 1 << 20,
            query_buffer_limit: 100,
        };
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*1\r\n$1000\r\n"[..]);
        buf.extend_from_slice(&[b'x'; 200]);
        assert_eq!(
            p.parse(&mut buf, &limits),
            Err(ProtocolError::QueryBufferLimit)
        );
    }
}
