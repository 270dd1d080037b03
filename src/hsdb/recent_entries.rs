//! The newest Raft log entries, kept decoded in memory next to the sled log.
//!
//! The DBN reads every entry back once per follower to replicate it, right after appending it.
//! Served from sled, each read is a tree lookup plus a JSON decode of the whole batch of
//! commands; from here it is a clone. The cache always holds a *suffix* of the log (possibly
//! empty): appends extend it, truncation cuts it, purging and eviction trim its front. So a
//! range that starts at or after its first index lies wholly inside it, and anything older is
//! read from sled.
use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

/// The cache keeps at most this many bytes of (serialized) entries.
pub const RECENT_ENTRIES_MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
pub struct RecentEntries<E> {
    entries: BTreeMap<u64, (E, usize)>,
    bytes: usize,
    max_bytes: usize,
}

impl<E: Clone> RecentEntries<E> {
    pub fn new(max_bytes: usize) -> Self {
        Self { entries: BTreeMap::new(), bytes: 0, max_bytes }
    }

    /// Records an appended entry of `size` serialized bytes at `index`. An index that does not
    /// follow the newest cached one starts the suffix afresh (the first append after a restart).
    pub fn appended(&mut self, index: u64, entry: E, size: usize) {
        if self.entries.last_key_value().is_some_and(|(last, _)| *last + 1 != index) {
            self.clear();
        }
        self.entries.insert(index, (entry, size));
        self.bytes += size;
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            self.pop_first();
        }
    }

    /// Entries from `index` on were removed from the log.
    pub fn truncated(&mut self, index: u64) {
        for (_, (_, size)) in self.entries.split_off(&index) {
            self.bytes -= size;
        }
    }

    /// Entries up to and including `index` were purged from the log.
    pub fn purged(&mut self, index: u64) {
        while self.entries.first_key_value().is_some_and(|(first, _)| *first <= index) {
            self.pop_first();
        }
    }

    /// The entries of `range` when the cache can answer it whole, else `None`.
    pub fn get(&self, range: &impl RangeBounds<u64>) -> Option<Vec<E>> {
        let first = *self.entries.first_key_value()?.0;
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        (start >= first).then(|| {
            self.entries.range((range.start_bound(), range.end_bound())).map(|(_, (e, _))| e.clone()).collect()
        })
    }

    fn pop_first(&mut self) {
        if let Some((_, (_, size))) = self.entries.pop_first() {
            self.bytes -= size;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_of(indexes: std::ops::RangeInclusive<u64>, max_bytes: usize) -> RecentEntries<u64> {
        let mut cache = RecentEntries::new(max_bytes);
        for i in indexes {
            cache.appended(i, i, 10);
        }
        cache
    }

    #[test]
    fn answers_ranges_inside_the_cached_suffix() {
        let cache = cache_of(5..=9, 1000);
        assert_eq!(cache.get(&(5..8)), Some(vec![5, 6, 7]));
        assert_eq!(cache.get(&(7..)), Some(vec![7, 8, 9]));
        // Past the newest entry there is nothing in the log either.
        assert_eq!(cache.get(&(8..20)), Some(vec![8, 9]));
    }

    #[test]
    fn leaves_ranges_reaching_older_entries_to_the_log() {
        let cache = cache_of(5..=9, 1000);
        assert_eq!(cache.get(&(4..8)), None);
        assert_eq!(cache.get(&(..8)), None);
        assert_eq!(RecentEntries::<u64>::new(1000).get(&(1..3)), None);
    }

    #[test]
    fn evicts_the_oldest_entries_beyond_its_byte_budget() {
        let cache = cache_of(1..=10, 35);
        assert_eq!(cache.get(&(8..)), Some(vec![8, 9, 10]));
        assert_eq!(cache.get(&(7..)), None);
    }

    #[test]
    fn truncation_and_purge_keep_a_suffix() {
        let mut cache = cache_of(1..=10, 1000);
        cache.truncated(8);
        assert_eq!(cache.get(&(6..)), Some(vec![6, 7]));
        cache.purged(6);
        assert_eq!(cache.get(&(6..)), None);
        assert_eq!(cache.get(&(7..)), Some(vec![7]));
        cache.appended(8, 80, 10);
        assert_eq!(cache.get(&(7..)), Some(vec![7, 80]));
    }

    #[test]
    fn a_gap_restarts_the_suffix() {
        let mut cache = cache_of(1..=3, 1000);
        cache.appended(9, 9, 10);
        assert_eq!(cache.get(&(1..)), None);
        assert_eq!(cache.get(&(9..)), Some(vec![9]));
        assert_eq!(cache.bytes, 10);
    }
}
