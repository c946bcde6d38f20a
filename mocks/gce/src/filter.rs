//! The `filter` query parameter of list calls.
//!
//! Two dialects, as the real API accepts:
//! - legacy: `field eq REGEX`, `field ne REGEX` (RE2 regex matched against the whole field),
//!   with parenthesised groups ANDed: `(name eq k8s-.*)(description ne foo)`;
//! - AIP-160: `field = "value"`, `!=`, `:` (has; `:*` tests presence), `<`, `>`, `<=`, `>=`,
//!   `NOT`/`-`, explicit `AND`/`OR` (OR binds tighter than AND, as AIP-160 specifies) and
//!   parentheses. `*` in an `=`/`!=`/`:` string value is a wildcard.
//!
//! Fields are dotted paths into the resource as a read returns it (`labels.owner`, `name`).

use regex::Regex;
use serde_json::Value;

use crate::errors::ApiError;
use crate::json::Obj;

/// A parsed filter expression.
#[derive(Debug)]
pub(crate) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cmp {
        field: Vec<String>,
        op: Op,
        value: String,
        regex: Option<Regex>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    RegexEq,
    RegexNe,
    Eq,
    Ne,
    Has,
    Lt,
    Gt,
    Le,
    Ge,
}

fn bad(expr: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("Invalid list filter expression '{expr}': {why}."))
}

impl Filter {
    /// Parses a filter; an empty string matches everything.
    pub(crate) fn parse(expr: &str) -> Result<Filter, ApiError> {
        let mut p = Parser { src: expr, pos: 0 };
        let f = p.sequence()?;
        p.skip_ws();
        if p.pos < p.src.len() {
            return Err(bad(expr, "unexpected input"));
        }
        Ok(f)
    }

    pub(crate) fn matches(&self, obj: &Obj) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.matches(obj)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(obj)),
            Filter::Not(f) => !f.matches(obj),
            Filter::Cmp {
                field,
                op,
                value,
                regex,
            } => compare(lookup(obj, field), *op, value, regex.as_ref()),
        }
    }
}

fn lookup<'a>(obj: &'a Obj, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = obj.get(first)?;
    for seg in rest {
        v = v.as_object()?.get(seg)?;
    }
    Some(v)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(field: Option<&Value>, op: Op, value: &str, regex: Option<&Regex>) -> bool {
    match op {
        Op::RegexEq | Op::RegexNe => {
            let s = field.and_then(scalar).unwrap_or_default();
            let hit = regex.is_some_and(|r| r.is_match(&s));
            hit == (op == Op::RegexEq)
        }
        Op::Eq | Op::Ne => {
            let hit = field
                .and_then(scalar)
                .is_some_and(|s| regex.map_or(s == value, |r| r.is_match(&s)));
            hit == (op == Op::Eq)
        }
        Op::Has => match field {
            None => false,
            Some(_) if value == "*" => true,
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(scalar)
                .any(|s| regex.map_or(s == value, |r| r.is_match(&s))),
            Some(Value::Object(m)) => m.contains_key(value),
            Some(v) => scalar(v).is_some_and(|s| regex.map_or(s == value, |r| r.is_match(&s))),
        },
        Op::Lt | Op::Gt | Op::Le | Op::Ge => {
            let Some(s) = field.and_then(scalar) else {
                return false;
            };
            let ord = match (s.parse::<f64>(), value.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(s.as_str().cmp(value)),
            };
            let Some(ord) = ord else { return false };
            match op {
                Op::Lt => ord.is_lt(),
                Op::Gt => ord.is_gt(),
                Op::Le => ord.is_le(),
                _ => ord.is_ge(),
            }
        }
    }
}

/// `*` wildcards to an anchored regex; `None` when the value has no wildcard.
fn glob(value: &str) -> Option<Regex> {
    if !value.contains('*') {
        return None;
    }
    let parts: Vec<String> = value.split('*').map(regex::escape).collect();
    Regex::new(&format!("^(?:{})$", parts.join(".*"))).ok()
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Eats a keyword (`AND`, `OR`, `NOT`) followed by whitespace or `(`.
    fn keyword(&mut self, kw: &str) -> bool {
        let rest = self.rest();
        if let Some(after) = rest.strip_prefix(kw)
            && (after.starts_with(char::is_whitespace) || after.starts_with('('))
        {
            self.pos += kw.len();
            return true;
        }
        false
    }

    /// factors joined by AND (explicit or implicit).
    fn sequence(&mut self) -> Result<Filter, ApiError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.rest().is_empty() || self.rest().starts_with(')') {
                break;
            }
            if !items.is_empty() {
                self.keyword("AND");
                self.skip_ws();
            }
            items.push(self.factor()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Filter::And(Vec::new()))
        } else {
            Filter::And(items)
        })
    }

    /// terms joined by OR.
    fn factor(&mut self) -> Result<Filter, ApiError> {
        let mut items = vec![self.term()?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword("OR") {
                self.skip_ws();
                items.push(self.term()?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Filter::Or(Vec::new()))
        } else {
            Filter::Or(items)
        })
    }

    fn term(&mut self) -> Result<Filter, ApiError> {
        self.skip_ws();
        if self.keyword("NOT") || self.eat("-") {
            return Ok(Filter::Not(Box::new(self.term()?)));
        }
        if self.eat("(") {
            let inner = self.sequence()?;
            self.skip_ws();
            if !self.eat(")") {
                return Err(bad(self.src, "missing ')'"));
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, ApiError> {
        let field = self.ident();
        if field.is_empty() {
            return Err(bad(self.src, "expected a field name"));
        }
        self.skip_ws();
        let op = if self.keyword("eq") {
            Op::RegexEq
        } else if self.keyword("ne") {
            Op::RegexNe
        } else if self.eat("!=") {
            Op::Ne
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat(":") {
            Op::Has
        } else if self.eat("<") {
            Op::Lt
        } else if self.eat(">") {
            Op::Gt
        } else {
            return Err(bad(self.src, "expected an operator"));
        };
        self.skip_ws();
        let value = self.value()?;
        let regex = match op {
            Op::RegexEq | Op::RegexNe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|_| bad(self.src, "invalid regular expression"))?,
            ),
            Op::Eq | Op::Ne | Op::Has => glob(&value),
            _ => None,
        };
        Ok(Filter::Cmp {
            field: field.split('.').map(str::to_string).collect(),
            op,
            value,
            regex,
        })
    }

    fn ident(&mut self) -> String {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    /// A quoted string, or a bare token running to whitespace or to an unbalanced `)`
    /// (so that regexes with groups work unquoted).
    fn value(&mut self) -> Result<String, ApiError> {
        let rest = self.rest();
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let body = &rest[1..];
            let end = body.find(q).ok_or_else(|| bad(self.src, "unterminated string"))?;
            self.pos += end + 2;
            return Ok(body[..end].to_string());
        }
        let mut depth = 0i32;
        let mut len = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    len = i;
                    break;
                }
                ')' => depth -= 1,
                c if c.is_whitespace() => {
                    len = i;
                    break;
                }
                _ => {}
            }
        }
        if len == 0 {
            return Err(bad(self.src, "expected a value"));
        }
        self.pos += len;
        Ok(rest[..len].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj() -> Obj {
        json!({"name": "k8s-um-abc", "description": "owned", "port": 80,
               "labels": {"owner": "me"}, "tags": ["a", "b"]})
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn m(expr: &str) -> bool {
        match Filter::parse(expr) {
            Ok(f) => f.matches(&obj()),
            Err(e) => panic!("{expr}: {e}"),
        }
    }

    #[test]
    fn legacy_regex_filters_match_the_whole_field() {
        assert!(m("name eq k8s-.*"));
        assert!(!m("name eq k8s"));
        assert!(m("name ne other"));
        assert!(m("(name eq k8s-(um|be)-.*)(description eq owned)"));
        assert!(!m("(name eq k8s-.*)(description eq nope)"));
        assert!(m("name eq \"k8s-um-abc\""));
    }

    #[test]
    fn aip160_filters() {
        assert!(m("name = \"k8s-um-abc\""));
        assert!(m("name = k8s-um-*"));
        assert!(!m("name != \"k8s-um-abc\""));
        assert!(m("labels.owner = me AND port > 10"));
        assert!(m("labels.owner:*"));
        assert!(!m("labels.other:*"));
        assert!(m("tags:a"));
        assert!(m("port <= 80 port >= 80"));
        assert!(m("name = x OR name = k8s-um-abc"));
        assert!(m("NOT name = x"));
        assert!(m("-name = x"));
        assert!(!m("name = x OR name = y"));
    }

    #[test]
    fn malformed_filters_are_400() {
        for bad in ["name", "name eq (", "= x", "name = \"x", "(name = x"] {
            let e = Filter::parse(bad).map(|_| ()).map_err(|e| e.status);
            assert_eq!(e, Err(400), "{bad}");
        }
        assert!(Filter::parse("").map(|f| f.matches(&obj())).unwrap_or(false));
    }
}
