//! COMMAND DOCS argument trees, built from each command's usage line.
//!
//! A usage line is Redis's help syntax, lightly typed: `name` is a string argument,
//! `name:integer` (or `:key`, `:pattern`, `:double`, `:unix-time`) gives its type, an
//! UPPER-CASE word is a pure token, a token followed by an argument or group attaches to it
//! (`COUNT count:integer`), `[...]` is optional, `(...)` groups, `a|b` is a choice and `x ...`
//! repeats. redis-cli builds its hints from the tree this produces.

use crate::reply::Reply;

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: String,
    pub kind: &'static str,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub children: Vec<Arg>,
}

impl Arg {
    fn leaf(name: &str, kind: &'static str) -> Arg {
        Arg {
            name: name.into(),
            kind,
            token: None,
            optional: false,
            multiple: false,
            children: vec![],
        }
    }

    pub fn to_reply(&self) -> Reply {
        let mut m = vec![
            (Reply::bulk_str("name"), Reply::bulk_str(&self.name)),
            (Reply::bulk_str("type"), Reply::bulk_str(self.kind)),
        ];
        if let Some(t) = &self.token {
            m.push((Reply::bulk_str("token"), Reply::bulk_str(t)));
        }
        let mut flags = vec![];
        if self.optional {
            flags.push(Reply::status("optional"));
        }
        if self.multiple {
            flags.push(Reply::status("multiple"));
        }
        if !flags.is_empty() {
            m.push((Reply::bulk_str("flags"), Reply::Set(flags)));
        }
        if !self.children.is_empty() {
            m.push((
                Reply::bulk_str("arguments"),
                Reply::Array(self.children.iter().map(Arg::to_reply).collect()),
            ));
        }
        Reply::Map(m)
    }
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '[' | ']' | '(' | ')' | '|' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(ch.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_token(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_uppercase()) && !w.chars().any(|c| c.is_ascii_lowercase())
}

/// Parse a usage line into its argument tree.
pub fn parse_usage(usage: &str) -> Result<Vec<Arg>, String> {
    let toks = tokenize(usage);
    let mut pos = 0;
    let args = parse_seq(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(format!("unexpected '{}'", toks[pos]));
    }
    Ok(args)
}

fn parse_seq(toks: &[String], pos: &mut usize) -> Result<Vec<Arg>, String> {
    let mut alts: Vec<Vec<Arg>> = vec![vec![]];
    while *pos < toks.len() {
        let t = toks[*pos].as_str();
        match t {
            "]" | ")" => break,
            "|" => {
                *pos += 1;
                alts.push(vec![]);
            }
            _ => {
                let item = parse_item(toks, pos)?;
                let cur = alts.last_mut().ok_or("empty")?;
                // A pure token followed by an argument or group becomes that argument's token.
                match cur.last_mut() {
                    Some(prev)
                        if prev.kind == "pure-token"
                            && !prev.optional
                            && !prev.multiple
                            && item.token.is_none()
                            && item.kind != "pure-token" =>
                    {
                        let token = prev.token.clone();
                        let mut merged = item;
                        merged.token = token;
                        *prev = merged;
                    }
                    _ => cur.push(item),
                }
            }
        }
    }
    if alts.len() == 1 {
        return Ok(alts.pop().unwrap_or_default());
    }
    let children = alts
        .into_iter()
        .map(|mut alt| {
            if alt.len() == 1 {
                alt.pop().unwrap_or_else(|| Arg::leaf("arg", "string"))
            } else {
                Arg {
                    children: alt,
                    ..Arg::leaf("block", "block")
                }
            }
        })
        .collect::<Vec<_>>();
    let name = children
        .first()
        .map_or("arg".to_string(), |c| c.name.clone());
    Ok(vec![Arg {
        children,
        ..Arg::leaf(&name, "oneof")
    }])
}

fn group(mut inner: Vec<Arg>) -> Arg {
    if inner.len() == 1 {
        inner.pop().unwrap_or_else(|| Arg::leaf("arg", "string"))
    } else {
        let name = inner
            .first()
            .map_or("block".to_string(), |a| a.name.clone());
        Arg {
            children: inner,
            ..Arg::leaf(&name, "block")
        }
    }
}

fn parse_item(toks: &[String], pos: &mut usize) -> Result<Arg, String> {
    let t = toks[*pos].clone();
    *pos += 1;
    let mut arg = match t.as_str() {
        "[" | "(" => {
            let close = if t == "[" { "]" } else { ")" };
            let inner = parse_seq(toks, pos)?;
            if toks.get(*pos).map(String::as_str) != Some(close) {
                return Err(format!("missing '{close}'"));
            }
            *pos += 1;
            let mut g = group(inner);
            if t == "[" {
                g.optional = true;
            }
            g
        }
        w if is_token(w) => Arg {
            token: Some(w.to_string()),
            ..Arg::leaf(&w.to_ascii_lowercase(), "pure-token")
        },
        w => {
            let (name, kind) = match w.split_once(':') {
                Some((n, "integer")) => (n, "integer"),
                Some((n, "key")) => (n, "key"),
                Some((n, "pattern")) => (n, "pattern"),
                Some((n, "double")) => (n, "double"),
                Some((n, "unix-time")) => (n, "unix-time"),
                Some((_, other)) => return Err(format!("unknown type {other}")),
                None if w == "key" => (w, "key"),
                None => (w, "string"),
            };
            Arg::leaf(name, kind)
        }
    };
    if toks.get(*pos).map(String::as_str) == Some("...") {
        *pos += 1;
        arg.multiple = true;
    }
    Ok(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_attach_to_their_argument() {
        let a = parse_usage("key [COUNT count:integer]").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].kind, "key");
        assert_eq!(a[1].name, "count");
        assert_eq!(a[1].token.as_deref(), Some("COUNT"));
        assert!(a[1].optional);
    }

    #[test]
    fn choices_and_repeats() {
        let a = parse_usage("[ON|OFF|SKIP] channel ...").unwrap();
        assert_eq!(a[0].kind, "oneof");
        assert_eq!(a[0].children.len(), 3);
        assert!(a[1].multiple);
        assert!(parse_usage("[unclosed").is_err());
    }
}
