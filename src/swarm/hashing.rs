//! Keyed hashes and cache prefetch: what the torrent table, its index and
//! the peer lists all use.

use std::sync::LazyLock;

/// Keys for the hashes of info hashes and peer addresses, random per
/// process, so that nobody can pick keys that collide.
static KEYS: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);

/// The keyed hash of `bytes`.
#[inline]
pub fn hash_of(bytes: &[u8]) -> u64 {
    KEYS.hash_one(bytes)
}

/// Asks the CPU to start loading the cache line at `p`; nothing else.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
