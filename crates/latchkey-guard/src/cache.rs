//! A small bounded map whose entries expire: the verified-token cache and similar uses.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use parking_lot::RwLock;

/// A bounded cache whose entries carry their own deadline.
///
/// Reads take a shared lock, so concurrent lookups do not serialize. When the cache is full an
/// insert first drops expired entries and, if that frees nothing, empties the cache: simple,
/// bounded, and a miss only costs a recomputation.
pub struct TtlCache<K, V> {
    entries: RwLock<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache holding at most `capacity` entries.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
        }
    }

    /// The value under `key`, unless it has expired.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.read();
        let (value, deadline) = entries.get(key)?;
        (Instant::now() < *deadline).then(|| value.clone())
    }

    /// Stores `value` under `key` until `deadline`.
    pub fn insert(&self, key: K, value: V, deadline: Instant) {
        let mut entries = self.entries.write();
        if entries.len() >= self.capacity {
            let now = Instant::now();
            entries.retain(|_, (_, d)| *d > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, deadline));
    }

    /// Removes `key`.
    pub fn remove(&self, key: &K) {
        self.entries.write().remove(key);
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.entries.write().clear();
    }

    /// How many entries are held, expired ones included.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_expired_entry_is_not_returned() {
        let cache = TtlCache::new(4);
        cache.insert(1, "a", Instant::now() - Duration::from_secs(1));
        cache.insert(2, "b", Instant::now() + Duration::from_secs(60));
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2), Some("b"));
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = TtlCache::new(3);
        for i in 0..10 {
            cache.insert(i, i, Instant::now() + Duration::from_secs(60));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&9), Some(9));
    }
}
