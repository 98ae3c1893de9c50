//! Reading numbers the way people and models write them: `1,234`, `-0.5`, `.5`, `3/4`,
//! `\frac{3}{4}`, `$12`, `−7` (Unicode minus).

use std::sync::LazyLock;

use regex::Regex;

/// One number: optional sign, digits with optional thousands commas and decimals,
/// optionally `/ denominator`.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[-+−]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+(?:\.\d+)?)?",
    )
    .expect("NUMBER is a valid regex")
});

static FRAC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\[dt]?frac\{\s*([^{}]*?)\s*\}\{\s*([^{}]*?)\s*\}").expect("FRAC is a valid regex")
});

/// Rewrites LaTeX number spellings into plain ones: `\frac{a}{b}` to `a/b`, `1{,}000`
/// and `1\,000` to `1,000`/`1000`, `\$` to `$`.
pub fn normalize(text: &str) -> String {
    let text = FRAC.replace_all(text, "$1/$2");
    text.replace("{,}", ",")
        .replace("\\,", "")
        .replace("\\!", "")
        .replace("\\$", "$")
}

/// The value of one number token as matched by `NUMBER`; `None` for `x/0`.
fn value(token: &str) -> Option<f64> {
    let (negative, unsigned) = match token.chars().next() {
        Some('-') | Some('−') => (true, &token[token.chars().next()?.len_utf8()..]),
        Some('+') => (false, &token[1..]),
        _ => (false, token),
    };
    let plain = |s: &str| s.trim().replace(',', "").parse::<f64>().ok();
    let magnitude = match unsigned.split_once('/') {
        Some((num, den)) => {
            let den = plain(den)?;
            if den == 0.0 {
                return None;
            }
            plain(num)? / den
        }
        None => plain(unsigned)?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Every number in `text`, in order. A sign right after a letter, digit or closing
/// bracket is a binary operator (`10-4`), not part of the number.
pub fn numbers(text: &str) -> Vec<f64> {
    NUMBER
        .find_iter(text)
        .filter_map(|m| {
            let token = m.as_str();
            let before = text[..m.start()].chars().next_back();
            let binary = matches!(before, Some(c) if c.is_alphanumeric() || c == ')' || c == ']');
            let token = match token.chars().next() {
                Some(c @ ('-' | '+' | '−')) if binary => &token[c.len_utf8()..],
                _ => token,
            };
            value(token)
        })
        .collect()
}

/// `text` read as exactly one number, allowing a currency sign, a percent sign and a
/// final full stop around it (`$1,000.`, `25%`).
pub fn exact(text: &str) -> Option<f64> {
    let trimmed = text
        .trim()
        .trim_end_matches('.')
        .trim_end_matches('%')
        .trim();
    let trimmed = trimmed.strip_prefix('$').unwrap_or(trimmed).trim();
    let m = NUMBER.find(trimmed)?;
    (m.start() == 0 && m.end() == trimmed.len())
        .then(|| value(trimmed))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_in_their_usual_spellings() {
        let cases = [
            ("42", 42.0),
            ("-42", -42.0),
            ("−7", -7.0),
            ("+3", 3.0),
            ("1,234", 1234.0),
            ("1,234,567.25", 1234567.25),
            (".5", 0.5),
            ("3/4", 0.75),
            ("-3 / 4", -0.75),
            ("$1,000.", 1000.0),
            ("25%", 25.0),
            (" 18 ", 18.0),
        ];
        for (text, want) in cases {
            assert_eq!(exact(text), Some(want), "{text}");
        }
        for text in ["", "x", "12 apples", "1/0", "3, 4"] {
            assert_eq!(exact(text), None, "{text}");
        }
    }

    #[test]
    fn numbers_in_running_text() {
        assert_eq!(numbers("so 10-4 = 6, not -6"), vec![10.0, 4.0, 6.0, -6.0]);
        assert_eq!(
            numbers("x(3)-2 and 1,000 or 1,00"),
            vec![3.0, 2.0, 1000.0, 1.0, 0.0]
        );
        assert_eq!(numbers("no digits"), Vec::<f64>::new());
    }

    #[test]
    fn latex_spellings_become_plain() {
        assert_eq!(normalize(r"\frac{3}{4} and \dfrac{ 1 }{2}"), "3/4 and 1/2");
        assert_eq!(
            normalize(r"1{,}000 and 2\,500 cost \$5"),
            "1,000 and 2500 cost $5"
        );
        assert_eq!(exact(&normalize(r"-\frac{3}{4}")), Some(-0.75));
    }
}
