//! The open-file limit. Every connection, a client's or a receiver's, is a file descriptor, and
//! the soft limit that processes usually start with (1024) is below what herald's own defaults
//! can use (`HERALD_MAX_CONNECTIONS` clients and `HERALD_MAX_IN_FLIGHT` attempts at once).

/// The open-file limit before and after [`raise_open_files`]; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub was: Option<u64>,
    pub now: Option<u64>,
}

/// Raises this process's soft limit on open files to its hard limit (which an unprivileged
/// process may do; the hard limit itself is the operator's, e.g. systemd's `LimitNOFILE=`).
#[cfg(target_os = "linux")]
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
    }
    Ok(OpenFiles {
        was: limit.current,
        now: getrlimit(Resource::Nofile).current,
    })
}

/// Elsewhere the limit is left as it is.
#[cfg(not(target_os = "linux"))]
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let start = getrlimit(Resource::Nofile);
        if let Some(hard) = start.maximum {
            // One below the hard limit: a soft limit to raise, that no other test notices.
            let lowered = Rlimit {
                current: Some(hard - 1),
                maximum: Some(hard),
            };
            setrlimit(Resource::Nofile, lowered).expect("lower the soft limit");
        }
        let files = raise_open_files().expect("raise");
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
        assert_eq!(files.now, limit.maximum);
        if let Some(hard) = start.maximum {
            assert_eq!(files.was, Some(hard - 1));
        }
    }
}
