//! The words a task is found by and the key its title sorts by: one definition, in Rust, so that
//! search and title sort give the same answers on SQLite and PostgreSQL by construction.
//!
//! The application stores the results in `tasks.search_title`, `tasks.search_body` and
//! `tasks.title_key` (see [`crate::task`], which derives them whenever a title or description
//! is written). The databases only ever compare these strings exactly: PostgreSQL builds its
//! `tsvector` from the stored words without a parser or dictionary, SQLite's FTS5 table
//! splits them with its `ascii` tokenizer (on the spaces between them), and both sort
//! `title_key` by its bytes.
//!
//! Folding ([`fold`]), in order: Unicode compatibility decomposition (NFKD: `ﬁ` is `fi`, `①`
//! is `1`, full-width letters are ASCII), lower case, the accents of Latin, Greek and Cyrillic
//! letters removed (the combining diacritical marks, so `É` is `e`), `ß` is `ss` and final `ς`
//! is `σ`, then canonical composition (NFC), which puts back what marks remain (a Japanese
//! voiced kana stays one character).
//!
//! Words ([`words`]): the folded text split on every character that is not a letter, a digit
//! or a combining mark (spaces, punctuation, hyphens, apostrophes, symbols, emoji). Each Han
//! ideograph and each kana is a word by itself, since Chinese and Japanese are written without
//! spaces. A word of ASCII letters only is reduced to its English stem (Snowball English,
//! "Porter2": `watering` and `waters` are `water`); other words are kept as they are. No word
//! is dropped as a stop word.
//!
//! Changing anything here changes the stored columns: it needs a migration that recomputes
//! them for every task (as `m20261207_000003_add_search_terms` did first).

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest word that is indexed, in characters after folding. A longer word (a pasted hash or
/// blob, far beyond any real word) is left out of the stored words, and a search for one finds
/// nothing. It also keeps every word well under PostgreSQL's limit on a lexeme (2,047 bytes).
pub const MAX_WORD_CHARS: usize = 100;

/// Longest title sort key, in characters after folding (at most 1,000 bytes, well inside an
/// index entry on either database). Titles that agree on this many characters sort by id.
pub const MAX_TITLE_KEY_CHARS: usize = 250;

/// Lower-cases `text` and removes its accents (see the module documentation); does not split.
pub fn fold(text: &str) -> String {
    let folded: String = text
        .nfkd()
        .flat_map(char::to_lowercase)
        // A lower-case mapping may produce a decomposable character or a mark (`İ` is `i`
        // followed by a combining dot), so decompose once more before removing accents.
        .nfkd()
        .filter(|c| !is_accent(*c))
        .flat_map(|c| {
            let (first, second) = match c {
                'ß' => ('s', Some('s')),
                'ς' => ('σ', None),
                other => (other, None),
            };
            std::iter::once(first).chain(second)
        })
        .collect();
    folded.nfc().collect()
}

/// The combining diacritical marks that NFKD splits off accented Latin, Greek and Cyrillic
/// letters (`é`, `ö`, `ñ`, `ά`, `й`). The marks of other scripts (Indic vowel signs, Japanese
/// voicing marks) are part of their letters and are kept.
fn is_accent(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// Characters of scripts written without spaces between words, each of which is a word by
/// itself: Han ideographs (all extensions and compatibility forms), hiragana and katakana, and
/// the ideographic iteration and closing marks.
fn is_unspaced(c: char) -> bool {
    matches!(
        c,
        '\u{3005}'..='\u{3007}'
            | '\u{3040}'..='\u{30FF}'
            | '\u{31F0}'..='\u{31FF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{323AF}'
    )
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// The words of `text`, in order, repeats included (see the module documentation). The same
/// function reads documents and searches.
pub fn words(text: &str) -> Vec<String> {
    let stemmer = Stemmer::create(Algorithm::English);
    let folded = fold(text);
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in folded.char_indices() {
        let unspaced = is_unspaced(c);
        if let Some(s) = start.filter(|_| unspaced || !is_word_char(c)) {
            words.push(&folded[s..i]);
            start = None;
        }
        if unspaced {
            words.push(&folded[i..i + c.len_utf8()]);
        } else if start.is_none() && is_word_char(c) {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(&folded[s..]);
    }
    words
        .into_iter()
        .map(|word| {
            if word.bytes().all(|b| b.is_ascii_lowercase()) {
                stemmer.stem(word).into_owned()
            } else {
                word.to_owned()
            }
        })
        .collect()
}

/// Whether a word is short enough to be stored ([`MAX_WORD_CHARS`]).
pub fn is_indexed(word: &str) -> bool {
    word.chars().count() <= MAX_WORD_CHARS
}

/// What `tasks.search_title` / `tasks.search_body` store for a title or description: its
/// indexed words, separated by single spaces.
pub fn document(text: &str) -> String {
    let words: Vec<String> = words(text).into_iter().filter(|w| is_indexed(w)).collect();
    words.join(" ")
}

/// What `tasks.title_key` stores: the folded title, at most [`MAX_TITLE_KEY_CHARS`]
/// characters. Titles sort by the bytes of this key (UTF-8, so by code point).
pub fn title_key(title: &str) -> String {
    fold(title.trim())
        .chars()
        .take(MAX_TITLE_KEY_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> Vec<String> {
        words(text)
    }

    #[test]
    fn accents_and_case_fold_away() {
        assert_eq!(fold("Café CAFÉ cafe"), "cafe cafe cafe");
        assert_eq!(fold("Ångström naïve Ñandú"), "angstrom naive nandu");
        assert_eq!(fold("ÀÉÎÕÜ àéîõü"), "aeiou aeiou");
        assert_eq!(fold("Crème Brûlée"), "creme brulee");
        // Already decomposed input folds the same as precomposed input.
        assert_eq!(fold("Cafe\u{301}"), fold("Café"));
        // Greek and Cyrillic accents, Greek final sigma.
        assert_eq!(fold("Άλφα ΟΔΟΣ οδος"), "αλφα οδοσ οδοσ");
        assert_eq!(fold("Йогурт ёж"), "иогурт еж");
        // Turkish dotted capital I lower-cases with a combining dot, which goes too.
        assert_eq!(fold("İstanbul"), "istanbul");
    }

    #[test]
    fn sharp_s_folds_to_ss() {
        assert_eq!(
            fold("Straße STRASSE strasse STRAẞE"),
            "strasse strasse strasse strasse"
        );
        assert_eq!(w("Straße"), w("STRASSE"));
    }

    #[test]
    fn compatibility_forms_fold_to_their_plain_letters() {
        assert_eq!(fold("ﬁle"), "file");
        assert_eq!(fold("ＡＢＣ１２３"), "abc123");
        assert_eq!(fold("①②"), "12");
        assert_eq!(fold("x²"), "x2");
        // Half-width katakana become full-width, voiced kana stay one character.
        assert_eq!(fold("ｶﾞ"), "ガ");
        assert_eq!(fold("が"), "が");
    }

    #[test]
    fn anything_but_letters_and_digits_separates_words() {
        assert_eq!(w("e-mail, ready?!"), ["e", "mail", "readi"]);
        assert_eq!(
            w("don't O'Brien l'école"),
            ["don", "t", "o", "brien", "l", "ecol"]
        );
        assert_eq!(w("snake_case a.b/c"), ["snake", "case", "a", "b", "c"]);
        assert_eq!(
            w("v2.0 2026-01-31 42"),
            ["v2", "0", "2026", "01", "31", "42"]
        );
        assert_eq!(w("🌱 plant 🎉🎉"), ["plant"]);
        assert!(w("!!! ... 🎉").is_empty());
        assert!(w("").is_empty());
    }

    #[test]
    fn stop_words_are_kept() {
        assert_eq!(w("the and of a"), ["the", "and", "of", "a"]);
    }

    #[test]
    fn ascii_words_are_stemmed_as_english() {
        assert_eq!(w("Watering plants"), ["water", "plant"]);
        assert_eq!(w("running RUNS run"), ["run", "run", "run"]);
        assert_eq!(w("water"), w("waters"));
        // Only words of ASCII letters: digits and other scripts are left as they are.
        assert_eq!(w("plants2 москвы"), ["plants2", "москвы"]);
        // Accented words are stemmed after folding.
        assert_eq!(w("Cafés"), w("cafe"));
    }

    #[test]
    fn han_and_kana_are_one_word_per_character_other_scripts_split_on_spaces() {
        assert_eq!(w("東京タワー"), ["東", "京", "タ", "ワ", "ー"]);
        assert_eq!(w("買い物list"), ["買", "い", "物", "list"]);
        // Hangul is written with spaces: a word is a word, recomposed into syllables.
        assert_eq!(w("서울 여행"), ["서울", "여행"]);
        // An Indic vowel sign is part of its word.
        assert_eq!(w("किताब पढ़ो").len(), 2);
    }

    #[test]
    fn documents_are_words_joined_by_spaces_without_over_long_words() {
        assert_eq!(document("  The  Watering-can! "), "the water can");
        assert_eq!(document(""), "");
        let long = "x".repeat(MAX_WORD_CHARS + 1);
        assert!(!is_indexed(&long));
        assert!(is_indexed(&"x".repeat(MAX_WORD_CHARS)));
        assert_eq!(document(&format!("keep {long} this")), "keep this");
        // Every stored word is free of the characters the databases treat specially.
        let stored = document("It's \"quoted\" \\ back:slash 'tick' *star* (paren) 50% ✓");
        assert!(
            stored
                .chars()
                .all(|c| c == ' ' || c.is_alphanumeric() || is_combining_mark(c)),
            "{stored}"
        );
    }

    #[test]
    fn title_keys_sort_case_and_accent_insensitively_by_bytes() {
        let mut titles = ["Zebra", "émile", "Eve", "Äb", "äa", "apple"];
        titles.sort_by_key(|t| title_key(t));
        assert_eq!(titles, ["äa", "Äb", "apple", "émile", "Eve", "Zebra"]);
        assert_eq!(title_key("  Straße "), "strasse");
        assert_eq!(
            title_key(&"é".repeat(MAX_TITLE_KEY_CHARS + 10)),
            "e".repeat(MAX_TITLE_KEY_CHARS)
        );
    }
}
