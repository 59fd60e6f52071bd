//! The state file of `run --storage.path`: every SLO's bucket histories
//! and the alert state, so that a restart reads only the gap from
//! Prometheus and a firing alert keeps its `startsAt`.
//!
//! Format (version 1), little-endian:
//!
//! ```text
//! magic "ERRBSTAT" | version u32 | payload length u64 | crc32 of payload u32 | payload
//! ```
//!
//! The payload is varints (signed ones zigzag-encoded), strings as length
//! and UTF-8, and each history's packed buckets as `history` keeps them.
//! Encoding and decoding are pure; [`write_atomic`] and [`load`] are the
//! I/O. A file that is not exactly what [`encode`] wrote (other magic or
//! version, cut short, a flipped bit) is refused as a whole with the
//! reason: state is a cache of what Prometheus holds, never trusted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::alert::decide::{Phase, Tracked};
use crate::history::{History, Parts};
use crate::readfile::{self, Kind, ReadError};
use crate::state::LabelSet;

pub const FILE_NAME: &str = "errbudget.state";
const TEMP_NAME: &str = ".errbudget.state.tmp";
const MAGIC: &[u8; 8] = b"ERRBSTAT";
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// A month of 5-minute buckets is about 35 KB per instance: this holds
/// several thousand instances and refuses a file that is something else.
pub const STATE: Kind = Kind {
    what: "state files",
    max_bytes: 512 << 20,
};

/// Identifies an SLO definition; a changed definition gets a new key, so
/// its old history is not reused.
pub type DefinitionKey = [u8; 16];

/// A digest of an SLO's definition, all but where it was written (moving an SLO
/// within its file keeps its history), to
/// key stored state: a changed definition does not resume an old history.
/// `Debug` spells every field; a build that spells them otherwise only
/// costs one cold start.
pub fn definition_key(slo: &crate::model::Slo) -> DefinitionKey {
    let mut s = slo.clone();
    s.origin = Default::default();
    // Buckets hold every event; maintenance windows are left out when they
    // are read, so editing one keeps the history.
    s.exclusions = Vec::new();
    let d = ring::digest::digest(&ring::digest::SHA256, format!("{s:?}").as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&d.as_ref()[..16]);
    key
}

/// One SLO's stored evaluation state, borrowed for encoding.
pub struct SloState<'a> {
    pub key: DefinitionKey,
    pub start: i64,
    pub last_end: i64,
    pub histories: &'a BTreeMap<LabelSet, History>,
}

/// One SLO's evaluation state as read back.
#[derive(Debug, PartialEq)]
pub struct StoredSlo {
    pub key: DefinitionKey,
    pub start: i64,
    pub last_end: i64,
    pub histories: BTreeMap<LabelSet, History>,
}

/// Everything a state file holds.
#[derive(Debug, PartialEq)]
pub struct Stored {
    pub saved_at: i64,
    pub slos: Vec<StoredSlo>,
    pub alerts: Vec<(LabelSet, Tracked)>,
}

/// Why a state file was not used. Messages name no content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read: {0}")]
    Read(ReadError),
    #[error("empty file")]
    Empty,
    #[error("not an errbudget state file")]
    Magic,
    #[error("format version {0}, this build reads version {VERSION}")]
    Version(u32),
    #[error("truncated: {have} bytes of {want}")]
    Truncated { have: usize, want: usize },
    #[error("checksum mismatch")]
    Checksum,
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// The state file in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Encodes a state file.
pub fn encode<'a>(
    saved_at: i64,
    width: u64,
    slos: &[SloState<'a>],
    alerts: impl IntoIterator<Item = (&'a LabelSet, &'a Tracked)>,
) -> Vec<u8> {
    let mut p = Vec::new();
    put_i64(&mut p, saved_at);
    put_u64(&mut p, width);
    put_u64(&mut p, slos.len() as u64);
    for s in slos {
        p.extend_from_slice(&s.key);
        put_i64(&mut p, s.start);
        put_i64(&mut p, s.last_end);
        let histories: Vec<(&LabelSet, Parts<'_>)> = s
            .histories
            .iter()
            .filter_map(|(l, h)| Some((l, h.parts()?)))
            .collect();
        put_u64(&mut p, histories.len() as u64);
        for (labels, parts) in histories {
            put_labels(&mut p, labels);
            put_i64(&mut p, parts.last_end);
            match parts.first_data {
                None => p.push(0),
                Some(f) => {
                    p.push(1);
                    put_i64(&mut p, f);
                }
            }
            put_u64(&mut p, parts.len as u64);
            put_bytes(&mut p, parts.packed);
        }
    }
    let alerts: Vec<_> = alerts.into_iter().collect();
    put_u64(&mut p, alerts.len() as u64);
    for (labels, t) in alerts {
        put_labels(&mut p, labels);
        match t.phase {
            Phase::Pending { since } => {
                p.push(0);
                put_i64(&mut p, since);
            }
            Phase::Firing { since, last_sent } => {
                p.push(1);
                put_i64(&mut p, since);
                put_i64(&mut p, last_sent);
            }
        }
        put_labels(&mut p, &t.annotations);
        put_bytes(&mut p, t.generator_url.as_bytes());
        p.extend_from_slice(&t.peak_burn_rate.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER_LEN + p.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(p.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
    out.extend_from_slice(&p);
    out
}

/// Decodes a state file written by [`encode`] with buckets `width`
/// seconds wide.
pub fn decode(bytes: &[u8], width: u64) -> Result<Stored, StoreError> {
    if bytes.is_empty() {
        return Err(StoreError::Empty);
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(StoreError::Magic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(StoreError::Truncated {
            have: bytes.len(),
            want: HEADER_LEN,
        });
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = word(8);
    if version != VERSION {
        return Err(StoreError::Version(version));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let want = u64::from_le_bytes(len);
    let payload = &bytes[HEADER_LEN..];
    if (payload.len() as u64) != want {
        let want = usize::try_from(want)
            .unwrap_or(usize::MAX)
            .saturating_add(HEADER_LEN);
        return Err(StoreError::Truncated {
            have: bytes.len(),
            want,
        });
    }
    if crc32fast::hash(payload) != word(20) {
        return Err(StoreError::Checksum);
    }
    decode_payload(payload, width).map_err(StoreError::Corrupt)
}

fn decode_payload(payload: &[u8], width: u64) -> Result<Stored, String> {
    let mut r = Reader { b: payload, at: 0 };
    let saved_at = r.i64()?;
    let stored_width = r.u64()?;
    if stored_width != width {
        return Err(format!(
            "buckets of {stored_width}s, this build keeps {width}s"
        ));
    }
    let n = r.count()?;
    let mut slos = Vec::with_capacity(n);
    for _ in 0..n {
        let key: DefinitionKey = r
            .take(16)?
            .try_into()
            .map_err(|_| "short definition key".to_string())?;
        let start = r.i64()?;
        let last_end = r.i64()?;
        let mut histories = BTreeMap::new();
        for _ in 0..r.count()? {
            let labels = r.labels()?;
            let h_last_end = r.i64()?;
            let first_data = match r.u8()? {
                0 => None,
                1 => Some(r.i64()?),
                other => return Err(format!("bad first-data flag {other}")),
            };
            let len = r.count_of(usize::MAX)?;
            let packed = r.bytes()?;
            let parts = Parts {
                width,
                last_end: h_last_end,
                first_data,
                len,
                packed,
            };
            let h = History::from_parts(parts, width).map_err(|e| e.to_string())?;
            if histories.insert(labels, h).is_some() {
                return Err("a label set stored twice".into());
            }
        }
        slos.push(StoredSlo {
            key,
            start,
            last_end,
            histories,
        });
    }
    let mut alerts = Vec::new();
    for _ in 0..r.count()? {
        let labels = r.labels()?;
        let phase = match r.u8()? {
            0 => Phase::Pending { since: r.i64()? },
            1 => Phase::Firing {
                since: r.i64()?,
                last_sent: r.i64()?,
            },
            other => return Err(format!("bad alert phase {other}")),
        };
        let annotations = r.labels()?;
        let generator_url = r.string()?;
        let peak_burn_rate = r.f64()?;
        alerts.push((
            labels,
            Tracked {
                phase,
                annotations,
                generator_url,
                peak_burn_rate,
            },
        ));
    }
    if r.at != payload.len() {
        return Err(format!("{} bytes after the end", payload.len() - r.at));
    }
    Ok(Stored {
        saved_at,
        slos,
        alerts,
    })
}

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_labels(out: &mut Vec<u8>, labels: &LabelSet) {
    put_u64(out, labels.len() as u64);
    for (k, v) in labels {
        put_bytes(out, k.as_bytes());
        put_bytes(out, v.as_bytes());
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("ends inside a field at byte {}", self.at))?;
        let out = &self.b[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or("varint too long")?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint too long at byte {}", self.at))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn f64(&mut self) -> Result<f64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(b))
    }

    /// A count of items each taking at least a byte: never more than the
    /// bytes left, so a corrupt count cannot allocate without bound.
    fn count(&mut self) -> Result<usize, String> {
        self.count_of(self.b.len() - self.at)
    }

    fn count_of(&mut self, max: usize) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("count {n} larger than the file"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.count()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, String> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| "a string is not UTF-8".to_string())
    }

    fn labels(&mut self) -> Result<LabelSet, String> {
        let mut out = LabelSet::new();
        for _ in 0..self.count()? {
            let k = self.string()?;
            let v = self.string()?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// Reads and decodes the state file in `dir`; `Ok(None)` when there is
/// none yet.
pub fn load(dir: &Path, width: u64) -> Result<Option<Stored>, StoreError> {
    match readfile::read_bytes(&path_in(dir), STATE) {
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Read(e)),
        Ok(bytes) => decode(&bytes, width).map(Some),
    }
}

/// Replaces the state file in `dir` with `bytes` so that a crash at any
/// point leaves the old file or the new one, never a mix: a temporary file
/// beside it, flushed to disk, renamed over it, the directory flushed.
pub fn write_atomic(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_file(dir, FILE_NAME, TEMP_NAME, bytes)
}

fn replace_file(dir: &Path, name: &str, temp: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(temp);
    let result = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&temp, dir.join(name))?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The records file beside the state file: deploys and overrides, JSON
/// (people read it when a gate surprises them), written like the state
/// file. Unlike the state file it is not a cache: what the API was told
/// exists nowhere else.
pub const RECORDS_FILE: &str = "errbudget.records.json";
const RECORDS_TEMP: &str = ".errbudget.records.json.tmp";

/// Deploys of a few hundred services over 100 days stay far below this.
pub const RECORDS: Kind = Kind {
    what: "records files",
    max_bytes: 64 << 20,
};

pub fn records_path_in(dir: &Path) -> PathBuf {
    dir.join(RECORDS_FILE)
}

pub fn write_records(dir: &Path, book: &crate::records::Book) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(&book.to_json())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    bytes.push(b'\n');
    replace_file(dir, RECORDS_FILE, RECORDS_TEMP, &bytes)
}

/// The records file of a state directory, written by the evaluation loop
/// and by the API handlers: one writer at a time, since they share the
/// temporary file.
pub struct RecordsFile {
    dir: PathBuf,
    lock: std::sync::Mutex<()>,
}

impl RecordsFile {
    pub fn new(dir: PathBuf) -> Self {
        RecordsFile {
            dir,
            lock: std::sync::Mutex::new(()),
        }
    }

    pub fn path(&self) -> PathBuf {
        records_path_in(&self.dir)
    }

    /// Writes the book as it is now (blocking: call off the async workers).
    pub fn save(&self, records: &crate::records::Records) -> std::io::Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let book = records.read(Clone::clone);
        write_records(&self.dir, &book)
    }
}

/// The records file in `dir`; `Ok(None)` when there is none yet, `Err`
/// with the reason when it cannot be read.
pub fn load_records(dir: &Path) -> Result<Option<crate::records::Book>, String> {
    let text = match readfile::read_text(&records_path_in(dir), RECORDS) {
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(t) => t,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    crate::records::Book::from_json(&value).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Events;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn history(values: &[Events]) -> History {
        let mut h = History::new(300);
        h.start_at(3_000);
        let mut i = 0;
        h.extend_to(3_000 + 300 * values.len() as i64, |_| {
            i += 1;
            values[i - 1]
        });
        h.mark_data(3_600);
        h
    }

    fn sample() -> Vec<u8> {
        let mut hs = BTreeMap::new();
        hs.insert(
            labels(&[("route", "/a")]),
            history(&[Events::new(1.0, 10.0), Events::new(0.25, 7.5)]),
        );
        hs.insert(LabelSet::new(), history(&[Events::new(0.0, 3.0)]));
        let empty = BTreeMap::new();
        let slos = [
            SloState {
                key: [7; 16],
                start: 3_000,
                last_end: 3_600,
                histories: &hs,
            },
            SloState {
                key: [9; 16],
                start: 0,
                last_end: 300,
                histories: &empty,
            },
        ];
        let alert = (
            labels(&[("alertname", "ErrorBudgetBurn"), ("severity", "page")]),
            Tracked {
                phase: Phase::Firing {
                    since: -5,
                    last_sent: 3_590,
                },
                annotations: labels(&[("summary", "burning ∞")]),
                generator_url: "http://e/slo/a".into(),
                peak_burn_rate: 14.5,
            },
        );
        let pending = (
            labels(&[("alertname", "ErrorBudgetBurn"), ("severity", "ticket")]),
            Tracked {
                phase: Phase::Pending { since: 3_500 },
                annotations: LabelSet::new(),
                generator_url: String::new(),
                peak_burn_rate: 3.5,
            },
        );
        encode(
            3_650,
            300,
            &slos,
            [(&alert.0, &alert.1), (&pending.0, &pending.1)],
        )
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let s = decode(&bytes, 300).unwrap();
        assert_eq!(s.saved_at, 3_650);
        assert_eq!(s.slos.len(), 2);
        let a = &s.slos[0];
        assert_eq!((a.key, a.start, a.last_end), ([7; 16], 3_000, 3_600));
        let h = &a.histories[&labels(&[("route", "/a")])];
        assert_eq!(h.events_between(0, 10_000), Events::new(1.25, 17.5));
        assert_eq!((h.last_end(), h.data_since()), (Some(3_600), Some(3_300)));
        assert_eq!(
            a.histories[&LabelSet::new()].events_between(0, 10_000),
            Events::new(0.0, 3.0)
        );
        assert!(s.slos[1].histories.is_empty());
        assert_eq!(s.alerts.len(), 2);
        assert_eq!(
            s.alerts[0].1.phase,
            Phase::Firing {
                since: -5,
                last_sent: 3_590
            }
        );
        assert_eq!(s.alerts[0].1.annotations["summary"], "burning ∞");
        assert_eq!(s.alerts[0].1.peak_burn_rate, 14.5);
        assert_eq!(s.alerts[1].1.phase, Phase::Pending { since: 3_500 });
        // Encoding what was decoded gives the same bytes.
        let again: Vec<SloState<'_>> = s
            .slos
            .iter()
            .map(|x| SloState {
                key: x.key,
                start: x.start,
                last_end: x.last_end,
                histories: &x.histories,
            })
            .collect();
        let alerts = s.alerts.iter().map(|(l, t)| (l, t));
        assert_eq!(encode(3_650, 300, &again, alerts), bytes);
    }

    fn reason(bytes: &[u8]) -> String {
        decode(bytes, 300).unwrap_err().to_string()
    }

    #[test]
    fn damaged_files_are_refused_with_the_reason() {
        let good = sample();
        assert_eq!(reason(&[]), "empty file");
        assert_eq!(reason(b"ERRB"), "not an errbudget state file");
        assert_eq!(
            reason(b"# HELP slo_error_ratio\n"),
            "not an errbudget state file"
        );
        let mut v2 = good.clone();
        v2[8] = 2;
        assert_eq!(reason(&v2), "format version 2, this build reads version 1");
        let n = good.len();
        assert_eq!(
            reason(&good[..n - 3]),
            format!("truncated: {} bytes of {n}", n - 3)
        );
        assert_eq!(reason(&good[..10]), "truncated: 10 bytes of 24");
        // Any flipped bit in the payload fails the checksum.
        for i in HEADER_LEN..n {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert_eq!(reason(&bad), "checksum mismatch", "byte {i}");
        }
        let mut bad_crc = good.clone();
        bad_crc[20] ^= 1;
        assert_eq!(reason(&bad_crc), "checksum mismatch");
        assert_eq!(
            decode(&good, 60).unwrap_err().to_string(),
            "corrupt: buckets of 300s, this build keeps 60s"
        );
    }

    /// A payload that passes the checksum but is not what `encode` writes
    /// (a bug, another build) is still refused.
    #[test]
    fn a_well_framed_but_malformed_payload_is_corrupt() {
        let frame = |payload: &[u8]| {
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&VERSION.to_le_bytes());
            out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            out.extend_from_slice(payload);
            out
        };
        // saved_at 0, width 300, a billion SLOs.
        let mut p = vec![0];
        put_u64(&mut p, 300);
        put_u64(&mut p, 1 << 30);
        assert_eq!(
            reason(&frame(&p)),
            format!("corrupt: count {} larger than the file", 1u64 << 30)
        );
        let mut p = vec![0];
        put_u64(&mut p, 300);
        p.extend_from_slice(&[0, 0, 0xff]);
        assert_eq!(reason(&frame(&p)), "corrupt: 1 bytes after the end");
    }

    #[test]
    fn files_are_replaced_whole_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), 300).unwrap().is_none());
        write_atomic(dir.path(), &sample()).unwrap();
        write_atomic(dir.path(), &sample()).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
        assert_eq!(load(dir.path(), 300).unwrap().unwrap().saved_at, 3_650);
        std::fs::write(path_in(dir.path()), b"").unwrap();
        assert_eq!(load(dir.path(), 300).unwrap_err().to_string(), "empty file");
        let gone = dir.path().join("nope");
        assert!(write_atomic(&gone, b"x").is_err());
    }
}
