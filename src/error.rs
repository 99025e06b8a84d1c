//! Every error text a client can see, with Redis's exact wording.
//!
//! Handlers build errors through these helpers so that a reply never drifts from what Redis
//! sends (clients and tests match on the text). Texts carry their error code prefix (`ERR`,
//! `WRONGTYPE`, `NOPROTO`, …) but not the leading `-` of the wire format.

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

/// Redis replaces CR and LF in error texts with spaces so the reply stays one protocol line.
pub fn sanitize(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Lossy, length-capped rendering of client bytes for use inside an error message
/// (Redis prints `%.128s`).
pub fn show(arg: &[u8], max: usize) -> String {
    let cut = &arg[..arg.len().min(max)];
    sanitize(&String::from_utf8_lossy(cut))
}

pub fn wrong_arity(fullname: &str) -> ErrorText {
    format!("ERR wrong number of arguments for '{fullname}' command").into()
}

/// `unknown command 'x', with args beginning with: 'a' 'b' ` — the trailing space is Redis's.
pub fn unknown_command(name: &[u8], args: &[bytes::Bytes]) -> ErrorText {
    let mut listed = String::new();
    for arg in args {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push('\'');
        listed.push_str(&String::from_utf8_lossy(&arg[..arg.len().min(room)]));
        listed.push_str("' ");
    }
    sanitize(&format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(&name[..name.len().min(128)]),
        listed
    ))
    .into()
}

pub fn unknown_subcommand(sub: &[u8], container: &str) -> ErrorText {
    format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        show(sub, 128),
        container.to_ascii_uppercase()
    )
    .into()
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
