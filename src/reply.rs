//! `Reply`: the value a handler returns, a superset of RESP2 and RESP3, and its wire encoding.
//!
//! Handlers never write to sockets; they return a `Reply` and the connection encodes it for the
//! client's negotiated protocol. RESP3-only types degrade to their RESP2 forms exactly as Redis
//! does: maps flatten to arrays, sets and pushes become arrays, doubles become bulk strings,
//! booleans become integers, and the RESP3 null becomes `$-1` or `*-1` by context.

use bytes::{BufMut, Bytes, BytesMut};
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`
    Status(Cow<'static, str>),
    /// `-text` (the text carries its code, e.g. `ERR ...`).
    Error(Cow<'static, str>),
    /// An error quoting client bytes that need not be UTF-8 (see `error::with_arg`).
    ErrorBytes(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// A null where Redis 2 would send a null bulk string (`$-1`).
    Null,
    /// A null where Redis 2 would send a null array (`*-1`).
    NullArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    /// Out-of-band data (pub/sub deliveries, confirmations in RESP3).
    Push(Vec<Reply>),
    Double(f64),
    Bool(bool),
    /// RESP3 verbatim string with its three-letter format (`txt`).
    Verbatim(&'static str, Bytes),
    /// Nothing is sent (CLIENT REPLY OFF/SKIP, commands that close the connection).
    None,
    /// Several replies to one command, sent back to back (one SUBSCRIBE confirmation per
    /// channel).
    Sequence(Vec<Reply>),
    /// Wire bytes encoded in advance, the same in RESP2 and RESP3 (arrays of bulk strings:
    /// stream entries written straight from their chunks).
    Encoded(Bytes),
}

impl Reply {
    pub const fn ok() -> Reply {
        Reply::Status(Cow::Borrowed("OK"))
    }

    pub fn status(s: &'static str) -> Reply {
        Reply::Status(Cow::Borrowed(s))
    }

    pub fn error(e: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(e.into())
    }

    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Out-of-band data (push frames, alone or in a sequence).
    pub fn is_push(&self) -> bool {
        match self {
            Reply::Push(_) => true,
            Reply::Sequence(items) => !items.is_empty() && items.iter().all(Reply::is_push),
            _ => false,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::ErrorBytes(_))
    }

    /// Encode for protocol version `proto` (2 or 3), appending to `out`.
    pub fn encode(&self, proto: u8, out: &mut BytesMut) {
        let resp3 = proto >= 3;
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::ErrorBytes(s) => line(out, b'-', s),
            Reply::Integer(n) => int_line(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Encoded(b) => out.put_slice(b),
            Reply::Null if resp3 => out.put_slice(b"_\r\n"),
            Reply::Null => out.put_slice(b"$-1\r\n"),
            Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NullArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => aggregate(out, b'*', items, proto),
            Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
            Reply::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
            Reply::Map(pairs) => {
                if resp3 {
                    len_line(out, b'%', pairs.len());
                } else {
                    len_line(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Bool(b) => int_line(out, b':', *b as i64),
            Reply::Verbatim(fmt, b) if resp3 => {
                len_line(out, b'=', b.len() + 4);
                out.put_slice(fmt.as_bytes());
                out.put_u8(b':');
                out.put_slice(b);
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(_, b) => bulk(out, b),
            Reply::None => {}
            Reply::Sequence(items) => {
                for item in items {
                    item.encode(proto, out);
                }
            }
        }
    }

    /// Encoded form as a standalone buffer (used by tests and by pre-encoded fan-out frames).
    pub fn to_bytes(&self, proto: u8) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out.freeze()
    }
}

fn line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(tag);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    line(out, tag, buf.format(n).as_bytes());
}

/// `*n\r\n` — the header of an array whose `n` elements are encoded separately.
pub fn array_header(out: &mut BytesMut, n: usize) {
    len_line(out, b'*', n);
}

/// A bulk string written in place.
pub fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    bulk(out, b);
}

pub(crate) fn len_line(out: &mut BytesMut, tag: u8, n: usize) {
    let mut buf = itoa::Buffer::new();
    line(out, tag, buf.format(n).as_bytes());
}

pub(crate) fn bulk(out: &mut BytesMut, b: &[u8]) {
    out.reserve(b.len() + 16);
    len_line(out, b'$', b.len());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, tag: u8, items: &[Reply], proto: u8) {
    len_line(out, tag, items.len());
    for item in items {
        item.encode(proto, out);
    }
}

fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, proto: u8) -> String {
        String::from_utf8(r.to_bytes(proto).to_vec()).unwrap()
    }

    #[test]
    fn map_flattens_in_resp2_and_is_a_map_in_resp3() {
        let m = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Integer(1))]);
        assert_eq!(enc(&m, 2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, 3), "%1\r\n$1\r\na\r\n:1\r\n");
    }

    #[test]
    fn nulls_follow_the_protocol() {
        assert_eq!(enc(&Reply::Null, 2), "$-1\r\n");
        assert_eq!(enc(&Reply::NullArray, 2), "*-1\r\n");
        assert_eq!(enc(&Reply::Null, 3), "_\r\n");
    }

    #[test]
    fn push_is_an_array_in_resp2() {
        let p = Reply::Push(vec![Reply::bulk_str("message")]);
        assert_eq!(enc(&p, 2), "*1\r\n$7\r\nmessage\r\n");
        assert_eq!(enc(&p, 3), ">1\r\n$7\r\nmessage\r\n");
    }
}
