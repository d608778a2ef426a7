//! Formats: the kernel's statistics files (`key value` lines, `io.stat`, the v1
//! `blkio.throttle.io_service*` files) and `max`-or-number values.
//!
//! Stat files grow new keys with new kernels; every parser here is open-ended: known keys
//! are typed, unknown ones are kept as they are, and one bad row never fails the whole file.
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`, "Interface Files" (flat keyed, nested
//!   keyed formats; `io.stat`).
//! - Linux `Documentation/admin-guide/cgroup-v1/blkio-controller.rst`.

use std::collections::BTreeMap;

use crate::devnum::DeviceNumber;
use crate::error::{Result, parse_err};

/// Parse a number where `max` means unlimited (`None`).
///
/// ```
/// use kvmsec_cgroup::stat::parse_max;
/// assert_eq!(parse_max("max")?, None);
/// assert_eq!(parse_max("4096")?, Some(4096));
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
pub fn parse_max(s: &str) -> Result<Option<u64>> {
    if s == "max" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| parse_err("number or max", s, "expected an unsigned number or 'max'"))
}

/// Format an optional limit, `None` as `max`.
pub fn format_max(v: Option<u64>) -> String {
    match v {
        Some(n) => n.to_string(),
        None => "max".to_string(),
    }
}

/// Parse a flat keyed file (`key value` per line, as `memory.stat`, `cpu.stat`,
/// `memory.events`, `cgroup.events`). Lines that are not `word number` are skipped.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if let (Some(k), Some(v), None) = (it.next(), it.next(), it.next())
            && let Ok(n) = v.parse::<u64>()
        {
            out.insert(k.to_string(), n);
        }
    }
    out
}

/// Per-device I/O counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoCounters {
    /// Bytes read.
    pub rbytes: u64,
    /// Bytes written.
    pub wbytes: u64,
    /// Read operations.
    pub rios: u64,
    /// Write operations.
    pub wios: u64,
    /// Bytes discarded.
    pub dbytes: u64,
    /// Discard operations.
    pub dios: u64,
    /// Keys this crate does not type (`cost.vrate`, `cost.usage`, ...), value as written.
    pub extra: BTreeMap<String, String>,
}

/// A row of a stat file that could not be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BadRow {
    /// The row's text (shortened to 200 characters).
    pub text: String,
    /// Why it was not used.
    pub reason: String,
}

/// Per-device I/O statistics of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoStat {
    /// Counters per device.
    pub devices: BTreeMap<DeviceNumber, IoCounters>,
    /// Rows that were skipped: torn lines, `(unknown)` devices, bad numbers.
    pub bad_rows: Vec<BadRow>,
}

impl IoStat {
    /// Sum over all devices.
    pub fn total(&self) -> IoCounters {
        let mut t = IoCounters::default();
        for c in self.devices.values() {
            t.rbytes = t.rbytes.saturating_add(c.rbytes);
            t.wbytes = t.wbytes.saturating_add(c.wbytes);
            t.rios = t.rios.saturating_add(c.rios);
            t.wios = t.wios.saturating_add(c.wios);
            t.dbytes = t.dbytes.saturating_add(c.dbytes);
            t.dios = t.dios.saturating_add(c.dios);
        }
        t
    }
}

struct RowBuilder {
    text: String,
    device: Option<DeviceNumber>,
    counters: IoCounters,
    keys: usize,
    error: Option<String>,
}

impl RowBuilder {
    fn finish(self, out: &mut IoStat) {
        let bad = |reason: String| BadRow {
            text: crate::error::clip(self.text.trim()),
            reason,
        };
        match (self.device, self.error) {
            (_, Some(e)) => out.bad_rows.push(bad(e)),
            (None, None) => out.bad_rows.push(bad("device is (unknown)".to_string())),
            (Some(_), None) if self.keys == 0 => out
                .bad_rows
                .push(bad("torn row: device without counters".to_string())),
            (Some(d), None) => {
                out.devices.insert(d, self.counters);
            }
        }
    }
}

/// Parse v2 `io.stat` (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N ...`).
///
/// Never fails: torn rows (a device and nothing else), rows whose device is `(unknown)` and
/// rows with a bad number are listed in [`IoStat::bad_rows`]; unknown keys go to
/// [`IoCounters::extra`]; several devices on one line are split at each `MAJ:MIN`.
///
/// ```
/// use kvmsec_cgroup::stat::parse_io_stat;
/// let s = parse_io_stat("8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n252:0 \n");
/// assert_eq!(s.devices[&"8:0".parse()?].rbytes, 4096);
/// assert_eq!(s.bad_rows.len(), 1);
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
pub fn parse_io_stat(text: &str) -> IoStat {
    let mut out = IoStat::default();
    for line in text.lines() {
        let mut cur: Option<RowBuilder> = None;
        for tok in line.split_whitespace() {
            let starts_row = tok == "(unknown)" || tok.parse::<DeviceNumber>().is_ok();
            if starts_row {
                if let Some(r) = cur.take() {
                    r.finish(&mut out);
                }
                cur = Some(RowBuilder {
                    text: tok.to_string(),
                    device: tok.parse().ok(),
                    counters: IoCounters::default(),
                    keys: 0,
                    error: None,
                });
                continue;
            }
            let Some(row) = cur.as_mut() else {
                out.bad_rows.push(BadRow {
                    text: crate::error::clip(line.trim()),
                    reason: format!("{tok:?} before any device"),
                });
                break;
            };
            row.text.push(' ');
            row.text.push_str(tok);
            let Some((k, v)) = tok.split_once('=') else {
                row.error
                    .get_or_insert_with(|| format!("{tok:?} is not key=value"));
                continue;
            };
            row.keys += 1;
            let slot = match k {
                "rbytes" => &mut row.counters.rbytes,
                "wbytes" => &mut row.counters.wbytes,
                "rios" => &mut row.counters.rios,
                "wios" => &mut row.counters.wios,
                "dbytes" => &mut row.counters.dbytes,
                "dios" => &mut row.counters.dios,
                _ => {
                    row.counters.extra.insert(k.to_string(), v.to_string());
                    continue;
                }
            };
            match v.parse::<u64>() {
                Ok(n) => *slot = n,
                Err(_) => {
                    row.error
                        .get_or_insert_with(|| format!("{k}={v:?} is not a number"));
                }
            }
        }
        if let Some(r) = cur.take() {
            r.finish(&mut out);
        }
    }
    out
}

/// Parse the v1 `blkio.throttle.io_service_bytes` and `blkio.throttle.io_serviced` files
/// (`MAJ:MIN Read N` ... `Total N`) into per-device counters. Never fails; unusable lines
/// are listed in [`IoStat::bad_rows`].
pub fn parse_blkio_throttle(service_bytes: &str, serviced: &str) -> IoStat {
    let mut out = IoStat::default();
    for (text, bytes) in [(service_bytes, true), (serviced, false)] {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [] => {}
                ["Total", _] => {}
                [dev, op, n] => {
                    let (Ok(d), Ok(n)) = (dev.parse::<DeviceNumber>(), n.parse::<u64>()) else {
                        out.bad_rows.push(BadRow {
                            text: crate::error::clip(line),
                            reason: "expected MAJ:MIN OP NUMBER".to_string(),
                        });
                        continue;
                    };
                    let c = out.devices.entry(d).or_default();
                    match (*op, bytes) {
                        ("Read", true) => c.rbytes = n,
                        ("Write", true) => c.wbytes = n,
                        ("Discard", true) => c.dbytes = n,
                        ("Read", false) => c.rios = n,
                        ("Write", false) => c.wios = n,
                        ("Discard", false) => c.dios = n,
                        (other, _) => {
                            let key = if bytes {
                                format!("{other}.bytes")
                            } else {
                                format!("{other}.ios")
                            };
                            c.extra.insert(key, n.to_string());
                        }
                    }
                }
                _ => out.bad_rows.push(BadRow {
                    text: crate::error::clip(line),
                    reason: "expected MAJ:MIN OP NUMBER or Total NUMBER".to_string(),
                }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9 case 11: torn line, `(unknown)` device, unknown keys.
    #[test]
    fn case11_io_stat_torn_unknown_and_new_keys() {
        let text = "8:0 rbytes=1048576 wbytes=2097152 rios=16 wios=32 dbytes=0 dios=0\n\
                    252:0 \n\
                    (unknown) rbytes=5 wbytes=6 rios=1 wios=1 dbytes=0 dios=0\n\
                    8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=4096 dios=1 cost.vrate=100.00 cost.usage=12 cost.wait=0 cost.indebt=0 cost.indelay=0\n\
                    7:3 rbytes=x wbytes=1 rios=1 wios=1\n";
        let s = parse_io_stat(text);
        assert_eq!(s.devices.len(), 2);
        let d0 = &s.devices[&DeviceNumber::new(8, 0)];
        assert_eq!(
            (d0.rbytes, d0.wbytes, d0.rios, d0.wios),
            (1048576, 2097152, 16, 32)
        );
        let d16 = &s.devices[&DeviceNumber::new(8, 16)];
        assert_eq!(
            (d16.rbytes, d16.wbytes, d16.dbytes, d16.dios),
            (10, 20, 4096, 1)
        );
        assert_eq!(d16.extra["cost.vrate"], "100.00");
        assert_eq!(d16.extra.len(), 5);
        assert_eq!(s.bad_rows.len(), 3);
        assert_eq!(s.bad_rows[0].text, "252:0");
        assert!(s.bad_rows[0].reason.contains("torn"));
        assert!(s.bad_rows[1].text.starts_with("(unknown)"));
        assert!(s.bad_rows[1].reason.contains("unknown"));
        assert!(s.bad_rows[2].text.starts_with("7:3"));
        assert!(s.bad_rows[2].reason.contains("rbytes"));
        assert_eq!(s.total().wbytes, 2097172);
    }

    #[test]
    fn io_stat_two_devices_on_one_line_and_junk() {
        let s = parse_io_stat("8:0 rbytes=1 8:16 wbytes=2\njunk rbytes=1\n\n");
        assert_eq!(s.devices[&DeviceNumber::new(8, 0)].rbytes, 1);
        assert_eq!(s.devices[&DeviceNumber::new(8, 16)].wbytes, 2);
        assert_eq!(s.bad_rows.len(), 1);
    }

    #[test]
    fn blkio_throttle_files() {
        let s = parse_blkio_throttle(
            "7:3 Read 0\n7:3 Write 52428800\n7:3 Sync 52428800\n7:3 Async 0\n7:3 Discard 0\n7:3 Total 52428800\nTotal 52428800\n",
            "7:3 Read 0\n7:3 Write 200\n7:3 Total 200\nTotal 200\nbroken\n",
        );
        let c = &s.devices[&DeviceNumber::new(7, 3)];
        assert_eq!((c.wbytes, c.wios, c.rbytes), (52428800, 200, 0));
        assert_eq!(c.extra["Total.bytes"], "52428800");
        assert_eq!(s.bad_rows.len(), 1);
        assert!(
            parse_blkio_throttle("Total 0\n", "Total 0\n")
                .devices
                .is_empty()
        );
    }

    #[test]
    fn flat_keyed_tolerates_odd_lines() {
        let m = parse_flat_keyed("usage_usec 10\nsome avg10=1 x\nnr 3\n\nbad x\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["nr"], 3);
    }

    proptest::proptest! {
        #[test]
        fn io_stat_never_panics(s in "\\PC*") {
            let st = parse_io_stat(&s);
            let _ = st.total();
            let _ = parse_blkio_throttle(&s, &s);
            let _ = parse_flat_keyed(&s);
            let _ = parse_max(&s);
        }

        #[test]
        fn io_stat_round_trip(rows in proptest::collection::btree_map(
            (0u32..300, 0u32..300), (0u64..u64::MAX, 0u64..1000, 0u64..1000), 0..6)) {
            let mut text = String::new();
            for ((ma, mi), (b, r, w)) in &rows {
                text.push_str(&format!("{ma}:{mi} rbytes={b} wbytes={b} rios={r} wios={w} dbytes=0 dios=0\n"));
            }
            let s = parse_io_stat(&text);
            proptest::prop_assert!(s.bad_rows.is_empty());
            proptest::prop_assert_eq!(s.devices.len(), rows.len());
            for ((ma, mi), (b, r, w)) in &rows {
                let c = &s.devices[&DeviceNumber::new(*ma, *mi)];
                proptest::prop_assert_eq!((c.rbytes, c.rios, c.wios), (*b, *r, *w));
            }
        }
    }
}
