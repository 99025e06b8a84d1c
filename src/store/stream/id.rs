//! Stream entry IDs: `<milliseconds>-<sequence>`, ordered, with Redis's parsing rules.

use std::fmt;

/// A stream entry ID. Ordered by milliseconds, then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID in order, or `None` after `MAX`.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID in order, or `None` before `MIN`.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn to_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(self.to_string())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Redis's `string2ull`: the strict integer parser, then `strtoull` (which allows leading
/// spaces, a sign and leading zeros; a minus wraps), rejecting overflow and trailing junk.
pub fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = crate::resp::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let t = &s[start..];
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Redis's stream ID parser (`streamGenericParseIDOrReply`). `-` and `+` are the smallest and
/// largest IDs unless `strict`; a missing sequence is `missing_seq`; with `allow_auto_seq`,
/// `ms-*` parses as `(ms-0, false)` — the boolean says whether a sequence was given.
pub fn parse_id(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Result<(StreamId, bool), &'static str> {
    if arg.len() > 127 {
        return Err(INVALID_ID);
    }
    if arg == b"-" || arg == b"+" {
        if strict {
            return Err(INVALID_ID);
        }
        return Ok((
            if arg == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    let (ms_part, seq_part) = match arg.iter().position(|&b| b == b'-') {
        Some(d) => (&arg[..d], Some(&arg[d + 1..])),
        None => (arg, None),
    };
    let ms = string2ull(ms_part).ok_or(INVALID_ID)?;
    match seq_part {
        None => Ok((StreamId::new(ms, missing_seq), true)),
        Some(b"*") if allow_auto_seq => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((StreamId::new(ms, string2ull(seq).ok_or(INVALID_ID)?), true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_redis() {
        let p = |a: &[u8]| parse_id(a, 0, false, false).map(|(id, _)| id);
        assert_eq!(p(b"-"), Ok(StreamId::MIN));
        assert_eq!(p(b"+"), Ok(StreamId::MAX));
        assert_eq!(p(b"5"), Ok(StreamId::new(5, 0)));
        assert_eq!(
            parse_id(b"5", u64::MAX, false, false),
            Ok((StreamId::new(5, u64::MAX), true))
        );
        assert_eq!(p(b"5-3"), Ok(StreamId::new(5, 3)));
        assert_eq!(
            p(b"05"),
            Ok(StreamId::new(5, 0)),
            "strtoull accepts leading zeros"
        );
        assert!(p(b"5-").is_err());
        assert!(p(b"-5").is_err());
        assert!(p(b"5-x").is_err());
        assert!(parse_id(b"-", 0, true, false).is_err());
        assert_eq!(
            parse_id(b"7-*", 0, true, true),
            Ok((StreamId::new(7, 0), false))
        );
        assert!(parse_id(b"7-*", 0, true, false).is_err());
    }

    #[test]
    fn next_and_prev_wrap_sequences() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::MIN.prev(), None);
    }
}
