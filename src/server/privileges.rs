//! Dropping root: the sockets are bound first (port 80 or 443 needs root
//! or CAP_NET_BIND_SERVICE), then the process becomes `--user`/`--group`
//! before any worker serves a request.

use std::ffi::CString;

fn name(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("`{s}`: a name cannot hold a NUL byte"))
}

/// The uid and primary gid of a user, by name or number.
fn user(spec: &str) -> Result<(libc::uid_t, libc::gid_t), String> {
    let c = name(spec)?;
    // SAFETY: passwd is plain data (null pointers, zero ids); getpwnam_r fills it.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to live memory of the stated size; getpwnam_r
    // writes only into `pw` and `buf`.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() {
        return Ok((pw.pw_uid, pw.pw_gid));
    }
    match spec.parse::<libc::uid_t>() {
        // A number with no passwd entry: that uid, and a group of the same number.
        Ok(uid) => Ok((uid, uid)),
        Err(_) => Err(format!("--user: no user `{spec}` on this system")),
    }
}

/// The gid of a group, by name or number.
fn group(spec: &str) -> Result<libc::gid_t, String> {
    let c = name(spec)?;
    // SAFETY: group is plain data (null pointers, zero id); getgrnam_r fills it.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as for getpwnam_r above.
    let rc =
        unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() {
        return Ok(gr.gr_gid);
    }
    spec.parse::<libc::gid_t>()
        .map_err(|_| format!("--group: no group `{spec}` on this system"))
}

/// Becomes `user` (and `group`, or the user's own group). Needs root;
/// refuses to go on if root could be regained.
pub(crate) fn drop_to(user_spec: Option<&str>, group_spec: Option<&str>) -> Result<(), String> {
    if user_spec.is_none() && group_spec.is_none() {
        return Ok(());
    }
    // SAFETY: plain syscalls without memory arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Err("--user and --group need the tracker to be started as root (it binds, then drops to them)".into());
    }
    let (uid, primary) = match user_spec {
        Some(u) => {
            let (uid, gid) = user(u)?;
            (Some(uid), gid)
        }
        None => (None, 0),
    };
    let gid = match group_spec {
        Some(g) => group(g)?,
        None => primary,
    };
    // SAFETY: setgroups reads one gid from a live local; the rest take no pointers.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(format!("setgroups: {}", std::io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!(
                "setgid({gid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        if let Some(uid) = uid {
            if libc::setuid(uid) != 0 {
                return Err(format!(
                    "setuid({uid}): {}",
                    std::io::Error::last_os_error()
                ));
            }
            if uid != 0 && libc::setuid(0) == 0 {
                return Err(
                    "root could be regained after dropping privileges; refusing to run".into(),
                );
            }
        }
    }
    Ok(())
}
