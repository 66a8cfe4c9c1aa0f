//! Reading a text for terms: Chinese as substrings (no spaces to split
//! on), English as lower-cased, lightly stemmed words with one typo
//! tolerated in long words; negations ("没有漏电", "no smoke") cancel the
//! term after them. A [`Lexicon`] is every term of the policy compiled once;
//! [`Lexicon::find`] tells which of them a [`Text`] contains.

use std::collections::{HashMap, HashSet};

use aho_corasick::AhoCorasick;

/// Most characters a `*` in a Chinese term spans ("扣*两次").
const ZH_GAP: usize = 8;
/// Words that may stand between a negation and the term it cancels.
const FILLERS: [&str; 12] = ["a", "an", "the", "any", "really", "even", "been", "be", "ever", "sign", "of", "at"];
/// Chinese fillers between a negation and the term ("没有出现漏电").
const ZH_FILLERS: [&str; 7] = ["出现", "发现", "有", "再", "太", "会", "曾"];
/// Contractions and words read as "not".
const NOT_WORDS: [&str; 19] = [
    "dont", "doesnt", "didnt", "wont", "cant", "cannot", "isnt", "wasnt", "arent", "werent", "havent", "hasnt",
    "hadnt", "couldnt", "wouldnt", "shouldnt", "aint", "unable", "neither",
];
/// Shortest stemmed vocabulary word in which one typo is tolerated, and
/// the shortest text word checked against them.
const FUZZY_MIN: usize = 5;
const FUZZY_MIN_TEXT: usize = 4;

/// A text prepared for matching.
#[derive(Debug)]
pub struct Text {
    /// Lower-cased, full-width ASCII folded to half-width.
    lower: String,
    /// English words, stemmed, with their clause number.
    words: Vec<(String, u32)>,
}

impl Text {
    pub fn new(text: &str) -> Self {
        let lower: String = text.chars().map(fold).collect::<String>().to_lowercase();
        let mut words = Vec::new();
        let mut clause = 0u32;
        let mut word = String::new();
        let flush = |word: &mut String, words: &mut Vec<(String, u32)>, clause: u32| {
            if !word.is_empty() {
                let w = word.replace('\'', "");
                if !w.is_empty() {
                    words.push((normalise_word(&w), clause));
                }
                word.clear();
            }
        };
        for c in lower.chars() {
            if c.is_ascii_alphanumeric() || (c == '\'' && !word.is_empty()) {
                word.push(c);
            } else {
                flush(&mut word, &mut words, clause);
                if is_clause_break(c) {
                    clause += 1;
                }
            }
        }
        flush(&mut word, &mut words, clause);
        Self { lower, words }
    }
}

/// Full-width ASCII (ＡＢＣ，１２３) to half-width; curly apostrophes to straight.
fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '\u{2019}' | '\u{2018}' => '\'',
        _ => c,
    }
}

fn is_clause_break(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '\n' | '。' | '，' | '；' | '！' | '？' | '、' | '：')
}

/// One English word as matched: "won't" → "not", else stemmed.
fn normalise_word(w: &str) -> String {
    if NOT_WORDS.contains(&w) { "not".to_string() } else { stem(w) }
}

/// A light stemmer: plural and verb endings and a final "e" go, so
/// charge / charged / charges / charging are one word, and shipped → ship.
pub fn stem(word: &str) -> String {
    let mut s = word.to_string();
    let n = s.len();
    let mut verb = false;
    if n > 4 && s.ends_with("ies") {
        s.truncate(n - 3);
        s.push('y');
    } else if n > 5 && s.ends_with("ing") {
        s.truncate(n - 3);
        verb = true;
    } else if n > 4 && s.ends_with("ed") {
        s.truncate(n - 2);
        verb = true;
    } else if n > 3 && s.ends_with('s') && !s.ends_with("ss") && !s.ends_with("us") && !s.ends_with("is") {
        s.truncate(n - 1);
    }
    if s.len() > 3 && s.ends_with('e') {
        s.pop();
    }
    let b = s.as_bytes();
    if verb && b.len() > 3 && b[b.len() - 1] == b[b.len() - 2] && !b"lsz".contains(&b[b.len() - 1]) {
        s.pop();
    }
    s
}

#[derive(Debug, Clone)]
enum Pattern {
    /// Substring of the lower-cased text (index into the automaton).
    Sub,
    /// Chinese parts in order, each within [`ZH_GAP`] characters of the last.
    Gapped(Vec<String>),
    /// English words in order, at most two other words between two of them;
    /// a word ending in `*` matches every word it starts.
    Words(Vec<Word>),
}

#[derive(Debug, Clone)]
struct Word {
    stem: String,
    prefix: bool,
}

impl Word {
    fn matches(&self, token: &str) -> bool {
        if self.prefix { token.starts_with(&self.stem) } else { token == self.stem }
    }
}

/// Terms compiled for matching; each has an id (its index).
#[derive(Debug)]
pub struct Lexicon {
    terms: Vec<(String, Pattern)>,
    by_text: HashMap<String, usize>,
    substrings: Option<AhoCorasick>,
    substring_ids: Vec<usize>,
    /// Stemmed words of all word terms, for typo tolerance.
    vocabulary: HashSet<String>,
    zh_negations: Vec<String>,
    en_negations: HashSet<String>,
    en_window: usize,
}

/// Builds a [`Lexicon`]: add terms, then [`LexiconBuilder::build`].
#[derive(Debug, Default)]
pub struct LexiconBuilder {
    terms: Vec<(String, Pattern)>,
    by_text: HashMap<String, usize>,
}

impl LexiconBuilder {
    /// The id of `term` (the same for the same text).
    pub fn add(&mut self, term: &str) -> usize {
        let key = term.trim().to_lowercase();
        if let Some(&id) = self.by_text.get(&key) {
            return id;
        }
        let canonical = canonical_form(&key);
        if let Some(&id) = self.by_text.get(&canonical) {
            self.by_text.insert(key, id);
            return id;
        }
        let pattern = if is_word_term(&key) {
            let words = Text::new(&key.replace('*', " \u{1}"))
                .words
                .into_iter()
                .map(|(w, _)| Word { stem: w, prefix: false })
                .collect::<Vec<_>>();
            Pattern::Words(mark_prefixes(&key, words))
        } else if key.contains('*') {
            Pattern::Gapped(key.split('*').filter(|p| !p.is_empty()).map(str::to_string).collect())
        } else {
            Pattern::Sub
        };
        let id = self.terms.len();
        self.terms.push((key.clone(), pattern));
        self.by_text.insert(key, id);
        self.by_text.insert(canonical, id);
        id
    }

    pub fn build(self, zh_negations: &[String], en_negations: &[String], en_window: usize) -> Lexicon {
        let mut substring_ids = Vec::new();
        let mut patterns = Vec::new();
        let mut vocabulary = HashSet::new();
        for (id, (text, pattern)) in self.terms.iter().enumerate() {
            match pattern {
                Pattern::Sub => {
                    substring_ids.push(id);
                    patterns.push(text.clone());
                }
                Pattern::Words(words) => vocabulary.extend(words.iter().map(|w| w.stem.clone())),
                Pattern::Gapped(_) => {}
            }
        }
        let substrings = (!patterns.is_empty())
            .then(|| AhoCorasick::new(&patterns).expect("plain substring patterns always compile"));
        let mut zh_negations: Vec<String> = zh_negations.iter().map(|n| n.to_lowercase()).collect();
        zh_negations.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Lexicon {
            terms: self.terms,
            by_text: self.by_text,
            substrings,
            substring_ids,
            vocabulary,
            zh_negations,
            en_negations: en_negations.iter().map(|n| normalise_word(&n.to_lowercase())).collect(),
            en_window: en_window.max(1),
        }
    }
}

/// A key under which terms that match the same way are one term
/// ("returning" and "return").
fn canonical_form(term: &str) -> String {
    if is_word_term(term) && !term.contains('*') {
        let words: Vec<String> = Text::new(term).words.into_iter().map(|(w, _)| w).collect();
        format!("\u{2}{}", words.join(" "))
    } else {
        term.to_string()
    }
}

/// English terms are plain ASCII words (and `*` prefixes); everything
/// else (Chinese, punctuation such as "？", mixed) matches as a substring.
fn is_word_term(term: &str) -> bool {
    term.chars().any(|c| c.is_ascii_alphanumeric())
        && term.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '\'' | '-' | '*'))
}

/// Words written with a trailing `*` ("apolog*") match as prefixes. The
/// marker was turned into a separate "\u{1}" token that the tokenizer
/// dropped; find the prefix words from the source instead.
fn mark_prefixes(source: &str, mut words: Vec<Word>) -> Vec<Word> {
    let raw: Vec<&str> = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '*' || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    if raw.len() == words.len() {
        for (w, r) in words.iter_mut().zip(raw) {
            if let Some(p) = r.strip_suffix('*') {
                w.stem = p.replace('\'', "");
                w.prefix = true;
            }
        }
    }
    words
}

impl Lexicon {
    /// The id of a term added when building (`None` if it was not).
    pub fn id(&self, term: &str) -> Option<usize> {
        self.by_text.get(&term.trim().to_lowercase()).copied()
    }

    /// The term as written (lower-cased).
    pub fn term(&self, id: usize) -> &str {
        &self.terms[id].0
    }

    /// For each term id, whether the text contains it at least once not
    /// cancelled by a negation.
    pub fn find(&self, text: &Text) -> Vec<bool> {
        let mut found = vec![false; self.terms.len()];
        if let Some(ac) = &self.substrings {
            for m in ac.find_overlapping_iter(&text.lower) {
                let id = self.substring_ids[m.pattern().as_usize()];
                if !found[id] && !self.zh_negated(&text.lower[..m.start()]) {
                    found[id] = true;
                }
            }
        }
        let tokens: Vec<(String, u32)> = text.words.iter().map(|(w, clause)| (self.canonical(w), *clause)).collect();
        for (id, (_, pattern)) in self.terms.iter().enumerate() {
            found[id] = found[id]
                || match pattern {
                    Pattern::Sub => false,
                    Pattern::Gapped(parts) => self.find_gapped(&text.lower, parts),
                    Pattern::Words(words) => self.find_words(&tokens, words),
                };
        }
        found
    }

    /// A word of the text as the vocabulary knows it: itself, or the one
    /// vocabulary word it is one typo away from (long words only).
    fn canonical(&self, word: &str) -> String {
        if word.len() < FUZZY_MIN_TEXT || self.vocabulary.contains(word) {
            return word.to_string();
        }
        self.vocabulary
            .iter()
            .filter(|v| v.len() >= FUZZY_MIN && v.len().abs_diff(word.len()) <= 1)
            .find(|v| strsim::osa_distance(v, word) == 1)
            .cloned()
            .unwrap_or_else(|| word.to_string())
    }

    fn zh_negated(&self, before: &str) -> bool {
        let mut before = before;
        for filler in ZH_FILLERS {
            if let Some(rest) = before.strip_suffix(filler) {
                before = rest;
                break;
            }
        }
        self.zh_negations.iter().any(|n| before.ends_with(n.as_str()))
    }

    fn find_gapped(&self, text: &str, parts: &[String]) -> bool {
        let Some((first, rest)) = parts.split_first() else { return false };
        'start: for (start, _) in text.match_indices(first.as_str()) {
            if self.zh_negated(&text[..start]) {
                continue;
            }
            let mut at = start + first.len();
            for part in rest {
                let window: String = text[at..].chars().take(ZH_GAP + part.chars().count()).collect();
                match window.find(part.as_str()) {
                    Some(offset) => at += offset + part.len(),
                    None => continue 'start,
                }
            }
            return true;
        }
        false
    }

    fn find_words(&self, tokens: &[(String, u32)], words: &[Word]) -> bool {
        let Some((first, rest)) = words.split_first() else { return false };
        'start: for (i, (token, clause)) in tokens.iter().enumerate() {
            if !first.matches(token) {
                continue;
            }
            let mut at = i;
            for w in rest {
                let next =
                    (at + 1..tokens.len().min(at + 3)).find(|&j| tokens[j].1 == *clause && w.matches(&tokens[j].0));
                match next {
                    Some(j) => at = j,
                    None => continue 'start,
                }
            }
            if !self.en_negated(tokens, i) {
                return true;
            }
        }
        false
    }

    /// Whether a negation stands right before word `i` (fillers skipped),
    /// in the same clause.
    fn en_negated(&self, tokens: &[(String, u32)], i: usize) -> bool {
        let clause = tokens[i].1;
        let mut seen = 0;
        for j in (0..i).rev() {
            let (token, c) = &tokens[j];
            if *c != clause {
                return false;
            }
            if self.en_negations.contains(token) {
                return true;
            }
            if !FILLERS.contains(&token.as_str()) {
                seen += 1;
                if seen >= self.en_window {
                    return false;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon(terms: &[&str]) -> (Lexicon, Vec<usize>) {
        let mut b = LexiconBuilder::default();
        let ids = terms.iter().map(|t| b.add(t)).collect();
        let zh: Vec<String> = ["没有", "没", "不", "无"].map(String::from).to_vec();
        let en: Vec<String> = ["no", "not", "never"].map(String::from).to_vec();
        (b.build(&zh, &en, 1), ids)
    }

    fn found(terms: &[&str], text: &str) -> Vec<String> {
        let (lex, ids) = lexicon(terms);
        let hits = lex.find(&Text::new(text));
        ids.into_iter().filter(|&i| hits[i]).map(|i| lex.term(i).to_string()).collect()
    }

    #[test]
    fn stems_fold_inflections_together() {
        for (a, b) in [("charged", "charge"), ("charging", "charges"), ("shipped", "ship"), ("deliveries", "delivery")]
        {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_ne!(stem("charger"), stem("charge"));
        assert_ne!(stem("latest"), stem("late"));
    }

    #[test]
    fn chinese_matches_substrings_and_honours_negations() {
        assert_eq!(found(&["漏电"], "热水器漏电了"), ["漏电"]);
        assert!(found(&["漏电"], "检查过了，没有漏电").is_empty());
        assert!(found(&["漏电"], "没有出现漏电的情况").is_empty());
        assert_eq!(found(&["扣*两次"], "同一笔订单被扣了两次款"), ["扣*两次"]);
        assert!(found(&["扣*两次"], "扣款成功，后来又过了很久很久才发现两次").is_empty());
    }

    #[test]
    fn english_matches_stemmed_words_phrases_typos_and_negations() {
        assert_eq!(found(&["charged twice"], "I was Charged me twice!"), ["charged twice"]);
        assert_eq!(found(&["won't turn on"], "It doesn't turn on anymore"), ["won't turn on"]);
        assert_eq!(found(&["refund"], "please refnud my money"), ["refund"]);
        assert!(found(&["smoke"], "there was no smoke at all").is_empty());
        assert_eq!(found(&["smoke"], "it won't start, and then smoke came out"), ["smoke"]);
        assert!(found(&["fire"], "firefox shows an error").is_empty());
        assert_eq!(found(&["apolog*"], "I expect an apology"), ["apolog*"]);
        assert_eq!(found(&["not arrived"], "my parcel has still not arrived."), ["not arrived"]);
        assert!(found(&["charged twice"], "charged. twice").is_empty(), "a phrase stays in one clause");
    }

    #[test]
    fn mixed_language_texts_match_both_ways() {
        assert_eq!(found(&["refund", "扣*两次"], "会员续费被charge了两次，麻烦refund一笔"), ["refund"]);
        assert_eq!(found(&["还没到", "tracking"], "快递tracking显示还没到"), ["还没到", "tracking"]);
    }
}
