//! Key-range `SELECT`s, as `cdc verify` reads a target table chunk by chunk; shared by the
//! Doris emulator (HTTP SQL API) and the StarRocks emulator (MySQL protocol):
//!
//! ```sql
//! SELECT item, ... FROM [db.]table
//!   [WHERE cond] [ORDER BY col [ASC|DESC], ...] [LIMIT n]
//! ```
//!
//! An item is `*`, a column, or `CAST(column AS STRING | VARCHAR[(n)] | CHAR[(n)])`.
//! `cond` combines `column op literal` (`=`, `<>`, `!=`, `<`, `<=`, `>`, `>=`) with `AND`,
//! `OR` and parentheses. Comparisons follow the column's type as a server does: numeric
//! columns compare as numbers, every other column as text, byte by byte (what a binary
//! collation does; StarRocks and Doris compare strings that way); NULL matches nothing.

use std::cmp::Ordering;

/// One output column of the select list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// The column read (`*` expands to every column).
    pub(crate) column: String,
    /// Wrapped in `CAST(.. AS STRING)`: always text in the answer.
    pub(crate) cast: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Cmp(String, Op, String),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// A parsed range select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeSelect {
    /// `None` for `*`.
    pub(crate) items: Option<Vec<Item>>,
    pub(crate) db: Option<String>,
    pub(crate) table: String,
    cond: Option<Cond>,
    order: Vec<(String, bool)>,
    limit: Option<usize>,
}

/// What running it gives: labels, whether each output column was cast to text, rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeOutput {
    pub(crate) labels: Vec<String>,
    /// Index into the table's columns of each output column.
    pub(crate) sources: Vec<usize>,
    pub(crate) cast: Vec<bool>,
    pub(crate) rows: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn lex(sql: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return None,
                    Some('`') if chars.get(i + 1) == Some(&'`') => {
                        s.push('`');
                        i += 2;
                    }
                    Some('`') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Quoted(s));
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return None,
                    Some('\\') => {
                        let e = *chars.get(i + 1)?;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(q) if *q == c && chars.get(i + 1) == Some(&c) => {
                        s.push(c);
                        i += 2;
                    }
                    Some(q) if *q == c => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || chars[i] == 'E'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' || c == '@' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '@' | '$'))
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = match two.as_str() {
                "<=" => Some("<="),
                ">=" => Some(">="),
                "<>" => Some("<>"),
                "!=" => Some("!="),
                _ => None,
            };
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            let s = match c {
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '.' => ".",
                '*' => "*",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                ';' => ";",
                _ => return None,
            };
            out.push(Tok::Sym(s));
            i += 1;
        }
    }
    Some(out)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.pos += 1;
        }
        hit
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok::Sym(x)) if *x == s);
        if hit {
            self.pos += 1;
        }
        hit
    }
    fn ident(&mut self) -> Option<String> {
        match self.peek().cloned() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => {
                self.pos += 1;
                Some(w)
            }
            _ => None,
        }
    }
    fn item(&mut self) -> Option<Item> {
        if self.is_kw("CAST") && matches!(self.toks.get(self.pos + 1), Some(Tok::Sym("("))) {
            self.pos += 2;
            let column = self.ident()?;
            if !self.eat_kw("AS") {
                return None;
            }
            let ty = self.ident()?;
            if !["STRING", "VARCHAR", "CHAR", "TEXT"]
                .iter()
                .any(|t| ty.eq_ignore_ascii_case(t))
            {
                return None;
            }
            if self.eat_sym("(") {
                if !matches!(self.peek(), Some(Tok::Num(_))) {
                    return None;
                }
                self.pos += 1;
                if !self.eat_sym(")") {
                    return None;
                }
            }
            if !self.eat_sym(")") {
                return None;
            }
            return Some(Item { column, cast: true });
        }
        let column = self.ident()?;
        if self.is_kw("FROM") || matches!(self.peek(), Some(Tok::Sym(","))) {
            Some(Item {
                column,
                cast: false,
            })
        } else {
            None
        }
    }
    fn literal(&mut self) -> Option<String> {
        match self.peek().cloned() {
            Some(Tok::Str(s) | Tok::Num(s)) => {
                self.pos += 1;
                Some(s)
            }
            _ => None,
        }
    }
    fn cmp(&mut self) -> Option<Cond> {
        if self.eat_sym("(") {
            let c = self.or()?;
            return self.eat_sym(")").then_some(c);
        }
        let col = self.ident()?;
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("<>" | "!=")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            _ => return None,
        };
        self.pos += 1;
        Some(Cond::Cmp(col, op, self.literal()?))
    }
    fn and(&mut self) -> Option<Cond> {
        let mut left = self.cmp()?;
        while self.eat_kw("AND") {
            left = Cond::And(Box::new(left), Box::new(self.cmp()?));
        }
        Some(left)
    }
    fn or(&mut self) -> Option<Cond> {
        let mut left = self.and()?;
        while self.eat_kw("OR") {
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Some(left)
    }
}

/// Parses `sql` when it is a range select; `None` leaves it to the emulator's other parser.
pub(crate) fn parse(sql: &str) -> Option<RangeSelect> {
    let mut p = P {
        toks: lex(sql)?,
        pos: 0,
    };
    if !p.eat_kw("SELECT") {
        return None;
    }
    let items = if p.eat_sym("*") {
        None
    } else {
        let mut items = vec![p.item()?];
        while p.eat_sym(",") {
            items.push(p.item()?);
        }
        Some(items)
    };
    if !p.eat_kw("FROM") {
        return None;
    }
    let first = p.ident()?;
    let (db, table) = if p.eat_sym(".") {
        (Some(first), p.ident()?)
    } else {
        (None, first)
    };
    let cond = if p.eat_kw("WHERE") {
        Some(p.or()?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.eat_kw("ORDER") {
        if !p.eat_kw("BY") {
            return None;
        }
        loop {
            let col = p.ident()?;
            let desc = p.eat_kw("DESC");
            if !desc {
                p.eat_kw("ASC");
            }
            order.push((col, desc));
            if !p.eat_sym(",") {
                break;
            }
        }
    }
    let limit = if p.eat_kw("LIMIT") {
        match p.peek().cloned() {
            Some(Tok::Num(n)) => {
                p.pos += 1;
                Some(n.parse().ok()?)
            }
            _ => return None,
        }
    } else {
        None
    };
    p.eat_sym(";");
    (p.pos == p.toks.len()).then_some(RangeSelect {
        items,
        db,
        table,
        cond,
        order,
        limit,
    })
}

/// Whether a column of this SQL type (`INT`, `DECIMAL(10, 2)`, ...) compares as a number.
pub(crate) fn numeric_type(type_text: &str) -> bool {
    let base = type_text
        .split(['(', ' '])
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(
        base.as_str(),
        "BOOLEAN"
            | "TINYINT"
            | "SMALLINT"
            | "INT"
            | "INTEGER"
            | "BIGINT"
            | "LARGEINT"
            | "FLOAT"
            | "DOUBLE"
            | "DECIMAL"
            | "DECIMALV3"
    )
}

fn compare(value: &str, literal: &str, numeric: bool) -> Ordering {
    if numeric {
        if let (Ok(a), Ok(b)) = (value.parse::<i128>(), literal.parse::<i128>()) {
            return a.cmp(&b);
        }
        if let (Ok(a), Ok(b)) = (value.parse::<f64>(), literal.parse::<f64>()) {
            return a.partial_cmp(&b).unwrap_or(Ordering::Equal);
        }
    }
    value.as_bytes().cmp(literal.as_bytes())
}

fn holds(
    cond: &Cond,
    row: &[Option<String>],
    find: &dyn Fn(&str) -> Option<(usize, bool)>,
) -> bool {
    match cond {
        Cond::And(a, b) => holds(a, row, find) && holds(b, row, find),
        Cond::Or(a, b) => holds(a, row, find) || holds(b, row, find),
        Cond::Cmp(col, op, lit) => {
            let Some((i, numeric)) = find(col) else {
                return false;
            };
            let Some(Some(v)) = row.get(i) else {
                return false;
            };
            let o = compare(v, lit, numeric);
            match op {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                Op::Ge => o != Ordering::Less,
            }
        }
    }
}

fn columns_in(cond: &Cond, out: &mut Vec<String>) {
    match cond {
        Cond::And(a, b) | Cond::Or(a, b) => {
            columns_in(a, out);
            columns_in(b, out);
        }
        Cond::Cmp(c, _, _) => out.push(c.clone()),
    }
}

impl RangeSelect {
    /// Runs it over a table: `columns` are its `(name, numeric)` columns in order, `rows`
    /// its visible rows. The error is the server's text for an unknown column.
    pub(crate) fn run(
        &self,
        columns: &[(String, bool)],
        mut rows: Vec<Vec<Option<String>>>,
    ) -> Result<RangeOutput, String> {
        let find = |n: &str| {
            columns
                .iter()
                .position(|(c, _)| c.eq_ignore_ascii_case(n))
                .map(|i| (i, columns[i].1))
        };
        let unknown = |n: &str| format!("Unknown column '{n}' in 'table list'");
        let mut mentioned = Vec::new();
        if let Some(c) = &self.cond {
            columns_in(c, &mut mentioned);
        }
        mentioned.extend(self.order.iter().map(|(c, _)| c.clone()));
        if let Some(bad) = mentioned.iter().find(|c| find(c).is_none()) {
            return Err(unknown(bad));
        }
        if let Some(c) = &self.cond {
            rows.retain(|r| holds(c, r, &find));
        }
        if !self.order.is_empty() {
            let keys: Vec<(usize, bool, bool)> = self
                .order
                .iter()
                .filter_map(|(c, desc)| find(c).map(|(i, n)| (i, n, *desc)))
                .collect();
            rows.sort_by(|a, b| {
                for (i, numeric, desc) in &keys {
                    // NULL sorts first ascending, as in Doris and StarRocks.
                    let o = match (&a[*i], &b[*i]) {
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) => Ordering::Less,
                        (Some(_), None) => Ordering::Greater,
                        (Some(x), Some(y)) => compare(x, y, *numeric),
                    };
                    let o = if *desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
        }
        if let Some(n) = self.limit {
            rows.truncate(n);
        }
        let items: Vec<Item> = match &self.items {
            None => columns
                .iter()
                .map(|(c, _)| Item {
                    column: c.clone(),
                    cast: false,
                })
                .collect(),
            Some(items) => items.clone(),
        };
        let mut sources = Vec::with_capacity(items.len());
        let mut labels = Vec::with_capacity(items.len());
        for item in &items {
            let (i, _) = find(&item.column).ok_or_else(|| unknown(&item.column))?;
            sources.push(i);
            labels.push(if item.cast {
                format!("CAST(`{}` AS STRING)", columns[i].0)
            } else {
                columns[i].0.clone()
            });
        }
        let rows = rows
            .into_iter()
            .map(|r| sources.iter().map(|i| r[*i].clone()).collect())
            .collect();
        Ok(RangeOutput {
            labels,
            sources,
            cast: items.iter().map(|i| i.cast).collect(),
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rows = Vec<Vec<Option<String>>>;

    fn table() -> (Vec<(String, bool)>, Rows) {
        let cols = vec![("a".to_string(), true), ("b".to_string(), false)];
        let rows = [(1, "x"), (2, "y"), (10, "z"), (2, "a")]
            .iter()
            .map(|(a, b)| vec![Some(a.to_string()), Some((*b).to_string())])
            .collect();
        (cols, rows)
    }

    #[test]
    fn composite_ranges_order_and_limit() {
        let (cols, rows) = table();
        let sel = parse("SELECT CAST(`a` AS STRING), b FROM `d`.`t` WHERE (`a` > 1 OR (`a` = 1 AND `b` > 'x')) AND (`a` < 10) ORDER BY `a`, `b` LIMIT 5").unwrap();
        assert_eq!(sel.db.as_deref(), Some("d"));
        let out = sel.run(&cols, rows.clone()).unwrap();
        assert_eq!(
            out.rows,
            vec![
                vec![Some("2".into()), Some("a".into())],
                vec![Some("2".into()), Some("y".into())]
            ]
        );
        assert_eq!(out.cast, vec![true, false]);
        // Numeric, not textual: 10 > 2.
        let out = parse("SELECT * FROM t WHERE a > 2")
            .unwrap()
            .run(&cols, rows.clone())
            .unwrap();
        assert_eq!(out.rows.len(), 1);
        let out = parse("SELECT a FROM t ORDER BY a DESC LIMIT 1")
            .unwrap()
            .run(&cols, rows.clone())
            .unwrap();
        assert_eq!(out.rows, vec![vec![Some("10".into())]]);
        let e = parse("SELECT a FROM t WHERE nope = 1")
            .unwrap()
            .run(&cols, rows)
            .unwrap_err();
        assert!(e.contains("Unknown column 'nope'"), "{e}");
        assert!(parse("SELECT count(*) FROM t").is_none());
        assert!(parse("SHOW TABLES").is_none());
    }
}
