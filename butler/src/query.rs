//! A small `--where` language over data ids:
//! `visit > 1 AND filter = 'g'`, `NOT (visit IN (1, 2)) OR filter != 'r'`.
//!
//! Comparisons `= != <> < <= > >=` and `IN (…)` between a key and a literal
//! (integer, float or `'string'`); `AND`, `OR`, `NOT` and parentheses. A key
//! missing from a data id makes its comparison false.

use daf_base::{DataId, DataIdValue};

use crate::error::ButlerError;
use crate::file_registry::value_eq;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// `key op literal`.
    Cmp(String, Op, DataIdValue),
    /// `key IN (literals)`.
    In(String, Vec<DataIdValue>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Lit(DataIdValue),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if c == '\'' || c == '"' {
            let q = c;
            let mut v = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err("unterminated string".into()),
                    Some(&ch) if ch == q => {
                        if cs.get(i + 1) == Some(&q) {
                            v.push(q);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&ch) => {
                        v.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Lit(DataIdValue::Str(v)));
        } else if "=!<>".contains(c) {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let (op, n) = match two.as_str() {
                "!=" | "<>" => (Op::Ne, 2),
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                "==" => (Op::Eq, 2),
                _ => match c {
                    '=' => (Op::Eq, 1),
                    '<' => (Op::Lt, 1),
                    '>' => (Op::Gt, 1),
                    _ => return Err(format!("unexpected {c:?}")),
                },
            };
            out.push(Tok::Op(op));
            i += n;
        } else if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' {
            let start = i;
            i += 1;
            while i < cs.len()
                && (cs[i].is_ascii_alphanumeric()
                    || cs[i] == '.'
                    || ((cs[i] == '-' || cs[i] == '+') && matches!(cs[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let t: String = cs[start..i].iter().collect();
            let v = if let Ok(n) = t.parse::<i64>() {
                DataIdValue::Int(n)
            } else if let Ok(f) = t.parse::<f64>() {
                DataIdValue::Float(f)
            } else {
                return Err(format!("bad number {t:?}"));
            };
            out.push(Tok::Lit(v));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.peek_kw("OR") {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.not()?;
        while self.peek_kw("AND") {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.peek_kw("NOT") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Ident(key)) => {
                self.pos += 1;
                if self.peek_kw("IN") {
                    self.pos += 1;
                    if self.toks.get(self.pos) != Some(&Tok::LParen) {
                        return Err("expected '(' after IN".into());
                    }
                    self.pos += 1;
                    let mut vals = Vec::new();
                    loop {
                        match self.toks.get(self.pos).cloned() {
                            Some(Tok::Lit(v)) => vals.push(v),
                            _ => return Err("expected a literal in IN list".into()),
                        }
                        self.pos += 1;
                        match self.toks.get(self.pos) {
                            Some(Tok::Comma) => self.pos += 1,
                            Some(Tok::RParen) => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err("expected ',' or ')' in IN list".into()),
                        }
                    }
                    return Ok(Expr::In(key, vals));
                }
                let op = match self.toks.get(self.pos) {
                    Some(Tok::Op(op)) => *op,
                    _ => return Err(format!("expected a comparison after {key:?}")),
                };
                self.pos += 1;
                match self.toks.get(self.pos).cloned() {
                    Some(Tok::Lit(v)) => {
                        self.pos += 1;
                        Ok(Expr::Cmp(key, op, v))
                    }
                    Some(Tok::Ident(s)) => Err(format!(
                        "expected a literal after {key:?}, found {s:?} (quote strings: '{s}')"
                    )),
                    _ => Err(format!("expected a literal after {key:?}")),
                }
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end".into()),
        }
    }
}

/// Parses a where expression.
///
/// ```
/// use daf_butler::query::parse_where;
/// let e = parse_where("visit > 1 AND filter = 'g'").unwrap();
/// assert!(e.matches(&daf_base::data_id!{visit: 2, filter: "g"}));
/// assert!(!e.matches(&daf_base::data_id!{visit: 1, filter: "g"}));
/// ```
pub fn parse_where(s: &str) -> Result<Expr, ButlerError> {
    let err = |m: String| ButlerError::Where {
        expr: s.to_string(),
        message: m,
    };
    let toks = lex(s).map_err(err)?;
    let mut p = Parser { toks, pos: 0 };
    let e = p.or().map_err(err)?;
    if p.pos != p.toks.len() {
        return Err(err(format!("unexpected {:?}", p.toks[p.pos])));
    }
    Ok(e)
}

fn compare(a: &DataIdValue, b: &DataIdValue) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (DataIdValue::Str(x), DataIdValue::Str(y)) => Some(x.cmp(y)),
        (DataIdValue::Str(_), _) | (_, DataIdValue::Str(_)) => None,
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

impl Expr {
    /// The data-id keys the expression refers to, each once, in order of
    /// first use.
    ///
    /// ```
    /// use daf_butler::query::parse_where;
    /// let e = parse_where("visit > 1 AND (filter = 'g' OR visit IN (7, 8))").unwrap();
    /// assert_eq!(e.keys(), ["visit", "filter"]);
    /// ```
    pub fn keys(&self) -> Vec<&str> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
            match e {
                Expr::And(a, b) | Expr::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Not(a) => walk(a, out),
                Expr::Cmp(k, _, _) | Expr::In(k, _) => {
                    if !out.contains(&k.as_str()) {
                        out.push(k);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// Does `id` satisfy the expression?
    pub fn matches(&self, id: &DataId) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Expr::And(a, b) => a.matches(id) && b.matches(id),
            Expr::Or(a, b) => a.matches(id) || b.matches(id),
            Expr::Not(a) => !a.matches(id),
            Expr::In(k, vals) => id
                .get(k)
                .is_some_and(|v| vals.iter().any(|x| value_eq(v, x))),
            Expr::Cmp(k, op, lit) => {
                let Some(v) = id.get(k) else { return false };
                match op {
                    Op::Eq => value_eq(v, lit),
                    Op::Ne => !value_eq(v, lit),
                    _ => match compare(v, lit) {
                        None => false,
                        Some(o) => match op {
                            Op::Lt => o == Less,
                            Op::Le => o != Greater,
                            Op::Gt => o == Greater,
                            Op::Ge => o != Less,
                            Op::Eq | Op::Ne => unreachable!(),
                        },
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daf_base::data_id;

    #[test]
    fn expressions() {
        let ids = [
            data_id! {visit: 1, filter: "g"},
            data_id! {visit: 2, filter: "g"},
            data_id! {visit: 3, filter: "r"},
        ];
        let sel = |e: &str| -> Vec<i64> {
            let x = parse_where(e).unwrap();
            ids.iter()
                .filter(|i| x.matches(i))
                .map(|i| i.get("visit").unwrap().as_i64().unwrap())
                .collect()
        };
        assert_eq!(sel("visit > 1 AND filter = 'g'"), vec![2]);
        assert_eq!(sel("visit >= 2"), vec![2, 3]);
        assert_eq!(sel("visit < 2 or filter = \"r\""), vec![1, 3]);
        assert_eq!(sel("NOT (visit IN (1, 3))"), vec![2]);
        assert_eq!(sel("filter != 'g'"), vec![3]);
        assert_eq!(sel("visit = 2.0"), vec![2]);
        assert_eq!(sel("ccd = 1"), Vec::<i64>::new());
        for bad in [
            "visit >",
            "visit > 1 AND",
            "(visit = 1",
            "filter = g",
            "visit ~ 1",
            "'x",
        ] {
            let e = parse_where(bad).unwrap_err().to_string();
            assert!(e.contains("bad where expression"), "{bad}: {e}");
        }
    }
}
