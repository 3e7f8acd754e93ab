//! The process's transparent huge pages switch: a process setting, for
//! the command and the memory benchmark alike.

use std::io;

/// Allows or forbids transparent huge pages for the whole process
/// (`PR_SET_THP_DISABLE`). mimalloc asks for them (`MADV_HUGEPAGE`) on its
/// arenas, and then a 2 MiB page is resident as soon as one byte of it is
/// touched: under the default UDP load that was 90 MiB resident against
/// 70 MiB without, at the same responses per second (see tuning.md). The
/// `bittorrent-tracker` command forbids them unless `huge_pages` is set;
/// `Server::start` leaves the process's setting alone.
pub fn allow_huge_pages(on: bool) -> io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, libc::c_ulong::from(!on), 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
