//! Space-Saving heavy hitters (Metwally, Agrawal, El Abbadi 2005) in its Stream-Summary
//! form: O(1) per update, no allocation after construction.
//!
//! `capacity` counters. A key already counted is incremented; a new key takes a free
//! counter, or replaces a key with the smallest count and inherits that count as its
//! `error`. So every count overestimates its key's true count by at most `error`, the
//! counts always add up to the keys observed, and any key seen more than
//! `observed / capacity` times is held.
//!
//! Counters with equal counts share a bucket; buckets form a list in increasing count
//! order, so the smallest count is the list's head and an increment moves a counter to
//! the next bucket (or makes one). Keys are found through a small open-addressing table
//! (linear probing, backward-shift deletion) over the counter indices.

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u64,
    count: u64,
    error: u64,
    bucket: u32,
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: u64,
    head: u32,
    prev: u32,
    next: u32,
}

/// One key's count: the true count lies in `count - error ..= count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyCount {
    /// The key's hash.
    pub key: u64,
    /// Its counted occurrences, an overestimate by at most `error`.
    pub count: u64,
    /// The most `count` may overstate.
    pub error: u64,
}

/// A Space-Saving summary of at most `capacity` keys.
#[derive(Debug, Clone)]
pub struct TopK {
    cap: usize,
    slots: Vec<Slot>,
    buckets: Vec<Bucket>,
    free: Vec<u32>,
    /// The bucket with the smallest count.
    min: u32,
    /// Open addressing over slot indices; its length is a power of two >= 2 x capacity.
    index: Vec<u32>,
    observed: u64,
}

impl TopK {
    /// `capacity` is clamped to 1..=65,536.
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.clamp(1, 1 << 16);
        Self {
            cap,
            slots: Vec::with_capacity(cap),
            buckets: Vec::with_capacity(cap),
            free: Vec::with_capacity(cap),
            min: NIL,
            index: vec![NIL; (2 * cap).next_power_of_two()],
            observed: 0,
        }
    }

    /// The most keys held.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Keys observed since the last clear.
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// The smallest count held when every counter is taken (a key not held was seen at
    /// most this often), else 0.
    pub fn floor(&self) -> u64 {
        if self.slots.len() < self.cap || self.min == NIL {
            0
        } else {
            self.buckets[self.min as usize].count
        }
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.buckets.clear();
        self.free.clear();
        self.index.fill(NIL);
        self.min = NIL;
        self.observed = 0;
    }

    /// Counts one occurrence of `key`: O(1), no allocation.
    pub fn observe(&mut self, key: u64) {
        self.observed += 1;
        if let Some(s) = self.find(key) {
            self.increment(s);
            return;
        }
        if self.slots.len() < self.cap {
            let s = self.slots.len() as u32;
            self.slots.push(Slot {
                key,
                count: 0,
                error: 0,
                bucket: NIL,
                prev: NIL,
                next: NIL,
            });
            self.index_insert(key, s);
            let b = if self.min != NIL && self.buckets[self.min as usize].count == 1 {
                self.min
            } else {
                self.new_bucket(1, NIL)
            };
            self.attach(s, b);
            self.slots[s as usize].count = 1;
            return;
        }
        // Replace a key with the smallest count.
        let s = self.buckets[self.min as usize].head;
        let old = self.slots[s as usize].key;
        self.index_remove(old);
        let slot = &mut self.slots[s as usize];
        slot.key = key;
        slot.error = slot.count;
        self.index_insert(key, s);
        self.increment(s);
    }

    /// The held keys, largest count first.
    pub fn top(&self) -> Vec<KeyCount> {
        let mut v: Vec<KeyCount> = self
            .slots
            .iter()
            .map(|s| KeyCount {
                key: s.key,
                count: s.count,
                error: s.error,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        v
    }

    fn increment(&mut self, s: u32) {
        let b = self.slots[s as usize].bucket;
        let c = self.buckets[b as usize].count + 1;
        let nb = self.buckets[b as usize].next;
        let next_fits = nb != NIL && self.buckets[nb as usize].count == c;
        let alone = {
            let slot = &self.slots[s as usize];
            slot.prev == NIL && slot.next == NIL
        };
        self.slots[s as usize].count = c;
        if alone && !next_fits {
            self.buckets[b as usize].count = c;
            return;
        }
        let target = if next_fits { nb } else { self.new_bucket(c, b) };
        self.detach(s);
        self.attach(s, target);
    }

    /// A bucket of `count`, linked after `after` (or at the head when NIL).
    fn new_bucket(&mut self, count: u64, after: u32) -> u32 {
        let next = if after == NIL {
            self.min
        } else {
            self.buckets[after as usize].next
        };
        let bucket = Bucket {
            count,
            head: NIL,
            prev: after,
            next,
        };
        let b = match self.free.pop() {
            Some(b) => {
                self.buckets[b as usize] = bucket;
                b
            }
            None => {
                self.buckets.push(bucket);
                (self.buckets.len() - 1) as u32
            }
        };
        if next != NIL {
            self.buckets[next as usize].prev = b;
        }
        if after == NIL {
            self.min = b;
        } else {
            self.buckets[after as usize].next = b;
        }
        b
    }

    fn attach(&mut self, s: u32, b: u32) {
        let head = self.buckets[b as usize].head;
        let slot = &mut self.slots[s as usize];
        slot.bucket = b;
        slot.prev = NIL;
        slot.next = head;
        if head != NIL {
            self.slots[head as usize].prev = s;
        }
        self.buckets[b as usize].head = s;
    }

    /// Unlinks slot `s` from its bucket, and the bucket from the list if it empties.
    fn detach(&mut self, s: u32) {
        let Slot {
            bucket, prev, next, ..
        } = self.slots[s as usize];
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.buckets[bucket as usize].head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        }
        let Bucket {
            head,
            prev: bp,
            next: bn,
            ..
        } = self.buckets[bucket as usize];
        if head != NIL {
            return;
        }
        if bp != NIL {
            self.buckets[bp as usize].next = bn;
        } else {
            self.min = bn;
        }
        if bn != NIL {
            self.buckets[bn as usize].prev = bp;
        }
        self.free.push(bucket);
    }

    fn home(&self, key: u64) -> usize {
        (super::hll::mix(key) as usize) & (self.index.len() - 1)
    }

    fn find(&self, key: u64) -> Option<u32> {
        let mask = self.index.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = self.index[i];
            if s == NIL {
                return None;
            }
            if self.slots[s as usize].key == key {
                return Some(s);
            }
            i = (i + 1) & mask;
        }
    }

    fn index_insert(&mut self, key: u64, s: u32) {
        let mask = self.index.len() - 1;
        let mut i = self.home(key);
        while self.index[i] != NIL {
            i = (i + 1) & mask;
        }
        self.index[i] = s;
    }

    /// Removes `key`, shifting later entries of its probe run back so lookups still
    /// find them.
    fn index_remove(&mut self, key: u64) {
        let mask = self.index.len() - 1;
        let mut i = self.home(key);
        while self.index[i] != NIL && self.slots[self.index[i] as usize].key != key {
            i = (i + 1) & mask;
        }
        if self.index[i] == NIL {
            return;
        }
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.index[j] != NIL {
            let home = self.home(self.slots[self.index[j] as usize].key);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.index[hole] = self.index[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.index[hole] = NIL;
    }

    /// Capacities of the inner vectors (tests: nothing grows after construction).
    #[cfg(test)]
    pub(crate) fn capacities(&self) -> [usize; 4] {
        [
            self.slots.capacity(),
            self.buckets.capacity(),
            self.free.capacity(),
            self.index.capacity(),
        ]
    }

    /// Checks the structure's invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut b = self.min;
        let mut last = 0;
        let mut seen = 0;
        while b != NIL {
            let bk = self.buckets[b as usize];
            assert!(bk.count > last, "buckets increase");
            last = bk.count;
            let mut s = bk.head;
            assert!(s != NIL, "no empty bucket in the list");
            while s != NIL {
                let sl = self.slots[s as usize];
                assert_eq!(sl.count, bk.count);
                assert_eq!(sl.bucket, b);
                assert_eq!(self.find(sl.key), Some(s));
                seen += 1;
                s = sl.next;
            }
            b = bk.next;
        }
        assert_eq!(seen, self.slots.len());
        let total: u64 = self.slots.iter().map(|s| s.count).sum();
        assert_eq!(total, self.observed, "counts add up to the keys observed");
    }
}
