//! A small hand-written parser for the Doris SQL the emulator understands.

use super::types::DorisType;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Sym(char),
}

fn lex(sql: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') || c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(syntax("unterminated quoted identifier")),
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
                    None => return Err(syntax("unterminated string literal")),
                    Some('\\') => {
                        let e = chars.get(i + 1).copied().unwrap_or('\\');
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
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else if "(),.=;*-+<>!".contains(c) {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            return Err(syntax(&format!("unexpected character '{c}'")));
        }
    }
    Ok(out)
}

fn syntax(what: &str) -> String {
    format!("errCode = 2, detailMessage = Syntax error in line 1:\n{what}")
}

/// Where an added or modified column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    End,
    First,
    After(String),
}

/// A column definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnDef {
    pub(crate) name: String,
    pub(crate) ty: DorisType,
    pub(crate) nullable: Option<bool>,
    pub(crate) key: bool,
    #[allow(clippy::option_option)] // absent vs DEFAULT NULL vs a value
    pub(crate) default: Option<Option<String>>,
    pub(crate) comment: String,
}

/// A table reference `[db.]table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRef {
    pub(crate) db: Option<String>,
    pub(crate) table: String,
}

/// `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateTable {
    pub(crate) if_not_exists: bool,
    pub(crate) table: TableRef,
    pub(crate) columns: Vec<ColumnDef>,
    /// `UNIQUE`, `DUPLICATE` or `AGGREGATE` with key names.
    pub(crate) keys: Option<(String, Vec<String>)>,
    pub(crate) comment: String,
    pub(crate) distribution: Option<Vec<String>>,
    pub(crate) buckets: Option<u32>,
    pub(crate) properties: Vec<(String, String)>,
}

/// One `ALTER TABLE` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AlterOp {
    AddColumn(ColumnDef, Position),
    DropColumn(String),
    RenameColumn(String, String),
    ModifyColumn(ColumnDef, Position),
    ModifyComment(String),
}

/// `SHOW ALTER TABLE COLUMN [FROM db] [WHERE c = "v" [AND ...]] [ORDER BY c [ASC|DESC], ...]
/// [LIMIT [offset,] n]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ShowAlter {
    pub(crate) db: Option<String>,
    /// `column = "value"` filters (column names as written).
    pub(crate) filters: Vec<(String, String)>,
    /// `(column, descending)` in ORDER BY order.
    pub(crate) order: Vec<(String, bool)>,
    /// `(offset, count)`.
    pub(crate) limit: Option<(usize, usize)>,
}

/// Projection of a `SELECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Projection {
    Star,
    Count,
    Columns(Vec<String>),
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    CreateTable(Box<CreateTable>),
    DropTable {
        table: TableRef,
        if_exists: bool,
    },
    Truncate(TableRef),
    Alter {
        table: TableRef,
        ops: Vec<AlterOp>,
    },
    ShowAlter(ShowAlter),
    Select {
        projection: Projection,
        table: TableRef,
        filters: Vec<(String, String)>,
        limit: Option<usize>,
    },
    Desc(TableRef),
    ShowCreate(TableRef),
    ShowColumns(TableRef),
    ShowDatabases,
    ShowTables(Option<String>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expecting {kw}")))
        }
    }

    fn eat_sym(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, c: char) -> Result<(), String> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expecting '{c}'")))
        }
    }

    fn unexpected(&self, what: &str) -> String {
        let near = match self.peek() {
            None => "<EOF>".to_string(),
            Some(Tok::Word(w) | Tok::Num(w)) => w.clone(),
            Some(Tok::Quoted(w)) => format!("`{w}`"),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Sym(c)) => c.to_string(),
        };
        syntax(&format!("mismatched input '{near}' {what}"))
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Tok::Word(w) | Tok::Quoted(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected("expecting an identifier")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("expecting a string literal")),
        }
    }

    fn number(&mut self) -> Result<u32, String> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                n.parse().map_err(|_| syntax(&format!("bad number {n}")))
            }
            _ => Err(self.unexpected("expecting a number")),
        }
    }

    fn table_ref(&mut self) -> Result<TableRef, String> {
        let first = self.ident()?;
        if self.eat_sym('.') {
            let table = self.ident()?;
            Ok(TableRef {
                db: Some(first),
                table,
            })
        } else {
            Ok(TableRef {
                db: None,
                table: first,
            })
        }
    }

    fn ident_list(&mut self) -> Result<Vec<String>, String> {
        self.expect_sym('(')?;
        let mut out = vec![self.ident()?];
        while self.eat_sym(',') {
            out.push(self.ident()?);
        }
        self.expect_sym(')')?;
        Ok(out)
    }

    /// Skips a balanced `( ... )` group.
    fn skip_parens(&mut self) -> Result<(), String> {
        self.expect_sym('(')?;
        let mut depth = 1;
        while depth > 0 {
            match self.peek() {
                None => return Err(self.unexpected("expecting ')'")),
                Some(Tok::Sym('(')) => depth += 1,
                Some(Tok::Sym(')')) => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn data_type(&mut self) -> Result<DorisType, String> {
        let name = self.ident()?;
        let mut args = Vec::new();
        if self.eat_sym('(') {
            args.push(self.number()?);
            while self.eat_sym(',') {
                args.push(self.number()?);
            }
            self.expect_sym(')')?;
        }
        DorisType::from_sql(&name, &args).map_err(|m| format!("errCode = 2, detailMessage = {m}"))
    }

    fn column_def(&mut self) -> Result<ColumnDef, String> {
        let name = self.ident()?;
        let ty = self.data_type()?;
        let mut def = ColumnDef {
            name,
            ty,
            nullable: None,
            key: false,
            default: None,
            comment: String::new(),
        };
        loop {
            if self.eat_kw("KEY") {
                def.key = true;
            } else if self.eat_kw("NOT") {
                self.expect_kw("NULL")?;
                def.nullable = Some(false);
            } else if self.eat_kw("NULL") {
                def.nullable = Some(true);
            } else if self.eat_kw("AUTO_INCREMENT") {
                if self.peek() == Some(&Tok::Sym('(')) {
                    self.skip_parens()?;
                }
            } else if self.eat_kw("DEFAULT") {
                def.default = Some(self.default_value()?);
            } else if self.eat_kw("ON") {
                self.expect_kw("UPDATE")?;
                self.expect_kw("CURRENT_TIMESTAMP")?;
                if self.peek() == Some(&Tok::Sym('(')) {
                    self.skip_parens()?;
                }
            } else if self.eat_kw("COMMENT") {
                def.comment = self.string()?;
            } else {
                break;
            }
        }
        Ok(def)
    }

    fn default_value(&mut self) -> Result<Option<String>, String> {
        let negative = self.eat_sym('-');
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Some(s))
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Some(if negative { format!("-{n}") } else { n }))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NULL") => {
                self.pos += 1;
                Ok(None)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("CURRENT_TIMESTAMP") => {
                self.pos += 1;
                if self.peek() == Some(&Tok::Sym('(')) {
                    self.skip_parens()?;
                }
                Ok(Some("CURRENT_TIMESTAMP".into()))
            }
            _ => Err(self.unexpected("expecting a default value")),
        }
    }

    fn position(&mut self) -> Result<Position, String> {
        if self.eat_kw("FIRST") {
            Ok(Position::First)
        } else if self.eat_kw("AFTER") {
            Ok(Position::After(self.ident()?))
        } else {
            Ok(Position::End)
        }
    }

    fn properties(&mut self) -> Result<Vec<(String, String)>, String> {
        self.expect_sym('(')?;
        let mut out = Vec::new();
        loop {
            let k = self.string()?;
            self.expect_sym('=')?;
            let v = self.string()?;
            out.push((k, v));
            if !self.eat_sym(',') {
                break;
            }
        }
        self.expect_sym(')')?;
        Ok(out)
    }

    fn create_table(&mut self) -> Result<Statement, String> {
        let if_not_exists = self.if_not_exists()?;
        let table = self.table_ref()?;
        self.expect_sym('(')?;
        let mut columns = Vec::new();
        loop {
            if self.is_kw("INDEX") {
                self.pos += 1;
                self.ident()?;
                self.skip_parens()?;
                while !matches!(self.peek(), Some(Tok::Sym(',' | ')')) | None) {
                    self.pos += 1;
                }
            } else {
                columns.push(self.column_def()?);
            }
            if !self.eat_sym(',') {
                break;
            }
        }
        self.expect_sym(')')?;
        let mut ct = CreateTable {
            if_not_exists,
            table,
            columns,
            keys: None,
            comment: String::new(),
            distribution: None,
            buckets: None,
            properties: Vec::new(),
        };
        loop {
            if self.eat_kw("ENGINE") {
                self.expect_sym('=')?;
                let engine = self.ident()?;
                if !engine.eq_ignore_ascii_case("OLAP") {
                    return Err(format!(
                        "errCode = 2, detailMessage = the emulator only supports ENGINE = OLAP, not {engine}"
                    ));
                }
            } else if self.is_kw("UNIQUE") || self.is_kw("DUPLICATE") || self.is_kw("AGGREGATE") {
                let model = self.ident()?.to_ascii_uppercase();
                self.expect_kw("KEY")?;
                ct.keys = Some((model, self.ident_list()?));
            } else if self.eat_kw("COMMENT") {
                ct.comment = self.string()?;
            } else if self.eat_kw("AUTO") {
                self.expect_kw("PARTITION")?;
                self.expect_kw("BY")?;
                self.ident()?;
                self.skip_parens()?;
                self.skip_parens()?;
            } else if self.eat_kw("PARTITION") {
                self.expect_kw("BY")?;
                self.ident()?;
                self.skip_parens()?;
                self.skip_parens()?;
            } else if self.eat_kw("DISTRIBUTED") {
                self.expect_kw("BY")?;
                if self.eat_kw("HASH") {
                    ct.distribution = Some(self.ident_list()?);
                } else {
                    self.expect_kw("RANDOM")?;
                    ct.distribution = Some(Vec::new());
                }
                if self.eat_kw("BUCKETS") {
                    if self.eat_kw("AUTO") {
                        ct.buckets = None;
                    } else {
                        let n = self.number()?;
                        if n == 0 {
                            return Err("errCode = 2, detailMessage = Number of hash distribution should not be zero.".into());
                        }
                        ct.buckets = Some(n);
                    }
                }
            } else if self.eat_kw("PROPERTIES") {
                ct.properties = self.properties()?;
            } else {
                break;
            }
        }
        Ok(Statement::CreateTable(Box::new(ct)))
    }

    fn if_not_exists(&mut self) -> Result<bool, String> {
        if self.eat_kw("IF") {
            self.expect_kw("NOT")?;
            self.expect_kw("EXISTS")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn if_exists(&mut self) -> Result<bool, String> {
        if self.eat_kw("IF") {
            self.expect_kw("EXISTS")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn alter_op(&mut self) -> Result<AlterOp, String> {
        if self.eat_kw("ADD") {
            self.expect_kw("COLUMN")?;
            let def = self.column_def()?;
            let pos = self.position()?;
            Ok(AlterOp::AddColumn(def, pos))
        } else if self.eat_kw("DROP") {
            self.expect_kw("COLUMN")?;
            Ok(AlterOp::DropColumn(self.ident()?))
        } else if self.eat_kw("RENAME") {
            self.expect_kw("COLUMN")?;
            let from = self.ident()?;
            if self.is_kw("TO") && !matches!(self.toks.get(self.pos + 1), None | Some(Tok::Sym(_)))
            {
                return Err(self
                    .unexpected("expecting a column name (Doris syntax: RENAME COLUMN old new)"));
            }
            let to = self.ident()?;
            Ok(AlterOp::RenameColumn(from, to))
        } else if self.eat_kw("MODIFY") {
            if self.eat_kw("COMMENT") {
                return Ok(AlterOp::ModifyComment(self.string()?));
            }
            self.expect_kw("COLUMN")?;
            let def = self.column_def()?;
            let pos = self.position()?;
            Ok(AlterOp::ModifyColumn(def, pos))
        } else {
            Err(self.unexpected("expecting ADD, DROP, RENAME or MODIFY"))
        }
    }

    fn statement(&mut self) -> Result<Statement, String> {
        if self.eat_kw("CREATE") {
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                let if_not_exists = self.if_not_exists()?;
                let name = self.ident()?;
                if self.eat_kw("PROPERTIES") {
                    self.properties()?;
                }
                return Ok(Statement::CreateDatabase {
                    name,
                    if_not_exists,
                });
            }
            self.expect_kw("TABLE")?;
            return self.create_table();
        }
        if self.eat_kw("DROP") {
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                let if_exists = self.if_exists()?;
                let name = self.ident()?;
                self.eat_kw("FORCE");
                return Ok(Statement::DropDatabase { name, if_exists });
            }
            self.expect_kw("TABLE")?;
            let if_exists = self.if_exists()?;
            let table = self.table_ref()?;
            self.eat_kw("FORCE");
            return Ok(Statement::DropTable { table, if_exists });
        }
        if self.eat_kw("TRUNCATE") {
            self.expect_kw("TABLE")?;
            return Ok(Statement::Truncate(self.table_ref()?));
        }
        if self.eat_kw("ALTER") {
            self.expect_kw("TABLE")?;
            let table = self.table_ref()?;
            let mut ops = vec![self.alter_op()?];
            while self.eat_sym(',') {
                ops.push(self.alter_op()?);
            }
            return Ok(Statement::Alter { table, ops });
        }
        if self.eat_kw("DESC") || self.eat_kw("DESCRIBE") {
            return Ok(Statement::Desc(self.table_ref()?));
        }
        if self.eat_kw("SHOW") {
            return self.show();
        }
        if self.eat_kw("SELECT") {
            return self.select();
        }
        Err(self.unexpected("expecting a statement the emulator supports"))
    }

    fn show(&mut self) -> Result<Statement, String> {
        if self.eat_kw("DATABASES") {
            return Ok(Statement::ShowDatabases);
        }
        if self.eat_kw("TABLES") {
            let db = if self.eat_kw("FROM") || self.eat_kw("IN") {
                Some(self.ident()?)
            } else {
                None
            };
            return Ok(Statement::ShowTables(db));
        }
        if self.eat_kw("CREATE") {
            self.expect_kw("TABLE")?;
            return Ok(Statement::ShowCreate(self.table_ref()?));
        }
        if self.eat_kw("FULL") || self.is_kw("COLUMNS") {
            self.expect_kw("COLUMNS")?;
            if !self.eat_kw("FROM") {
                self.expect_kw("IN")?;
            }
            let mut t = self.table_ref()?;
            if self.eat_kw("FROM") || self.eat_kw("IN") {
                t.db = Some(self.ident()?);
            }
            return Ok(Statement::ShowColumns(t));
        }
        self.expect_kw("ALTER")?;
        self.expect_kw("TABLE")?;
        self.expect_kw("COLUMN")?;
        let mut show = ShowAlter::default();
        if self.eat_kw("FROM") || self.eat_kw("IN") {
            show.db = Some(self.ident()?);
        }
        if self.eat_kw("WHERE") {
            loop {
                let col = self.ident()?;
                self.expect_sym('=')?;
                show.filters.push((col, self.string()?));
                if !self.eat_kw("AND") {
                    break;
                }
            }
        }
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let col = self.ident()?;
                let desc = self.eat_kw("DESC");
                if !desc {
                    self.eat_kw("ASC");
                }
                show.order.push((col, desc));
                if !self.eat_sym(',') {
                    break;
                }
            }
        }
        if self.eat_kw("LIMIT") {
            let first = self.number()? as usize;
            show.limit = Some(if self.eat_sym(',') {
                (first, self.number()? as usize)
            } else if self.eat_kw("OFFSET") {
                (self.number()? as usize, first)
            } else {
                (0, first)
            });
        }
        Ok(Statement::ShowAlter(show))
    }

    fn select(&mut self) -> Result<Statement, String> {
        let projection = if self.eat_sym('*') {
            Projection::Star
        } else if self.is_kw("COUNT") {
            self.pos += 1;
            self.expect_sym('(')?;
            if !self.eat_sym('*') {
                self.ident()?;
            }
            self.expect_sym(')')?;
            Projection::Count
        } else {
            let mut cols = vec![self.ident()?];
            while self.eat_sym(',') {
                cols.push(self.ident()?);
            }
            Projection::Columns(cols)
        };
        self.expect_kw("FROM")?;
        let table = self.table_ref()?;
        let mut filters = Vec::new();
        if self.eat_kw("WHERE") {
            loop {
                let col = self.ident()?;
                self.expect_sym('=')?;
                let v = match self.peek().cloned() {
                    Some(Tok::Str(s) | Tok::Num(s)) => {
                        self.pos += 1;
                        s
                    }
                    _ => return Err(self.unexpected("expecting a literal")),
                };
                filters.push((col, v));
                if !self.eat_kw("AND") {
                    break;
                }
            }
        }
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                self.ident()?;
                let _ = self.eat_kw("DESC") || self.eat_kw("ASC");
                if !self.eat_sym(',') {
                    break;
                }
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.number()? as usize)
        } else {
            None
        };
        Ok(Statement::Select {
            projection,
            table,
            filters,
            limit,
        })
    }
}

/// Parses one statement (an optional trailing `;` is allowed).
pub(crate) fn parse(sql: &str) -> Result<Statement, String> {
    let toks = lex(sql)?;
    let mut p = Parser { toks, pos: 0 };
    let stmt = p.statement()?;
    while p.eat_sym(';') {}
    if p.pos < p.toks.len() {
        return Err(p.unexpected("expecting end of statement"));
    }
    Ok(stmt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sink_create_table() {
        let sql = "CREATE TABLE IF NOT EXISTS `db`.`orders` (\n  `id` BIGINT NOT NULL COMMENT \"order id\",\n  `note` VARCHAR(768) NULL,\n  `amount` DECIMAL(12, 2) NULL,\n  `created` DATETIME(3) NULL DEFAULT CURRENT_TIMESTAMP\n) ENGINE = OLAP\nUNIQUE KEY(`id`)\nCOMMENT \"t\"\nDISTRIBUTED BY HASH(`id`) BUCKETS AUTO\nPROPERTIES (\"replication_num\" = \"1\", \"light_schema_change\" = \"true\");";
        let Statement::CreateTable(ct) = parse(sql).unwrap() else {
            panic!("create table")
        };
        assert!(ct.if_not_exists);
        assert_eq!(ct.table.db.as_deref(), Some("db"));
        assert_eq!(ct.columns.len(), 4);
        assert_eq!(ct.columns[0].comment, "order id");
        assert_eq!(ct.columns[0].nullable, Some(false));
        assert_eq!(ct.columns[2].ty.text(), "DECIMAL(12, 2)");
        assert_eq!(
            ct.columns[3].default,
            Some(Some("CURRENT_TIMESTAMP".into()))
        );
        assert_eq!(ct.keys, Some(("UNIQUE".into(), vec!["id".into()])));
        assert_eq!(ct.distribution, Some(vec!["id".into()]));
        assert_eq!(ct.properties.len(), 2);
    }

    #[test]
    fn parses_flink_style_and_alter() {
        let sql = "CREATE TABLE IF NOT EXISTS `db`.`t`(`id` INT COMMENT '',`ts` DATETIMEV2(6) COMMENT '' ) UNIQUE KEY(`id`) COMMENT 'x'  DISTRIBUTED BY HASH(`id`) BUCKETS AUTO  PROPERTIES ('replication_num'='1')";
        assert!(matches!(parse(sql).unwrap(), Statement::CreateTable(_)));
        let alter =
            parse("ALTER TABLE `db`.`t` ADD COLUMN `c` INT NULL AFTER `id`, DROP COLUMN `x`")
                .unwrap();
        let Statement::Alter { ops, .. } = alter else {
            panic!("alter")
        };
        assert_eq!(ops.len(), 2);
        assert!(matches!(&ops[0], AlterOp::AddColumn(_, Position::After(a)) if a == "id"));
        assert_eq!(
            parse("ALTER TABLE t RENAME COLUMN a b").unwrap(),
            Statement::Alter {
                table: TableRef {
                    db: None,
                    table: "t".into()
                },
                ops: vec![AlterOp::RenameColumn("a".into(), "b".into())]
            }
        );
        assert!(parse("ALTER TABLE t RENAME COLUMN a TO b").is_err());
        assert!(matches!(
            parse("ALTER TABLE t MODIFY COMMENT \"hi\"").unwrap(),
            Statement::Alter { .. }
        ));
        assert!(
            parse("CREATE TABLE t (a TIME)")
                .unwrap_err()
                .contains("TIME")
        );
        assert!(matches!(
            parse("SHOW ALTER TABLE COLUMN FROM `db` WHERE TableName = \"orders\" ORDER BY CreateTime DESC LIMIT 1").unwrap(),
            Statement::ShowAlter(ShowAlter { limit: Some((0, 1)), .. })
        ));
        assert!(matches!(
            parse("SELECT COLUMN_NAME FROM information_schema.`COLUMNS` WHERE TABLE_SCHEMA='d' AND TABLE_NAME='t'").unwrap(),
            Statement::Select { .. }
        ));
        assert!(parse("SELEKT 1").is_err());
    }
}
