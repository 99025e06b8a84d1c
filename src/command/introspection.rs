//! COMMAND, COMMAND COUNT | LIST | INFO | DOCS | HELP: the command table, as clients see it.

use super::docs::parse_usage;
use super::flags::*;
use super::{help_reply, table, CommandSpec, Ctx};
use crate::error;
use crate::glob;
use crate::reply::Reply;
use bytes::Bytes;

const SLOW_CONN: &[&str] = &["slow", "connection"];

const SUBS: &[CommandSpec] = &[
    CommandSpec::new("count", 2, LOADING | STALE, SLOW_CONN, count).doc(
        "server",
        "2.8.13",
        "Returns a count of commands.",
    ),
    CommandSpec::new("list", -2, LOADING | STALE, SLOW_CONN, list)
        .doc("server", "7.0.0", "Returns a list of command names.")
        .complexity("O(N) where N is the total number of Redis commands")
        .usage("[FILTERBY (MODULE module-name|ACLCAT category|PATTERN pattern:pattern)]"),
    CommandSpec::new("info", -2, LOADING | STALE, SLOW_CONN, info)
        .doc(
            "server",
            "2.8.13",
            "Returns information about one, multiple or all commands.",
        )
        .complexity("O(N) where N is the number of commands to look up")
        .usage("[command-name ...]"),
    CommandSpec::new("docs", -2, LOADING | STALE, SLOW_CONN, docs)
        .doc(
            "server",
            "7.0.0",
            "Returns documentary information about one, multiple or all commands.",
        )
        .complexity("O(N) where N is the number of commands to look up")
        .usage("[command-name ...]"),
    CommandSpec::new("help", 2, LOADING | STALE, SLOW_CONN, help).doc(
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    arity: -1,
    flags: LOADING | STALE,
    handler: Some(all),
    ..CommandSpec::container("command", SLOW_CONN, SUBS)
}
.doc(
    "server",
    "2.8.13",
    "Returns detailed information about all commands.",
)
.complexity("O(N) where N is the total number of Redis commands")];

fn status_set(items: impl IntoIterator<Item = String>) -> Reply {
    Reply::Set(items.into_iter().map(|s| Reply::Status(s.into())).collect())
}

fn key_specs(spec: &CommandSpec) -> Reply {
    let (first, last, step) = spec.keys;
    if first == 0 {
        return Reply::Set(vec![]);
    }
    let write = spec.has(WRITE);
    let lastkey = if last < 0 { last } else { last - first };
    let map = |pairs: Vec<(&str, Reply)>| {
        Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Reply::bulk_str(k), v))
                .collect(),
        )
    };
    Reply::Set(vec![map(vec![
        (
            "flags",
            status_set(if write {
                vec!["RW".into(), "delete".into()]
            } else {
                vec!["RO".into(), "access".into()]
            }),
        ),
        (
            "begin_search",
            map(vec![
                ("type", Reply::bulk_str("index")),
                ("spec", map(vec![("index", Reply::Integer(first as i64))])),
            ]),
        ),
        (
            "find_keys",
            map(vec![
                ("type", Reply::bulk_str("range")),
                (
                    "spec",
                    map(vec![
                        ("lastkey", Reply::Integer(lastkey as i64)),
                        ("keystep", Reply::Integer(step as i64)),
                        ("limit", Reply::Integer(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

/// One COMMAND INFO entry (Redis 7's ten fields).
fn info_of(spec: &CommandSpec, fullname: &str) -> Reply {
    let flags = NAMES
        .iter()
        .filter(|(bit, _)| spec.has(*bit))
        .map(|(_, n)| n.to_string());
    let acl = spec.acl.iter().map(|c| format!("@{c}"));
    Reply::Array(vec![
        Reply::bulk_str(fullname),
        Reply::Integer(spec.arity as i64),
        status_set(flags),
        Reply::Integer(spec.keys.0 as i64),
        Reply::Integer(spec.keys.1 as i64),
        Reply::Integer(spec.keys.2 as i64),
        status_set(acl),
        Reply::Set(vec![]),
        key_specs(spec),
        // Redis sends an empty subcommand list as a set, a non-empty one as an array.
        if spec.subcommands.is_empty() {
            Reply::Set(vec![])
        } else {
            Reply::Array(
                spec.subcommands
                    .iter()
                    .map(|s| info_of(s, &format!("{}|{}", spec.name, s.name)))
                    .collect(),
            )
        },
    ])
}

fn docs_of(spec: &CommandSpec, fullname: &str) -> Reply {
    let mut m = vec![
        (Reply::bulk_str("summary"), Reply::bulk_str(spec.summary)),
        (Reply::bulk_str("since"), Reply::bulk_str(spec.since)),
        (Reply::bulk_str("group"), Reply::bulk_str(spec.group)),
        (
            Reply::bulk_str("complexity"),
            Reply::bulk_str(spec.complexity),
        ),
    ];
    if let Ok(args) = parse_usage(spec.usage) {
        if !args.is_empty() {
            m.push((
                Reply::bulk_str("arguments"),
                Reply::Array(args.iter().map(|a| a.to_reply()).collect()),
            ));
        }
    }
    if !spec.subcommands.is_empty() {
        let subs = spec
            .subcommands
            .iter()
            .map(|s| {
                let name = format!("{}|{}", fullname, s.name);
                (Reply::bulk_str(&name), docs_of(s, &name))
            })
            .collect();
        m.push((Reply::bulk_str("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(m)
}

fn all_infos() -> Reply {
    Reply::Array(table().top_level().map(|s| info_of(s, s.name)).collect())
}

fn all(_: &mut Ctx, _: &[Bytes]) -> Reply {
    all_infos()
}

fn count(_: &mut Ctx, _: &[Bytes]) -> Reply {
    Reply::Integer(table().count() as i64)
}

fn lookup(name: &[u8]) -> Option<(&'static CommandSpec, String)> {
    let (id, spec) = table().lookup(name)?;
    Some((spec, table().fullname(id).to_string()))
}

fn info(_: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() == 2 {
        return all_infos();
    }
    Reply::Array(
        args[2..]
            .iter()
            .map(|n| match lookup(n) {
                Some((spec, full)) => info_of(spec, &full),
                None => Reply::Null,
            })
            .collect(),
    )
}

fn docs(_: &mut Ctx, args: &[Bytes]) -> Reply {
    let entries: Vec<(Reply, Reply)> = if args.len() == 2 {
        table()
            .top_level()
            .map(|s| (Reply::bulk_str(s.name), docs_of(s, s.name)))
            .collect()
    } else {
        args[2..]
            .iter()
            .filter_map(|n| lookup(n))
            .map(|(spec, full)| (Reply::bulk_str(&full), docs_of(spec, &full)))
            .collect()
    };
    Reply::Map(entries)
}

fn list(_: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut names = Vec::new();
    for top in table().top_level() {
        names.push((top.name.to_string(), top));
        for s in top.subcommands {
            names.push((format!("{}|{}", top.name, s.name), s));
        }
    }
    let filtered: Vec<String> = match args.len() {
        2 => names.into_iter().map(|(n, _)| n).collect(),
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let value = &args[4];
            let kind = args[3].to_ascii_lowercase();
            match kind.as_slice() {
                b"module" => vec![],
                b"aclcat" => {
                    let cat = String::from_utf8_lossy(value).to_ascii_lowercase();
                    names
                        .into_iter()
                        .filter(|(_, s)| s.acl.contains(&cat.as_str()))
                        .map(|(n, _)| n)
                        .collect()
                }
                b"pattern" => names
                    .into_iter()
                    .filter(|(n, _)| glob::matches_nocase(value, n.as_bytes()))
                    .map(|(n, _)| n)
                    .collect(),
                _ => return Reply::error(error::SYNTAX),
            }
        }
        _ => return Reply::error(error::SYNTAX),
    };
    Reply::Array(filtered.into_iter().map(Reply::bulk).collect())
}

fn help(_: &mut Ctx, _: &[Bytes]) -> Reply {
    help_reply(
        "command",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
        ],
    )
}
