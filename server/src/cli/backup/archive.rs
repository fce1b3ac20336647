//! The backup archive: one gzip stream of JSON lines, backend-neutral and versioned.
//!
//! ```text
//! {"format":"devsignal-backup","formatVersion":1,"devsignalVersion":…,"createdAt":…,
//!  "backend":"sqlite","migrations":[…],"derived":[…],"tables":[{"name","columns","rows"}…]}
//! {"table":"organizations"}
//! ["0190…","Acme","2026-01-01T00:00:00.123456Z",…]        one JSON array per row, in column order
//! {"table":"users"}
//! …
//! {"end":true,"rows":1234,"sha256":"…"}
//! ```
//!
//! The header comes first with every table's exact row count (counted in the same snapshot the
//! rows are read from), tables follow in foreign-key order, and the trailer carries the SHA-256
//! of every byte before it (uncompressed). Values are encoded by the column's [`Kind`]: UUIDs as
//! strings, timestamps as RFC 3339 UTC (`Z`, the precision the database keeps), dates as
//! `YYYY-MM-DD`, booleans as booleans, JSON columns as JSON, bytes as base64, SQL NULL as `null`.
//! One edge is lossy by design: a JSON `null` stored in a *nullable* JSON column comes back as
//! SQL NULL (the app never tells the two apart).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sea_orm::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The `format` of every archive's header.
pub const FORMAT: &str = "devsignal-backup";
/// The archive layout this binary writes and reads. A reader refuses a newer one.
pub const FORMAT_VERSION: u32 = 1;

/// How a column's values are written: chosen from the entity's column type at backup time and
/// recorded in the header, so a restore needs no entity to decode a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Text,
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    Uuid,
    Timestamp,
    Date,
    Json,
    Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableHeader {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub format: String,
    pub format_version: u32,
    pub devsignal_version: String,
    /// RFC 3339 UTC: when the snapshot was taken.
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The names of the applied migrations, in order (what `seaql_migrations` held).
    pub migrations: Vec<String>,
    /// Tables deliberately left out because they are rebuilt from others (e.g. SQLite's FTS5
    /// `crm_search` and its shadow tables, which triggers fill as rows are inserted).
    pub derived: Vec<String>,
    /// In foreign-key order: the order rows are written and restored in.
    pub tables: Vec<TableHeader>,
}

impl Header {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Section {
    table: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    end: bool,
    rows: u64,
    sha256: String,
}

/// Writes `<file>.partial` and renames it to `<file>` only once everything is on disk, so a crash
/// never leaves a file that looks complete.
pub struct ArchiveWriter {
    out: GzEncoder<BufWriter<File>>,
    hash: Sha256,
    buf: Vec<u8>,
    rows: u64,
    partial: PathBuf,
    target: PathBuf,
}

impl ArchiveWriter {
    pub fn create(target: &Path, header: &Header) -> anyhow::Result<Self> {
        let mut name = target.as_os_str().to_owned();
        name.push(".partial");
        let partial = PathBuf::from(name);
        let file = File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut w = ArchiveWriter {
            out: GzEncoder::new(BufWriter::with_capacity(1 << 16, file), Compression::new(6)),
            hash: Sha256::new(),
            buf: Vec::with_capacity(4096),
            rows: 0,
            partial,
            target: target.to_owned(),
        };
        w.line(header)?;
        Ok(w)
    }

    fn line(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, value)?;
        self.buf.push(b'\n');
        self.hash.update(&self.buf);
        self.out
            .write_all(&self.buf)
            .with_context(|| format!("cannot write {}", self.partial.display()))
    }

    pub fn table(&mut self, name: &str) -> anyhow::Result<()> {
        self.line(&Section {
            table: name.to_owned(),
        })
    }

    pub fn row(&mut self, values: &[Json]) -> anyhow::Result<()> {
        self.rows += 1;
        self.line(&values)
    }

    /// Writes the trailer, flushes and syncs the file, and renames it into place.
    pub fn finish(self) -> anyhow::Result<PathBuf> {
        let ArchiveWriter {
            mut out,
            hash,
            mut buf,
            rows,
            partial,
            target,
        } = self;
        buf.clear();
        serde_json::to_writer(
            &mut buf,
            &Trailer {
                end: true,
                rows,
                sha256: hex::encode(hash.finalize()),
            },
        )?;
        buf.push(b'\n');
        let write = || -> std::io::Result<()> {
            out.write_all(&buf)?;
            let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        };
        write().with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &target).with_context(|| {
            format!(
                "cannot rename {} to {}",
                partial.display(),
                target.display()
            )
        })?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(target)
    }

    /// Removes the partial file after a failure.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// What a reader meets after the header.
pub enum Item {
    /// The start of a table's rows.
    Table(String),
    Row(Vec<Json>),
    /// The trailer, with the checksum and row count already compared.
    End,
}

/// Reads an archive line by line, checking what can be checked as it goes; every problem is an
/// error that names it (not an archive, damaged, truncated, checksum mismatch).
pub struct ArchiveReader {
    input: BufReader<GzDecoder<BufReader<File>>>,
    hash: Sha256,
    line: String,
    line_no: u64,
    rows: u64,
    path: PathBuf,
    pub header: Header,
}

impl ArchiveReader {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!("no such file: {}", path.display()),
            _ => anyhow!("cannot open {}: {e}", path.display()),
        })?;
        let mut magic = [0u8; 2];
        let n = read_up_to(&mut file, &mut magic)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n < 2 || magic != [0x1f, 0x8b] {
            bail!(
                "{} is not a DevSignal backup archive (not gzip-compressed)",
                path.display()
            );
        }
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut reader = ArchiveReader {
            input: BufReader::with_capacity(
                1 << 16,
                GzDecoder::new(BufReader::with_capacity(1 << 16, file)),
            ),
            hash: Sha256::new(),
            line: String::new(),
            line_no: 0,
            rows: 0,
            path: path.to_owned(),
            header: placeholder_header(),
        };
        if !reader.read_line()? {
            bail!(
                "{} is not a DevSignal backup archive (empty)",
                path.display()
            );
        }
        let header: Header = serde_json::from_str(reader.line.trim_end()).map_err(|_| {
            anyhow!(
                "{} is not a DevSignal backup archive (no header)",
                path.display()
            )
        })?;
        if header.format != FORMAT {
            bail!(
                "{} is not a DevSignal backup archive (format {:?})",
                path.display(),
                header.format
            );
        }
        if header.format_version > FORMAT_VERSION {
            bail!(
                "{} has archive format {}, newer than this devsignal ({}) reads (format {}); use \
                 a newer devsignal",
                path.display(),
                header.format_version,
                env!("CARGO_PKG_VERSION"),
                FORMAT_VERSION
            );
        }
        reader.hash.update(reader.line.as_bytes());
        reader.header = header;
        Ok(reader)
    }

    /// Reads one line into `self.line`; false at the end of the stream.
    fn read_line(&mut self) -> anyhow::Result<bool> {
        self.line.clear();
        match self.input.read_line(&mut self.line) {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.line_no += 1;
                if !self.line.ends_with('\n') {
                    bail!(self.truncated());
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => bail!(
                "{} is truncated: the compressed stream ends early (after line {})",
                self.path.display(),
                self.line_no
            ),
            Err(e) => bail!(
                "{} is damaged: {e} (after line {})",
                self.path.display(),
                self.line_no
            ),
        }
    }

    fn truncated(&self) -> String {
        format!(
            "{} is truncated: it ends after line {} without the archive's trailer",
            self.path.display(),
            self.line_no
        )
    }

    fn damaged(&self, what: impl std::fmt::Display) -> anyhow::Error {
        anyhow!(
            "{} is damaged: line {}: {what}",
            self.path.display(),
            self.line_no
        )
    }

    /// The next section start, row or the trailer; the trailer's checksum and row count are
    /// compared here, and nothing may follow it.
    pub fn next_item(&mut self) -> anyhow::Result<Item> {
        if !self.read_line()? {
            bail!(self.truncated());
        }
        let text = self.line.trim_end();
        if text.starts_with('[') {
            let row: Vec<Json> = serde_json::from_str(text)
                .map_err(|e| self.damaged(format_args!("not a row: {e}")))?;
            self.hash.update(self.line.as_bytes());
            self.rows += 1;
            return Ok(Item::Row(row));
        }
        if let Ok(section) = serde_json::from_str::<Section>(text) {
            self.hash.update(self.line.as_bytes());
            return Ok(Item::Table(section.table));
        }
        let trailer: Trailer = serde_json::from_str(text)
            .map_err(|_| self.damaged("neither a row, a table nor the trailer"))?;
        let actual = hex::encode(std::mem::take(&mut self.hash).finalize());
        if !trailer.end || trailer.sha256 != actual {
            bail!(
                "{} is damaged: checksum mismatch (the trailer says {}, the content hashes to \
                 {actual})",
                self.path.display(),
                trailer.sha256
            );
        }
        if trailer.rows != self.rows {
            bail!(self.damaged(format_args!(
                "the trailer counts {} rows, the archive holds {}",
                trailer.rows, self.rows
            )));
        }
        if self.read_line()? {
            bail!(self.damaged("something follows the trailer"));
        }
        // The gzip stream's own end (its CRC and length) is checked when it is read to the end.
        let mut rest = Vec::new();
        self.input
            .read_to_end(&mut rest)
            .map_err(|e| anyhow!("{} is damaged: {e}", self.path.display()))?;
        Ok(Item::End)
    }

    pub fn row_error(&self, what: impl std::fmt::Display) -> anyhow::Error {
        self.damaged(what)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn placeholder_header() -> Header {
    Header {
        format: String::new(),
        format_version: 0,
        devsignal_version: String::new(),
        created_at: String::new(),
        backend: String::new(),
        migrations: Vec::new(),
        derived: Vec::new(),
        tables: Vec::new(),
    }
}

/// One database value as the archive writes it. `None` for a value of a type backups do not
/// know (the caller names the column).
pub fn encode(value: Value) -> Option<Json> {
    Some(match value {
        Value::Bool(v) => v.map(Json::Bool).unwrap_or(Json::Null),
        Value::TinyInt(v) => v.map(Json::from).unwrap_or(Json::Null),
        Value::SmallInt(v) => v.map(Json::from).unwrap_or(Json::Null),
        Value::Int(v) => v.map(Json::from).unwrap_or(Json::Null),
        Value::BigInt(v) => v.map(Json::from).unwrap_or(Json::Null),
        Value::Float(v) => match v {
            Some(f) => Json::from(serde_json::Number::from_f64(f64::from(f))?),
            None => Json::Null,
        },
        Value::Double(v) => match v {
            Some(f) => Json::from(serde_json::Number::from_f64(f)?),
            None => Json::Null,
        },
        Value::String(v) => v.map(Json::String).unwrap_or(Json::Null),
        Value::Bytes(v) => v
            .map(|b| Json::String(base64::engine::general_purpose::STANDARD.encode(b)))
            .unwrap_or(Json::Null),
        Value::Json(v) => v.map(|j| *j).unwrap_or(Json::Null),
        Value::Uuid(v) => v
            .map(|u| Json::String(u.hyphenated().to_string()))
            .unwrap_or(Json::Null),
        Value::ChronoDateTimeUtc(v) => v
            .map(|t| Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
            .unwrap_or(Json::Null),
        Value::ChronoDate(v) => v
            .map(|d| Json::String(d.format("%Y-%m-%d").to_string()))
            .unwrap_or(Json::Null),
        _ => return None,
    })
}

/// One archived value back into a database value of the column's kind.
pub fn decode(column: &Column, value: Json) -> Result<Value, String> {
    let bad = |v: &Json| {
        format!(
            "column {}: {v} is not a valid {:?}",
            column.name, column.kind
        )
    };
    if value.is_null() {
        if !column.nullable && column.kind != Kind::Json {
            return Err(format!("column {}: null in a NOT NULL column", column.name));
        }
        return Ok(match column.kind {
            Kind::Text => Value::String(None),
            Kind::Bool => Value::Bool(None),
            Kind::I16 => Value::SmallInt(None),
            Kind::I32 => Value::Int(None),
            Kind::I64 => Value::BigInt(None),
            Kind::F32 => Value::Float(None),
            Kind::F64 => Value::Double(None),
            Kind::Uuid => Value::Uuid(None),
            Kind::Timestamp => Value::ChronoDateTimeUtc(None),
            Kind::Date => Value::ChronoDate(None),
            Kind::Json if column.nullable => Value::Json(None),
            Kind::Json => Value::Json(Some(Box::new(Json::Null))),
            Kind::Bytes => Value::Bytes(None),
        });
    }
    Ok(match column.kind {
        Kind::Text => match value {
            Json::String(s) => Value::String(Some(s)),
            v => return Err(bad(&v)),
        },
        Kind::Bool => Value::Bool(Some(value.as_bool().ok_or_else(|| bad(&value))?)),
        Kind::I16 => Value::SmallInt(Some(
            value
                .as_i64()
                .and_then(|i| i16::try_from(i).ok())
                .ok_or_else(|| bad(&value))?,
        )),
        Kind::I32 => Value::Int(Some(
            value
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| bad(&value))?,
        )),
        Kind::I64 => Value::BigInt(Some(value.as_i64().ok_or_else(|| bad(&value))?)),
        #[allow(clippy::cast_possible_truncation)]
        Kind::F32 => Value::Float(Some(value.as_f64().ok_or_else(|| bad(&value))? as f32)),
        Kind::F64 => Value::Double(Some(value.as_f64().ok_or_else(|| bad(&value))?)),
        Kind::Uuid => Value::Uuid(Some(
            value
                .as_str()
                .and_then(|s| uuid::Uuid::parse_str(s).ok())
                .ok_or_else(|| bad(&value))?,
        )),
        Kind::Timestamp => Value::ChronoDateTimeUtc(Some(
            value
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| bad(&value))?,
        )),
        Kind::Date => Value::ChronoDate(Some(
            value
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .ok_or_else(|| bad(&value))?,
        )),
        Kind::Json => Value::Json(Some(Box::new(value))),
        Kind::Bytes => Value::Bytes(Some(
            value
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .ok_or_else(|| bad(&value))?,
        )),
    })
}

/// Decodes a whole row against the table's columns.
pub fn decode_row(columns: &[Column], row: Vec<Json>) -> Result<Vec<Value>, String> {
    if row.len() != columns.len() {
        return Err(format!(
            "a row of {} values where the table has {} columns",
            row.len(),
            columns.len()
        ));
    }
    columns.iter().zip(row).map(|(c, v)| decode(c, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(kind: Kind, nullable: bool) -> Column {
        Column {
            name: "c".into(),
            kind,
            nullable,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let t: DateTime<Utc> = "2026-01-02T03:04:05.123456Z".parse().unwrap();
        let cases = [
            (Kind::Text, Value::String(Some("é \"x\"".into()))),
            (Kind::Bool, Value::Bool(Some(true))),
            (Kind::I16, Value::SmallInt(Some(-3))),
            (Kind::I32, Value::Int(Some(i32::MAX))),
            (Kind::I64, Value::BigInt(Some(i64::MIN))),
            (Kind::F64, Value::Double(Some(0.1))),
            (Kind::Uuid, Value::Uuid(Some(uuid::Uuid::now_v7()))),
            (Kind::Timestamp, Value::ChronoDateTimeUtc(Some(t))),
            (
                Kind::Date,
                Value::ChronoDate(NaiveDate::from_ymd_opt(2026, 2, 28)),
            ),
            (
                Kind::Json,
                Value::Json(Some(Box::new(serde_json::json!({"a": [1, null]})))),
            ),
            (Kind::Bytes, Value::Bytes(Some(vec![0, 255, 7]))),
        ];
        for (kind, value) in cases {
            let json = encode(value.clone()).unwrap();
            assert_eq!(decode(&col(kind, false), json).unwrap(), value, "{kind:?}");
        }
        assert_eq!(
            encode(Value::ChronoDateTimeUtc(Some(t))).unwrap(),
            "2026-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            decode(&col(Kind::Uuid, true), Json::Null).unwrap(),
            Value::Uuid(None)
        );
        assert!(decode(&col(Kind::Uuid, false), Json::Null).is_err());
        assert!(decode(&col(Kind::I32, false), Json::from(1u64 << 40)).is_err());
    }
}
