//! Security contexts (`user:role:type[:range]`), MLS levels, ranges and category sets.
//!
//! This is the formats layer: pure parsing, formatting and comparison, no I/O.
//!
//! # References
//! - Linux `security/selinux/ss/mls.c` (`mls_context_to_sid`, `mls_sid_to_context`): the
//!   grammar and the canonical form the kernel writes.
//! - SELinux Notebook, "Security Context" and "MLS / MCS" chapters.

use std::fmt;
use std::str::FromStr;

use crate::error::{ContextPart, ContextProblem, Error, Result, clip};

/// The highest category number a [`CategorySet`] holds (`c1023`, as in the reference
/// policies and libvirt's default range).
pub const MAX_CATEGORY: u16 = 1023;

/// The longest context this crate parses, in bytes (one page, the kernel's limit for
/// `/proc/<pid>/attr/*` and selinuxfs writes).
pub const MAX_CONTEXT_LEN: usize = 4096;

const WORDS: usize = (MAX_CATEGORY as usize + 1) / 64;

/// A set of MCS categories `c0..c1023`, stored as a bitset.
///
/// Displays in the kernel's canonical form: ascending, a run of two as `cA,cB`, a run of
/// three or more as `cA.cB` (`c0.c2,c5`).
///
/// ```
/// use kvmsec_selinux::CategorySet;
/// let set: CategorySet = "c5,c0,c1,c2".parse()?;
/// assert_eq!(set.to_string(), "c0.c2,c5");
/// assert!(set.contains(1));
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CategorySet {
    bits: [u64; WORDS],
}

impl CategorySet {
    /// The empty set.
    pub const fn new() -> Self {
        CategorySet { bits: [0; WORDS] }
    }

    /// The set `cfirst..=clast` (empty when `first > last`).
    pub fn from_range(first: u16, last: u16) -> Result<Self> {
        check_category(u32::from(first))?;
        check_category(u32::from(last))?;
        let mut set = CategorySet::new();
        set.set_range(first, last);
        Ok(set)
    }

    /// Add a category; returns whether it was new. Categories above `c1023` are refused.
    pub fn insert(&mut self, category: u16) -> Result<bool> {
        check_category(u32::from(category))?;
        let was = self.contains(category);
        self.set_bit(category);
        Ok(!was)
    }

    /// Remove a category; returns whether it was present.
    pub fn remove(&mut self, category: u16) -> bool {
        let was = self.contains(category);
        if was {
            let (w, b) = split(category);
            if let Some(word) = self.bits.get_mut(w) {
                *word &= !(1u64 << b);
            }
        }
        was
    }

    /// Whether `category` is in the set.
    pub fn contains(&self, category: u16) -> bool {
        let (w, b) = split(category);
        self.bits.get(w).is_some_and(|word| word & (1u64 << b) != 0)
    }

    /// Number of categories in the set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// The categories in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let b = rest.trailing_zeros();
                rest &= rest - 1;
                Some((w * 64) as u16 + b as u16)
            })
        })
    }

    /// Whether every category of `other` is in `self`.
    pub fn is_superset(&self, other: &CategorySet) -> bool {
        self.bits
            .iter()
            .zip(other.bits.iter())
            .all(|(a, b)| b & !a == 0)
    }

    /// Whether every category of `self` is in `other`.
    pub fn is_subset(&self, other: &CategorySet) -> bool {
        other.is_superset(self)
    }

    /// Categories in either set.
    pub fn union(&self, other: &CategorySet) -> CategorySet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits.iter()) {
            *a |= b;
        }
        out
    }

    /// Categories in both sets.
    pub fn intersection(&self, other: &CategorySet) -> CategorySet {
        let mut out = *self;
        for (a, b) in out.bits.iter_mut().zip(other.bits.iter()) {
            *a &= b;
        }
        out
    }

    fn set_bit(&mut self, category: u16) {
        let (w, b) = split(category);
        if let Some(word) = self.bits.get_mut(w) {
            *word |= 1u64 << b;
        }
    }

    /// Sets `first..=last` (both at most [`MAX_CATEGORY`]) a word at a time.
    fn set_range(&mut self, first: u16, last: u16) {
        let (first, last) = (usize::from(first), usize::from(last));
        for w in first / 64..=last / 64 {
            let lo = first.max(w * 64) - w * 64;
            let hi = last.min(w * 64 + 63) - w * 64;
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            if let Some(word) = self.bits.get_mut(w) {
                *word |= mask;
            }
        }
    }

    /// Runs of consecutive categories as `(first, last)`, found a word at a time: the end of
    /// a run is the first clear bit after its start.
    fn runs(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        let mut from = 0usize;
        std::iter::from_fn(move || {
            let first = self.next_bit(from, true)?;
            let last = self.next_bit(first, false).unwrap_or(WORDS * 64) - 1;
            from = last + 1;
            Some((first as u16, last as u16))
        })
    }

    /// The first position `>= from` whose bit equals `set`.
    fn next_bit(&self, from: usize, set: bool) -> Option<usize> {
        let mut w = from / 64;
        let flip = if set { 0 } else { u64::MAX };
        let mut word = (*self.bits.get(w)? ^ flip) & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                return Some(w * 64 + word.trailing_zeros() as usize);
            }
            w += 1;
            word = *self.bits.get(w)? ^ flip;
        }
    }
}

fn split(category: u16) -> (usize, u32) {
    (usize::from(category / 64), u32::from(category % 64))
}

fn check_category(category: u32) -> Result<()> {
    if category > u32::from(MAX_CATEGORY) {
        Err(Error::CategoryOutOfRange { category })
    } else {
        Ok(())
    }
}

impl fmt::Display for CategorySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            Ok(())
        };
        for (a, b) in self.runs() {
            sep(f)?;
            match b - a {
                0 => write!(f, "c{a}")?,
                1 => write!(f, "c{a},c{b}")?,
                _ => write!(f, "c{a}.c{b}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CategorySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CategorySet({self})")
    }
}

impl FromStr for CategorySet {
    type Err = Error;

    /// Parse a category list such as `c0.c2,c5` (without the sensitivity).
    fn from_str(s: &str) -> Result<Self> {
        check_len(s, ContextPart::Category)?;
        parse_categories(s).map_err(|(part, problem)| invalid(s, part, problem))
    }
}

/// An MLS/MCS level: a sensitivity (`s0`) and a set of categories (`c1,c5`).
///
/// ```
/// use kvmsec_selinux::Level;
/// let wide: Level = "s0:c1.c5".parse()?;
/// let narrow: Level = "s0:c2,c3".parse()?;
/// assert!(wide.dominates(&narrow));
/// assert!(!narrow.dominates(&wide));
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Level {
    /// The sensitivity number (`s0` is 0).
    pub sensitivity: u16,
    /// The categories.
    pub categories: CategorySet,
}

impl Level {
    /// A level with a sensitivity and categories.
    pub fn new(sensitivity: u16, categories: CategorySet) -> Self {
        Level {
            sensitivity,
            categories,
        }
    }

    /// Whether `self` dominates `other`: sensitivity at least as high and a superset of its
    /// categories.
    pub fn dominates(&self, other: &Level) -> bool {
        self.sensitivity >= other.sensitivity && self.categories.is_superset(&other.categories)
    }

    /// Neither level dominates the other.
    pub fn is_incomparable(&self, other: &Level) -> bool {
        !self.dominates(other) && !other.dominates(self)
    }

    /// Greatest lower bound: the lower sensitivity and the common categories.
    pub fn glb(&self, other: &Level) -> Level {
        Level {
            sensitivity: self.sensitivity.min(other.sensitivity),
            categories: self.categories.intersection(&other.categories),
        }
    }

    /// Least upper bound: the higher sensitivity and all categories of both.
    pub fn lub(&self, other: &Level) -> Level {
        Level {
            sensitivity: self.sensitivity.max(other.sensitivity),
            categories: self.categories.union(&other.categories),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.sensitivity)?;
        if !self.categories.is_empty() {
            write!(f, ":{}", self.categories)?;
        }
        Ok(())
    }
}

impl FromStr for Level {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        check_len(s, ContextPart::LowLevel)?;
        if let Some(range) = translated(s) {
            return Err(Error::TranslatedContext {
                input: clip(s, 256),
                range,
            });
        }
        parse_level(s, ContextPart::LowLevel).map_err(|(part, problem)| invalid(s, part, problem))
    }
}

/// An MLS range `low[-high]`, where `high` dominates `low`.
///
/// ```
/// use kvmsec_selinux::{Level, MlsRange};
/// let range: MlsRange = "s0-s0:c0.c1023".parse()?;
/// assert!(range.contains_level(&"s0:c14,c721".parse::<Level>()?));
/// // Equal low and high collapse to one level.
/// assert_eq!("s0:c1,c2-s0:c1,c2".parse::<MlsRange>()?.to_string(), "s0:c1,c2");
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MlsRange {
    low: Level,
    high: Level,
}

impl MlsRange {
    /// A range; fails with [`ContextProblem::HighDoesNotDominateLow`] when `high` does not
    /// dominate `low`.
    pub fn new(low: Level, high: Level) -> Result<Self> {
        if !high.dominates(&low) {
            return Err(Error::InvalidContext {
                input: format!("{low}-{high}"),
                part: ContextPart::Range,
                problem: ContextProblem::HighDoesNotDominateLow,
            });
        }
        Ok(MlsRange { low, high })
    }

    /// The range holding exactly one level (`s0:c1,c2`).
    pub fn single(level: Level) -> Self {
        MlsRange {
            low: level,
            high: level,
        }
    }

    /// The low (current) level.
    pub fn low(&self) -> &Level {
        &self.low
    }

    /// The high (clearance) level.
    pub fn high(&self) -> &Level {
        &self.high
    }

    /// Whether `level` lies in the range: it dominates `low` and `high` dominates it.
    pub fn contains_level(&self, level: &Level) -> bool {
        level.dominates(&self.low) && self.high.dominates(level)
    }

    /// Whether `other` lies entirely inside this range.
    pub fn contains(&self, other: &MlsRange) -> bool {
        other.low.dominates(&self.low) && self.high.dominates(&other.high)
    }

    /// The range both ranges allow (low = lub of lows, high = glb of highs), or `None` when
    /// they do not overlap.
    pub fn intersection(&self, other: &MlsRange) -> Option<MlsRange> {
        let low = self.low.lub(&other.low);
        let high = self.high.glb(&other.high);
        MlsRange::new(low, high).ok()
    }
}

impl fmt::Display for MlsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl FromStr for MlsRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        check_len(s, ContextPart::Range)?;
        if let Some(range) = translated(s) {
            return Err(Error::TranslatedContext {
                input: clip(s, 256),
                range,
            });
        }
        parse_range(s).map_err(|(part, problem)| invalid(s, part, problem))
    }
}

/// A raw SELinux security context `user:role:type[:range]`.
///
/// Parsing is as strict as the kernel (names checked, `cA.cB` needs `A < B`, the high level
/// must dominate the low one) but tolerates what the kernel hands back: exactly one
/// trailing NUL and/or newline. [`Display`](fmt::Display) writes the canonical form.
///
/// ```
/// use kvmsec_selinux::SecurityContext;
/// let ctx: SecurityContext = "system_u:system_r:svirt_t:s0:c0,c1,c2,c5".parse()?;
/// assert_eq!(ctx.to_string(), "system_u:system_r:svirt_t:s0:c0.c2,c5");
/// assert_eq!(ctx.type_(), "svirt_t");
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
///
/// # Limitations
/// Only raw ranges are parsed; a translated (mcstrans) range such as
/// `SystemLow-SystemHigh` gives [`Error::TranslatedContext`]. Whether a context is valid in
/// the loaded policy can only be checked by the kernel
/// ([`crate::Selinuxfs::canonicalize_context`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecurityContext {
    user: String,
    role: String,
    type_: String,
    range: Option<MlsRange>,
}

impl SecurityContext {
    /// Build a context, checking the names like the parser does.
    pub fn new(user: &str, role: &str, type_: &str, range: Option<MlsRange>) -> Result<Self> {
        let input = format!("{user}:{role}:{type_}");
        check_name(user, ContextPart::User).map_err(|(p, e)| invalid(&input, p, e))?;
        check_name(role, ContextPart::Role).map_err(|(p, e)| invalid(&input, p, e))?;
        check_name(type_, ContextPart::Type).map_err(|(p, e)| invalid(&input, p, e))?;
        Ok(SecurityContext {
            user: user.to_owned(),
            role: role.to_owned(),
            type_: type_.to_owned(),
            range,
        })
    }

    /// Build from parts known to be valid (crate constants).
    pub(crate) fn from_parts(user: &str, role: &str, type_: &str, range: Option<MlsRange>) -> Self {
        SecurityContext {
            user: user.to_owned(),
            role: role.to_owned(),
            type_: type_.to_owned(),
            range,
        }
    }

    /// Parse a context, tolerating one trailing NUL and/or newline.
    pub fn parse(s: &str) -> Result<Self> {
        Self::from_bytes(s.as_bytes())
    }

    /// Parse a context as read from the kernel (`/proc/<pid>/attr/current`, the
    /// `security.selinux` xattr, selinuxfs): exactly one trailing NUL and/or newline is
    /// dropped, nothing else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let lossy = || clip(&String::from_utf8_lossy(bytes), 256);
        if bytes.len() > MAX_CONTEXT_LEN {
            return Err(Error::InvalidContext {
                input: lossy(),
                part: ContextPart::Whole,
                problem: ContextProblem::TooLong { len: bytes.len() },
            });
        }
        let body = strip_kernel_suffix(bytes);
        if body.contains(&0) {
            return Err(Error::InvalidContext {
                input: lossy(),
                part: ContextPart::Whole,
                problem: ContextProblem::InteriorNul,
            });
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return Err(Error::InvalidContext {
                input: lossy(),
                part: ContextPart::Whole,
                problem: ContextProblem::NotUtf8,
            });
        };
        parse_context(text)
    }

    /// The SELinux user (`system_u`).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The role (`system_r`, `object_r`).
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The type or domain (`svirt_t`).
    pub fn type_(&self) -> &str {
        &self.type_
    }

    /// The MLS/MCS range, if the context has one.
    pub fn range(&self) -> Option<&MlsRange> {
        self.range.as_ref()
    }

    /// The same context with another user.
    pub fn with_user(&self, user: &str) -> Result<Self> {
        Self::new(user, &self.role, &self.type_, self.range)
    }

    /// The same context with another role.
    pub fn with_role(&self, role: &str) -> Result<Self> {
        Self::new(&self.user, role, &self.type_, self.range)
    }

    /// The same context with another type.
    pub fn with_type(&self, type_: &str) -> Result<Self> {
        Self::new(&self.user, &self.role, type_, self.range)
    }

    /// The same context with another range (or none).
    pub fn with_range(&self, range: Option<MlsRange>) -> Self {
        SecurityContext {
            range,
            ..self.clone()
        }
    }

    /// The canonical form followed by one NUL, as libselinux writes it to the kernel.
    pub fn to_kernel_bytes(&self) -> Vec<u8> {
        let mut bytes = self.to_string().into_bytes();
        bytes.push(0);
        bytes
    }
}

impl fmt::Display for SecurityContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.user, self.role, self.type_)?;
        if let Some(range) = &self.range {
            write!(f, ":{range}")?;
        }
        Ok(())
    }
}

impl FromStr for SecurityContext {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(feature = "serde")]
macro_rules! serde_as_string {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

#[cfg(feature = "serde")]
serde_as_string!(CategorySet, Level, MlsRange, SecurityContext);

// ---------------------------------------------------------------------------------------
// Parser internals. Each step returns the part and problem; the caller adds the input.

type PartResult<T> = std::result::Result<T, (ContextPart, ContextProblem)>;

fn invalid(input: &str, part: ContextPart, problem: ContextProblem) -> Error {
    Error::InvalidContext {
        input: clip(input, 256),
        part,
        problem,
    }
}

/// Refuse text longer than a whole context may be ([`MAX_CONTEXT_LEN`]) before any work is
/// done on it (each `cA.cB` item costs up to 1024 bit operations).
fn check_len(s: &str, part: ContextPart) -> Result<()> {
    if s.len() > MAX_CONTEXT_LEN {
        return Err(invalid(s, part, ContextProblem::TooLong { len: s.len() }));
    }
    Ok(())
}

/// Drop exactly one trailing NUL and/or one newline (`\0`, `\n`, `\n\0`, `\0\n`).
pub(crate) fn strip_kernel_suffix(bytes: &[u8]) -> &[u8] {
    for suffix in [&b"\n\0"[..], b"\0\n", b"\0", b"\n"] {
        if let Some(body) = bytes.strip_suffix(suffix) {
            return body;
        }
    }
    bytes
}

fn parse_context(text: &str) -> Result<SecurityContext> {
    if text.is_empty() {
        return Err(invalid(text, ContextPart::Whole, ContextProblem::Empty));
    }
    let mut fields = text.splitn(4, ':');
    let user = fields.next().unwrap_or_default();
    let role = fields.next();
    let type_ = fields.next();
    let range = fields.next();

    let step = || -> PartResult<(String, String, String)> {
        check_name(user, ContextPart::User)?;
        let role = role.ok_or((ContextPart::Role, ContextProblem::MissingField))?;
        check_name(role, ContextPart::Role)?;
        let type_ = type_.ok_or((ContextPart::Type, ContextProblem::MissingField))?;
        check_name(type_, ContextPart::Type)?;
        Ok((user.to_owned(), role.to_owned(), type_.to_owned()))
    };
    let (user, role, type_) = step().map_err(|(p, e)| invalid(text, p, e))?;

    let range = match range {
        None => None,
        Some(r) => {
            if let Some(translated) = translated(r) {
                return Err(Error::TranslatedContext {
                    input: clip(text, 256),
                    range: clip(&translated, 256),
                });
            }
            Some(parse_range(r).map_err(|(p, e)| invalid(text, p, e))?)
        }
    };
    Ok(SecurityContext {
        user,
        role,
        type_,
        range,
    })
}

fn check_name(name: &str, part: ContextPart) -> PartResult<()> {
    if name.is_empty() {
        return Err((part, ContextProblem::Empty));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        Some(ch) => Err((part, ContextProblem::InvalidChar { ch })),
        None => Ok(()),
    }
}

/// If the range is in translated (mcstrans) form, return it.
///
/// A translated range names a level with a word (two or more letters, such as
/// `SystemLow`, `SystemLow-SystemHigh`, `Top Secret`) where a raw one has `sN`.
fn translated(range: &str) -> Option<String> {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '-' | ':' | ',' | '.');
    if range.is_empty() || !range.chars().all(allowed) {
        return None;
    }
    let is_word = |t: &str| {
        t.chars().filter(char::is_ascii_alphabetic).count() >= 2
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let sensitivity_word = range
        .split('-')
        .any(|level| is_word(level.split(':').next().unwrap_or_default()));
    let spaced_words = range.contains(' ') && range.split([' ', '-', ':', ',']).any(is_word);
    if sensitivity_word || spaced_words {
        Some(range.to_owned())
    } else {
        None
    }
}

fn parse_range(s: &str) -> PartResult<MlsRange> {
    if s.is_empty() {
        return Err((ContextPart::Range, ContextProblem::Empty));
    }
    let (low, high) = match s.split_once('-') {
        Some((l, h)) => (l, Some(h)),
        None => (s, None),
    };
    let low = parse_level(low, ContextPart::LowLevel)?;
    let high = match high {
        Some(h) => parse_level(h, ContextPart::HighLevel)?,
        None => low,
    };
    if !high.dominates(&low) {
        return Err((ContextPart::Range, ContextProblem::HighDoesNotDominateLow));
    }
    Ok(MlsRange { low, high })
}

fn parse_level(s: &str, part: ContextPart) -> PartResult<Level> {
    if s.is_empty() {
        return Err((part, ContextProblem::Empty));
    }
    let (sens, cats) = match s.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let sensitivity = match parse_number(sens, 's') {
        Number::Ok(n) if n <= u64::from(u16::MAX) => n as u16,
        Number::LeadingZero => {
            return Err((
                part,
                ContextProblem::LeadingZero {
                    token: clip(sens, 64),
                },
            ));
        }
        _ => {
            return Err((
                part,
                ContextProblem::BadSensitivity {
                    token: clip(sens, 64),
                },
            ));
        }
    };
    let categories = match cats {
        None => CategorySet::new(),
        Some(c) => parse_categories(c)?,
    };
    Ok(Level {
        sensitivity,
        categories,
    })
}

fn parse_categories(s: &str) -> PartResult<CategorySet> {
    let part = ContextPart::Category;
    if s.is_empty() {
        return Err((part, ContextProblem::Empty));
    }
    let mut set = CategorySet::new();
    for item in s.split(',') {
        if item.is_empty() {
            return Err((part, ContextProblem::Empty));
        }
        match item.split_once('.') {
            Some((a, b)) => {
                let first = parse_category(a)?;
                let last = parse_category(b)?;
                if first >= last {
                    return Err((
                        part,
                        ContextProblem::CategoryRangeNotAscending { first, last },
                    ));
                }
                set.set_range(first, last);
            }
            None => set.set_bit(parse_category(item)?),
        }
    }
    Ok(set)
}

fn parse_category(token: &str) -> PartResult<u16> {
    let part = ContextPart::Category;
    match parse_number(token, 'c') {
        Number::Ok(n) if n <= u64::from(MAX_CATEGORY) => Ok(n as u16),
        Number::Ok(n) => Err((part, ContextProblem::CategoryOutOfRange { category: n })),
        Number::LeadingZero => Err((
            part,
            ContextProblem::LeadingZero {
                token: clip(token, 64),
            },
        )),
        Number::Bad => Err((
            part,
            ContextProblem::BadCategory {
                token: clip(token, 64),
            },
        )),
    }
}

enum Number {
    Ok(u64),
    LeadingZero,
    Bad,
}

/// Parse `<prefix><decimal>` with no sign, no leading zero; saturates instead of overflowing.
fn parse_number(token: &str, prefix: char) -> Number {
    let Some(digits) = token.strip_prefix(prefix) else {
        return Number::Bad;
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Number::Bad;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Number::LeadingZero;
    }
    let value = digits.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    Number::Ok(value)
}

#[cfg(test)]
mod tests;
