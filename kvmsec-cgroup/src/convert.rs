//! Formats: v1 ↔ v2 value conversions for CPU and block I/O weights.
//!
//! The kernel, systemd and container runtimes disagree on how `cpu.shares` maps onto
//! `cpu.weight`: 1024 shares become 100 in the kernel's own mapping, in systemd and in runc
//! 1.3.2+, but 39 in older runc. Each formula is offered as a value of [`SharesFormula`],
//! with [`SharesFormula::KernelRoundClosest`] as the default.
//!
//! # References
//! - Linux `kernel/sched/core.c`: `cpu.weight` is stored as shares,
//!   `shares = DIV_ROUND_CLOSEST(weight * 1024, 100)` and back.
//! - Linux `Documentation/admin-guide/cgroup-v2.rst` (`cpu.weight` 1..10000, default 100;
//!   `io.weight` 1..10000, default 100).
//! - Linux `Documentation/admin-guide/cgroup-v1/blkio-controller.rst` (`blkio.weight`
//!   10..1000, default 500).

use crate::error::{Error, Result};

macro_rules! bounded {
    ($(#[$m:meta])* $name:ident, $setting:literal, $min:expr, $max:expr, $default:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub struct $name(u32);

        impl $name {
            /// Smallest accepted value.
            pub const MIN: u32 = $min;
            /// Largest accepted value.
            pub const MAX: u32 = $max;
            /// The kernel's default.
            pub const DEFAULT: $name = $name($default);

            /// Check the range and wrap; out-of-range values are [`Error::OutOfRange`].
            pub fn new(v: u64) -> Result<Self> {
                if v < u64::from(Self::MIN) || v > u64::from(Self::MAX) {
                    return Err(Error::OutOfRange {
                        setting: $setting,
                        value: i128::from(v),
                        min: i128::from(Self::MIN),
                        max: i128::from(Self::MAX),
                    });
                }
                Ok($name(v as u32))
            }

            /// The number.
            pub fn get(self) -> u32 {
                self.0
            }

            // Not every weight type is a conversion target.
            #[allow(dead_code)]
            fn clamped(v: f64) -> Self {
                let v = if v.is_nan() { Self::MIN as f64 } else { v };
                $name(v.clamp(Self::MIN as f64, Self::MAX as f64) as u32)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let v = u64::deserialize(d)?;
                $name::new(v).map_err(serde::de::Error::custom)
            }
        }
    };
}

bounded!(
    /// v1 `cpu.shares`, 2..=262144, default 1024.
    CpuShares, "cpu.shares", 2, 262_144, 1024
);
bounded!(
    /// v2 `cpu.weight`, 1..=10000, default 100.
    CpuWeight, "cpu.weight", 1, 10_000, 100
);
bounded!(
    /// v1 CFQ `blkio.weight`, 10..=1000, default 500.
    BlkioWeight, "blkio.weight", 10, 1000, 500
);
bounded!(
    /// v2 `io.weight` (iocost), 1..=10000, default 100.
    IoWeight, "io.weight", 1, 10_000, 100
);
bounded!(
    /// BFQ weight (`io.bfq.weight` in v2, `blkio.bfq.weight` in v1), 1..=1000, default 100.
    /// BFQ's own file, distinct from iocost's `io.weight`; no conversion is applied to it.
    BfqWeight, "io.bfq.weight", 1, 1000, 100
);

/// How to map `cpu.shares` (v1) onto `cpu.weight` (v2) and back.
///
/// Test vectors, shares → weight:
///
/// | shares | KernelRoundClosest | Systemd | RuncLegacy | Runc2025 |
/// |---|---|---|---|---|
/// | 2 | 1 | 1 | 1 | 1 |
/// | 100 | 10 | 9 | 4 | 17 |
/// | 512 | 50 | 50 | 20 | 59 |
/// | 1024 | 100 | 100 | 39 | 100 |
/// | 2000 | 195 | 195 | 77 | 170 |
/// | 10000 | 977 | 976 | 382 | 627 |
/// | 100000 | 9766 | 9765 | 3815 | 4340 |
/// | 262144 | 10000 | 10000 | 10000 | 10000 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SharesFormula {
    /// The kernel's own mapping (default): `w = round(s * 100 / 1024)`,
    /// `s = round(w * 1024 / 100)`, clamped to the ranges. Chosen as default because it is
    /// what the scheduler itself applies when `cpu.weight` is written (it stores shares), so
    /// a converted value has exactly the same effect in either version; it maps the defaults
    /// onto each other (1024 ↔ 100) and is linear, so ratios between groups are kept.
    #[default]
    KernelRoundClosest,
    /// systemd: `w = clamp(s * 100 / 1024, 1, 10000)`, `s = clamp(w * 1024 / 100, 2,
    /// 262144)`, integer division.
    Systemd,
    /// runc ≤ 1.3.1, containerd/cgroups: `w = 1 + (s - 2) * 9999 / 262142`; maps the default
    /// 1024 to 39. Reverse: `s = 2 + (w - 1) * 262142 / 9999`.
    RuncLegacy,
    /// runc ≥ 1.3.2, crun ≥ 1.23: `l = log2(s)`, `w = ceil(10^((l² + 125 l) / 612 - 7 / 34))`.
    /// runc defines no reverse; the reverse here inverts the formula before its ceiling and
    /// rounds to the nearest shares value (1 → 2, 100 → 1024, 10000 → 262144).
    Runc2025,
}

fn div_round_closest(n: u64, d: u64) -> u64 {
    (n + d / 2) / d
}

impl SharesFormula {
    /// Convert v1 shares to a v2 weight.
    pub fn shares_to_weight(self, s: CpuShares) -> CpuWeight {
        let s = u64::from(s.get());
        match self {
            SharesFormula::KernelRoundClosest => {
                CpuWeight::clamped(div_round_closest(s * 100, 1024) as f64)
            }
            SharesFormula::Systemd => CpuWeight::clamped((s * 100 / 1024) as f64),
            SharesFormula::RuncLegacy => CpuWeight::clamped((1 + (s - 2) * 9999 / 262_142) as f64),
            SharesFormula::Runc2025 => {
                if s <= 2 {
                    return CpuWeight(1);
                }
                if s >= 262_144 {
                    return CpuWeight(10_000);
                }
                let l = (s as f64).log2();
                let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
                // Round away float noise (10^2.0000000000000004) before the ceiling.
                let w = 10f64.powf(exponent);
                let w = (w * 1e9).round() / 1e9;
                CpuWeight::clamped(w.ceil())
            }
        }
    }

    /// Convert a v2 weight to v1 shares.
    pub fn weight_to_shares(self, w: CpuWeight) -> CpuShares {
        let w64 = u64::from(w.get());
        match self {
            SharesFormula::KernelRoundClosest => {
                CpuShares::clamped(div_round_closest(w64 * 1024, 100) as f64)
            }
            SharesFormula::Systemd => CpuShares::clamped((w64 * 1024 / 100) as f64),
            SharesFormula::RuncLegacy => {
                CpuShares::clamped((2 + (w64 - 1) * 262_142 / 9999) as f64)
            }
            SharesFormula::Runc2025 => {
                // Inverse of the formula before its ceiling: solve
                // l² + 125 l - 612 (log10 w + 7/34) = 0 for l, then s = 2^l.
                let e = (w.get() as f64).log10();
                let c = 612.0 * (e + 7.0 / 34.0);
                let l = (-125.0 + (125.0f64 * 125.0 + 4.0 * c).sqrt()) / 2.0;
                CpuShares::clamped(2f64.powf(l).round())
            }
        }
    }
}

/// How to map v1 `blkio.weight` (10..1000, default 500) onto v2 `io.weight` (1..10000,
/// default 100) and back. BFQ weights (`io.bfq.weight`) are never converted.
///
/// | blkio.weight | Systemd | RuncLinear |
/// |---|---|---|
/// | 10 | 2 | 1 |
/// | 100 | 20 | 910 |
/// | 500 | 100 | 4950 |
/// | 1000 | 200 | 10000 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum IoWeightFormula {
    /// systemd (default): `io = clamp(b * 100 / 500, 1, 10000)`, `b = clamp(io * 500 / 100,
    /// 10, 1000)`. Maps default onto default (500 ↔ 100) and keeps ratios.
    #[default]
    Systemd,
    /// runc: `io = 1 + (b - 10) * 9999 / 990` (range onto range; 500 becomes 4950).
    /// Reverse: `b = 10 + (io - 1) * 990 / 9999`.
    RuncLinear,
}

impl IoWeightFormula {
    /// v1 blkio weight → v2 io weight.
    pub fn blkio_to_io(self, b: BlkioWeight) -> IoWeight {
        let b = u64::from(b.get());
        match self {
            IoWeightFormula::Systemd => IoWeight::clamped((b * 100 / 500) as f64),
            IoWeightFormula::RuncLinear => IoWeight::clamped((1 + (b - 10) * 9999 / 990) as f64),
        }
    }

    /// v2 io weight → v1 blkio weight.
    pub fn io_to_blkio(self, w: IoWeight) -> BlkioWeight {
        let w = u64::from(w.get());
        match self {
            IoWeightFormula::Systemd => BlkioWeight::clamped((w * 500 / 100) as f64),
            IoWeightFormula::RuncLinear => BlkioWeight::clamped((10 + (w - 1) * 990 / 9999) as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: [(u32, u32, u32, u32, u32); 9] = [
        // shares, kernel, systemd, runc-legacy, runc-2025
        (2, 1, 1, 1, 1),
        (100, 10, 9, 4, 17),
        (512, 50, 50, 20, 59),
        (1024, 100, 100, 39, 100),
        (2000, 195, 195, 77, 170),
        (2048, 200, 200, 79, 174),
        (10_000, 977, 976, 382, 627),
        (100_000, 9766, 9765, 3815, 4340),
        (262_144, 10_000, 10_000, 10_000, 10_000),
    ];

    #[test]
    fn shares_to_weight_vectors() {
        for (s, k, sd, rl, rn) in VECTORS {
            let s = CpuShares::new(s.into()).unwrap();
            assert_eq!(
                SharesFormula::KernelRoundClosest.shares_to_weight(s).get(),
                k,
                "{s}"
            );
            assert_eq!(SharesFormula::Systemd.shares_to_weight(s).get(), sd, "{s}");
            assert_eq!(
                SharesFormula::RuncLegacy.shares_to_weight(s).get(),
                rl,
                "{s}"
            );
            assert_eq!(SharesFormula::Runc2025.shares_to_weight(s).get(), rn, "{s}");
        }
        assert_eq!(SharesFormula::default(), SharesFormula::KernelRoundClosest);
    }

    #[test]
    fn weight_to_shares_vectors() {
        let k = SharesFormula::KernelRoundClosest;
        let w = |v| CpuWeight::new(v).unwrap();
        assert_eq!(k.weight_to_shares(w(1)).get(), 10);
        assert_eq!(k.weight_to_shares(w(100)).get(), 1024);
        assert_eq!(k.weight_to_shares(w(1000)).get(), 10240);
        assert_eq!(k.weight_to_shares(w(10_000)).get(), 102_400);
        assert_eq!(SharesFormula::Systemd.weight_to_shares(w(100)).get(), 1024);
        assert_eq!(SharesFormula::Systemd.weight_to_shares(w(1)).get(), 10);
        assert_eq!(SharesFormula::RuncLegacy.weight_to_shares(w(39)).get(), 998);
        assert_eq!(SharesFormula::RuncLegacy.weight_to_shares(w(1)).get(), 2);
        assert_eq!(SharesFormula::Runc2025.weight_to_shares(w(100)).get(), 1024);
        assert_eq!(SharesFormula::Runc2025.weight_to_shares(w(1)).get(), 2);
        assert_eq!(SharesFormula::Runc2025.weight_to_shares(w(170)).get(), 2001);
        assert_eq!(
            SharesFormula::Runc2025.weight_to_shares(w(10_000)).get(),
            262_144
        );
    }

    #[test]
    fn io_weight_vectors() {
        let b = |v| BlkioWeight::new(v).unwrap();
        for (bw, sd, rl) in [
            (10, 2, 1),
            (100, 20, 910),
            (500, 100, 4950),
            (1000, 200, 10_000),
        ] {
            assert_eq!(IoWeightFormula::Systemd.blkio_to_io(b(bw)).get(), sd);
            assert_eq!(IoWeightFormula::RuncLinear.blkio_to_io(b(bw)).get(), rl);
        }
        let i = |v| IoWeight::new(v).unwrap();
        assert_eq!(IoWeightFormula::Systemd.io_to_blkio(i(100)).get(), 500);
        assert_eq!(IoWeightFormula::Systemd.io_to_blkio(i(1)).get(), 10);
        assert_eq!(IoWeightFormula::Systemd.io_to_blkio(i(10_000)).get(), 1000);
        assert_eq!(
            IoWeightFormula::RuncLinear.io_to_blkio(i(10_000)).get(),
            1000
        );
    }

    #[test]
    fn ranges_refused() {
        assert!(CpuShares::new(1).is_err());
        assert!(CpuShares::new(262_145).is_err());
        assert!(CpuWeight::new(0).is_err());
        assert!(CpuWeight::new(10_001).is_err());
        assert!(BlkioWeight::new(9).is_err());
        assert!(IoWeight::new(0).is_err());
        assert!(BfqWeight::new(1001).is_err());
        assert!(matches!(
            BlkioWeight::new(5000),
            Err(Error::OutOfRange {
                value: 5000,
                min: 10,
                max: 1000,
                ..
            })
        ));
    }

    proptest::proptest! {
        /// Weight → shares → weight is the identity for the kernel mapping and systemd.
        #[test]
        fn weight_round_trip(w in 1u64..=10_000) {
            let w = CpuWeight::new(w).unwrap();
            let k = SharesFormula::KernelRoundClosest;
            proptest::prop_assert_eq!(k.shares_to_weight(k.weight_to_shares(w)), w);
            // systemd truncates both ways, so it may lose one step.
            let s = SharesFormula::Systemd;
            let back = s.shares_to_weight(s.weight_to_shares(w)).get();
            proptest::prop_assert!(w.get() - back <= 1);
            // runc-2025's reverse lands within a step or two of the ceiling-based forward.
            let r = SharesFormula::Runc2025;
            let back = r.shares_to_weight(r.weight_to_shares(w)).get();
            proptest::prop_assert!(back.abs_diff(w.get()) <= w.get() / 50 + 2, "{} {}", w, back);
        }

        /// Every formula is monotone and stays in range.
        #[test]
        fn monotone(a in 2u64..=262_144, b in 2u64..=262_144) {
            let (lo, hi) = (a.min(b), a.max(b));
            for f in [SharesFormula::KernelRoundClosest, SharesFormula::Systemd,
                      SharesFormula::RuncLegacy, SharesFormula::Runc2025] {
                let wl = f.shares_to_weight(CpuShares::new(lo).unwrap());
                let wh = f.shares_to_weight(CpuShares::new(hi).unwrap());
                proptest::prop_assert!(wl <= wh);
                let back = f.weight_to_shares(wh);
                proptest::prop_assert!(CpuWeight::new(wh.get().into()).is_ok());
                proptest::prop_assert!(CpuShares::new(back.get().into()).is_ok());
            }
        }

        /// blkio ↔ io with the systemd mapping round-trips on multiples of 5.
        #[test]
        fn io_round_trip(b in 2u64..=200) {
            let bw = BlkioWeight::new(b * 5).unwrap();
            let f = IoWeightFormula::Systemd;
            proptest::prop_assert_eq!(f.io_to_blkio(f.blkio_to_io(bw)), bw);
        }
    }
}
