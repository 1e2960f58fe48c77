//! A reviewer's keyboard (WCAG 2.1.4, character key shortcuts): the rating
//! page's shortcuts, and the reviewer's own key for any of them.
//!
//! A page names each shortcut by its default key (`data-key="y"`); the
//! browser translates the reviewer's key back to that default, so a map is
//! stored as default key to reviewer key and the pages never change.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{Problem, Verdict};

/// One shortcut of the rating page: its default key and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortcut {
    pub key: &'static str,
    pub action: &'static str,
}

impl Shortcut {
    const fn new(key: &'static str, action: &'static str) -> Self {
        Self { key, action }
    }

    /// The form field that carries the reviewer's key for this shortcut.
    pub fn field(&self) -> String {
        field_name(self.key)
    }
}

/// The keys that toggle the project's tags, in tag order: the digits, then
/// letters no other control of the rating page uses (`r` is left free, the
/// key reviewers most often want for Real). Later tags need the mouse, or a
/// key of the reviewer's own.
pub const TAG_KEYS: [&str; 20] = [
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "q", "w", "t", "a", "d", "g", "h", "x", "b",
    "o",
];

/// Every shortcut of the rating page, as the account page lists them for
/// remapping. The page's templates and scripts declare the same default keys
/// with `data-key`; tags use [`TAG_KEYS`] and verdicts [`Verdict::key`].
pub const RATING_SHORTCUTS: &[Shortcut] = &[
    Shortcut::new(Verdict::Real.key(), "rate Real and go on"),
    Shortcut::new(Verdict::NotReal.key(), "rate Not real and go on"),
    Shortcut::new(Verdict::Unsure.key(), "rate Unsure and go on"),
    Shortcut::new("j", "next candidate, without rating"),
    Shortcut::new("k", "previous candidate"),
    Shortcut::new("z", "undo my last rating"),
    Shortcut::new("e", "write notes"),
    Shortcut::new("c", "copy the position"),
    Shortcut::new("f", "open the FITS file in Firefly"),
    Shortcut::new(TAG_KEYS[0], "tag 1"),
    Shortcut::new(TAG_KEYS[1], "tag 2"),
    Shortcut::new(TAG_KEYS[2], "tag 3"),
    Shortcut::new(TAG_KEYS[3], "tag 4"),
    Shortcut::new(TAG_KEYS[4], "tag 5"),
    Shortcut::new(TAG_KEYS[5], "tag 6"),
    Shortcut::new(TAG_KEYS[6], "tag 7"),
    Shortcut::new(TAG_KEYS[7], "tag 8"),
    Shortcut::new(TAG_KEYS[8], "tag 9"),
    Shortcut::new(TAG_KEYS[9], "tag 10"),
    Shortcut::new(TAG_KEYS[10], "tag 11"),
    Shortcut::new(TAG_KEYS[11], "tag 12"),
    Shortcut::new(TAG_KEYS[12], "tag 13"),
    Shortcut::new(TAG_KEYS[13], "tag 14"),
    Shortcut::new(TAG_KEYS[14], "tag 15"),
    Shortcut::new(TAG_KEYS[15], "tag 16"),
    Shortcut::new(TAG_KEYS[16], "tag 17"),
    Shortcut::new(TAG_KEYS[17], "tag 18"),
    Shortcut::new(TAG_KEYS[18], "tag 19"),
    Shortcut::new(TAG_KEYS[19], "tag 20"),
    Shortcut::new("s", "next image stretch"),
    Shortcut::new("m", "next colour map"),
    Shortcut::new("v", "show an image large"),
    Shortcut::new("p", "play or pause the movie"),
    Shortcut::new(",", "previous movie frame"),
    Shortcut::new(".", "next movie frame"),
    Shortcut::new("[", "zoom the light curve in"),
    Shortcut::new("]", "zoom the light curve out"),
    Shortcut::new("l", "light curve: linear or log flux"),
    Shortcut::new("i", "show the candidate's details"),
    Shortcut::new("A", "find a known source to associate"),
    Shortcut::new("S", "SIMBAD around the position"),
    Shortcut::new("N", "NED around the position"),
    Shortcut::new("L", "Aladin Lite at the position"),
    Shortcut::new(
        "G",
        "rate the candidate's whole group at once (asks to confirm)",
    ),
];

/// Keys every page keeps for itself: `?` opens the key help, Escape leaves a
/// text box or closes the help. Remapping them would leave no way back.
pub const RESERVED: &[&str] = &["?", "Escape"];

/// A map fits any page's shortcuts several times over; the bound only keeps
/// a stored map (and the attribute every page carries) small.
pub const MAX_ENTRIES: usize = 60;

/// The form field of a default key's replacement: `key:y`.
pub fn field_name(default: &str) -> String {
    format!("key:{default}")
}

/// A reviewer's keys: default key to the reviewer's key, each one printable
/// character that is not reserved, no key given to two shortcuts, at most
/// [`MAX_ENTRIES`]. A shortcut not in the map keeps its default key.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct KeyMap(BTreeMap<char, char>);

impl KeyMap {
    /// Checks a whole map (as stored): pairs of default key and the
    /// reviewer's key. A pair that maps a key to itself says nothing and is
    /// dropped.
    pub fn parse<K, V>(entries: impl IntoIterator<Item = (K, V)>) -> Result<Self, Vec<Problem>>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut problems = Vec::new();
        let mut map = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut count = 0;
        for (default, key) in entries {
            let (default, key) = (default.as_ref(), key.as_ref());
            count += 1;
            let field = field_name(default);
            let d = match one_key(default) {
                Ok(d) => d,
                Err(why) => {
                    problems.push(Problem::new(&field, format!("the default key {why}")));
                    continue;
                }
            };
            let k = match one_key(key) {
                Ok(k) => k,
                Err(why) => {
                    problems.push(Problem::new(&field, format!("the key for {default} {why}")));
                    continue;
                }
            };
            if !seen.insert(d) {
                problems.push(Problem::new(&field, format!("{default} is given twice")));
                continue;
            }
            if d != k {
                map.insert(d, k);
            }
        }
        if count > MAX_ENTRIES {
            problems.push(Problem::new(
                "key_map",
                format!("a key map has at most {MAX_ENTRIES} entries, not {count}"),
            ));
        }
        let mut owners: BTreeMap<char, char> = BTreeMap::new();
        for (&d, &k) in &map {
            if let Some(other) = owners.insert(k, d) {
                problems.push(Problem::new(
                    field_name(&d.to_string()),
                    format!("{k} is already the key for {other}"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self(map))
        } else {
            Err(problems)
        }
    }

    /// The account page's keyboard form: a `key:<default>` field per
    /// shortcut of [`RATING_SHORTCUTS`], empty for the default key. Beyond
    /// [`KeyMap::parse`], every key must belong to one shortcut only once the
    /// defaults that stay are counted: `y` given to Not real while Real
    /// keeps `y` would leave one of them unreachable.
    pub fn from_form<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        let mut given = BTreeSet::new();
        for (name, value) in fields {
            let Some(default) = name.strip_prefix("key:") else {
                continue;
            };
            if !RATING_SHORTCUTS.iter().any(|s| s.key == default) {
                problems.push(Problem::new(
                    name,
                    "no shortcut of the rating page has this key",
                ));
                continue;
            }
            if !given.insert(default) {
                problems.push(Problem::new(name, "this field is given twice"));
                continue;
            }
            let value = value.trim();
            if !value.is_empty() {
                entries.push((default, value));
            }
        }
        let map = match Self::parse(entries) {
            Ok(map) => map,
            Err(more) => {
                problems.extend(more);
                return Err(problems);
            }
        };
        for moved in RATING_SHORTCUTS {
            let Some(key) = map.get(moved.key) else {
                continue;
            };
            let key = key.to_string();
            let keeper = RATING_SHORTCUTS
                .iter()
                .find(|s| s.key == key && map.get(s.key).is_none());
            if let Some(keeper) = keeper {
                problems.push(Problem::new(
                    moved.field(),
                    format!(
                        "{key} is already the key for \u{201c}{}\u{201d}: give that one another key too, or choose another",
                        keeper.action
                    ),
                ));
            }
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(problems)
        }
    }

    /// The reviewer's key for a default key, if they chose one.
    pub fn get(&self, default: &str) -> Option<char> {
        let mut chars = default.chars();
        match (chars.next(), chars.next()) {
            (Some(d), None) => self.0.get(&d).copied(),
            _ => None,
        }
    }

    /// The key that fires the shortcut whose default is `default`.
    pub fn key_for(&self, default: &str) -> String {
        self.get(default)
            .map_or_else(|| default.to_string(), String::from)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The map as a JSON object, `{"y":"r"}`, as pages hand it to the script.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a map of characters is JSON")
    }
}

/// One printable character, not reserved.
fn one_key(s: &str) -> Result<char, String> {
    if RESERVED.contains(&s) {
        return Err(format!(
            "{s} is reserved: ? opens the key help and Escape closes it"
        ));
    }
    let mut chars = s.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return Err(if s.is_empty() {
            "is missing".into()
        } else {
            format!("must be one character, not {s:?}")
        });
    };
    if c.is_whitespace() {
        return Err("cannot be a space: the space bar scrolls the page".into());
    }
    if c.is_control() || invisible(c) {
        return Err(format!(
            "must be a printable character, not U+{:04X}",
            c as u32
        ));
    }
    Ok(c)
}

/// Characters that print nothing by themselves: format characters and
/// combining marks. A browser never reports such a key press, so a shortcut
/// on one could never fire.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0300}'..='\u{036F}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        pairs.to_vec()
    }

    fn problem_fields(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn the_table_has_one_row_per_key_each_a_valid_key() {
        let mut seen = BTreeSet::new();
        for s in RATING_SHORTCUTS {
            assert!(one_key(s.key).is_ok(), "{}", s.key);
            assert!(seen.insert(s.key), "{} listed twice", s.key);
        }
        for k in TAG_KEYS.iter().chain(Verdict::ALL.map(Verdict::key).iter()) {
            assert!(seen.contains(k), "{k} missing from the table");
        }
        assert!(RATING_SHORTCUTS.len() <= MAX_ENTRIES);
    }

    #[test]
    fn a_map_from_the_form_keeps_only_changed_keys() {
        let map = KeyMap::from_form(fields(&[
            ("csrf_token", "x"),
            ("single_key_shortcuts", "on"),
            ("key:y", " r "),
            ("key:n", ""),
            ("key:u", "u"),
            ("key:,", "é"),
        ]))
        .unwrap();
        assert_eq!(map.to_json(), r#"{",":"é","y":"r"}"#);
        assert_eq!(map.key_for("y"), "r");
        assert_eq!(map.key_for("n"), "n");
        assert_eq!(map.get("u"), None);
    }

    #[test]
    fn keys_may_be_swapped() {
        let map = KeyMap::from_form(fields(&[("key:y", "n"), ("key:n", "y")])).unwrap();
        assert_eq!(
            (map.key_for("y"), map.key_for("n")),
            ("n".into(), "y".into())
        );
    }

    #[test]
    fn two_shortcuts_cannot_share_a_key() {
        let p = KeyMap::from_form(fields(&[("key:y", "r"), ("key:n", "r")])).unwrap_err();
        assert_eq!(problem_fields(&p), ["key:y"]);
        assert!(p[0].message.contains("r is already the key for n"), "{p:?}");
    }

    #[test]
    fn a_key_that_another_shortcut_keeps_is_taken() {
        let p = KeyMap::from_form(fields(&[("key:y", "n")])).unwrap_err();
        assert_eq!(problem_fields(&p), ["key:y"]);
        assert!(p[0].message.contains("rate Not real"), "{p:?}");
    }

    #[test]
    fn reserved_blank_long_and_control_keys_are_refused_by_field() {
        for (value, words) in [
            ("?", "reserved"),
            ("Escape", "reserved"),
            ("ab", "one character"),
            ("\u{7}", "printable"),
            ("\u{200B}", "printable"),
        ] {
            let p = KeyMap::from_form(vec![("key:e", value)]).unwrap_err();
            assert_eq!(problem_fields(&p), ["key:e"], "{value:?}");
            assert!(p[0].message.contains(words), "{value:?}: {p:?}");
        }
        // A space is what an empty box holds once trimmed: the default.
        assert!(KeyMap::from_form(vec![("key:e", " ")]).unwrap().is_empty());
        let p = KeyMap::parse([("e", " ")]).unwrap_err();
        assert!(p[0].message.contains("space"), "{p:?}");
    }

    #[test]
    fn unknown_and_repeated_fields_are_refused() {
        let p = KeyMap::from_form(fields(&[("key:~", "!"), ("key:y", "r"), ("key:y", "s")]))
            .unwrap_err();
        let mut named = problem_fields(&p);
        named.sort();
        assert_eq!(named, ["key:y", "key:~"]);
    }

    #[test]
    fn a_stored_map_is_checked_the_same_way() {
        assert_eq!(
            KeyMap::parse([("y", "r"), ("t", "q")]).unwrap().to_json(),
            r#"{"t":"q","y":"r"}"#
        );
        let p = KeyMap::parse([("y", "r"), ("n", "r")]).unwrap_err();
        assert_eq!(problem_fields(&p), ["key:y"]);
        assert!(KeyMap::parse([("?", "r")]).is_err());
        assert!(KeyMap::parse([("yy", "r")]).is_err());
        let many: Vec<(String, String)> = ('\u{100}'..)
            .take(MAX_ENTRIES + 1)
            .map(|c| {
                (
                    c.to_string(),
                    char::from_u32(c as u32 + 0x1000).unwrap().to_string(),
                )
            })
            .collect();
        let p = KeyMap::parse(many).unwrap_err();
        assert_eq!(problem_fields(&p), ["key_map"]);
    }
}
