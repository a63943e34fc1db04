//! Keeping PID 1's resident memory small once it has started.
//!
//! Most of an idle autopilot's resident pages are not its data but its own
//! code: the kernel maps file pages 64 KiB at a time around each fault
//! ("fault-around"), so the code that reads the config, renders templates
//! and starts the jobs, run once, stays mapped for the container's life.
//! After start-up, [`release_startup_code`] drops those mappings and asks
//! the kernel to map code back one page at a time, on use. The pages stay
//! in the page cache, so a page used again costs a minor fault, no disk read.
//!
//! Only private, read-only, file-backed mappings none of whose pages were
//! ever copied on write are touched (code, constants): dropping their pages
//! cannot change what the program sees, as they fault back in from the same
//! file. Relocated data (written by the loader, then made read-only) has
//! copied pages and is left alone. The kernel drops such clean file pages
//! under memory pressure anyway; this only does it early, for our mappings.

use std::fs;

/// Drops the resident pages of every read-only file mapping never written
/// (autopilot's code and constants, its libraries'). Returns how many KiB
/// were resident there; failures only skip the mapping.
pub fn release_startup_code() -> u64 {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released_kib = 0;
    for mapping in droppable(&smaps) {
        let (addr, len) = (
            mapping.start as *mut libc::c_void,
            mapping.end - mapping.start,
        );
        // SAFETY: the range is a whole mapping of this process, read from
        // /proc/self/smaps just now: private, read-only and file-backed, with
        // no copied-on-write page, so it holds exactly the file's contents
        // and cannot be written without an mprotect (autopilot makes none).
        // MADV_DONTNEED only drops page-table entries, which fault back in
        // with the same contents.
        if unsafe { libc::madvise(addr, len, libc::MADV_DONTNEED) } == 0 {
            released_kib += mapping.rss_kib;
        }
    }
    released_kib
}

#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    rss_kib: u64,
}

/// The mappings of an smaps text that can be dropped safely, with pages
/// resident.
fn droppable(smaps: &str) -> Vec<Mapping> {
    let mut found = Vec::new();
    // The mapping being read: its range, whether its kind qualifies, its
    // resident and copied-on-write sizes.
    let mut current: Option<(usize, usize, bool, u64, u64)> = None;
    let mut flush = |m: Option<(usize, usize, bool, u64, u64)>| {
        if let Some((start, end, read_only_file, rss, anonymous)) = m
            && read_only_file
            && rss > 0
            && anonymous == 0
        {
            found.push(Mapping {
                start,
                end,
                rss_kib: rss,
            });
        }
    };
    for line in smaps.lines() {
        if let Some((start, end, read_only_file)) = header(line) {
            flush(current.take());
            current = Some((start, end, read_only_file, 0, u64::MAX));
            continue;
        }
        let Some(m) = current.as_mut() else { continue };
        if let Some(v) = line.strip_prefix("Rss:") {
            m.3 = kib(v);
        } else if let Some(v) = line.strip_prefix("Anonymous:") {
            m.4 = kib(v);
        }
    }
    flush(current.take());
    found
}

/// A mapping's header line (`55d0-55d1 r-xp 0001f000 08:01 1234 /path`):
/// its range, and whether it is private, read-only and file-backed.
fn header(line: &str) -> Option<(usize, usize, bool)> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let path = fields.nth(3).unwrap_or("");
    let read_only_file = matches!(perms, "r-xp" | "r--p") && path.starts_with('/');
    (end > start).then_some((start, end, read_only_file))
}

/// `   1234 kB` as a number of KiB (`u64::MAX` when unreadable: not safe).
fn kib(value: &str) -> u64 {
    value
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5600-5700 r--p 00000000 08:01 1234    /usr/bin/autopilot
Size:                 64 kB
Rss:                  12 kB
Anonymous:             0 kB
5700-5800 r-xp 00001000 08:01 1234    /usr/bin/autopilot
Rss:                  40 kB
Anonymous:             0 kB
5800-5900 r--p 00002000 08:01 1234    /usr/bin/autopilot
Rss:                   8 kB
Anonymous:             4 kB
5900-5a00 rw-p 00003000 08:01 1234    /usr/bin/autopilot
Rss:                   8 kB
Anonymous:             8 kB
5a00-5b00 r-xp 00000000 08:01 1234    /usr/bin/autopilot
Rss:                   0 kB
Anonymous:             0 kB
7ffc-7ffd r-xp 00000000 00:00 0                  [vdso]
Rss:                   4 kB
Anonymous:             0 kB
7ffd-7ffe rw-p 00000000 00:00 0 
Rss:                   4 kB
Anonymous:             4 kB
";

    #[test]
    fn only_read_only_file_mappings_never_written_are_dropped() {
        assert_eq!(
            droppable(SMAPS),
            [
                Mapping {
                    start: 0x5600,
                    end: 0x5700,
                    rss_kib: 12
                },
                Mapping {
                    start: 0x5700,
                    end: 0x5800,
                    rss_kib: 40
                },
            ]
        );
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_not_dropped() {
        let smaps = "5600-5700 r-xp 00000000 08:01 1234 /bin/x\nRss:  12 kB\n";
        assert!(droppable(smaps).is_empty());
    }

    #[test]
    fn releasing_code_keeps_the_program_running() {
        let released = release_startup_code();
        assert!(released > 0, "the test binary's own code was resident");
        // Code and constants still work (faulted back in on use).
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
