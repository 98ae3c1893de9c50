//! One arithmetic problem: drawing it, evaluating it with the usual precedence, and
//! writing it down.

use std::fmt;

use crate::rng::SplitMix64;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    /// Exact integer division only: problems that would leave a remainder are redrawn.
    Div,
}

impl Op {
    /// Parses `+`, `-`, `*` or `/`.
    pub fn parse(symbol: &str) -> Option<Op> {
        match symbol {
            "+" => Some(Op::Add),
            "-" => Some(Op::Sub),
            "*" => Some(Op::Mul),
            "/" => Some(Op::Div),
            _ => None,
        }
    }

    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }
}

/// What problems may look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difficulty {
    /// Inclusive operand range.
    pub min: i64,
    pub max: i64,
    pub operations: Vec<Op>,
    /// Inclusive range of the number of operands.
    pub terms: (usize, usize),
    pub allow_negative: bool,
}

/// `operands[0] ops[0] operands[1] ops[1] ...`, read with `*` and `/` before `+` and `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub operands: Vec<i64>,
    pub ops: Vec<Op>,
    pub value: i64,
}

impl Problem {
    /// Draws operand count, operands and operators uniformly; `None` when the draw is
    /// not allowed (inexact division, overflow, a negative result when not allowed).
    pub fn draw(rng: &mut SplitMix64, d: &Difficulty) -> Option<Problem> {
        let n = rng.between(d.terms.0 as i64, d.terms.1 as i64) as usize;
        let operands: Vec<i64> = (0..n).map(|_| rng.between(d.min, d.max)).collect();
        let ops: Vec<Op> = (1..n)
            .map(|_| d.operations[rng.below(d.operations.len() as u64) as usize])
            .collect();
        let value = evaluate(&operands, &ops)?;
        (d.allow_negative || value >= 0).then_some(Problem {
            operands,
            ops,
            value,
        })
    }
}

/// Left to right over additive terms, multiplying and dividing inside each term.
fn evaluate(operands: &[i64], ops: &[Op]) -> Option<i64> {
    let (&first, rest) = operands.split_first()?;
    let mut sum = 0i64;
    let mut term = first;
    for (&op, &x) in ops.iter().zip(rest) {
        match op {
            Op::Mul => term = term.checked_mul(x)?,
            Op::Div => {
                if x == 0 || term.checked_rem(x)? != 0 {
                    return None;
                }
                term = term.checked_div(x)?;
            }
            Op::Add => {
                sum = sum.checked_add(term)?;
                term = x;
            }
            Op::Sub => {
                sum = sum.checked_add(term)?;
                term = x.checked_neg()?;
            }
        }
    }
    sum.checked_add(term)
}

impl fmt::Display for Problem {
    /// `12 + 7 * 3`; negative operands in parentheses: `5 - (-2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operand = |x: i64| match x < 0 {
            true => format!("({x})"),
            false => x.to_string(),
        };
        write!(f, "{}", operand(self.operands[0]))?;
        for (op, &x) in self.ops.iter().zip(&self.operands[1..]) {
            write!(f, " {} {}", op.symbol(), operand(x))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(operands: &[i64], ops: &str) -> Option<i64> {
        let ops: Vec<Op> = ops
            .chars()
            .map(|c| Op::parse(&c.to_string()).unwrap())
            .collect();
        evaluate(operands, &ops)
    }

    #[test]
    fn precedence_and_exact_division() {
        assert_eq!(value(&[12, 7, 3], "+*"), Some(33));
        assert_eq!(value(&[12, 7, 3], "*-"), Some(81));
        assert_eq!(value(&[2, 12, 4, 3], "-/*"), Some(-7));
        assert_eq!(value(&[20, 4, 5], "//"), Some(1));
        assert_eq!(value(&[20, 4, 2], "//"), None);
        assert_eq!(value(&[7, 2], "/"), None);
        assert_eq!(value(&[7, 0], "/"), None);
        assert_eq!(value(&[-6, -3], "/"), Some(2));
        assert_eq!(value(&[i64::MAX, 2], "*"), None);
        assert_eq!(value(&[5], ""), Some(5));
    }

    #[test]
    fn display_writes_operators_and_parenthesized_negatives() {
        let p = Problem {
            operands: vec![5, -2, 3],
            ops: vec![Op::Sub, Op::Mul],
            value: 11,
        };
        assert_eq!(p.to_string(), "5 - (-2) * 3");
    }
}
