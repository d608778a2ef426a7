use super::*;
use crate::error::{ContextPart as P, ContextProblem as E};
use proptest::prelude::*;

fn ok(input: &str, canonical: &str) {
    let ctx: SecurityContext = input
        .parse()
        .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
    assert_eq!(ctx.to_string(), canonical, "canonical form of {input:?}");
}

fn bad(input: &[u8], part: P, problem: E) {
    match SecurityContext::from_bytes(input) {
        Err(Error::InvalidContext {
            part: p,
            problem: e,
            ..
        }) => {
            assert_eq!((p, e), (part, problem), "error for {input:?}");
        }
        other => panic!("{input:?}: expected InvalidContext, got {other:?}"),
    }
}

#[test]
fn valid_contexts_table() {
    let table = [
        ("u:r:t", "u:r:t"),
        ("system_u:object_r:etc_t:s0", "system_u:object_r:etc_t:s0"),
        ("u:r:t:s0-s0", "u:r:t:s0"),
        ("u:r:t:s0-s0:c0.c1023", "u:r:t:s0-s0:c0.c1023"),
        ("u:r:t:s0:c1,c5.c9", "u:r:t:s0:c1,c5.c9"),
        ("u:r:t:s0:c0,c1,c2,c5", "u:r:t:s0:c0.c2,c5"),
        ("u:r:t:s0:c0,c1", "u:r:t:s0:c0,c1"),
        ("u:r:t:s0:c0.c1", "u:r:t:s0:c0,c1"),
        ("u:r:t:s0:c5,c1", "u:r:t:s0:c1,c5"),
        ("u:r:t:s0:c1,c1", "u:r:t:s0:c1"),
        ("u:r:t:s0:c0.c3,c2", "u:r:t:s0:c0.c3"),
        ("u:r:t:s0:c1,c2-s0:c1,c2", "u:r:t:s0:c1,c2"),
        ("u:r:t:s0-s15:c0.c1023", "u:r:t:s0-s15:c0.c1023"),
        ("u:r:t:s2:c3-s3:c3,c4", "u:r:t:s2:c3-s3:c3,c4"),
        ("u:r:t:s0:c1023", "u:r:t:s0:c1023"),
        (
            "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023",
            "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023",
        ),
        (
            "system_u:system_r:svirt_t:s0:c14,c721",
            "system_u:system_r:svirt_t:s0:c14,c721",
        ),
        ("u.x:r-y:t_z:s0", "u.x:r-y:t_z:s0"),
    ];
    for (input, canonical) in table {
        ok(input, canonical);
    }
}

#[test]
fn invalid_contexts_table() {
    let too_long = vec![b'a'; MAX_CONTEXT_LEN + 1];
    let table: Vec<(&[u8], P, E)> = vec![
        (b"", P::Whole, E::Empty),
        (b"\0", P::Whole, E::Empty),
        (b"a", P::Role, E::MissingField),
        (b"a:b", P::Type, E::MissingField),
        (b"a::c", P::Role, E::Empty),
        (b":b:c", P::User, E::Empty),
        (b"a:b:c:", P::Range, E::Empty),
        (b"a:b:c:s0:", P::Category, E::Empty),
        (
            b"a:b:c:s0:c",
            P::Category,
            E::BadCategory { token: "c".into() },
        ),
        (
            b"a:b:c:s0:c1.",
            P::Category,
            E::BadCategory { token: "".into() },
        ),
        (b"a:b:c:s0:c1,", P::Category, E::Empty),
        (b"a:b:c:s0:c1,,c2", P::Category, E::Empty),
        (
            b"a:b:c:s0:c3.c1",
            P::Category,
            E::CategoryRangeNotAscending { first: 3, last: 1 },
        ),
        (
            b"a:b:c:s0:c1.c1",
            P::Category,
            E::CategoryRangeNotAscending { first: 1, last: 1 },
        ),
        (
            b"a:b:c:s0:c1.c2.c3",
            P::Category,
            E::BadCategory {
                token: "c2.c3".into(),
            },
        ),
        (b"a:b:c:s1-s0", P::Range, E::HighDoesNotDominateLow),
        (b"a:b:c:s0:c1-s0:c2", P::Range, E::HighDoesNotDominateLow),
        (b"a:b:c:s0-", P::HighLevel, E::Empty),
        (b"a:b:c:-s0", P::LowLevel, E::Empty),
        (
            b"a:b:c:s0-s1-s2",
            P::HighLevel,
            E::BadSensitivity {
                token: "s1-s2".into(),
            },
        ),
        (b"a b:r:t:s0", P::User, E::InvalidChar { ch: ' ' }),
        (b"u:r\t:t", P::Role, E::InvalidChar { ch: '\t' }),
        (
            b"u:r:t:s0\n\n",
            P::LowLevel,
            E::BadSensitivity {
                token: "s0\n".into(),
            },
        ),
        (b"u:r:t:s0\0junk", P::Whole, E::InteriorNul),
        (b"u:r:t:s0\0\0", P::Whole, E::InteriorNul),
        (
            b"u:r:t:s0:c1024",
            P::Category,
            E::CategoryOutOfRange { category: 1024 },
        ),
        (
            b"u:r:t:s0:c99999999999999999999999",
            P::Category,
            E::CategoryOutOfRange { category: u64::MAX },
        ),
        (
            b"u:r:t:s0:c01",
            P::Category,
            E::LeadingZero {
                token: "c01".into(),
            },
        ),
        (
            b"u:r:t:s00",
            P::LowLevel,
            E::LeadingZero {
                token: "s00".into(),
            },
        ),
        (
            b"u:r:t:s",
            P::LowLevel,
            E::BadSensitivity { token: "s".into() },
        ),
        (
            b"u:r:t:s-1",
            P::LowLevel,
            E::BadSensitivity { token: "s".into() },
        ),
        (
            b"u:r:t:s70000",
            P::LowLevel,
            E::BadSensitivity {
                token: "s70000".into(),
            },
        ),
        (
            b"u:r:t:s0:c+1",
            P::Category,
            E::BadCategory {
                token: "c+1".into(),
            },
        ),
        (b"u:r:t:\xff", P::Whole, E::NotUtf8),
        (
            &too_long,
            P::Whole,
            E::TooLong {
                len: MAX_CONTEXT_LEN + 1,
            },
        ),
    ];
    for (input, part, problem) in table {
        bad(input, part, problem);
    }
}

#[test]
fn translated_ranges_are_reported_as_translated() {
    for (input, range) in [
        (
            "system_u:object_r:etc_t:SystemLow-SystemHigh",
            "SystemLow-SystemHigh",
        ),
        ("system_u:object_r:etc_t:SystemLow", "SystemLow"),
        ("user_u:user_r:user_t:Top Secret", "Top Secret"),
        ("u:r:t:s0-SystemHigh", "s0-SystemHigh"),
        ("u:r:t:s0:c0 - Top Secret", "s0:c0 - Top Secret"),
    ] {
        match SecurityContext::parse(input) {
            Err(Error::TranslatedContext { range: r, .. }) => assert_eq!(r, range),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert!(matches!(
        "SystemHigh".parse::<Level>(),
        Err(Error::TranslatedContext { .. })
    ));
}

/// Issue 9, case 19: one trailing NUL (and/or newline) is dropped and nothing else.
#[test]
fn case19_trailing_nul_dropped_nothing_else() {
    let a = SecurityContext::from_bytes(b"system_u:system_r:svirt_t:s0\0").unwrap();
    assert_eq!(a.to_string(), "system_u:system_r:svirt_t:s0");
    assert_eq!(a.range().unwrap().low().sensitivity, 0);
    let b = SecurityContext::from_bytes(b"system_u:object_r:svirt_image_t:s0:c10\0").unwrap();
    assert_eq!(b.to_string(), "system_u:object_r:svirt_image_t:s0:c10");
    assert!(b.range().unwrap().low().categories.contains(10));
    assert_eq!(b.range().unwrap().low().categories.len(), 1);
    for input in [
        &b"u:r:t:s0:c10\n"[..],
        b"u:r:t:s0:c10\n\0",
        b"u:r:t:s0:c10\0\n",
        b"u:r:t:s0:c10",
    ] {
        let c = SecurityContext::from_bytes(input).unwrap();
        assert_eq!(c.to_string(), "u:r:t:s0:c10", "{input:?}");
    }
    // Without MLS field: the type keeps its last character.
    let d = SecurityContext::from_bytes(b"u:r:etc_t\0").unwrap();
    assert_eq!(d.type_(), "etc_t");
    // Two NULs: only one is tolerated.
    assert!(SecurityContext::from_bytes(b"u:r:t:s0\0\0").is_err());
}

#[test]
fn dominance_and_containment() {
    let l = |s: &str| s.parse::<Level>().unwrap();
    assert!(l("s0:c1.c5").dominates(&l("s0:c2,c3")));
    assert!(!l("s0:c2,c3").dominates(&l("s0:c1.c5")));
    assert!(l("s1").dominates(&l("s0")));
    assert!(!l("s0:c1").dominates(&l("s1")));
    assert!(l("s0:c1,c2").is_incomparable(&l("s0:c2,c3")));
    assert_eq!(l("s0:c1.c5").glb(&l("s1:c4.c9")).to_string(), "s0:c4,c5");
    assert_eq!(l("s0:c1,c2").lub(&l("s1:c3")).to_string(), "s1:c1.c3");

    let r: MlsRange = "s0-s0:c0.c1023".parse().unwrap();
    assert!(r.contains_level(&l("s0:c14,c721")));
    assert!(r.contains_level(&l("s0")));
    assert!(!r.contains_level(&l("s1")));
    assert!(r.contains(&"s0:c1-s0:c1,c2".parse().unwrap()));
    let a: MlsRange = "s0-s2:c0.c10".parse().unwrap();
    let b: MlsRange = "s1:c1-s3:c0.c5".parse().unwrap();
    assert_eq!(a.intersection(&b).unwrap().to_string(), "s1:c1-s2:c0.c5");
    let c: MlsRange = "s3-s4".parse().unwrap();
    assert_eq!("s0-s1".parse::<MlsRange>().unwrap().intersection(&c), None);
    assert!(MlsRange::new(l("s1"), l("s0")).is_err());
}

#[test]
fn category_set_basics() {
    let mut set = CategorySet::new();
    assert!(set.is_empty());
    assert!(set.insert(1023).unwrap());
    assert!(!set.insert(1023).unwrap());
    assert!(matches!(
        set.insert(1024),
        Err(Error::CategoryOutOfRange { category: 1024 })
    ));
    assert!(set.remove(1023));
    assert!(!set.remove(1023));
    assert!(!set.contains(u16::MAX));
    let full = CategorySet::from_range(0, 1023).unwrap();
    assert_eq!(full.len(), 1024);
    assert_eq!(full.to_string(), "c0.c1023");
    assert!(CategorySet::from_range(0, 1024).is_err());
    assert_eq!(
        "c1,c3,c4,c5,c7,c8"
            .parse::<CategorySet>()
            .unwrap()
            .to_string(),
        "c1,c3.c5,c7,c8"
    );
}

#[test]
fn builders_check_names() {
    let c = SecurityContext::new("u", "r", "t", None).unwrap();
    assert!(c.with_type("bad type").is_err());
    assert_eq!(c.with_role("object_r").unwrap().to_string(), "u:object_r:t");
    assert_eq!(c.with_user("x").unwrap().user(), "x");
    assert_eq!(c.to_kernel_bytes(), b"u:r:t\0");
}

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_.-]{0,10}"
}

fn level() -> impl Strategy<Value = Level> {
    (
        0u16..16,
        proptest::collection::vec(0u16..=MAX_CATEGORY, 0..12),
    )
        .prop_map(|(s, cats)| {
            let mut set = CategorySet::new();
            for c in cats {
                set.insert(c).unwrap();
            }
            Level::new(s, set)
        })
}

fn range() -> impl Strategy<Value = MlsRange> {
    (level(), level()).prop_map(|(a, b)| MlsRange::new(a, a.lub(&b)).unwrap())
}

proptest! {
    #[test]
    fn format_then_parse_round_trips(
        user in name(), role in name(), ty in name(), range in proptest::option::of(range())
    ) {
        let ctx = SecurityContext::new(&user, &role, &ty, range).unwrap();
        let text = ctx.to_string();
        let back: SecurityContext = text.parse().unwrap();
        prop_assert_eq!(&back, &ctx);
        prop_assert_eq!(back.to_string(), text.clone());
        let kernel = SecurityContext::from_bytes(&ctx.to_kernel_bytes()).unwrap();
        prop_assert_eq!(kernel, ctx);
    }

    /// The word-at-a-time set operations agree with a plain `Vec<bool>` model: ranges across
    /// word boundaries, iteration order, and the canonical text (runs of 1, 2 and 3+).
    #[test]
    fn category_set_matches_a_naive_model(
        ranges in proptest::collection::vec((0u16..=MAX_CATEGORY, 0u16..200), 0..6),
    ) {
        let mut model = vec![false; usize::from(MAX_CATEGORY) + 1];
        let mut set = CategorySet::new();
        for (first, len) in ranges {
            let last = first.saturating_add(len).min(MAX_CATEGORY);
            model[usize::from(first)..=usize::from(last)].iter_mut().for_each(|b| *b = true);
            set = set.union(&CategorySet::from_range(first, last).unwrap());
        }
        let want: Vec<u16> = (0..=MAX_CATEGORY).filter(|&c| model[usize::from(c)]).collect();
        prop_assert_eq!(set.iter().collect::<Vec<_>>(), want.clone());
        prop_assert_eq!(set.len(), want.len());

        let mut text = Vec::new();
        let mut i = 0;
        while i < want.len() {
            let mut j = i;
            while j + 1 < want.len() && want[j + 1] == want[j] + 1 {
                j += 1;
            }
            match j - i {
                0 => text.push(format!("c{}", want[i])),
                1 => text.push(format!("c{},c{}", want[i], want[j])),
                _ => text.push(format!("c{}.c{}", want[i], want[j])),
            }
            i = j + 1;
        }
        prop_assert_eq!(set.to_string(), text.join(","));
        if !want.is_empty() {
            prop_assert_eq!(set.to_string().parse::<CategorySet>().unwrap(), set);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = SecurityContext::from_bytes(&bytes);
    }

    #[test]
    fn arbitrary_range_text_never_panics(s in "[sc0-9:,.\\- ]{0,24}") {
        if let Ok(r) = s.parse::<MlsRange>() {
            // Whatever parses re-parses to the same value from its canonical form.
            prop_assert_eq!(r.to_string().parse::<MlsRange>().unwrap(), r);
        }
    }
}

/// Ranges, levels and category lists given as text are bounded like whole contexts: a 10 MB
/// list of `c0.c1023` items is refused at once instead of costing a billion bit operations.
#[test]
fn oversized_range_text_is_refused_before_parsing() {
    let cats = "c0.c1023,".repeat(1_000_000);
    let cats = cats.trim_end_matches(',');
    let started = std::time::Instant::now();
    assert!(matches!(
        cats.parse::<CategorySet>(),
        Err(Error::InvalidContext {
            part: P::Category,
            problem: E::TooLong { .. },
            ..
        })
    ));
    let range = format!("s0-s0:{cats}");
    assert!(matches!(
        range.parse::<MlsRange>(),
        Err(Error::InvalidContext {
            problem: E::TooLong { .. },
            ..
        })
    ));
    let level = format!("s0:{cats}");
    assert!(matches!(
        level.parse::<Level>(),
        Err(Error::InvalidContext {
            problem: E::TooLong { .. },
            ..
        })
    ));
    // A translated range that long is refused the same way, without copying it.
    let words = "SystemLow ".repeat(1_000_000);
    match words.parse::<MlsRange>() {
        Err(Error::InvalidContext { input, .. }) => assert!(input.len() < 1024),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // The longest text a context may hold still parses.
    let full = format!("s0:{}", "c0.c1023,".repeat(400).trim_end_matches(','));
    assert!(full.len() <= MAX_CONTEXT_LEN);
    assert!(full.parse::<MlsRange>().is_ok());
}
