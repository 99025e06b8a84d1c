//! The RESP writer for commands (AOF records, and anything else that writes a request) and
//! Redis's integer parsing: the low-level pieces shared by the command layer, the keyspace,
//! the append-only file and the configuration. Nothing here depends on another module.

/// Append a command in RESP form to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    encode_command_parts(out, args, &[]);
}

/// Append `*<n>\r\n`-style header `tag` + `n`.
#[inline]
fn put_len(out: &mut Vec<u8>, tag: u8, n: usize) {
    // Lengths in records are almost always below 100: two digits without formatting.
    if n < 10 {
        out.extend_from_slice(&[tag, b'0' + n as u8, b'\r', b'\n']);
    } else if n < 100 {
        out.extend_from_slice(&[
            tag,
            b'0' + (n / 10) as u8,
            b'0' + (n % 10) as u8,
            b'\r',
            b'\n',
        ]);
    } else {
        out.push(tag);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Append the command `head` followed by `tail` (a client's arguments, copied as they are)
/// in RESP form, reserving the space once: this runs for every logged write.
pub fn encode_command_parts(out: &mut Vec<u8>, head: &[&[u8]], tail: &[bytes::Bytes]) {
    let size: usize = head.iter().map(|a| a.len() + 16).sum::<usize>()
        + tail.iter().map(|a| a.len() + 16).sum::<usize>()
        + 16;
    out.reserve(size);
    put_len(out, b'*', head.len() + tail.len());
    for a in head.iter().copied().chain(tail.iter().map(|b| b.as_ref())) {
        put_len(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parse an integer argument the way Redis's `string2ll` does.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty()
        || s.starts_with('+')
        || s.len() > 20
        || (s.len() > 1 && s.starts_with('0'))
        || s.starts_with("-0")
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_i64(b"12"), Some(12));
        assert_eq!(parse_i64(b"-3"), Some(-3));
        assert_eq!(parse_i64(b"+3"), None);
        assert_eq!(parse_i64(b"03"), None);
        assert_eq!(parse_i64(b" 3"), None);
        assert_eq!(parse_i64(b"99999999999999999999"), None);
    }

    #[test]
    fn commands_encode_as_resp_arrays() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", &[b'v'; 12]]);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$12\r\nvvvvvvvvvvvv\r\n"
        );
    }
}
