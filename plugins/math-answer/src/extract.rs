//! Finding the final answer in a completion (or in a reference answer).

use lora_grpo_plugin::serde::Deserialize;

use crate::number;

/// Where to look for the final answer; the first place that has one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(crate = "lora_grpo_plugin::serde", rename_all = "snake_case")]
pub enum Extractor {
    /// The last `<answer>...</answer>`.
    AnswerTag,
    /// The last `\boxed{...}` (nested braces allowed).
    Boxed,
    /// The rest of the line after the last `####` (GSM8K).
    Gsm8k,
    /// The last number anywhere in the text.
    LastNumber,
}

/// A final answer: a number when it reads as one, else normalized text.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Number(f64),
    Text(String),
}

impl Answer {
    /// Numbers match within a relative `tolerance`, text matches ignoring case and a
    /// final full stop; a number never matches text.
    pub fn matches(&self, reference: &Answer, tolerance: f64) -> bool {
        match (self, reference) {
            (Answer::Number(a), Answer::Number(b)) => (a - b).abs() <= tolerance * b.abs().max(1.0),
            (Answer::Text(a), Answer::Text(b)) => a == b,
            _ => false,
        }
    }
}

/// The final answer in `text` by the first extractor in `order` that finds one.
pub fn final_answer(text: &str, order: &[Extractor]) -> Option<Answer> {
    let text = number::normalize(text);
    order.iter().find_map(|&extractor| match extractor {
        Extractor::LastNumber => number::numbers(&text).last().copied().map(Answer::Number),
        Extractor::AnswerTag => answer_tag(&text).map(read),
        Extractor::Boxed => boxed(&text).map(read),
        Extractor::Gsm8k => after_hashes(&text).map(read),
    })
}

/// A reference answer: the whole text when it reads as one number, else a marked answer
/// (`####`, `<answer>`, `\boxed{}`, so a full GSM8K solution works), else the whole text
/// read as one span. Independent of the completion's `extract` order on purpose.
pub fn reference_answer(text: &str) -> Option<Answer> {
    let text = number::normalize(text);
    if let Some(value) = number::exact(&text) {
        return Some(Answer::Number(value));
    }
    final_answer(
        &text,
        &[Extractor::Gsm8k, Extractor::AnswerTag, Extractor::Boxed],
    )
    .or_else(|| non_empty(&text).map(read))
}

/// A span read as one number, else as the last number inside it, else as text.
fn read(span: &str) -> Answer {
    if let Some(value) = number::exact(span) {
        return Answer::Number(value);
    }
    match number::numbers(span).last() {
        Some(&value) => Answer::Number(value),
        None => Answer::Text(span.trim().trim_end_matches('.').trim().to_lowercase()),
    }
}

fn answer_tag(text: &str) -> Option<&str> {
    let start = text.rfind("<answer>")? + "<answer>".len();
    let len = text[start..].find("</answer>")?;
    non_empty(&text[start..start + len])
}

fn boxed(text: &str) -> Option<&str> {
    let start = text.rfind("\\boxed{")? + "\\boxed{".len();
    let mut depth = 1usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return non_empty(&text[start..start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

fn after_hashes(text: &str) -> Option<&str> {
    let rest = &text[text.rfind("####")? + 4..];
    non_empty(rest.lines().next().unwrap_or(""))
}

fn non_empty(span: &str) -> Option<&str> {
    let span = span.trim();
    (!span.is_empty()).then_some(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Extractor::*;

    const ALL: [Extractor; 4] = [AnswerTag, Boxed, Gsm8k, LastNumber];

    fn num(text: &str) -> Option<Answer> {
        final_answer(text, &ALL)
    }

    #[test]
    fn each_extractor_finds_its_spelling() {
        assert_eq!(
            num("3 apples... <answer> 42 </answer>"),
            Some(Answer::Number(42.0))
        );
        assert_eq!(
            num(r"so \boxed{\frac{3}{4}} done"),
            Some(Answer::Number(0.75))
        );
        assert_eq!(
            num(r"\boxed{x^{2}} then \boxed{ {1,234} }"),
            Some(Answer::Number(1234.0))
        );
        assert_eq!(
            num("48/2 = 24 clips\n#### 72\nextra 5"),
            Some(Answer::Number(72.0))
        );
        assert_eq!(num("I think it is 7, maybe 8."), Some(Answer::Number(8.0)));
        assert_eq!(
            num("<answer>The total is $1,250.</answer>"),
            Some(Answer::Number(1250.0))
        );
        assert_eq!(
            num("<answer>Paris.</answer>"),
            Some(Answer::Text("paris".into()))
        );
        assert_eq!(num("no answer here"), None);
    }

    #[test]
    fn order_decides_between_spellings() {
        let text = "<answer>5</answer> but \\boxed{6} and #### 7\nthen 8";
        assert_eq!(final_answer(text, &ALL), Some(Answer::Number(5.0)));
        assert_eq!(
            final_answer(text, &[Boxed, AnswerTag]),
            Some(Answer::Number(6.0))
        );
        assert_eq!(final_answer(text, &[Gsm8k]), Some(Answer::Number(7.0)));
        assert_eq!(final_answer(text, &[LastNumber]), Some(Answer::Number(8.0)));
        // An unclosed tag or box is not an answer; the next extractor decides.
        assert_eq!(
            final_answer(r"<answer>5 \boxed{6", &[AnswerTag, Boxed]),
            None
        );
    }

    #[test]
    fn reference_answers_in_every_spelling() {
        let r = reference_answer;
        assert_eq!(r(" 1,000 "), Some(Answer::Number(1000.0)));
        assert_eq!(r(r"\frac{3}{4}"), Some(Answer::Number(0.75)));
        assert_eq!(
            r("She sold 48/2 = 24.\n#### 72"),
            Some(Answer::Number(72.0))
        );
        assert_eq!(r("<answer>-3</answer>"), Some(Answer::Number(-3.0)));
        assert_eq!(r("Paris."), Some(Answer::Text("paris".into())));
        assert_eq!(r("It is 12 dollars"), Some(Answer::Number(12.0)));
        assert_eq!(r("  "), None);
    }

    #[test]
    fn matching_is_numeric_with_relative_tolerance() {
        let n = Answer::Number;
        assert!(n(0.75).matches(&n(0.75), 0.0));
        assert!(n(1000.0000001).matches(&n(1000.0), 1e-6));
        assert!(!n(1000.01).matches(&n(1000.0), 1e-6));
        assert!(n(1e-9).matches(&n(0.0), 1e-6));
        assert!(!n(2.0).matches(&Answer::Text("2".into()), 1.0));
    }
}
