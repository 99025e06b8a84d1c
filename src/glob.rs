//! Redis's glob matcher (`stringmatchlen` in util.c), ported byte for byte.
//!
//! PSUBSCRIBE, PUBSUB CHANNELS, KEYS, SCAN MATCH and CONFIG GET all use it, so its edge cases
//! must equal Redis's: `*`, `?`, `[abc]`, `[^a]`, `[a-z]` (reversed ranges swap), `\` escapes,
//! an unterminated `[` that matches like a closed class, and the nesting guard against abusive
//! patterns. Where the C code reads the NUL terminator past the end of the pattern, `at`
//! returns 0. Range bounds compare as signed `char`, as on x86 Redis builds.

/// Does `string` match the glob `pattern`?
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip = false;
    imp(pattern, string, false, &mut skip, 0)
}

/// Case-insensitive match (CONFIG GET).
pub fn matches_nocase(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip = false;
    imp(pattern, string, true, &mut skip, 0)
}

/// The bytes before the first glob metacharacter: every string the pattern matches starts
/// with them, which lets the pattern index skip patterns that cannot match.
pub fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

fn imp(pat: &[u8], s: &[u8], nocase: bool, skip: &mut bool, nesting: u32) -> bool {
    if nesting > 1000 {
        return false;
    }
    let at = |i: usize| pat.get(i).copied().unwrap_or(0);
    let mut p = 0usize;
    let mut si = 0usize;
    while p < pat.len() && si < s.len() {
        match pat[p] {
            b'*' => {
                while at(p + 1) == b'*' {
                    p += 1;
                }
                if pat.len() - p == 1 {
                    return true;
                }
                while si < s.len() {
                    if imp(&pat[p + 1..], &s[si..], nocase, skip, nesting + 1) {
                        return true;
                    }
                    if *skip {
                        return false;
                    }
                    si += 1;
                }
                *skip = true;
                return false;
            }
            b'?' => si += 1,
            b'[' => {
                p += 1;
                let not = at(p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    let rem = pat.len().saturating_sub(p);
                    if at(p) == b'\\' && rem >= 2 {
                        p += 1;
                        if pat[p] == s[si] {
                            matched = true;
                        }
                    } else if at(p) == b']' {
                        break;
                    } else if rem == 0 {
                        p -= 1;
                        break;
                    } else if rem >= 3 && pat[p + 1] == b'-' {
                        let mut start = pat[p] as i8 as i32;
                        let mut end = pat[p + 2] as i8 as i32;
                        let mut c = s[si] as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            c = lower(c);
                        }
                        p += 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if eq(pat[p], s[si], nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                si += 1;
            }
            b'\\' => {
                if pat.len() - p >= 2 {
                    p += 1;
                }
                if !eq(pat[p], s[si], nocase) {
                    return false;
                }
                si += 1;
            }
            other => {
                if !eq(other, s[si], nocase) {
                    return false;
                }
                si += 1;
            }
        }
        p += 1;
        if si == s.len() {
            while at(p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && si == s.len()
}

fn lower(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) {
        c + 32
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*", "anything"));
        assert!(!m("*", ""), "Redis: the loop never runs on an empty string");
        assert!(m("news.*", "news.art"));
        assert!(!m("news.*", "news"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("a**b", "aXYb"));
        assert!(m("a*", "a"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges swap");
        assert!(m("[abc", "a"), "an unterminated class still matches");
        assert!(m("a[", "a") == matches(b"a[", b"a"));
    }

    #[test]
    fn escapes() {
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a\\", "a\\"));
        assert!(m("[\\]]", "]"));
    }

    #[test]
    fn abusive_pattern_terminates() {
        let p = "a*".repeat(50) + "b";
        let s = "a".repeat(60);
        assert!(!m(&p, &s));
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix(b"news.*"), b"news.");
        assert_eq!(literal_prefix(b"*"), b"");
        assert_eq!(literal_prefix(b"plain"), b"plain");
    }
}
