//! The iCalendar text format (RFC 5545 §3.1 to §3.3), for writing only: content lines ended by
//! CRLF and folded at 75 octets, TEXT values escaped, and the date-time, UTC offset and
//! duration values the feed uses. Pure and allocation-light; no iCalendar object model.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Longest content line, in octets, without its CRLF (§3.1: "Lines of text SHOULD NOT be
/// longer than 75 octets, excluding the line break").
pub const MAX_LINE_OCTETS: usize = 75;

/// A stream of content lines being written.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// `BEGIN:<component>`.
    pub fn begin(&mut self, component: &str) {
        self.line(&format!("BEGIN:{component}"));
    }

    /// `END:<component>`.
    pub fn end(&mut self, component: &str) {
        self.line(&format!("END:{component}"));
    }

    /// A property whose value is already in its iCalendar form (a date-time, a number, a
    /// recurrence rule); `params` are `(NAME, value)` pairs, quoted when they must be.
    pub fn property(&mut self, name: &str, params: &[(&str, &str)], value: &str) {
        let mut line = String::with_capacity(name.len() + value.len() + 16);
        line.push_str(name);
        for (param, param_value) in params {
            line.push(';');
            line.push_str(param);
            line.push('=');
            line.push_str(&param_value_text(param_value));
        }
        line.push(':');
        line.push_str(value);
        self.line(&line);
    }

    /// A TEXT property (§3.3.11), escaped.
    pub fn text(&mut self, name: &str, value: &str) {
        self.property(name, &[], &escape_text(value));
    }

    /// A property with a list of TEXT values (`CATEGORIES`), each escaped, comma-separated.
    pub fn text_list(&mut self, name: &str, values: &[&str]) {
        let joined: Vec<String> = values.iter().map(|v| escape_text(v)).collect();
        self.property(name, &[], &joined.join(","));
    }

    /// The stream written so far.
    pub fn finish(self) -> String {
        self.out
    }

    /// Appends one content line, folded, with its CRLF.
    fn line(&mut self, line: &str) {
        fold_into(&mut self.out, line);
    }
}

/// Escapes a TEXT value (§3.3.11): backslash, semicolon and comma get a backslash, and a line
/// break (CRLF, LF or CR) becomes `\n`. Other control characters, which TEXT cannot hold (its
/// characters are `TSAFE-CHAR`, which allows only the horizontal tab among them), are left out.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value (§3.2): quoted when it holds a colon, semicolon or comma; double quotes
/// and control characters, which a parameter value cannot hold at all, are left out.
fn param_value_text(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    if clean.contains([':', ';', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// Appends `line` to `out` folded (§3.1): at most [`MAX_LINE_OCTETS`] octets per physical
/// line, never splitting a UTF-8 character, each continuation line starting with one space
/// (which counts toward its 75 octets), every physical line ended by CRLF.
fn fold_into(out: &mut String, line: &str) {
    let mut room = MAX_LINE_OCTETS;
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > room {
            out.push_str("\r\n ");
            // The leading space is the first octet of the continuation line.
            room = MAX_LINE_OCTETS - 1;
            used = 0;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
}

/// A DATE-TIME in UTC (§3.3.5, form #2): `20300304T080000Z`, whole seconds.
pub fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A local DATE-TIME (§3.3.5, form #1 or, with a `TZID` parameter, #3): `20300304T090000`.
pub fn local(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

/// A UTC-OFFSET (§3.3.14): `+0100`, `-0330`, `+005328` (seconds only when there are any);
/// zero is `+0000` (`-0000` is not allowed).
pub fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (hours, minutes, rest) = (s / 3600, s % 3600 / 60, s % 60);
    if rest == 0 {
        format!("{sign}{hours:02}{minutes:02}")
    } else {
        format!("{sign}{hours:02}{minutes:02}{rest:02}")
    }
}

/// A DURATION (§3.3.6) of `minutes` before its reference: `-PT30M`; zero is `PT0S`.
pub fn minutes_before(minutes: u32) -> String {
    if minutes == 0 {
        "PT0S".to_owned()
    } else {
        format!("-PT{minutes}M")
    }
}

/// An HTTP-date (RFC 9110 §5.6.7, IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Reads an HTTP-date in its IMF-fixdate form (what clients echo back in `If-Modified-Since`);
/// `None` for anything else, which a server must then ignore.
pub fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn text_escapes_backslash_semicolon_comma_and_line_breaks() {
        assert_eq!(
            escape_text("a\\b;c,d\ne\r\nf\rg"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng"
        );
        assert_eq!(escape_text("tab\there"), "tab\there");
        assert_eq!(escape_text("bell\u{7}gone\u{1b}"), "bellgone");
        assert_eq!(escape_text("Zoë: 東京"), "Zoë: 東京");
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let mut w = Writer::new();
        let value = "é".repeat(100);
        w.text("SUMMARY", &value);
        let out = w.finish();
        assert!(out.ends_with("\r\n"));
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 1);
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= MAX_LINE_OCTETS, "{i}: {} octets", line.len());
            if i > 0 {
                assert!(line.starts_with(' '), "{line}");
            }
        }
        // Unfolding (remove CRLF + one space) gives the line back.
        let unfolded = out.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{value}"));
        // Lines fill up: only the last is shorter than it could be.
        for line in &lines[..lines.len() - 1] {
            assert!(line.len() >= MAX_LINE_OCTETS - 1, "{}", line.len());
        }
    }

    #[test]
    fn a_line_of_exactly_75_octets_is_not_folded() {
        let mut w = Writer::new();
        w.property("X", &[], &"a".repeat(73));
        assert_eq!(w.finish(), format!("X:{}\r\n", "a".repeat(73)));
        let mut w = Writer::new();
        w.property("X", &[], &"a".repeat(74));
        assert_eq!(w.finish(), format!("X:{}\r\n a\r\n", "a".repeat(73)));
    }

    #[test]
    fn parameters_are_quoted_when_they_must_be() {
        let mut w = Writer::new();
        w.property("DUE", &[("TZID", "Europe/Berlin")], "20300304T090000");
        w.property("X", &[("P", "a:b")], "v");
        w.property("X", &[("P", "x\"y")], "v");
        assert_eq!(
            w.finish(),
            "DUE;TZID=Europe/Berlin:20300304T090000\r\nX;P=\"a:b\":v\r\nX;P=xy:v\r\n"
        );
    }

    #[test]
    fn lists_escape_each_value() {
        let mut w = Writer::new();
        w.text_list("CATEGORIES", &["home", "a,b", "c;d"]);
        assert_eq!(w.finish(), "CATEGORIES:home,a\\,b,c\\;d\r\n");
    }

    #[test]
    fn values_have_their_iso_forms() {
        let t = Utc.with_ymd_and_hms(2030, 3, 4, 8, 5, 9).unwrap();
        assert_eq!(utc(t), "20300304T080509Z");
        assert_eq!(local(t.naive_utc()), "20300304T080509");
        assert_eq!(utc_offset(3600), "+0100");
        assert_eq!(utc_offset(-12_600), "-0330");
        assert_eq!(utc_offset(0), "+0000");
        assert_eq!(utc_offset(3208), "+005328");
        assert_eq!(minutes_before(30), "-PT30M");
        assert_eq!(minutes_before(0), "PT0S");
        assert_eq!(http_date(t), "Mon, 04 Mar 2030 08:05:09 GMT");
        assert_eq!(parse_http_date("Mon, 04 Mar 2030 08:05:09 GMT"), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
