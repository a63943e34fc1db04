//! "Did you mean ...?" for misspelled keys, event codes and job names.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
/// Case differences alone always match (`exitsuccess` → `exitSuccess`).
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // At most three edits are ever suggested, and the distance is at least
    // the difference in length: skip the (quadratic) distance for words
    // that cannot be close, such as a generated key a megabyte long.
    let word_len = word.chars().count();
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == word || candidate.chars().count().abs_diff(word_len) > 3 {
            continue;
        }
        let distance = strsim::damerau_levenshtein(&lower, &candidate.to_lowercase());
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    let (distance, candidate) = best?;
    let len = word.chars().count().max(candidate.chars().count());
    // One edit for short words, more for long ones; never a wild guess.
    let allowed = match len {
        0..=3 => 1,
        4..=9 => 2,
        _ => 3,
    };
    (distance <= allowed && distance < len).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_likely_typos_only() {
        let keys = [
            "name",
            "exec",
            "restarts",
            "ttl",
            "interval",
            "initial_status",
        ];
        assert_eq!(closest("restart", keys), Some("restarts"));
        assert_eq!(closest("tll", keys), Some("ttl"));
        assert_eq!(closest("Name", keys), Some("name"));
        assert_eq!(closest("intervall", keys), Some("interval"));
        assert_eq!(closest("initialStatus", keys), Some("initial_status"));
        assert_eq!(closest("frobnicate", keys), None);
        assert_eq!(closest("x", keys), None);
        assert_eq!(closest("name", keys), None);
    }
}
