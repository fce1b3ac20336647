//! Reading an uploaded CSV file with the `csv` crate: a UTF-8 byte-order mark is skipped, the
//! separator (`,`, `;` or a tab) is detected from the header line, fields may be quoted and hold
//! separators, quotes and line breaks. Records whose every field is empty are not rows. Rows are
//! numbered from 1 (the header line is not one) and carry the file line they start on.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::{Error, FieldError, Result};

/// The separators recognised, in order of preference on a tie.
const SEPARATORS: [u8; 3] = [b',', b';', b'\t'];

/// One data row: its number (1-based), the line it starts on, its fields.
#[derive(Debug, Clone)]
pub struct Row {
    pub number: i64,
    pub line: i64,
    pub fields: Vec<String>,
}

/// What the header line says about a file.
#[derive(Debug, Clone)]
pub struct Layout {
    pub delimiter: u8,
    pub headers: Vec<String>,
}

fn file_error(message: impl Into<String>) -> Error {
    Error::Validation(vec![FieldError::new("file", message)])
}

fn open_skipping_bom(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path)
        .map_err(|e| Error::Internal(format!("opening an import file failed: {e}")))?;
    let mut r = BufReader::with_capacity(64 * 1024, file);
    let head = r
        .fill_buf()
        .map_err(|e| Error::Internal(format!("reading an import file failed: {e}")))?;
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        r.consume(3);
    }
    Ok(r)
}

/// The separator of a header line: the candidate that occurs most often outside quotes.
pub fn detect_delimiter(header: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in header {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = SEPARATORS.iter().position(|s| *s == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let mut best = 0;
    for i in 1..SEPARATORS.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    SEPARATORS[best]
}

/// A reader over the file's data rows (after the header line).
pub struct Rows {
    reader: csv::Reader<BufReader<File>>,
    next_number: i64,
    record: csv::StringRecord,
}

impl Rows {
    /// Opens `path` with `delimiter`; the header line is read and returned.
    pub fn open(path: &Path, delimiter: u8) -> Result<(Vec<String>, Rows)> {
        let r = open_skipping_bom(path)?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(r);
        let headers = reader
            .headers()
            .map_err(|e| csv_error(&e))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        Ok((
            headers,
            Rows {
                reader,
                next_number: 1,
                record: csv::StringRecord::new(),
            },
        ))
    }

    /// The next data row, or `None` at the end. A record that is not UTF-8 or not CSV is a
    /// `file` error naming its line.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row>> {
        loop {
            let more = self
                .reader
                .read_record(&mut self.record)
                .map_err(|e| csv_error(&e))?;
            if !more {
                return Ok(None);
            }
            if self.record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let line = self
                .record
                .position()
                .map_or(0, |p| i64::try_from(p.line()).unwrap_or(i64::MAX));
            let row = Row {
                number: self.next_number,
                line,
                fields: self.record.iter().map(str::to_owned).collect(),
            };
            self.next_number += 1;
            return Ok(Some(row));
        }
    }

    /// Skips `n` data rows (a resumed import's committed ones).
    pub fn skip(&mut self, n: i64) -> Result<()> {
        for _ in 0..n {
            if self.next()?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

fn csv_error(e: &csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    let what = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text (save the file as CSV UTF-8)".to_owned(),
        csv::ErrorKind::Io(err) => {
            return Error::Internal(format!("reading an import file failed: {err}"));
        }
        _ => format!("cannot be read as CSV ({e})"),
    };
    match line {
        Some(l) => file_error(format!("line {l} {what}")),
        None => file_error(format!("the file {what}")),
    }
}

/// Reads the whole file once: its separator and headers (each named once, at least one), and
/// how many data rows it has. Every problem is a `file` error.
pub fn inspect(path: &Path) -> Result<(Layout, i64)> {
    let mut head = Vec::with_capacity(64 * 1024);
    open_skipping_bom(path)?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| Error::Internal(format!("reading an import file failed: {e}")))?;
    if head.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(file_error("the file is empty: it needs a header line"));
    }
    let delimiter = detect_delimiter(&head);
    let (headers, mut rows) = Rows::open(path, delimiter)?;
    if headers.iter().all(String::is_empty) {
        return Err(file_error("the header line names no columns"));
    }
    for (i, h) in headers.iter().enumerate() {
        if !h.is_empty() && headers[..i].contains(h) {
            return Err(file_error(format!(
                "the header line names the column {h:?} twice"
            )));
        }
    }
    let mut total = 0;
    while rows.next()?.is_some() {
        total += 1;
    }
    Ok((Layout { delimiter, headers }, total))
}

/// The separator as stored (`,`, `;`, `\t`).
pub fn delimiter_name(d: u8) -> String {
    (d as char).to_string()
}

/// The separator stored as [`delimiter_name`].
pub fn delimiter_byte(s: &str) -> u8 {
    s.bytes().next().unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_detected_outside_quotes() {
        assert_eq!(detect_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(detect_delimiter(b"\"a,b\";c;d\n"), b';');
        assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(b"email"), b',');
    }

    #[test]
    fn awkward_files_read_as_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(
            &path,
            "\u{feff}Email;Notes\na@x.io;\"line one\nline two; \"\"quoted\"\"\"\n;\nb@x.io;plain\n",
        )
        .unwrap();
        let (layout, total) = inspect(&path).unwrap();
        assert_eq!(layout.delimiter, b';');
        assert_eq!(layout.headers, ["Email", "Notes"]);
        assert_eq!(total, 2);
        let (_, mut rows) = Rows::open(&path, b';').unwrap();
        let r = rows.next().unwrap().unwrap();
        assert_eq!(r.fields[1], "line one\nline two; \"quoted\"");
        assert_eq!((r.number, r.line), (1, 2));
        let r = rows.next().unwrap().unwrap();
        assert_eq!((r.number, r.line), (2, 5));
        assert!(rows.next().unwrap().is_none());
    }
}
