//! What a TOML error says in one line, and "did you mean" for an unknown key: the key's
//! section found in the file's text, the closest key of that section in the reference table
//! ([`super::reference::SECTIONS`]). **Pure**: text in, text out.

use super::reference::SECTIONS;

/// One line for toml's error `e` on `text`: `at line 3, column 1: unknown key "max-block" in
/// [respond]; did you mean "max-blocks"?`, or toml's own message (its first line) for other
/// errors. What the journal, `sentryctl reload` and `sentryctl validate` all say.
pub fn summary(text: &str, e: &toml::de::Error) -> String {
    let start = e.span().map_or(0, |s| s.start.min(text.len()));
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let message = e.message().trim();
    let what = unknown_key(text, line, message)
        .unwrap_or_else(|| message.lines().next().unwrap_or("").to_string());
    format!("at line {line}, column {column}: {what}")
}

/// `unknown key "max-block" in [respond]; did you mean "max-blocks"?` for toml's message
/// `unknown field `max-block`, expected one of …` at `line` of `text`; `None` for another
/// message.
fn unknown_key(text: &str, line: usize, message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let (section, in_header) = section_at(text, line);
    let table: Option<Vec<&str>> = section.as_deref().and_then(|name| {
        let name = if name.starts_with("audit.address.") {
            r#"audit.address."ADDR""#
        } else {
            name
        };
        SECTIONS.iter().find(|s| s.name == name).map(|s| {
            s.keys
                .iter()
                .flat_map(|k| k.names.iter().copied())
                .collect()
        })
    });
    let candidates = match table {
        Some(keys) if !in_header => keys,
        _ => expected,
    };
    let place = match (&section, in_header) {
        (Some(s), false) => format!(" in [{s}]"),
        (Some(s), true) => format!(" (a section) in [{s}]"),
        (None, true) => " (a section)".to_string(),
        (None, false) => String::new(),
    };
    let mut out = format!("unknown key \"{key}\"{place}");
    if let Some(close) = closest(key, &candidates) {
        out.push_str(&format!("; did you mean \"{close}\"?"));
    }
    Some(out)
}

/// The section whose keys `line` (1-based) of `text` sets — the last table header above it —
/// and whether `line` is itself a header (then its unknown name is a section of that one,
/// the header's path but its last part; `None` at the top level).
fn section_at(text: &str, line: usize) -> (Option<String>, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let header = |l: &str| {
        let l = l.trim();
        let inner = l.strip_prefix("[[").and_then(|l| l.split("]]").next());
        let inner = inner.or_else(|| l.strip_prefix('[').and_then(|l| l.split(']').next()));
        inner.map(|s| s.split('.').map(str::trim).collect::<Vec<_>>().join("."))
    };
    let at = lines.get(line.saturating_sub(1)).copied().unwrap_or("");
    if let Some(path) = header(at) {
        let parent = path.rsplit_once('.').map(|(p, _)| p.to_string());
        return (parent, true);
    }
    let found = lines
        .iter()
        .take(line.saturating_sub(1))
        .rev()
        .find_map(|l| header(l));
    (found, false)
}

/// The candidate closest to `word` by edit distance, if one is close enough to be what was
/// meant (at most 2 edits, or a quarter of the word).
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = 2.max(word.chars().count() / 4);
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between `a` and `b`, by characters (keys are short: one row).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(text: &str) -> String {
        let e = toml::from_str::<super::super::raw::RawConfig>(text).unwrap_err();
        summary(text, &e)
    }

    /// Issue 26, 11: an unknown key is named with its section and line, and the key of that
    /// section it most likely meant.
    #[test]
    fn issue_26_an_unknown_key_names_its_section_and_what_was_meant() {
        let text = "[detect]\nthreshold = 5\n\n[respond]\nblock-for = \"1h\"\n# a comment\nmax-block = 3\n";
        assert_eq!(
            said(text),
            "at line 7, column 1: unknown key \"max-block\" in [respond]; did you mean \
             \"max-blocks\"?"
        );
        assert_eq!(
            said("[respnd]\n"),
            "at line 1, column 2: unknown key \"respnd\" (a section); did you mean \"respond\"?"
        );
        assert_eq!(
            said("[detect.wieghts]\n"),
            "at line 1, column 9: unknown key \"wieghts\" (a section) in [detect]; did you \
             mean \"weights\"?"
        );
        assert_eq!(
            said("[fleet]\nzzzzzzzz = 1\n"),
            "at line 2, column 1: unknown key \"zzzzzzzz\" in [fleet]"
        );
        // Other errors: toml's message.
        assert_eq!(
            said("[respond]\ndry-run = \"yes\"\n"),
            "at line 2, column 11: invalid type: string \"yes\", expected a boolean"
        );
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("max-block", "max-blocks"), 1);
        assert_eq!(distance("treshold", "threshold"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
