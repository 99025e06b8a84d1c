//! Keyspace events: what a change to a key is called (Redis's event names) and the class it
//! belongs to, and the `notify-keyspace-events` flags that select which are published.
//!
//! A write operation records an `Event` for each key it changes (see `store::Shard::notify`);
//! the keyspace turns the record into every consequence at once — WATCH invalidation, blocked
//! clients' wake-ups, and the `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>`
//! messages when their class is enabled. Adding a type's events is adding constants here.
//! Flag letters, their parsing and the way CONFIG GET shows them are Redis 7's (notify.c).

/// Event classes: the bits of `notify-keyspace-events` (Redis's NOTIFY_*).
pub mod class {
    pub const KEYSPACE: u16 = 1 << 0;
    pub const KEYEVENT: u16 = 1 << 1;
    pub const GENERIC: u16 = 1 << 2;
    pub const STRING: u16 = 1 << 3;
    pub const LIST: u16 = 1 << 4;
    pub const SET: u16 = 1 << 5;
    pub const HASH: u16 = 1 << 6;
    pub const ZSET: u16 = 1 << 7;
    pub const EXPIRED: u16 = 1 << 8;
    pub const EVICTED: u16 = 1 << 9;
    pub const STREAM: u16 = 1 << 10;
    pub const KEY_MISS: u16 = 1 << 11;
    pub const MODULE: u16 = 1 << 13;
    pub const NEW: u16 = 1 << 14;
    /// `A`: every class but key-miss and new (`g$lshzxetd`).
    pub const ALL: u16 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// One kind of change, as Redis names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub name: &'static str,
    pub class: u16,
    /// Whether Redis signals the key as modified (`signalModifiedKey`): a WATCH on it then
    /// fails the transaction. Redis 7.0 does not for consumer-group bookkeeping (XGROUP,
    /// XSETID): those events are published but leave watchers alone.
    pub modifies: bool,
}

const fn ev(name: &'static str, class: u16) -> Event {
    Event {
        name,
        class,
        modifies: true,
    }
}

/// An event that does not count as a modification for WATCH.
const fn ev_quiet(name: &'static str, class: u16) -> Event {
    Event {
        name,
        class,
        modifies: false,
    }
}

// Generic.
pub const DEL: Event = ev("del", class::GENERIC);
pub const EXPIRE: Event = ev("expire", class::GENERIC);
pub const PERSIST: Event = ev("persist", class::GENERIC);
pub const RENAME_FROM: Event = ev("rename_from", class::GENERIC);
pub const RENAME_TO: Event = ev("rename_to", class::GENERIC);
pub const EXPIRED: Event = ev("expired", class::EXPIRED);
pub const NEW: Event = ev("new", class::NEW);
/// A read lookup found no key (Redis's lookupKeyRead; not a change: no WATCH, no wake-up).
pub const KEYMISS: Event = ev_quiet("keymiss", class::KEY_MISS);
// Strings.
pub const SET: Event = ev("set", class::STRING);
// Streams.
pub const XADD: Event = ev("xadd", class::STREAM);
pub const XTRIM: Event = ev("xtrim", class::STREAM);
pub const XDEL: Event = ev("xdel", class::STREAM);
pub const XSETID: Event = ev_quiet("xsetid", class::STREAM);
pub const XGROUP_CREATE: Event = ev_quiet("xgroup-create", class::STREAM);
pub const XGROUP_CREATECONSUMER: Event = ev_quiet("xgroup-createconsumer", class::STREAM);
pub const XGROUP_DELCONSUMER: Event = ev_quiet("xgroup-delconsumer", class::STREAM);
pub const XGROUP_DESTROY: Event = ev_quiet("xgroup-destroy", class::STREAM);
pub const XGROUP_SETID: Event = ev_quiet("xgroup-setid", class::STREAM);

/// The flag letters in the order Redis's error message lists them.
const LETTERS: &str = "Ag$lshzxeKEtmdn";

/// The error CONFIG SET answers for a flag string with a letter Redis does not know.
pub const BAD_FLAGS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// Parse a `notify-keyspace-events` value as Redis does: byte by byte, case-sensitive, any
/// unknown byte (a space too) rejects the whole value. `""` is 0 (off).
pub fn parse_flags(s: &str) -> Option<u16> {
    let mut f = 0;
    // Redis reads the value as a C string: a zero byte ends it.
    for c in s.chars().take_while(|c| *c != '\0') {
        f |= match c {
            'A' => class::ALL,
            'g' => class::GENERIC,
            '$' => class::STRING,
            'l' => class::LIST,
            's' => class::SET,
            'h' => class::HASH,
            'z' => class::ZSET,
            'x' => class::EXPIRED,
            'e' => class::EVICTED,
            'K' => class::KEYSPACE,
            'E' => class::KEYEVENT,
            't' => class::STREAM,
            'm' => class::KEY_MISS,
            'd' => class::MODULE,
            'n' => class::NEW,
            _ => return None,
        };
    }
    debug_assert!(LETTERS.len() == 15);
    Some(f)
}

/// The value CONFIG GET shows (Redis's `keyspaceEventsFlagsToString`): `A` for all classes,
/// otherwise `g$lshzxetdn` as set; then `K`, `E`, `m`. Redis drops `n` when `A` is shown (it
/// is still on), and so does this.
pub fn flags_to_string(f: u16) -> String {
    let mut out = String::new();
    if f & class::ALL == class::ALL {
        out.push('A');
    } else {
        for (bit, c) in [
            (class::GENERIC, 'g'),
            (class::STRING, '$'),
            (class::LIST, 'l'),
            (class::SET, 's'),
            (class::HASH, 'h'),
            (class::ZSET, 'z'),
            (class::EXPIRED, 'x'),
            (class::EVICTED, 'e'),
            (class::STREAM, 't'),
            (class::MODULE, 'd'),
            (class::NEW, 'n'),
        ] {
            if f & bit != 0 {
                out.push(c);
            }
        }
    }
    for (bit, c) in [
        (class::KEYSPACE, 'K'),
        (class::KEYEVENT, 'E'),
        (class::KEY_MISS, 'm'),
    ] {
        if f & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// Whether `event` is published under `flags`: its class is on, and so is K or E.
pub fn enabled(flags: u16, event: Event) -> bool {
    flags & event.class != 0 && flags & (class::KEYSPACE | class::KEYEVENT) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_back_as_redis_shows_them() {
        for (set, get) in [
            ("KEA", "AKE"),
            ("AKE", "AKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KEg$lshzxet", "g$lshzxetKE"),
            ("Kx", "xK"),
            ("En", "nE"),
            ("KEmn", "nKEm"),
            ("KEAm", "AKEm"),
            ("KEAn", "AKE"),
            ("", ""),
        ] {
            assert_eq!(flags_to_string(parse_flags(set).unwrap()), get, "{set}");
        }
        assert_ne!(parse_flags("KEAn").unwrap() & class::NEW, 0, "n stays on");
        assert_eq!(
            parse_flags("KEA\0Q"),
            parse_flags("KEA"),
            "a zero byte ends the value"
        );
        for bad in ["Q", "k", "K E", "KEo", "a"] {
            assert_eq!(parse_flags(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_event_needs_its_class_and_k_or_e() {
        let f = parse_flags("Kg").unwrap();
        assert!(enabled(f, DEL));
        assert!(!enabled(f, SET));
        assert!(!enabled(parse_flags("g").unwrap(), DEL));
        assert!(!enabled(parse_flags("KEA").unwrap(), NEW));
    }
}
