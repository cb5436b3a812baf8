//! MySQL column types: parsed from a column type text (`int(10) unsigned`,
//! `enum('a','b')`, `decimal(12,2)`, as information_schema and DDL give them) and mapped to
//! cdc-api types per Flink CDC's `MySqlTypeUtils`; and the character sets of text columns,
//! decoded from the binlog's bytes the way the server converts them.

use std::sync::OnceLock;

use cdc_api::{DataType, DataTypeKind};

/// The character set of a text column, as far as decoding needs to know.
///
/// The binlog carries text as the column stores it; a snapshot reads it converted to
/// utf8mb4 by the server. Decoding converts the way the server does (see
/// `charset_tables`), so a value reads the same either way, `?` included where the server
/// has no Unicode mapping for a character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Charset {
    /// utf8, utf8mb3, utf8mb4: already UTF-8, checked strictly (the server stores no
    /// invalid UTF-8, so invalid bytes mean the tracked schema is wrong).
    Utf8,
    /// utf16: UTF-16 big-endian.
    Utf16Be,
    /// utf16le.
    Utf16Le,
    /// ucs2: big-endian 16-bit units, no surrogate pairs.
    Ucs2,
    /// utf32: big-endian 32-bit units.
    Utf32,
    /// latin1, cp1251, koi8r, ... (one byte per character).
    SingleByte(&'static SingleByte),
    /// gbk, big5, sjis, ujis, euckr, ... (ASCII plus multi-byte characters).
    MultiByte(&'static MultiByte),
    /// gb18030 (MySQL): one, two or four bytes per character.
    Gb18030,
    /// `binary`: bytes (text types of this set are binary types).
    Binary,
    /// A character set this source cannot decode (its name); refused when a table is
    /// captured, so no text of it is ever converted wrongly.
    Unsupported(String),
}

/// How the upper half of a single-byte set maps; the lower half is ASCII unless fixed.
enum SingleBase {
    /// An `encoding_rs` table.
    Encoding(&'static encoding_rs::Encoding),
    /// Nothing above 0x7F: the server converts those bytes to `?`.
    Ascii,
    /// A table of bytes 0x80 to 0xFF.
    Upper(&'static [u16; 128]),
}

/// A single-byte character set: its table (built on first use) and how to build it.
pub(crate) struct SingleByte {
    name: &'static str,
    base: SingleBase,
    fixes: &'static [Fix],
    table: OnceLock<[char; 256]>,
}

/// Which byte sequences make one character of a multi-byte set (as the server splits them).
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Lead 0xA1-0xF9, trail 0x40-0x7E or 0xA1-0xFE.
    Big5,
    /// Half-width katakana 0xA1-0xDF alone; lead 0x81-0x9F or 0xE0-0xFC, trail 0x40-0x7E
    /// or 0x80-0xFC.
    Sjis,
    /// 0x8E + kana 0xA1-0xDF; 0x8F + two bytes 0xA1-0xFE (JIS X 0212); two bytes 0xA1-0xFE.
    EucJp,
    /// Lead 0x81-0xFE, trail 0x41-0x5A, 0x61-0x7A or 0x81-0xFE (cp949 extensions included).
    EucKr,
    /// Two bytes 0xA1-0xF7, 0xA1-0xFE.
    Gb2312,
    /// Lead 0x81-0xFE, trail 0x40-0x7E or 0x80-0xFE.
    Gbk,
}

impl Layout {
    /// The length of the character starting at `s[0]` (a byte above 0x7F), or `None` when
    /// no character starts there.
    fn char_len(self, s: &[u8]) -> Option<usize> {
        let lead = *s.first()?;
        let at = |i: usize, ranges: &[(u8, u8)]| {
            s.get(i)
                .is_some_and(|b| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(b)))
        };
        let two =
            |leads: &[(u8, u8)], trails: &[(u8, u8)]| (at(0, leads) && at(1, trails)).then_some(2);
        match self {
            Self::Big5 => two(&[(0xA1, 0xF9)], &[(0x40, 0x7E), (0xA1, 0xFE)]),
            Self::Sjis if (0xA1..=0xDF).contains(&lead) => Some(1),
            Self::Sjis => two(&[(0x81, 0x9F), (0xE0, 0xFC)], &[(0x40, 0x7E), (0x80, 0xFC)]),
            Self::EucJp if lead == 0x8E => two(&[(0x8E, 0x8E)], &[(0xA1, 0xDF)]),
            Self::EucJp if lead == 0x8F => {
                (at(1, &[(0xA1, 0xFE)]) && at(2, &[(0xA1, 0xFE)])).then_some(3)
            }
            Self::EucJp => two(&[(0xA1, 0xFE)], &[(0xA1, 0xFE)]),
            Self::EucKr => two(&[(0x81, 0xFE)], &[(0x41, 0x5A), (0x61, 0x7A), (0x81, 0xFE)]),
            Self::Gb2312 => two(&[(0xA1, 0xF7)], &[(0xA1, 0xFE)]),
            Self::Gbk => two(&[(0x81, 0xFE)], &[(0x40, 0x7E), (0x80, 0xFE)]),
        }
    }

    /// Codes in the table: one- and two-byte codes by value, EUC-JP's three-byte codes
    /// (0x8F xx yy) from 0x10000 by their last two bytes.
    fn table_len(self) -> usize {
        match self {
            Self::EucJp => 0x2_0000,
            _ => 0x1_0000,
        }
    }

    fn index(code: &[u8]) -> usize {
        match code {
            [a] => usize::from(*a),
            [a, b] => usize::from(*a) << 8 | usize::from(*b),
            [_, b, c] => 0x1_0000 | usize::from(*b) << 8 | usize::from(*c),
            _ => 0,
        }
    }

    /// The bytes of the code at `index` in the table, and how many there are.
    fn code_at(self, index: usize) -> ([u8; 3], usize) {
        let [_, hi, mid, lo] = u32::try_from(index).unwrap_or(0).to_be_bytes();
        match (self, hi, mid) {
            (Self::EucJp, 1, _) => ([0x8F, mid, lo], 3),
            (_, _, 0) => ([lo, 0, 0], 1),
            _ => ([mid, lo, 0], 2),
        }
    }
}

/// A multi-byte character set: ASCII below 0x80, characters of one to three bytes above.
pub(crate) struct MultiByte {
    name: &'static str,
    encoding: &'static encoding_rs::Encoding,
    layout: Layout,
    fixes: &'static [Fix],
    /// Every code's character (`'?'` where the server has none), built on first use.
    table: OnceLock<Box<[char]>>,
}

impl std::fmt::Debug for SingleByte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl std::fmt::Debug for MultiByte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for SingleByte {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for SingleByte {}

impl PartialEq for MultiByte {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for MultiByte {}

/// The character of one code under the corrections, if a fix covers it.
fn fixed(fixes: &[Fix], code: u32) -> Option<char> {
    let &(first, _, to) = fixes
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&code))?;
    if to == u32::from('?') {
        return Some('?');
    }
    Some(char::from_u32(to + (code - first)).unwrap_or('?'))
}

/// One code decoded alone by `encoding_rs`: exactly one character, else none.
fn decode_one(encoding: &'static encoding_rs::Encoding, code: &[u8]) -> Option<char> {
    let (text, had_errors) = encoding.decode_without_bom_handling(code);
    let mut chars = text.chars();
    match (had_errors, chars.next(), chars.next()) {
        (false, Some(c), None) => Some(c),
        _ => None,
    }
}

fn code_value(code: &[u8]) -> u32 {
    code.iter().fold(0, |v, b| v << 8 | u32::from(*b))
}

impl SingleByte {
    const fn new(name: &'static str, base: SingleBase, fixes: &'static [Fix]) -> Self {
        Self {
            name,
            base,
            fixes,
            table: OnceLock::new(),
        }
    }

    fn table(&self) -> &[char; 256] {
        self.table.get_or_init(|| {
            let mut table = ['?'; 256];
            for (b, slot) in (0u8..=255).zip(table.iter_mut()) {
                let base = match (&self.base, b) {
                    (_, 0..=0x7F) => Some(char::from(b)),
                    (SingleBase::Encoding(e), _) => decode_one(e, &[b]),
                    (SingleBase::Ascii, _) => None,
                    (SingleBase::Upper(upper), _) => upper
                        .get(usize::from(b - 0x80))
                        .and_then(|c| char::from_u32(u32::from(*c))),
                };
                *slot = fixed(self.fixes, u32::from(b)).or(base).unwrap_or('?');
            }
            table
        })
    }

    fn decode(&self, bytes: &[u8]) -> String {
        let table = self.table();
        // ASCII text, where the set keeps ASCII as it is (all but swe7): no conversion.
        if bytes.is_ascii() && self.fixes.iter().all(|(first, ..)| *first >= 0x80) {
            if let Ok(text) = std::str::from_utf8(bytes) {
                return text.to_string();
            }
        }
        bytes.iter().map(|b| table[usize::from(*b)]).collect()
    }
}

impl MultiByte {
    const fn new(
        name: &'static str,
        encoding: &'static encoding_rs::Encoding,
        layout: Layout,
        fixes: &'static [Fix],
    ) -> Self {
        Self {
            name,
            encoding,
            layout,
            fixes,
            table: OnceLock::new(),
        }
    }

    fn table(&self) -> &[char] {
        self.table.get_or_init(|| {
            (0..self.layout.table_len())
                .map(|index| {
                    let (bytes, len) = self.layout.code_at(index);
                    let code = &bytes[..len];
                    if code.first().is_none_or(|b| *b < 0x80)
                        || self.layout.char_len(code) != Some(len)
                    {
                        return '?';
                    }
                    fixed(self.fixes, code_value(code))
                        .or_else(|| decode_one(self.encoding, code))
                        .unwrap_or('?')
                })
                .collect()
        })
    }

    fn decode(&self, bytes: &[u8]) -> String {
        let table = self.table();
        let mut out = String::with_capacity(bytes.len() * 3 / 2);
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b < 0x80 {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            match self.layout.char_len(&bytes[i..]) {
                Some(n) => {
                    let code = &bytes[i..i + n];
                    out.push(table.get(Layout::index(code)).copied().unwrap_or('?'));
                    i += n;
                }
                // Not a character of the set (the server stores none): `?`, as its own
                // conversion gives for a byte it cannot read.
                None => {
                    out.push('?');
                    i += 1;
                }
            }
        }
        out
    }
}

use crate::charset_tables::{self as tables, Fix};

static LATIN1: SingleByte = SingleByte::new(
    "latin1",
    SingleBase::Encoding(encoding_rs::WINDOWS_1252),
    &[],
);
static LATIN2: SingleByte =
    SingleByte::new("latin2", SingleBase::Encoding(encoding_rs::ISO_8859_2), &[]);
static LATIN5: SingleByte = SingleByte::new(
    "latin5",
    SingleBase::Encoding(encoding_rs::WINDOWS_1254),
    tables::LATIN5_FIXES,
);
static LATIN7: SingleByte = SingleByte::new(
    "latin7",
    SingleBase::Encoding(encoding_rs::ISO_8859_13),
    &[],
);
static GREEK: SingleByte = SingleByte::new(
    "greek",
    SingleBase::Encoding(encoding_rs::ISO_8859_7),
    tables::GREEK_FIXES,
);
static HEBREW: SingleByte = SingleByte::new(
    "hebrew",
    SingleBase::Encoding(encoding_rs::ISO_8859_8),
    tables::HEBREW_FIXES,
);
static CP1250: SingleByte = SingleByte::new(
    "cp1250",
    SingleBase::Encoding(encoding_rs::WINDOWS_1250),
    tables::CP1250_FIXES,
);
static CP1251: SingleByte = SingleByte::new(
    "cp1251",
    SingleBase::Encoding(encoding_rs::WINDOWS_1251),
    tables::CP1251_FIXES,
);
static CP1256: SingleByte = SingleByte::new(
    "cp1256",
    SingleBase::Encoding(encoding_rs::WINDOWS_1256),
    tables::CP1256_FIXES,
);
static CP1257: SingleByte = SingleByte::new(
    "cp1257",
    SingleBase::Encoding(encoding_rs::WINDOWS_1257),
    tables::CP1257_FIXES,
);
static CP866: SingleByte = SingleByte::new(
    "cp866",
    SingleBase::Encoding(encoding_rs::IBM866),
    tables::CP866_FIXES,
);
static KOI8R: SingleByte = SingleByte::new("koi8r", SingleBase::Encoding(encoding_rs::KOI8_R), &[]);
static KOI8U: SingleByte = SingleByte::new(
    "koi8u",
    SingleBase::Encoding(encoding_rs::KOI8_U),
    tables::KOI8U_FIXES,
);
static TIS620: SingleByte = SingleByte::new(
    "tis620",
    SingleBase::Encoding(encoding_rs::WINDOWS_874),
    tables::TIS620_FIXES,
);
static MACROMAN: SingleByte = SingleByte::new(
    "macroman",
    SingleBase::Encoding(encoding_rs::MACINTOSH),
    &[],
);
static ASCII: SingleByte = SingleByte::new("ascii", SingleBase::Ascii, &[]);
static SWE7: SingleByte = SingleByte::new("swe7", SingleBase::Ascii, tables::SWE7_FIXES);
static ARMSCII8: SingleByte =
    SingleByte::new("armscii8", SingleBase::Upper(&tables::ARMSCII8_UPPER), &[]);
static CP850: SingleByte = SingleByte::new("cp850", SingleBase::Upper(&tables::CP850_UPPER), &[]);
static CP852: SingleByte = SingleByte::new("cp852", SingleBase::Upper(&tables::CP852_UPPER), &[]);
static DEC8: SingleByte = SingleByte::new("dec8", SingleBase::Upper(&tables::DEC8_UPPER), &[]);
static GEOSTD8: SingleByte =
    SingleByte::new("geostd8", SingleBase::Upper(&tables::GEOSTD8_UPPER), &[]);
static HP8: SingleByte = SingleByte::new("hp8", SingleBase::Upper(&tables::HP8_UPPER), &[]);
static KEYBCS2: SingleByte =
    SingleByte::new("keybcs2", SingleBase::Upper(&tables::KEYBCS2_UPPER), &[]);
static MACCE: SingleByte = SingleByte::new("macce", SingleBase::Upper(&tables::MACCE_UPPER), &[]);

static BIG5: MultiByte =
    MultiByte::new("big5", encoding_rs::BIG5, Layout::Big5, tables::BIG5_FIXES);
static SJIS: MultiByte = MultiByte::new(
    "sjis",
    encoding_rs::SHIFT_JIS,
    Layout::Sjis,
    tables::SJIS_FIXES,
);
static CP932: MultiByte = MultiByte::new("cp932", encoding_rs::SHIFT_JIS, Layout::Sjis, &[]);
static UJIS: MultiByte = MultiByte::new(
    "ujis",
    encoding_rs::EUC_JP,
    Layout::EucJp,
    tables::UJIS_FIXES,
);
static EUCJPMS: MultiByte = MultiByte::new(
    "eucjpms",
    encoding_rs::EUC_JP,
    Layout::EucJp,
    tables::EUCJPMS_FIXES,
);
static EUCKR: MultiByte = MultiByte::new("euckr", encoding_rs::EUC_KR, Layout::EucKr, &[]);
static GB2312: MultiByte = MultiByte::new(
    "gb2312",
    encoding_rs::GBK,
    Layout::Gb2312,
    tables::GB2312_FIXES,
);
static GBK: MultiByte = MultiByte::new("gbk", encoding_rs::GBK, Layout::Gbk, tables::GBK_FIXES);

/// Every character set name MySQL and MariaDB know, longest first where one is a prefix
/// of another (a collation name starts with its set's name).
const CHARSET_NAMES: &[&str] = &[
    "armscii8", "ascii", "big5", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850",
    "cp852", "cp866", "cp932", "dec8", "eucjpms", "euckr", "gb18030", "gb2312", "gbk", "geostd8",
    "greek", "hebrew", "hp8", "keybcs2", "koi8r", "koi8u", "latin1", "latin2", "latin5", "latin7",
    "macce", "macroman", "sjis", "swe7", "tis620", "ucs2", "ujis", "utf16le", "utf16", "utf32",
    "utf8mb3", "utf8mb4", "utf8",
];

/// The character set a collation belongs to (`latin1_swedish_ci` → `latin1`,
/// `utf8mb4_0900_ai_ci` → `utf8mb4`, `binary` → `binary`); `None` for a name that does
/// not start with one (MariaDB 11's short `uca1400_ai_ci` names, which apply to the
/// charset in force).
pub(crate) fn charset_of_collation(collation: &str) -> Option<&'static str> {
    let lower = collation.to_ascii_lowercase();
    CHARSET_NAMES
        .iter()
        .filter(|name| {
            lower == **name
                || lower
                    .strip_prefix(**name)
                    .is_some_and(|rest| rest.starts_with('_'))
        })
        .max_by_key(|name| name.len())
        .copied()
}

impl Charset {
    pub(crate) fn from_name(name: &str) -> Self {
        let n = name.to_ascii_lowercase();
        let single = |s: &'static SingleByte| Self::SingleByte(s);
        let multi = |m: &'static MultiByte| Self::MultiByte(m);
        match n.as_str() {
            "utf8" | "utf8mb3" | "utf8mb4" => Self::Utf8,
            "utf16" => Self::Utf16Be,
            "utf16le" => Self::Utf16Le,
            "ucs2" => Self::Ucs2,
            "utf32" => Self::Utf32,
            "binary" => Self::Binary,
            "gb18030" => Self::Gb18030,
            "latin1" => single(&LATIN1),
            "latin2" => single(&LATIN2),
            "latin5" => single(&LATIN5),
            "latin7" => single(&LATIN7),
            "greek" => single(&GREEK),
            "hebrew" => single(&HEBREW),
            "cp1250" => single(&CP1250),
            "cp1251" => single(&CP1251),
            "cp1256" => single(&CP1256),
            "cp1257" => single(&CP1257),
            "cp866" => single(&CP866),
            "koi8r" => single(&KOI8R),
            "koi8u" => single(&KOI8U),
            "tis620" => single(&TIS620),
            "macroman" => single(&MACROMAN),
            "ascii" => single(&ASCII),
            "swe7" => single(&SWE7),
            "armscii8" => single(&ARMSCII8),
            "cp850" => single(&CP850),
            "cp852" => single(&CP852),
            "dec8" => single(&DEC8),
            "geostd8" => single(&GEOSTD8),
            "hp8" => single(&HP8),
            "keybcs2" => single(&KEYBCS2),
            "macce" => single(&MACCE),
            "big5" => multi(&BIG5),
            "sjis" => multi(&SJIS),
            "cp932" => multi(&CP932),
            "ujis" => multi(&UJIS),
            "eucjpms" => multi(&EUCJPMS),
            "euckr" => multi(&EUCKR),
            "gb2312" => multi(&GB2312),
            "gbk" => multi(&GBK),
            _ => Self::Unsupported(n),
        }
    }

    /// The name of a set this source cannot decode.
    pub(crate) fn unsupported(&self) -> Option<&str> {
        match self {
            Self::Unsupported(name) => Some(name),
            _ => None,
        }
    }

    /// Converts column bytes to UTF-8 text.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<String, String> {
        let strict = |encoding: &'static encoding_rs::Encoding, name: &str| {
            encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(std::borrow::Cow::into_owned)
                .ok_or_else(|| format!("text is not valid {name}"))
        };
        let units = |width: usize, name: &str| {
            if bytes.len() % width != 0 {
                return Err(format!("text is not valid {name} (odd length)"));
            }
            bytes
                .chunks_exact(width)
                .map(|unit| char::from_u32(code_value(unit)))
                .collect::<Option<String>>()
                .ok_or_else(|| format!("text is not valid {name}"))
        };
        match self {
            Self::Utf8 | Self::Binary => String::from_utf8(bytes.to_vec())
                .map_err(|_| "text is not valid UTF-8 for its utf8 column".to_string()),
            Self::Utf16Be => strict(encoding_rs::UTF_16BE, "utf16"),
            Self::Utf16Le => strict(encoding_rs::UTF_16LE, "utf16le"),
            Self::Ucs2 => units(2, "ucs2"),
            Self::Utf32 => units(4, "utf32"),
            Self::Gb18030 => strict(encoding_rs::GB18030, "gb18030"),
            Self::SingleByte(set) => Ok(set.decode(bytes)),
            Self::MultiByte(set) => Ok(set.decode(bytes)),
            Self::Unsupported(name) => Err(format!(
                "text of character set {name}, which this source cannot decode"
            )),
        }
    }
}

/// A MySQL column type with what decoding and mapping need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MySqlType {
    TinyInt {
        unsigned: bool,
        width: Option<u32>,
    },
    SmallInt {
        unsigned: bool,
    },
    MediumInt {
        unsigned: bool,
    },
    Int {
        unsigned: bool,
    },
    BigInt {
        unsigned: bool,
    },
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// `explicit` when written FLOAT(p[,s]): Flink CDC maps that to DOUBLE.
    Float {
        explicit: bool,
    },
    Double,
    Bit(u32),
    Bool,
    Char(u32),
    VarChar(u32),
    Text,
    Binary(u32),
    VarBinary(u32),
    Blob,
    Enum(Vec<String>),
    Set(Vec<String>),
    Year,
    Date,
    Time(u8),
    DateTime(u8),
    Timestamp(u8),
    Json,
    Geometry,
    /// A type this version does not know (mapped to STRING; decoding may fail loudly).
    Other(String),
}

/// Parses a column type as MySQL prints it in information_schema.COLUMNS.COLUMN_TYPE or as
/// written in DDL (case-insensitive, `(n)` / `(p,s)` / value lists, `unsigned`, `zerofill`).
pub(crate) fn parse_column_type(text: &str) -> MySqlType {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let name_end = lower
        .find(|c: char| c == '(' || c.is_whitespace())
        .unwrap_or(lower.len());
    let name = &lower[..name_end];
    let args = paren_args(trimmed);
    let unsigned = lower.contains(" unsigned") || lower.contains(" zerofill");
    let n = |i: usize| args.get(i).and_then(|a| a.trim().parse::<u32>().ok());
    match name {
        "tinyint" | "int1" => MySqlType::TinyInt {
            unsigned,
            width: n(0),
        },
        "bool" | "boolean" => MySqlType::Bool,
        "smallint" | "int2" => MySqlType::SmallInt { unsigned },
        "mediumint" | "int3" | "middleint" => MySqlType::MediumInt { unsigned },
        "int" | "integer" | "int4" => MySqlType::Int { unsigned },
        "bigint" | "int8" => MySqlType::BigInt { unsigned },
        "serial" => MySqlType::BigInt { unsigned: true },
        "decimal" | "numeric" | "dec" | "fixed" => MySqlType::Decimal {
            precision: n(0).unwrap_or(10) as u8,
            scale: n(1).unwrap_or(0) as u8,
        },
        "float" => MySqlType::Float {
            explicit: !args.is_empty(),
        },
        "double" | "real" | "float8" => MySqlType::Double,
        "bit" => MySqlType::Bit(n(0).unwrap_or(1)),
        "char" | "nchar" | "character" => MySqlType::Char(n(0).unwrap_or(1)),
        "varchar" | "nvarchar" | "character varying" | "varchar2" => {
            MySqlType::VarChar(n(0).unwrap_or(255))
        }
        "tinytext" | "text" | "mediumtext" | "longtext" | "long" => MySqlType::Text,
        "binary" => MySqlType::Binary(n(0).unwrap_or(1)),
        "varbinary" => MySqlType::VarBinary(n(0).unwrap_or(255)),
        "tinyblob" | "blob" | "mediumblob" | "longblob" => MySqlType::Blob,
        "enum" => MySqlType::Enum(quoted_list(&args)),
        "set" => MySqlType::Set(quoted_list(&args)),
        "year" => MySqlType::Year,
        "date" => MySqlType::Date,
        "time" => MySqlType::Time(n(0).unwrap_or(0) as u8),
        "datetime" => MySqlType::DateTime(n(0).unwrap_or(0) as u8),
        "timestamp" => MySqlType::Timestamp(n(0).unwrap_or(0) as u8),
        "json" => MySqlType::Json,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => MySqlType::Geometry,
        _ => MySqlType::Other(trimmed.to_string()),
    }
}

/// The arguments inside the first parentheses, split on top-level commas (quotes respected).
fn paren_args(text: &str) -> Vec<String> {
    let Some(start) = text.find('(') else {
        return Vec::new();
    };
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text[start + 1..].chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                if chars.peek() == Some(&q) {
                    current.push(q);
                    current.push(q);
                    chars.next();
                } else {
                    quote = None;
                    current.push(c);
                }
            }
            (Some(_), '\\') => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ',') => args.push(std::mem::take(&mut current)),
            (None, ')') => break,
            (None, c) => current.push(c),
        }
    }
    args.push(current);
    args
}

fn quoted_list(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| {
            let a = a.trim();
            let q = a.chars().next().unwrap_or('\'');
            let inner = a
                .strip_prefix(q)
                .and_then(|s| s.strip_suffix(q))
                .unwrap_or(a);
            inner
                .replace(&format!("{q}{q}"), &q.to_string())
                .replace("\\\\", "\\")
        })
        .collect()
}

/// Maps a MySQL type to the cdc-api type (Flink CDC's mapping, reference section 3).
pub(crate) fn to_data_type(t: &MySqlType, nullable: bool, tinyint1_as_boolean: bool) -> DataType {
    use DataTypeKind as K;
    let kind = match t {
        MySqlType::TinyInt {
            unsigned: false,
            width: Some(1),
        } if tinyint1_as_boolean => K::Boolean,
        MySqlType::Bool | MySqlType::Bit(1) => K::Boolean,
        MySqlType::TinyInt {
            unsigned: false, ..
        } => K::TinyInt,
        MySqlType::TinyInt { unsigned: true, .. } | MySqlType::SmallInt { unsigned: false } => {
            K::SmallInt
        }
        MySqlType::SmallInt { unsigned: true }
        | MySqlType::MediumInt { .. }
        | MySqlType::Int { unsigned: false }
        | MySqlType::Year => K::Int,
        MySqlType::Int { unsigned: true } | MySqlType::BigInt { unsigned: false } => K::BigInt,
        MySqlType::BigInt { unsigned: true } => K::Decimal {
            precision: 20,
            scale: 0,
        },
        MySqlType::Decimal { precision, scale } if *precision <= 38 => K::Decimal {
            precision: *precision,
            scale: *scale,
        },
        MySqlType::Decimal { .. } => K::String,
        MySqlType::Float { explicit: false } => K::Float,
        MySqlType::Float { explicit: true } | MySqlType::Double => K::Double,
        MySqlType::Bit(n) => K::Binary {
            length: n.div_ceil(8),
        },
        MySqlType::Char(n) => K::Char { length: *n },
        MySqlType::VarChar(n) => K::VarChar { length: *n },
        MySqlType::Binary(n) => K::Binary { length: *n },
        MySqlType::VarBinary(n) => K::VarBinary { length: *n },
        MySqlType::Blob => K::Bytes,
        MySqlType::Text
        | MySqlType::Enum(_)
        | MySqlType::Set(_)
        | MySqlType::Geometry
        | MySqlType::Other(_) => K::String,
        MySqlType::Json => K::Json,
        MySqlType::Date => K::Date,
        MySqlType::Time(p) => K::Time { precision: *p },
        MySqlType::DateTime(p) => K::Timestamp { precision: *p },
        MySqlType::Timestamp(p) => K::TimestampLtz { precision: *p },
    };
    DataType::new(kind).with_nullable(nullable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataTypeKind as K;

    fn map(text: &str) -> DataTypeKind {
        to_data_type(&parse_column_type(text), true, true).kind
    }

    #[test]
    fn reference_section_3_mapping() {
        let cases = [
            ("tinyint(1)", K::Boolean),
            ("tinyint(4)", K::TinyInt),
            ("tinyint(3) unsigned", K::SmallInt),
            ("smallint(6)", K::SmallInt),
            ("smallint(5) unsigned", K::Int),
            ("mediumint(8) unsigned", K::Int),
            ("int(11)", K::Int),
            ("int(10) unsigned", K::BigInt),
            ("bigint(20)", K::BigInt),
            (
                "bigint(20) unsigned",
                K::Decimal {
                    precision: 20,
                    scale: 0,
                },
            ),
            ("decimal(65,30)", K::String),
            (
                "decimal(38,10)",
                K::Decimal {
                    precision: 38,
                    scale: 10,
                },
            ),
            ("float", K::Float),
            ("float(10,2)", K::Double),
            ("double unsigned zerofill", K::Double),
            ("bit(1)", K::Boolean),
            ("bit(12)", K::Binary { length: 2 }),
            ("char(3)", K::Char { length: 3 }),
            ("varchar(32)", K::VarChar { length: 32 }),
            ("longtext", K::String),
            ("binary(4)", K::Binary { length: 4 }),
            ("varbinary(9)", K::VarBinary { length: 9 }),
            ("mediumblob", K::Bytes),
            ("enum('a','b')", K::String),
            ("set('x','y')", K::String),
            ("year(4)", K::Int),
            ("date", K::Date),
            ("time(3)", K::Time { precision: 3 }),
            ("datetime(6)", K::Timestamp { precision: 6 }),
            ("timestamp(2)", K::TimestampLtz { precision: 2 }),
            ("json", K::Json),
            ("point", K::String),
        ];
        for (text, expected) in cases {
            assert_eq!(map(text), expected, "{text}");
        }
        assert_eq!(
            to_data_type(&parse_column_type("tinyint(1)"), true, false).kind,
            K::TinyInt
        );
    }

    #[test]
    fn enum_labels_keep_quotes_and_commas() {
        assert_eq!(
            parse_column_type("enum('a,b','it''s','x')"),
            MySqlType::Enum(vec!["a,b".into(), "it's".into(), "x".into()])
        );
    }

    fn decode(charset: &str, bytes: &[u8]) -> String {
        match Charset::from_name(charset).decode(bytes) {
            Ok(text) => text,
            Err(e) => panic!("{charset}: {e}"),
        }
    }

    #[test]
    fn every_column_decodes_by_its_own_charset() {
        let cases: &[(&str, &[u8], &str)] = &[
            // MySQL's latin1 is cp1252: € is 0x80.
            (
                "latin1",
                &[
                    0xE9, 0xE8, 0xEA, 0xEB, 0x20, 0xC0, 0xC1, 0x20, 0xDF, 0xF8, 0x20, 0x80,
                ],
                "éèêë ÀÁ ßø €",
            ),
            (
                "gbk",
                &[0xC4, 0xE3, 0xBA, 0xC3, 0xA3, 0xAC, 0xCA, 0xC0, 0xBD, 0xE7],
                "你好，世界",
            ),
            ("gb2312", &[0xD6, 0xD0, 0xCE, 0xC4], "中文"),
            (
                "big5",
                &[0xA4, 0xA4, 0xA4, 0xE5, 0xC1, 0x63, 0xC5, 0xE9],
                "中文繁體",
            ),
            (
                "sjis",
                &[
                    0x82, 0xB1, 0x82, 0xF1, 0x82, 0xC9, 0x82, 0xBF, 0x82, 0xCD, 0x20, 0xB6, 0xC0,
                    0xB6, 0xC5,
                ],
                "こんにちは ｶﾀｶﾅ",
            ),
            ("cp932", &[0x82, 0xB1, 0xB6], "こｶ"),
            (
                "ujis",
                &[0xA4, 0xCB, 0xA4, 0xDB, 0xA4, 0xF3, 0xA4, 0xB4],
                "にほんご",
            ),
            ("eucjpms", &[0xA4, 0xCB, 0x8E, 0xB6], "にｶ"),
            (
                "euckr",
                &[0xBE, 0xC8, 0xB3, 0xE7, 0xC7, 0xCF, 0xBC, 0xBC, 0xBF, 0xE4],
                "안녕하세요",
            ),
            ("cp1251", &[0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2], "Привет"),
            ("koi8r", &[0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4], "Привет"),
            (
                "koi8u",
                &[0xF0, 0xD2, 0xC9, 0xD7, 0xA6, 0xD4, 0x20, 0xAD],
                "Привіт ґ",
            ),
            ("cp866", &[0x8F, 0xE0, 0xA8, 0xA2, 0xA5, 0xE2], "Привет"),
            ("cp1250", &[0x5A, 0x61, 0xBF, 0xF3, 0xB3, 0xE6], "Zażółć"),
            ("latin2", &[0x5A, 0x61, 0xBF, 0xF3, 0xB3, 0xE6], "Zażółć"),
            ("cp1256", &[0xE3, 0xD1, 0xCD, 0xC8, 0xC7], "مرحبا"),
            ("cp1257", &[0xC0, 0xE8, 0xE6], "Ąčę"),
            ("latin7", &[0xC0, 0xE8, 0xE6], "Ąčę"),
            ("latin5", &[0xDD, 0x73, 0x74, 0x20, 0xF0, 0xFE], "İst ğş"),
            (
                "greek",
                &[0xCA, 0xE1, 0xEB, 0xE7, 0xEC, 0xDD, 0xF1, 0xE1],
                "Καλημέρα",
            ),
            ("hebrew", &[0xF9, 0xEC, 0xE5, 0xED], "שלום"),
            ("tis620", &[0xCA, 0xC7, 0xD1, 0xCA, 0xB4, 0xD5], "สวัสดี"),
            ("cp850", &[0x80, 0x61], "Ça"),
            ("swe7", &[0x5B, 0x7D], "Äå"),
            ("ascii", b"plain", "plain"),
            ("utf8mb4", "héllo 🎉".as_bytes(), "héllo 🎉"),
            ("utf8mb3", "héllo".as_bytes(), "héllo"),
            (
                "utf16",
                &[0x00, 0x68, 0x00, 0xE9, 0x00, 0x20, 0xD8, 0x3C, 0xDF, 0x89],
                "hé 🎉",
            ),
            (
                "utf16le",
                &[0x68, 0x00, 0xE9, 0x00, 0x20, 0x00, 0x3C, 0xD8, 0x89, 0xDF],
                "hé 🎉",
            ),
            (
                "utf32",
                &[0, 0, 0, 0x68, 0, 0, 0, 0xE9, 0, 0x01, 0xF3, 0x89],
                "hé🎉",
            ),
            ("ucs2", &[0x00, 0x68, 0x00, 0xE9, 0x04, 0x1F], "héП"),
            ("gb18030", &[0x81, 0x30, 0x81, 0x30, 0xC4, 0xE3], "\u{80}你"),
        ];
        for (charset, bytes, text) in cases {
            assert_eq!(decode(charset, bytes), *text, "{charset}");
        }
    }

    /// Bytes that look like a byte order mark are text of the column's set: `encoding_rs`'s
    /// `decode` would take them for one and switch to UTF-8 or UTF-16.
    #[test]
    fn byte_order_marks_are_text() {
        assert_eq!(decode("latin1", &[0xFF, 0xFE, 0x61, 0x62]), "ÿþab");
        assert_eq!(decode("latin1", &[0xEF, 0xBB, 0xBF, 0x61]), "ï»¿a");
        assert_eq!(decode("cp1251", &[0xFE, 0xFF]), "юя");
    }

    /// Where MariaDB's tables differ from the WHATWG ones, the server's conversion wins
    /// (a snapshot shows what the server converts).
    #[test]
    fn the_servers_mappings_win() {
        // sjis: JIS X 0208 backslash and wave dash (cp932 has the fullwidth forms).
        assert_eq!(decode("sjis", &[0x81, 0x5F, 0x81, 0x60]), "\\〜");
        assert_eq!(decode("cp932", &[0x81, 0x5F, 0x81, 0x60]), "＼～");
        // gb2312: katakana middle dot and horizontal bar.
        assert_eq!(decode("gb2312", &[0xA1, 0xA4, 0xA1, 0xAA]), "・―");
        assert_eq!(decode("gbk", &[0xA1, 0xA4]), "·");
        // big5: ETEN kana.
        assert_eq!(decode("big5", &[0xC6, 0xA5, 0xC6, 0xA6]), "ぁあ");
        // ujis: user-defined rows in the private use area.
        assert_eq!(
            decode("ujis", &[0xF5, 0xA1, 0x8F, 0xF5, 0xA2]),
            "\u{E000}\u{E3AD}"
        );
        // latin5 has C1 controls where windows-1254 has punctuation.
        assert_eq!(decode("latin5", &[0x80, 0x9F]), "\u{80}\u{9F}");
        // Codes without a mapping come out as the server converts them: `?`.
        assert_eq!(decode("cp1250", &[0x81]), "?");
        assert_eq!(decode("greek", &[0xA4]), "?");
        assert_eq!(decode("ascii", &[0x61, 0x80]), "a?");
        assert_eq!(decode("gbk", &[0xA1, 0x40, 0x61]), "?a");
        assert_eq!(decode("sjis", &[0xF0, 0x40]), "?");
    }

    #[test]
    fn broken_text_is_never_a_panic() {
        // A lead byte at the end, or one without a valid trail byte: `?` for the byte.
        assert_eq!(decode("gbk", &[0x61, 0xC4]), "a?");
        assert_eq!(decode("big5", &[0xA4, 0x20]), "? ");
        assert_eq!(decode("ujis", &[0x8F, 0xA1]), "??");
        assert_eq!(decode("sjis", &[0x80, 0xFD]), "??");
        for charset in [
            "utf8mb4", "binary", "utf16", "utf16le", "utf32", "ucs2", "gb18030",
        ] {
            assert!(
                Charset::from_name(charset).decode(&[0xFF]).is_err(),
                "{charset}"
            );
        }
        // A lone surrogate: ucs2 has no surrogate pairs, utf32 no surrogates.
        assert!(
            Charset::from_name("ucs2")
                .decode(&[0xD8, 0x3C, 0xDF, 0x89])
                .is_err()
        );
        assert!(
            Charset::from_name("utf32")
                .decode(&[0, 0, 0xD8, 0])
                .is_err()
        );
        assert!(
            Charset::from_name("utf32")
                .decode(&[0, 0x11, 0, 0])
                .is_err()
        );
    }

    #[test]
    fn unknown_charsets_are_refused_not_guessed() {
        let unknown = Charset::from_name("klingon8");
        assert_eq!(unknown.unsupported(), Some("klingon8"));
        assert!(unknown.decode(b"abc").is_err());
        for known in [
            "utf8", "UTF8MB4", "latin1", "gbk", "big5", "sjis", "ujis", "euckr", "utf16", "utf32",
            "ucs2", "binary", "cp1251", "macce", "keybcs2", "geostd8",
        ] {
            assert_eq!(Charset::from_name(known).unsupported(), None, "{known}");
        }
    }

    #[test]
    fn collations_name_their_charsets() {
        for (collation, charset) in [
            ("latin1_swedish_ci", Some("latin1")),
            ("utf8mb4_0900_ai_ci", Some("utf8mb4")),
            ("utf8_general_ci", Some("utf8")),
            ("utf8mb3_bin", Some("utf8mb3")),
            ("utf16le_general_ci", Some("utf16le")),
            ("utf16_bin", Some("utf16")),
            ("GBK_BIN", Some("gbk")),
            ("binary", Some("binary")),
            ("uca1400_ai_ci", None),
            ("latin", None),
        ] {
            assert_eq!(charset_of_collation(collation), charset, "{collation}");
        }
    }
}
