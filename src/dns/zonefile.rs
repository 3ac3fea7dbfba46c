//! Static records: every `*.zone` file in the zones directory, an RFC 1035
//! master file whose origin is its file name (`disco.internal.zone` holds
//! `disco.internal.`), unless it sets `$ORIGIN` itself.

use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use hickory_proto::serialize::txt::Parser;

/// A zone file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneFileError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A file does not parse.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The first line at which the file stops parsing.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A record parses, but what it would be on the wire does not read
    /// back as itself: a resolver could not read any answer holding it.
    #[error("{path}: the record {record} cannot be sent as written: {message}")]
    Unencodable {
        /// The file.
        path: PathBuf,
        /// The record, as hickory writes it.
        record: String,
        /// What went wrong.
        message: String,
    },
    /// The file's name is not a domain name.
    #[error(
        "{path}: the file name must be the zone's origin followed by .zone (e.g. disco.internal.zone)"
    )]
    Origin {
        /// The file.
        path: PathBuf,
    },
}

/// The records of one zone file.
#[derive(Debug)]
pub struct ZoneFile {
    /// The zone's origin.
    pub origin: Name,
    /// Every record in it.
    pub records: Vec<Record>,
}

/// Loads every `*.zone` file in `dir`, in name order. A missing directory is
/// an empty set of zones only when `required` is false.
pub fn load_dir(dir: &Path, required: bool) -> Result<Vec<ZoneFile>, ZoneFileError> {
    let read_err = |source| ZoneFileError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Vec::new());
        }
        Err(err) => return Err(read_err(err)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|ext| ext == "zone") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|path| load_file(path)).collect()
}

/// Loads one zone file.
pub fn load_file(path: &Path) -> Result<ZoneFile, ZoneFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ZoneFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Reads `text` as the zone file at `path`, whose name gives the origin
/// (the file is not read).
pub fn parse(path: &Path, text: &str) -> Result<ZoneFile, ZoneFileError> {
    let origin = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| Name::from_ascii(stem).ok())
        .map(|mut name| {
            name.set_fqdn(true);
            name
        })
        .ok_or_else(|| ZoneFileError::Origin {
            path: path.to_owned(),
        })?;
    let parse = |text: &str| Parser::new(text, Some(path.to_owned()), Some(origin.clone())).parse();
    match parse(text) {
        Ok((origin, records)) => {
            let records: Vec<Record> = (records.into_values())
                .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
                .collect();
            for record in &records {
                check_framing(record).map_err(|message| ZoneFileError::Unencodable {
                    path: path.to_owned(),
                    record: record.to_string(),
                    message,
                })?;
            }
            Ok(ZoneFile { origin, records })
        }
        Err(err) => {
            let message = err.to_string();
            Err(ZoneFileError::Parse {
                path: path.to_owned(),
                line: failing_line(text, &message, parse),
                message,
            })
        }
    }
}

/// Whether `record` goes on the wire and reads back as the same bytes.
/// hickory's text parser accepts some records its wire reader refuses, so
/// that every answer holding one would be unreadable: a CAA tag longer
/// than RFC 8659's 15 bytes, for one (found by fuzzing,
/// fuzz/seeds/zonefile/crash-caa-tag-longer-than-15).
fn check_framing(record: &Record) -> Result<(), String> {
    let wire = record.to_bytes().map_err(|err| err.to_string())?;
    let read = Record::from_bytes(&wire).map_err(|err| err.to_string())?;
    let again = read.to_bytes().map_err(|err| err.to_string())?;
    if again != wire {
        return Err("it reads back as a different record".into());
    }
    Ok(())
}

/// hickory's parser does not say where it failed. The first line at which a
/// prefix of the file fails with the same message is the line to fix.
fn failing_line<T, E: ToString>(
    text: &str,
    message: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> usize {
    let line_ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(at, _)| at + 1)
        .chain((!text.ends_with('\n')).then_some(text.len()))
        .collect();
    line_ends
        .iter()
        .position(|&end| parse(&text[..end]).is_err_and(|err| err.to_string() == message))
        .map_or(line_ends.len(), |index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_origin_comes_from_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "example.internal.zone",
            "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nwww IN A 192.0.2.1\n",
        );
        let zones = load_dir(dir.path(), true).unwrap();
        assert_eq!(zones[0].origin.to_ascii(), "example.internal.");
        assert_eq!(zones[0].records.len(), 2);
    }

    #[test]
    fn a_parse_error_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bad.internal.zone",
            "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nok IN A 192.0.2.1\nbroken IN A not-an-address\nlater IN A 192.0.2.2\n",
        );
        let err = load_file(&path).unwrap_err();
        let ZoneFileError::Parse { line, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*line, 4, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}:4: ", path.display()))
        );
    }

    #[test]
    fn a_record_that_does_not_read_back_from_the_wire_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "caa.internal.zone",
            "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\n\
             @ IN CAA 0 issue \"ca.example\"\n@ IN CAA 0 abcdefghijklmnopq \"x\"\n",
        );
        let err = load_file(&path).unwrap_err();
        assert!(
            matches!(&err, ZoneFileError::Unencodable { record, .. } if record.contains("abcdefghijklmnopq")),
            "{err}"
        );
        assert!(
            err.to_string().contains("cannot be sent as written"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_directory_is_empty_unless_required() {
        let missing = Path::new("/nonexistent/disco/zones");
        assert!(load_dir(missing, false).unwrap().is_empty());
        assert!(load_dir(missing, true).is_err());
    }
}
