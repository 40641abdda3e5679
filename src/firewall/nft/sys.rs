//! The few libnftnl calls the safe `nftnl` API does not cover: set flags and size, set elements
//! with their own timeout, element and set messages with chosen flags, and parsing what the
//! kernel sends back (set elements, sets, rules, chains). With `capture/raw/sys.rs` (the packet
//! socket's ring) and `process.rs` (a child's setup between fork and exec, and `-D`'s fork,
//! which [`fork`](crate::process::fork) refuses unless it counts one thread right before it),
//! the only `unsafe` in scansentry; each block says why it holds, and where an invariant matters beyond
//! one block, a constructor enforces it: [`SetMsg::new`] refuses a message that would overrun
//! the batch buffer, [`Key`] cannot be longer than 16 bytes, [`NftName`] holds no NUL.
//!
//! Invariants the rest of the module relies on:
//! - every libnftnl object is owned by exactly one wrapper whose `Drop` frees it;
//! - message buffers are `u32`-aligned and at least `nftnl::nft_nlmsg_maxsize()` bytes, as
//!   `nftnl_nlmsg_build_hdr` and the `*_nlmsg_build_payload` functions require;
//! - messages handed to the `*_nlmsg_parse` functions are copied into `u32`-aligned buffers
//!   first, and their length fields have been checked against the bytes present.
#![allow(
    unsafe_code,
    reason = "this module is the one FFI boundary to libnftnl"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "libnftnl takes its small u32 attribute and message constants as u16"
)]

use std::ffi::{CStr, c_char, c_void};
use std::ptr::NonNull;
use std::time::Duration;

use nftnl::MsgType;
use nftnl_sys as sys;
use nftnl_sys::libc;

use crate::config::nft::NftName;

/// An `nftnl_set`: names a set, carries its properties (for NEWSET), its elements (for
/// NEWSETELEM/DELSETELEM), or what the kernel said about it (after parsing).
pub struct SetHandle(NonNull<sys::nftnl_set>);

/// The key of an element of one of our sets: an IPv4 or IPv6 address in network order. At most
/// 16 bytes by construction, well within the 64-byte data register libnftnl copies keys into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// An `ipv4_addr` key.
    V4([u8; 4]),
    /// An `ipv6_addr` key.
    V6([u8; 16]),
}

impl Key {
    /// The key's bytes, network order.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Key::V4(b) => b,
            Key::V6(b) => b,
        }
    }
}

/// More elements than one message can carry (at most `MAX_ELEMENTS_PER_MSG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{count} set elements do not fit one netlink message (at most {MAX_ELEMENTS_PER_MSG}); \
     this is a bug in scansentry's message packing"
)]
pub struct TooManyElements {
    /// How many the set held (counting stops one past the limit).
    pub count: usize,
}

/// One element of a set as the kernel reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElemInfo {
    /// The key bytes (network order).
    pub key: Vec<u8>,
    /// `NFT_SET_ELEM_INTERVAL_END` and friends.
    pub flags: u32,
    /// The element's own timeout, if it differs from the set's default.
    pub timeout: Option<Duration>,
    /// Time left before it expires.
    pub expiration: Option<Duration>,
}

impl SetHandle {
    /// A set named `table`/`name` in `family` (an `NFPROTO_*`).
    pub fn new(family: u32, table: &NftName, name: &NftName) -> Self {
        let (table, name) = (table.to_c(), name.to_c());
        // SAFETY: nftnl_set_alloc has no preconditions; a null return (out of memory) aborts
        // below, as nftnl itself does.
        let raw = unsafe { sys::nftnl_set_alloc() };
        let set = NonNull::new(raw).unwrap_or_else(|| std::process::abort());
        // SAFETY: `set` is a valid, exclusively owned nftnl_set; the string attributes are
        // copied by libnftnl (strdup), so the borrowed CStrs need not outlive the call.
        unsafe {
            sys::nftnl_set_set_u32(set.as_ptr(), sys::NFTNL_SET_FAMILY as u16, family);
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_NAME as u16, name.as_ptr());
        }
        SetHandle(set)
    }

    /// An empty set object, to parse a kernel message into.
    pub fn empty() -> Self {
        // SAFETY: as in `new`.
        let raw = unsafe { sys::nftnl_set_alloc() };
        SetHandle(NonNull::new(raw).unwrap_or_else(|| std::process::abort()))
    }

    /// Sets a `u32` attribute (`NFTNL_SET_FLAGS`, `_KEY_TYPE`, `_KEY_LEN`, `_ID`,
    /// `_DESC_SIZE`, …).
    pub fn set_u32(&mut self, attr: u32, value: u32) {
        // SAFETY: valid owned set; u32 attributes are copied by value.
        unsafe { sys::nftnl_set_set_u32(self.0.as_ptr(), attr as u16, value) }
    }

    /// A `u32` attribute, if the kernel (or we) set it.
    pub fn get_u32(&self, attr: u32) -> Option<u32> {
        // SAFETY: valid owned set; is_set/get_u32 only read it.
        unsafe {
            sys::nftnl_set_is_set(self.0.as_ptr(), attr as u16)
                .then(|| sys::nftnl_set_get_u32(self.0.as_ptr(), attr as u16))
        }
    }

    /// Adds an element: its key; `flags` (e.g. `NFT_SET_ELEM_INTERVAL_END`); its own timeout
    /// and expiry. A zero timeout is never sent: the kernel reads it as "permanent".
    ///
    /// A handle may hold any number of elements; [`SetMsg::new`] refuses to put more than
    /// [`MAX_ELEMENTS_PER_MSG`] of them into one message.
    pub fn push_element(
        &mut self,
        key: Key,
        flags: u32,
        timeout: Option<Duration>,
        expiration: Option<Duration>,
    ) {
        // SAFETY: nftnl_set_elem_alloc has no preconditions (null aborts, as above).
        let raw = unsafe { sys::nftnl_set_elem_alloc() };
        let elem = NonNull::new(raw).unwrap_or_else(|| std::process::abort());
        let key = key.bytes();
        let len = u32::try_from(key.len()).expect("a Key is 4 or 16 bytes");
        // SAFETY: `elem` is valid; the key is copied by libnftnl into a fixed 64-byte register,
        // and a `Key` is at most 16 bytes (its type allows nothing longer); after
        // nftnl_set_elem_add the set owns the element and frees it with itself.
        unsafe {
            let e = elem.as_ptr();
            sys::nftnl_set_elem_set(e, sys::NFTNL_SET_ELEM_KEY as u16, key.as_ptr().cast(), len);
            if flags != 0 {
                sys::nftnl_set_elem_set_u32(e, sys::NFTNL_SET_ELEM_FLAGS as u16, flags);
            }
            if let Some(ms) = timeout.map(millis).filter(|&ms| ms > 0) {
                sys::nftnl_set_elem_set_u64(e, sys::NFTNL_SET_ELEM_TIMEOUT as u16, ms);
            }
            if let Some(ms) = expiration.map(millis).filter(|&ms| ms > 0) {
                sys::nftnl_set_elem_set_u64(e, sys::NFTNL_SET_ELEM_EXPIRATION as u16, ms);
            }
            sys::nftnl_set_elem_add(self.0.as_ptr(), e);
        }
    }

    /// How many elements the handle holds, counting no further than `limit + 1`.
    fn count_elements(&self, limit: usize) -> usize {
        let mut n = 0;
        // SAFETY: valid owned set; the iterator is destroyed before returning and the set is not
        // modified while it lives; the element pointers are only compared with null.
        unsafe {
            let iter = sys::nftnl_set_elems_iter_create(self.0.as_ptr());
            if iter.is_null() {
                return 0;
            }
            while n <= limit && !sys::nftnl_set_elems_iter_next(iter).is_null() {
                n += 1;
            }
            sys::nftnl_set_elems_iter_destroy(iter);
        }
        n
    }

    /// The elements the set holds (after parsing a dump, or as pushed).
    pub fn elements(&self) -> Vec<ElemInfo> {
        let mut out = Vec::new();
        // SAFETY: valid owned set; the iterator is destroyed before returning and the set is not
        // modified while it lives; element pointers it yields are owned by the set and only
        // read; the key pointer returned by nftnl_set_elem_get is valid for `len` bytes.
        unsafe {
            let iter = sys::nftnl_set_elems_iter_create(self.0.as_ptr());
            if iter.is_null() {
                return out;
            }
            // `next` returns the current element and advances (NULL after the last), so the
            // walk uses it alone: `cur` first would visit the first element twice.
            let mut e = sys::nftnl_set_elems_iter_next(iter);
            while !e.is_null() {
                let mut len: u32 = 0;
                let key = sys::nftnl_set_elem_get(e, sys::NFTNL_SET_ELEM_KEY as u16, &mut len);
                let key = if key.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(key.cast::<u8>(), len as usize).to_vec()
                };
                let get_u64 = |attr: u32| {
                    sys::nftnl_set_elem_is_set(e, attr as u16)
                        .then(|| Duration::from_millis(sys::nftnl_set_elem_get_u64(e, attr as u16)))
                };
                let flags = if sys::nftnl_set_elem_is_set(e, sys::NFTNL_SET_ELEM_FLAGS as u16) {
                    sys::nftnl_set_elem_get_u32(e, sys::NFTNL_SET_ELEM_FLAGS as u16)
                } else {
                    0
                };
                out.push(ElemInfo {
                    key,
                    flags,
                    timeout: get_u64(sys::NFTNL_SET_ELEM_TIMEOUT),
                    expiration: get_u64(sys::NFTNL_SET_ELEM_EXPIRATION),
                });
                e = sys::nftnl_set_elems_iter_next(iter);
            }
            sys::nftnl_set_elems_iter_destroy(iter);
        }
        out
    }

    /// Parses a NEWSET message (a GETSET reply) into this set.
    pub fn parse_set(&mut self, msg: &[u8]) -> bool {
        with_aligned(msg, |nlh| {
            // SAFETY: `nlh` is an aligned, length-checked netlink message (see with_aligned);
            // the set is valid and owned.
            unsafe { sys::nftnl_set_nlmsg_parse(nlh, self.0.as_ptr()) >= 0 }
        })
        .unwrap_or(false)
    }

    /// Parses a NEWSETELEM message (part of a GETSETELEM dump), adding its elements.
    pub fn parse_elems(&mut self, msg: &[u8]) -> bool {
        with_aligned(msg, |nlh| {
            // SAFETY: as in parse_set.
            unsafe { sys::nftnl_set_elems_nlmsg_parse(nlh, self.0.as_ptr()) >= 0 }
        })
        .unwrap_or(false)
    }
}

impl Drop for SetHandle {
    fn drop(&mut self) {
        // SAFETY: we own the set (and, through it, its elements); it is freed exactly once.
        unsafe { sys::nftnl_set_free(self.0.as_ptr()) }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A set message for a batch: NEWSET (create if missing, keep elements), DESTROYSET, or
/// NEWSETELEM, DESTROYSETELEM with the set's elements.
pub struct SetMsg<'a> {
    set: &'a SetHandle,
    kind: SetMsgKind,
}

/// What a [`SetMsg`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMsgKind {
    /// NEWSET with CREATE and without EXCL: creates the set, or leaves it (and its elements) be.
    CreateSet,
    /// NEWSETELEM with CREATE and without EXCL: an element that exists is updated, not an error.
    AddElements,
    /// DESTROYSETELEM (kernel ≥ 6.3): like delete, but a missing element is fine.
    DestroyElements,
    /// DESTROYSET (kernel ≥ 6.3): deletes the set with its elements; a missing set is fine.
    DestroySet,
}

/// `NFT_MSG_DESTROYSET` and `NFT_MSG_DESTROYSETELEM`, which neither the libc crate nor
/// Debian 12's headers define.
const NFT_MSG_DESTROYSET: u16 = 29;
const NFT_MSG_DESTROYSETELEM: u16 = 30;

impl<'a> SetMsg<'a> {
    /// A message of `kind` about `set`.
    ///
    /// # Errors
    ///
    /// [`TooManyElements`] when `set` holds more than [`MAX_ELEMENTS_PER_MSG`] elements: the
    /// message would not fit the buffer nftnl's batch writes it into. This check is what keeps
    /// [`nftnl::NlMsg::write`] below in bounds.
    pub fn new(set: &'a SetHandle, kind: SetMsgKind) -> Result<Self, TooManyElements> {
        let count = set.count_elements(MAX_ELEMENTS_PER_MSG);
        if count > MAX_ELEMENTS_PER_MSG {
            return Err(TooManyElements { count });
        }
        Ok(SetMsg { set, kind })
    }
}

// SAFETY: `write` builds one message into `buf`, which nftnl's Batch guarantees holds
// nft_nlmsg_maxsize() (64 KiB) bytes. `SetMsg::new`, the only way to make a SetMsg, refused any
// set with more than MAX_ELEMENTS_PER_MSG elements, each a `Key` of at most 16 bytes with at
// most a flag, a timeout and an expiry (under 64 bytes with headers): under 51 KiB in all, and
// the set's own attributes add under 600 bytes (two names of at most 255).
unsafe impl nftnl::NlMsg for SetMsg<'_> {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _msg_type: MsgType) {
        let create = (libc::NLM_F_CREATE | libc::NLM_F_ACK) as u16;
        let (msg_type, flags) = match self.kind {
            SetMsgKind::CreateSet => (libc::NFT_MSG_NEWSET as u16, create),
            SetMsgKind::AddElements => (libc::NFT_MSG_NEWSETELEM as u16, create),
            SetMsgKind::DestroyElements => (NFT_MSG_DESTROYSETELEM, libc::NLM_F_ACK as u16),
            SetMsgKind::DestroySet => (NFT_MSG_DESTROYSET, libc::NLM_F_ACK as u16),
        };
        let set = self.set.0.as_ptr();
        // SAFETY: the caller (nftnl's Batch) passes a buffer large enough for one message; the
        // family attribute was set when the handle was made; the set outlives this call.
        unsafe {
            let family = sys::nftnl_set_get_u32(set, sys::NFTNL_SET_FAMILY as u16) as u16;
            let nlh =
                sys::nftnl_nlmsg_build_hdr(buf.cast::<c_char>(), msg_type, family, flags, seq);
            match self.kind {
                SetMsgKind::CreateSet | SetMsgKind::DestroySet => {
                    sys::nftnl_set_nlmsg_build_payload(nlh, set);
                }
                _ => sys::nftnl_set_elems_nlmsg_build_payload(nlh, set),
            }
        }
    }
}

/// At most this many elements go into one message: at most 52 bytes each (an IPv6 start with
/// timeout and expiry; ends are 36), so a message stays under 42 KiB, below both netlink's
/// 64 KiB attribute limit and the batch page. [`SetMsg::new`] enforces it.
pub const MAX_ELEMENTS_PER_MSG: usize = 800;

/// A GET request, standalone (not in a batch): returns its bytes.
pub enum Request<'a> {
    /// GETSET for one set: family, table, name.
    Set(u32, &'a NftName, &'a NftName),
    /// GETSETELEM dump of one set: family, table, name.
    SetElements(u32, &'a NftName, &'a NftName),
    /// GETRULE dump of a family (every table).
    Rules(u32),
    /// GETCHAIN dump of a family.
    Chains(u32),
}

/// Builds the bytes of `request` with sequence number `seq`.
pub fn request(request: &Request<'_>, seq: u32) -> Vec<u8> {
    let size = nftnl::nft_nlmsg_maxsize() as usize;
    let mut buf = vec![0u32; size.div_ceil(4)];
    let dump = (libc::NLM_F_DUMP | libc::NLM_F_ACK) as u16;
    // A fresh handle holds no elements: the payload is the set's family and names only.
    let named = |family: u32, table: &NftName, name: &NftName| SetHandle::new(family, table, name);
    // SAFETY: `buf` is u32-aligned and nft_nlmsg_maxsize() bytes long; the handles are valid
    // for the duration of the call and hold two names of at most 255 bytes and no elements,
    // far below the buffer's size; nlmsg_len is written by libnftnl and bounded by the buffer.
    let len = unsafe {
        let p = buf.as_mut_ptr().cast::<c_char>();
        let nlh = match request {
            Request::Set(family, table, name) => {
                let set = named(*family, table, name);
                let nlh = sys::nftnl_nlmsg_build_hdr(
                    p,
                    libc::NFT_MSG_GETSET as u16,
                    *family as u16,
                    libc::NLM_F_ACK as u16,
                    seq,
                );
                sys::nftnl_set_nlmsg_build_payload(nlh, set.0.as_ptr());
                nlh
            }
            Request::SetElements(family, table, name) => {
                let set = named(*family, table, name);
                let nlh = sys::nftnl_nlmsg_build_hdr(
                    p,
                    libc::NFT_MSG_GETSETELEM as u16,
                    *family as u16,
                    dump,
                    seq,
                );
                sys::nftnl_set_elems_nlmsg_build_payload(nlh, set.0.as_ptr());
                nlh
            }
            Request::Rules(family) => sys::nftnl_nlmsg_build_hdr(
                p,
                libc::NFT_MSG_GETRULE as u16,
                *family as u16,
                dump,
                seq,
            ),
            Request::Chains(family) => sys::nftnl_nlmsg_build_hdr(
                p,
                libc::NFT_MSG_GETCHAIN as u16,
                *family as u16,
                dump,
                seq,
            ),
        };
        (*nlh).nlmsg_len as usize
    };
    buf.iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(len.min(size))
        .collect()
}

/// A rule as far as attach mode cares: where it is and which sets it looks up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule's table.
    pub table: String,
    /// The rule's chain.
    pub chain: String,
    /// Names of the sets its `lookup` expressions use.
    pub lookups: Vec<String>,
}

/// Parses a NEWRULE message (part of a GETRULE dump).
pub fn parse_rule(msg: &[u8]) -> Option<RuleInfo> {
    with_aligned(msg, |nlh| {
        // SAFETY: `nlh` is aligned and length-checked; the rule is allocated, parsed into, read
        // and freed here; expression pointers from the iterator are owned by the rule and only
        // read before the iterator and the rule are destroyed.
        unsafe {
            let rule = sys::nftnl_rule_alloc();
            if rule.is_null() {
                std::process::abort();
            }
            let info = if sys::nftnl_rule_nlmsg_parse(nlh, rule) >= 0 {
                let table = cstr(sys::nftnl_rule_get_str(rule, sys::NFTNL_RULE_TABLE as u16));
                let chain = cstr(sys::nftnl_rule_get_str(rule, sys::NFTNL_RULE_CHAIN as u16));
                let mut lookups = Vec::new();
                let iter = sys::nftnl_expr_iter_create(rule);
                if !iter.is_null() {
                    let mut e = sys::nftnl_expr_iter_next(iter);
                    while !e.is_null() {
                        if cstr(sys::nftnl_expr_get_str(e, sys::NFTNL_EXPR_NAME as u16)).as_deref()
                            == Some("lookup")
                        {
                            lookups.extend(cstr(sys::nftnl_expr_get_str(
                                e,
                                sys::NFTNL_EXPR_LOOKUP_SET as u16,
                            )));
                        }
                        e = sys::nftnl_expr_iter_next(iter);
                    }
                    sys::nftnl_expr_iter_destroy(iter);
                }
                table.zip(chain).map(|(table, chain)| RuleInfo {
                    table,
                    chain,
                    lookups,
                })
            } else {
                None
            };
            sys::nftnl_rule_free(rule);
            info
        }
    })
    .flatten()
}

/// A chain as far as attach mode cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    /// The chain's table.
    pub table: String,
    /// Its name.
    pub name: String,
    /// Whether it is a base chain (has a hook).
    pub base: bool,
}

/// Parses a NEWCHAIN message (part of a GETCHAIN dump).
pub fn parse_chain(msg: &[u8]) -> Option<ChainInfo> {
    with_aligned(msg, |nlh| {
        // SAFETY: `nlh` is aligned and length-checked; the chain is allocated, parsed into, read
        // and freed here; strings are copied before it is freed.
        unsafe {
            let chain = sys::nftnl_chain_alloc();
            if chain.is_null() {
                std::process::abort();
            }
            let info = if sys::nftnl_chain_nlmsg_parse(nlh, chain) >= 0 {
                let table = cstr(sys::nftnl_chain_get_str(
                    chain,
                    sys::NFTNL_CHAIN_TABLE as u16,
                ));
                let name = cstr(sys::nftnl_chain_get_str(
                    chain,
                    sys::NFTNL_CHAIN_NAME as u16,
                ));
                let base = sys::nftnl_chain_is_set(chain, sys::NFTNL_CHAIN_HOOKNUM as u16);
                table
                    .zip(name)
                    .map(|(table, name)| ChainInfo { table, name, base })
            } else {
                None
            };
            sys::nftnl_chain_free(chain);
            info
        }
    })
    .flatten()
}

/// Copies a string owned by a libnftnl object.
///
/// # Safety
///
/// `p` is null or points to a NUL-terminated string that stays valid during the call.
unsafe fn cstr(p: *const c_char) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Runs `f` on a copy of `msg` in a `u32`-aligned buffer, after checking that the message's
/// length field matches the bytes present. `None` if it does not.
fn with_aligned<T>(msg: &[u8], f: impl FnOnce(*const libc::nlmsghdr) -> T) -> Option<T> {
    let header = std::mem::size_of::<libc::nlmsghdr>();
    let len = u32::from_ne_bytes(msg.get(..4)?.try_into().ok()?) as usize;
    if len < header || len > msg.len() {
        return None;
    }
    let mut words = vec![0u32; len.div_ceil(4)];
    for (w, chunk) in words.iter_mut().zip(msg[..len].chunks(4)) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u32::from_ne_bytes(b);
    }
    Some(f(words.as_ptr().cast::<libc::nlmsghdr>()))
}

/// The file descriptor of an mnl socket, borrowed for as long as the socket.
pub fn socket_fd(socket: &mnl::Socket) -> std::os::fd::BorrowedFd<'_> {
    // SAFETY: mnl_socket_get_fd only reads the descriptor of a valid, open socket; the
    // descriptor stays open while `socket` lives, which the borrow's lifetime ties it to.
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(mnl_sys::mnl_socket_get_fd(socket.as_raw_socket()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> SetHandle {
        let name = |s| NftName::new(s).unwrap();
        SetHandle::new(
            libc::NFPROTO_INET as u32,
            &name("scansentry"),
            &name("allow6"),
        )
    }

    /// The limit that keeps a message inside nftnl's buffer is enforced by the constructor:
    /// one element past it is refused, not written.
    #[test]
    fn a_set_message_refuses_one_element_past_the_limit() {
        let mut full = set();
        for i in 0..MAX_ELEMENTS_PER_MSG {
            let key = Key::V6((u128::from(u32::try_from(i).unwrap()) << 8).to_be_bytes());
            let ttl = Some(Duration::from_secs(3600));
            full.push_element(key, 0, ttl, ttl);
        }
        assert!(SetMsg::new(&full, SetMsgKind::AddElements).is_ok());
        full.push_element(Key::V6([0xff; 16]), 0, None, None);
        let err = SetMsg::new(&full, SetMsgKind::AddElements)
            .err()
            .expect("refused");
        assert_eq!(err.count, MAX_ELEMENTS_PER_MSG + 1);
        for kind in [
            SetMsgKind::CreateSet,
            SetMsgKind::DestroyElements,
            SetMsgKind::DestroySet,
        ] {
            assert!(SetMsg::new(&full, kind).is_err(), "{kind:?}");
        }
        // The largest message allowed fits a batch's buffer with room to spare.
        let mut batch = nftnl::Batch::new();
        batch.add(
            &SetMsg::new(&set(), SetMsgKind::AddElements).unwrap(),
            MsgType::Add,
        );
        let mut at_limit = set();
        for i in 0..MAX_ELEMENTS_PER_MSG {
            let key = Key::V6((u128::from(u32::try_from(i).unwrap()) << 8).to_be_bytes());
            let ttl = Some(Duration::from_secs(u64::from(u32::MAX)));
            at_limit.push_element(key, 0, ttl, ttl);
        }
        batch.add(
            &SetMsg::new(&at_limit, SetMsgKind::AddElements).unwrap(),
            MsgType::Add,
        );
        let batch = batch.finalize();
        let bytes: usize = batch.iter().map(<[u8]>::len).sum();
        assert!(
            bytes < nftnl::nft_nlmsg_maxsize() as usize,
            "{bytes} bytes for {MAX_ELEMENTS_PER_MSG} elements"
        );
    }
}
