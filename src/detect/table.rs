//! The detector's source tables (issue 29): a map from a source's key to its state that also
//! keeps the order of last activity, like `hashlink::LinkedHashMap`, but with its entries in
//! one slab and its order as a list of slab indices. A table that reached its size reuses the
//! slot of the entry it drops, so a flood of new sources allocates nothing once the table is
//! full (a `LinkedHashMap` allocates a node per entry and frees one per eviction), and a key is
//! hashed once per probe for both tables ([`Table::hash`], the same seed in each).

use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;

/// No slot: the end of a list.
const NIL: u32 = u32::MAX;

/// A slot of the slab: an entry, or a free slot (`value` is `None`) in the free list.
struct Node<V> {
    key: IpAddr,
    prev: u32,
    next: u32,
    value: Option<V>,
}

/// A map of at most `u32::MAX - 1` entries in order of last activity, least recent first.
pub(super) struct Table<V> {
    nodes: Vec<Node<V>>,
    /// Slab indices, hashed by their node's key.
    index: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    head: u32,
    tail: u32,
    /// The first free slot, linked through `next`.
    free: u32,
    len: usize,
}

impl<V> fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("len", &self.len).finish()
    }
}

/// Where an entry is: its slot, and its key's hash.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    index: u32,
    hash: u64,
}

impl<V> Table<V> {
    /// An empty table whose keys are hashed with `seed` (two tables of one seed share hashes).
    pub(super) fn new(seed: u64) -> Self {
        Table {
            nodes: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(seed),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
        }
    }

    /// The hash of `key`, for [`Table::find`] and [`Table::push_back`].
    pub(super) fn hash(&self, key: &IpAddr) -> u64 {
        hash_with(&self.hasher, key)
    }

    /// Entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The slot of `key` (of hash `hash`), if it is here.
    pub(super) fn find(&self, hash: u64, key: &IpAddr) -> Option<Slot> {
        let nodes = &self.nodes;
        self.index
            .find(hash, |&i| nodes[i as usize].key == *key)
            .map(|&index| Slot { index, hash })
    }

    /// The entry of `key`.
    pub(super) fn get(&self, key: &IpAddr) -> Option<&V> {
        let slot = self.find(self.hash(key), key)?;
        self.nodes[slot.index as usize].value.as_ref()
    }

    /// The entry of `key`, to change (its place in the order stays).
    pub(super) fn get_mut(&mut self, key: &IpAddr) -> Option<&mut V> {
        let slot = self.find(self.hash(key), key)?;
        self.nodes[slot.index as usize].value.as_mut()
    }

    /// The entry in `slot`, made the most recently active.
    pub(super) fn touch(&mut self, slot: Slot) -> &mut V {
        if self.tail != slot.index {
            self.unlink(slot.index);
            self.link_back(slot.index);
        }
        self.value_mut(slot.index)
    }

    /// Adds `key` (of hash `hash`, not here yet) as the most recently active entry.
    pub(super) fn push_back(&mut self, hash: u64, key: IpAddr, value: V) -> &mut V {
        let index = if self.free == NIL {
            let index = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("a table holds fewer than 2^32 - 1 entries");
            self.nodes.push(Node {
                key,
                prev: NIL,
                next: NIL,
                value: Some(value),
            });
            index
        } else {
            let index = self.free;
            let node = &mut self.nodes[index as usize];
            self.free = node.next;
            node.key = key;
            node.value = Some(value);
            index
        };
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index
            .insert_unique(hash, index, |&i| hash_with(hasher, &nodes[i as usize].key));
        self.link_back(index);
        self.len += 1;
        self.value_mut(index)
    }

    /// Takes the entry in `slot` out.
    pub(super) fn remove(&mut self, slot: Slot) -> V {
        if let Ok(found) = self.index.find_entry(slot.hash, |&i| i == slot.index) {
            found.remove();
        }
        self.unlink(slot.index);
        self.len -= 1;
        let node = &mut self.nodes[slot.index as usize];
        node.next = self.free;
        self.free = slot.index;
        node.value
            .take()
            .expect("a slot in the list holds an entry")
    }

    /// The least recently active entry.
    pub(super) fn front(&self) -> Option<(&IpAddr, &V)> {
        let node = self.nodes.get(self.head as usize)?;
        Some((&node.key, node.value.as_ref()?))
    }

    /// Takes the least recently active entry out.
    pub(super) fn pop_front(&mut self) -> Option<(IpAddr, V)> {
        let key = self.nodes.get(self.head as usize)?.key;
        let slot = Slot {
            index: self.head,
            hash: self.hash(&key),
        };
        Some((key, self.remove(slot)))
    }

    /// The entries, least recently active first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&IpAddr, &V)> {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(at as usize)?;
            at = node.next;
            Some((&node.key, node.value.as_ref()?))
        })
    }

    /// Keeps only the entries `keep` says to, in their order.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&IpAddr, &V) -> bool) {
        let mut at = self.head;
        while let Some(node) = self.nodes.get(at as usize) {
            let next = node.next;
            if let Some(value) = &node.value
                && !keep(&node.key, value)
            {
                let key = node.key;
                let slot = Slot {
                    index: at,
                    hash: self.hash(&key),
                };
                self.remove(slot);
            }
            at = next;
        }
    }

    fn value_mut(&mut self, index: u32) -> &mut V {
        self.nodes[index as usize]
            .value
            .as_mut()
            .expect("a slot in the list holds an entry")
    }

    fn unlink(&mut self, index: u32) {
        let Node { prev, next, .. } = self.nodes[index as usize];
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn link_back(&mut self, index: u32) {
        let tail = self.tail;
        {
            let node = &mut self.nodes[index as usize];
            node.prev = tail;
            node.next = NIL;
        }
        match tail {
            NIL => self.head = index,
            t => self.nodes[t as usize].next = index,
        }
        self.tail = index;
    }
}

/// A key's hash: its 128 bits (an IPv4 address zero-extended; the key comparison tells the two
/// families apart).
fn hash_with(hasher: &foldhash::fast::FixedState, key: &IpAddr) -> u64 {
    match key {
        IpAddr::V4(a) => hasher.hash_one(a.to_bits()),
        IpAddr::V6(a) => hasher.hash_one(a.to_bits()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(i))
    }

    fn keys<V>(t: &Table<V>) -> Vec<IpAddr> {
        t.iter().map(|(k, _)| *k).collect()
    }

    /// The table keeps the order a `LinkedHashMap` would, through pushes, moves to the back,
    /// removals, pops and retains, and reuses freed slots.
    #[test]
    fn the_order_of_activity_is_kept_and_slots_are_reused() {
        let mut t: Table<u32> = Table::new(7);
        for i in 0..5 {
            t.push_back(t.hash(&v4(i)), v4(i), i);
        }
        let slot = t.find(t.hash(&v4(1)), &v4(1)).unwrap();
        assert_eq!(*t.touch(slot), 1);
        assert_eq!(keys(&t), [v4(0), v4(2), v4(3), v4(4), v4(1)]);
        assert_eq!(t.pop_front(), Some((v4(0), 0)));
        let slot = t.find(t.hash(&v4(3)), &v4(3)).unwrap();
        assert_eq!(t.remove(slot), 3);
        assert_eq!(keys(&t), [v4(2), v4(4), v4(1)]);
        t.push_back(t.hash(&v4(9)), v4(9), 9);
        t.push_back(t.hash(&v4(10)), v4(10), 10);
        t.push_back(t.hash(&v4(11)), v4(11), 11);
        assert_eq!(t.nodes.len(), 6, "two freed slots were reused");
        t.retain(|_, v| v % 2 == 1);
        assert_eq!(keys(&t), [v4(1), v4(9), v4(11)]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&v4(9)), Some(&9));
        assert_eq!(t.get(&v4(2)), None);
        assert_eq!(t.front(), Some((&v4(1), &1)));
        let ipv6: IpAddr = "::203.0.113.1".parse().unwrap();
        assert_eq!(t.get(&ipv6), None, "an IPv6 key is not its IPv4 twin");
        while t.pop_front().is_some() {}
        assert_eq!((t.len(), t.front()), (0, None));
    }

    /// A full table that drops its oldest for each new key never grows its slab.
    #[test]
    fn churn_at_capacity_allocates_no_slot() {
        let mut t: Table<u32> = Table::new(1);
        for i in 0..100_000u32 {
            if t.len() >= 64 {
                t.pop_front();
            }
            t.push_back(t.hash(&v4(i)), v4(i), i);
        }
        assert_eq!(t.nodes.len(), 64);
        assert_eq!(
            keys(&t),
            (100_000 - 64..100_000).map(v4).collect::<Vec<_>>()
        );
    }
}
