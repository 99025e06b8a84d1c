//! Every error text a client can see, with Redis's exact wording.
//!
//! Handlers build errors through these helpers so that a reply never drifts from what Redis
//! sends (clients and tests match on the text). Texts carry their error code prefix (`ERR`,
//! `WRONGTYPE`, `NOPROTO`, …) but not the leading `-` of the wire format.

use crate::reply::Reply;
use bytes::Bytes;
use std::borrow::Cow;

/// An error reply: the full text after the `-`.
pub type ErrorText = Cow<'static, str>;

pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const DB_INDEX_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const NOPROTO: &str = "NOPROTO unsupported protocol version";
pub const MAX_CLIENTS: &str = "ERR max number of clients reached";
pub const NO_SUCH_CLIENT: &str = "ERR No such client";
pub const CLIENT_NAME_CHARS: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";
pub const AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
pub const INVALID_CURSOR: &str = "ERR invalid cursor";
pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";

/// Redis replaces CR and LF in error texts with spaces so the reply stays one protocol line.
pub fn sanitize(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// An error that quotes client bytes: `prefix` + `arg` + `suffix`,
/// byte for byte (not UTF-8-mangled), with CR and LF turned into spaces as Redis does.
pub fn with_arg(prefix: &str, arg: &[u8], suffix: &str) -> Reply {
    let mut text = Vec::with_capacity(prefix.len() + arg.len() + suffix.len());
    text.extend_from_slice(prefix.as_bytes());
    text.extend_from_slice(arg);
    text.extend_from_slice(suffix.as_bytes());
    error_bytes(text)
}

fn error_bytes(mut text: Vec<u8>) -> Reply {
    for b in &mut text {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    Reply::ErrorBytes(Bytes::from(text))
}

pub fn wrong_arity(fullname: &str) -> ErrorText {
    format!("ERR wrong number of arguments for '{fullname}' command").into()
}

/// `unknown command 'x', with args beginning with: 'a' 'b' ` — the trailing space is Redis's.
pub fn unknown_command(name: &[u8], args: &[Bytes]) -> Reply {
    let mut listed: Vec<u8> = Vec::new();
    for arg in args {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&arg[..arg.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(&name[..name.len().min(128)]);
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&listed);
    error_bytes(text)
}

pub fn unknown_subcommand(sub: &[u8], container: &str) -> Reply {
    with_arg(
        "ERR unknown subcommand '",
        &sub[..sub.len().min(128)],
        &format!("'. Try {} HELP.", container.to_ascii_uppercase()),
    )
}

/// A subcommand called with arguments it does not take (Redis's addReplySubcommandSyntaxError).
pub fn subcommand_syntax(sub: &[u8], container: &str) -> Reply {
    with_arg(
        "ERR unknown subcommand or wrong number of arguments for '",
        &sub[..sub.len().min(128)],
        &format!("'. Try {} HELP.", container.to_ascii_uppercase()),
    )
}

pub fn subscribed_context(fullname: &str) -> ErrorText {
    format!(
        "ERR Can't execute '{fullname}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )
    .into()
}

/// Protocol errors end the connection after the reply, as in Redis's networking.c.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInline,
    UnbalancedQuotes,
    TooBigMbulkCount,
    InvalidMultibulkLength,
    TooBigBulkCount,
    ExpectedDollar(u8),
    InvalidBulkLength,
    /// The query buffer outgrew `client-query-buffer-limit`: closed without a reply.
    QueryBufferLimit,
}

impl ProtocolError {
    /// The reply sent before closing, if any.
    pub fn reply_text(&self) -> Option<String> {
        let t = match self {
            ProtocolError::TooBigInline => "too big inline request".to_string(),
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request".to_string(),
            ProtocolError::TooBigMbulkCount => "too big mbulk count string".to_string(),
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length".to_string(),
            ProtocolError::TooBigBulkCount => "too big bulk count string".to_string(),
            ProtocolError::ExpectedDollar(c) => format!("expected '$', got '{}'", *c as char),
            ProtocolError::InvalidBulkLength => "invalid bulk length".to_string(),
            ProtocolError::QueryBufferLimit => return None,
        };
        Some(sanitize(&format!("ERR Protocol error: {t}")))
    }
}
