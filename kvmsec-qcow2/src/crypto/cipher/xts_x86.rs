//! The XTS mode arithmetic (tweak sequence and the two tweak XORs) on AVX-512, for x86-64
//! CPUs that have it. The AES rounds themselves stay in the `aes` crate.
//!
//! A 512-bit register holds four consecutive tweaks `T·α^j … T·α^(j+3)`; multiplying every
//! lane by α⁴ gives the next four. That is nine vector instructions per 64 bytes of data,
//! where the portable loop needs four dependent 128-bit multiply-by-α steps, and the first
//! XOR is fused into the same pass, so the data is read and written once before AES and once
//! after it.

use core::arch::x86_64::{
    __m512i, _MM_PERM_BADC, _mm512_loadu_si512, _mm512_maskz_mov_epi64, _mm512_shuffle_epi32,
    _mm512_slli_epi64, _mm512_srli_epi64, _mm512_storeu_si512, _mm512_ternarylogic_epi64,
    _mm512_xor_si512,
};

use super::{Aes16, Block, IvSource, SECTOR_SIZE, as_blocks, mul_alpha};

/// 64-byte vectors per sector.
const VECTORS_PER_SECTOR: usize = SECTOR_SIZE / 64;

/// `true` when [`xts`] may be called on this CPU.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Multiplies each 128-bit lane (a little-endian GF(2¹²⁸) element, IEEE 1619 §5.2) by α⁴.
#[inline]
#[target_feature(enable = "avx512f")]
fn mul_alpha4(t: __m512i) -> __m512i {
    // Shift every 64-bit half left by 4; the 4 bits that fall off the low half move into the
    // high half, and the 4 that fall off the high half (x^128..x^131) are reduced with
    // x^128 = x^7 + x^2 + x + 1, i.e. c·0x87 carry-less for a 4-bit c (at most 11 bits).
    let shifted = _mm512_slli_epi64::<4>(t);
    let tops = _mm512_srli_epi64::<60>(t);
    let swapped = _mm512_shuffle_epi32::<_MM_PERM_BADC>(tops);
    let into_high = _mm512_maskz_mov_epi64(0xAA, swapped);
    let c = _mm512_maskz_mov_epi64(0x55, swapped);
    // 0x96 is the truth table of a ^ b ^ c.
    let partial = _mm512_ternarylogic_epi64::<0x96>(shifted, into_high, c);
    let reduced = _mm512_ternarylogic_epi64::<0x96>(
        _mm512_slli_epi64::<1>(c),
        _mm512_slli_epi64::<2>(c),
        _mm512_slli_epi64::<7>(c),
    );
    _mm512_xor_si512(partial, reduced)
}

/// XTS over whole sectors, `N` sectors per AES call; the result is identical to the portable
/// `super::xts_batches`.
///
/// `buf.len()` must be a multiple of [`SECTOR_SIZE`] (checked by the caller; a debug
/// assertion here).
#[target_feature(enable = "avx512f")]
pub(super) fn xts<C: Aes16, const N: usize>(
    data: &C,
    tweak: &C,
    iv: &IvSource,
    first: u64,
    buf: &mut [u8],
    enc: bool,
) {
    debug_assert!(buf.len().is_multiple_of(SECTOR_SIZE));

    let mut start = [Block::default(); N];
    let mut tweaks = [[[0u8; 64]; VECTORS_PER_SECTOR]; N];
    let mut sector = first;
    for batch in buf.chunks_mut(N * SECTOR_SIZE) {
        let sectors = batch.len() / SECTOR_SIZE;
        iv.fill(sector, &mut start[..sectors]);
        sector = sector.wrapping_add(sectors as u64);
        tweak.encrypt_blocks(&mut start[..sectors]);

        // Pass 1: tweak sequence, stored for pass 2 and XORed into the data.
        let tweak_slots = tweaks[..sectors].iter_mut();
        let sector_data = batch.chunks_exact_mut(SECTOR_SIZE);
        for ((s, slots), sector_data) in start.iter().zip(tweak_slots).zip(sector_data) {
            let mut lanes = [0u128; 4];
            lanes[0] = u128::from_le_bytes(s.0);
            for j in 1..4 {
                lanes[j] = mul_alpha(lanes[j - 1]);
            }
            // SAFETY: `lanes` is 64 readable bytes; the unaligned load has no alignment need.
            let mut t = unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) };
            for (slot, chunk) in slots.iter_mut().zip(sector_data.chunks_exact_mut(64)) {
                // SAFETY: `slot` and `chunk` are 64-byte arrays/slices we hold exclusively;
                // loads and stores are unaligned.
                unsafe {
                    _mm512_storeu_si512(slot.as_mut_ptr().cast(), t);
                    let d = _mm512_loadu_si512(chunk.as_ptr().cast());
                    _mm512_storeu_si512(chunk.as_mut_ptr().cast(), _mm512_xor_si512(d, t));
                }
                t = mul_alpha4(t);
            }
        }

        let blocks = as_blocks(batch);
        if enc {
            data.encrypt_blocks(blocks);
        } else {
            data.decrypt_blocks(blocks);
        }

        // Pass 2: XOR the same tweaks in again.
        for (chunk, slot) in batch.chunks_exact_mut(64).zip(tweaks.as_flattened()) {
            // SAFETY: as above, 64-byte exclusive buffers and unaligned accesses.
            unsafe {
                let d = _mm512_loadu_si512(chunk.as_ptr().cast());
                let t = _mm512_loadu_si512(slot.as_ptr().cast());
                _mm512_storeu_si512(chunk.as_mut_ptr().cast(), _mm512_xor_si512(d, t));
            }
        }
    }
}
