//! The detector's source tables (issue 29): the main table and probation, each a map from a
//! source's key to its state in order of last activity, like a `hashlink::LinkedHashMap`, but
//! both in one slab with one index: a probe looks its key up once, a promotion moves a slot
//! from one list to the other (nothing is copied or rehashed), and a full list reuses the slot
//! of the entry it drops, so a flood of new sources allocates nothing once the tables are full
//! (a `LinkedHashMap` allocates a node per entry and frees one per eviction).

use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;

/// No slot: the end of a list.
const NIL: u32 = u32::MAX;

/// One of the two lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum List {
    /// Sources with two probes or more.
    Main = 0,
    /// Sources with one probe so far.
    Probation = 1,
}

/// A slot of the slab: an entry of a list, or a free slot (`value` is `None`) in the free list.
struct Node<V> {
    key: IpAddr,
    list: List,
    prev: u32,
    next: u32,
    value: Option<V>,
}

/// The ends and length of a list.
#[derive(Clone, Copy, Debug)]
struct Ends {
    head: u32,
    tail: u32,
    len: usize,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
    len: 0,
};

/// Two maps of distinct keys, at most `u32::MAX - 1` entries in all, each in order of last
/// activity, least recent first.
pub(super) struct Table<V> {
    nodes: Vec<Node<V>>,
    /// Slab indices, hashed by their node's key.
    index: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    lists: [Ends; 2],
    /// The first free slot, linked through `next`.
    free: u32,
}

impl<V> fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("main", &self.len(List::Main))
            .field("probation", &self.len(List::Probation))
            .finish()
    }
}

/// Where an entry is: its slot, its list, and its key's hash.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    index: u32,
    hash: u64,
    /// The list it is in.
    pub(super) list: List,
}

impl<V> Table<V> {
    /// Two empty lists, whose keys are hashed with `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Table {
            nodes: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(seed),
            lists: [EMPTY; 2],
            free: NIL,
        }
    }

    /// The hash of `key`, for [`Table::find`] and [`Table::push_back`].
    pub(super) fn hash(&self, key: &IpAddr) -> u64 {
        hash_with(&self.hasher, key)
    }

    /// Slots allocated, in use or free: what the slab weighs (tests of its bound).
    #[cfg(test)]
    pub(super) fn slots(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes the index has allocated (tests of its bound).
    #[cfg(test)]
    pub(super) fn index_bytes(&self) -> usize {
        self.index.allocation_size()
    }

    /// Entries of `list`.
    pub(super) fn len(&self, list: List) -> usize {
        self.lists[list as usize].len
    }

    /// The slot of `key` (of hash `hash`), in either list, if it is here.
    pub(super) fn find(&self, hash: u64, key: &IpAddr) -> Option<Slot> {
        let nodes = &self.nodes;
        self.index
            .find(hash, |&i| nodes[i as usize].key == *key)
            .map(|&index| Slot {
                index,
                hash,
                list: nodes[index as usize].list,
            })
    }

    /// The entry of `key`, in either list.
    pub(super) fn get(&self, key: &IpAddr) -> Option<&V> {
        let slot = self.find(self.hash(key), key)?;
        self.nodes[slot.index as usize].value.as_ref()
    }

    /// The entry of `key`, in either list, to change (its place in the order stays).
    pub(super) fn get_mut(&mut self, key: &IpAddr) -> Option<&mut V> {
        let slot = self.find(self.hash(key), key)?;
        self.nodes[slot.index as usize].value.as_mut()
    }

    /// The entry in `slot`, made the most recently active of `list` (moved there from its own
    /// list if that is another).
    pub(super) fn touch(&mut self, slot: Slot, list: List) -> &mut V {
        if slot.list != list || self.lists[list as usize].tail != slot.index {
            self.unlink(slot.index);
            self.link_back(slot.index, list);
        }
        self.value_mut(slot.index)
    }

    /// Adds `key` (of hash `hash`, in neither list yet) as the most recently active entry of
    /// `list`.
    pub(super) fn push_back(&mut self, list: List, hash: u64, key: IpAddr, value: V) -> &mut V {
        let index = if self.free == NIL {
            let index = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("a table holds fewer than 2^32 - 1 entries");
            self.nodes.push(Node {
                key,
                list,
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
        self.link_back(index, list);
        self.value_mut(index)
    }

    /// Takes the entry in `slot` out.
    pub(super) fn remove(&mut self, slot: Slot) -> V {
        if let Ok(found) = self.index.find_entry(slot.hash, |&i| i == slot.index) {
            found.remove();
        }
        self.unlink(slot.index);
        let node = &mut self.nodes[slot.index as usize];
        node.next = self.free;
        self.free = slot.index;
        node.value
            .take()
            .expect("a slot in the list holds an entry")
    }

    /// The least recently active entry of `list`.
    pub(super) fn front(&self, list: List) -> Option<(&IpAddr, &V)> {
        let node = self.nodes.get(self.lists[list as usize].head as usize)?;
        Some((&node.key, node.value.as_ref()?))
    }

    /// Takes the least recently active entry of `list` out.
    pub(super) fn pop_front(&mut self, list: List) -> Option<(IpAddr, V)> {
        let index = self.lists[list as usize].head;
        let key = self.nodes.get(index as usize)?.key;
        let slot = Slot {
            index,
            hash: self.hash(&key),
            list,
        };
        Some((key, self.remove(slot)))
    }

    /// The entries of `list`, least recently active first.
    pub(super) fn iter(&self, list: List) -> impl Iterator<Item = (&IpAddr, &V)> {
        let mut at = self.lists[list as usize].head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(at as usize)?;
            at = node.next;
            Some((&node.key, node.value.as_ref()?))
        })
    }

    /// Keeps only the entries of `list` that `keep` says to, in their order.
    pub(super) fn retain(&mut self, list: List, mut keep: impl FnMut(&IpAddr, &V) -> bool) {
        let mut at = self.lists[list as usize].head;
        while let Some(node) = self.nodes.get(at as usize) {
            let next = node.next;
            if let Some(value) = &node.value
                && !keep(&node.key, value)
            {
                let key = node.key;
                let slot = Slot {
                    index: at,
                    hash: self.hash(&key),
                    list,
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

    /// Takes the slot `index` out of its list.
    fn unlink(&mut self, index: u32) {
        let Node {
            prev, next, list, ..
        } = self.nodes[index as usize];
        let ends = &mut self.lists[list as usize];
        ends.len -= 1;
        match prev {
            NIL => ends.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => ends.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    /// Puts the slot `index` (in no list) at the back of `list`.
    fn link_back(&mut self, index: u32, list: List) {
        let ends = &mut self.lists[list as usize];
        let tail = ends.tail;
        ends.tail = index;
        ends.len += 1;
        if tail == NIL {
            ends.head = index;
        } else {
            self.nodes[tail as usize].next = index;
        }
        let node = &mut self.nodes[index as usize];
        node.prev = tail;
        node.next = NIL;
        node.list = list;
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
    use super::List::{Main, Probation};
    use super::*;

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(i))
    }

    fn keys<V>(t: &Table<V>, list: List) -> Vec<IpAddr> {
        t.iter(list).map(|(k, _)| *k).collect()
    }

    /// Each list keeps the order a `LinkedHashMap` would, through pushes, moves to the back,
    /// removals, pops and retains, and freed slots are reused; a slot moves between lists.
    #[test]
    fn the_order_of_activity_is_kept_and_slots_are_reused() {
        let mut t: Table<u32> = Table::new(7);
        for i in 0..5 {
            t.push_back(Main, t.hash(&v4(i)), v4(i), i);
        }
        let slot = t.find(t.hash(&v4(1)), &v4(1)).unwrap();
        assert_eq!(*t.touch(slot, Main), 1);
        assert_eq!(keys(&t, Main), [v4(0), v4(2), v4(3), v4(4), v4(1)]);
        assert_eq!(t.pop_front(Main), Some((v4(0), 0)));
        let slot = t.find(t.hash(&v4(3)), &v4(3)).unwrap();
        assert_eq!(t.remove(slot), 3);
        assert_eq!(keys(&t, Main), [v4(2), v4(4), v4(1)]);
        t.push_back(Main, t.hash(&v4(9)), v4(9), 9);
        t.push_back(Main, t.hash(&v4(10)), v4(10), 10);
        t.push_back(Main, t.hash(&v4(11)), v4(11), 11);
        assert_eq!(t.nodes.len(), 6, "two freed slots were reused");
        t.retain(Main, |_, v| v % 2 == 1);
        assert_eq!(keys(&t, Main), [v4(1), v4(9), v4(11)]);
        assert_eq!(t.len(Main), 3);
        assert_eq!(t.get(&v4(9)), Some(&9));
        assert_eq!(t.get(&v4(2)), None);
        assert_eq!(t.front(Main), Some((&v4(1), &1)));
        let ipv6: IpAddr = "::203.0.113.1".parse().unwrap();
        assert_eq!(t.get(&ipv6), None, "an IPv6 key is not its IPv4 twin");
        // Promotion: a slot of probation moves to the back of the main list, and back.
        t.push_back(Probation, t.hash(&v4(20)), v4(20), 20);
        let slot = t.find(t.hash(&v4(20)), &v4(20)).unwrap();
        assert_eq!(slot.list, Probation);
        assert_eq!((t.len(Main), t.len(Probation)), (3, 1));
        assert_eq!(*t.touch(slot, Main), 20);
        assert_eq!((t.len(Main), t.len(Probation)), (4, 0));
        assert_eq!(keys(&t, Main), [v4(1), v4(9), v4(11), v4(20)]);
        assert_eq!(t.find(t.hash(&v4(20)), &v4(20)).unwrap().list, Main);
        let slot = t.find(t.hash(&v4(9)), &v4(9)).unwrap();
        t.touch(slot, Probation);
        assert_eq!(keys(&t, Probation), [v4(9)]);
        assert_eq!(t.front(Probation), Some((&v4(9), &9)));
        assert_eq!(keys(&t, Main), [v4(1), v4(11), v4(20)]);
        while t.pop_front(Main).is_some() {}
        assert_eq!((t.len(Main), t.front(Main)), (0, None));
        assert_eq!(t.pop_front(Probation), Some((v4(9), 9)));
        assert_eq!(t.len(Probation), 0);
    }

    /// A full table that drops its oldest for each new key never grows its slab.
    #[test]
    fn churn_at_capacity_allocates_no_slot() {
        let mut t: Table<u32> = Table::new(1);
        for i in 0..100_000u32 {
            if t.len(Main) >= 64 {
                t.pop_front(Main);
            }
            t.push_back(Main, t.hash(&v4(i)), v4(i), i);
        }
        assert_eq!(t.nodes.len(), 64);
        assert_eq!(
            keys(&t, Main),
            (100_000 - 64..100_000).map(v4).collect::<Vec<_>>()
        );
    }
}
