//! The few libnftnl calls the safe `nftnl` API does not cover: set flags and size, set elements
//! with their own timeout, element and set messages with chosen flags, and parsing what the
//! kernel sends back (set elements, sets, rules, chains). With `capture/raw/sys.rs` (the packet
//! socket's ring) and `process.rs` (a child's setup between fork and exec, and `-D`'s fork,
//! which [`fork`](crate::process::fork) refuses unless it counts one thread right before it),
//! the only `unsafe` in scansentry; each block says why it holds, and where an invariant matters beyond
//! one block, a constructor enforces it: [`SetMsg::new`] refuses a message that would overrun
//! the batch buffer, [`Key`] cannot be longer than 16 bytes, [`NftName`] holds no NUL,
//! [`RawExpr::new`] refuses an expression or attribute libnftnl would read at another width,
//! data longer than a register and strings with a NUL or too long.
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

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::NonNull;
use std::time::Duration;

use nftnl::MsgType;
use nftnl_sys as sys;
use nftnl_sys::libc;

use crate::config::nft::NftName;

/// An `nftnl_set`: names a set, carries its properties (for NEWSET), its elements (for
/// NEWSETELEM/DELSETELEM), or what the kernel said about it (after parsing).
pub struct SetHandle(NonNull<sys::nftnl_set>);

/// The key of an element of one of our sets, in network order: an address, a port, or a
/// protocol and a port. At most 16 bytes by construction, well within the 64-byte data register
/// libnftnl copies keys into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// An `ipv4_addr` key.
    V4([u8; 4]),
    /// An `ipv6_addr` key.
    V6([u8; 16]),
    /// An `inet_service` key: a port.
    Service([u8; 2]),
    /// An `inet_proto . inet_service` key: each field in a 32-bit register of its own, as the
    /// kernel concatenates them (the protocol's byte, then the port's two, each zero-padded).
    ProtoService([u8; 8]),
}

impl Key {
    /// The key's bytes, network order.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Key::V4(b) => b,
            Key::V6(b) => b,
            Key::Service(b) => b,
            Key::ProtoService(b) => b,
        }
    }

    /// `inet_service` `port`.
    pub fn service(port: u16) -> Self {
        Key::Service(port.to_be_bytes())
    }

    /// `inet_proto . inet_service`: IP protocol number `proto`, `port`.
    pub fn proto_service(proto: u8, port: u16) -> Self {
        let [hi, lo] = port.to_be_bytes();
        Key::ProtoService([proto, 0, 0, 0, hi, lo, 0, 0])
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

    /// Sets the set's user data (`NFTNL_SET_USERDATA`): what nft stores there to print the
    /// set's type back (a key's byte order; a concatenation's marker).
    pub fn set_userdata(&mut self, data: &[u8]) {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // SAFETY: valid owned set; libnftnl copies `len` bytes from `data`, which is that long
        // (a slice longer than u32::MAX cannot be one of ours: they are a few bytes).
        unsafe {
            sys::nftnl_set_set_data(
                self.0.as_ptr(),
                sys::NFTNL_SET_USERDATA as u16,
                data.as_ptr().cast(),
                len,
            );
        }
    }

    /// Sets a `u64` attribute (`NFTNL_SET_TIMEOUT`, in milliseconds).
    pub fn set_u64(&mut self, attr: u32, value: u64) {
        // SAFETY: valid owned set; u64 attributes are copied by value.
        unsafe { sys::nftnl_set_set_u64(self.0.as_ptr(), attr as u16, value) }
    }

    /// A `u32` attribute, if the kernel (or we) set it.
    pub fn get_u32(&self, attr: u32) -> Option<u32> {
        // SAFETY: valid owned set; is_set/get_u32 only read it.
        unsafe {
            sys::nftnl_set_is_set(self.0.as_ptr(), attr as u16)
                .then(|| sys::nftnl_set_get_u32(self.0.as_ptr(), attr as u16))
        }
    }

    /// A `u64` attribute (a set's default timeout, in ms), if the kernel (or we) set it.
    pub fn get_u64(&self, attr: u32) -> Option<u64> {
        // SAFETY: valid owned set; is_set/get_u64 only read it.
        unsafe {
            sys::nftnl_set_is_set(self.0.as_ptr(), attr as u16)
                .then(|| sys::nftnl_set_get_u64(self.0.as_ptr(), attr as u16))
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
    /// The nfnetlink_log groups its `log` expressions send to.
    pub log_groups: Vec<u16>,
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
                let mut log_groups = Vec::new();
                let iter = sys::nftnl_expr_iter_create(rule);
                if !iter.is_null() {
                    let mut e = sys::nftnl_expr_iter_next(iter);
                    while !e.is_null() {
                        let name = cstr(sys::nftnl_expr_get_str(e, sys::NFTNL_EXPR_NAME as u16));
                        match name.as_deref() {
                            Some("lookup") => lookups.extend(cstr(sys::nftnl_expr_get_str(
                                e,
                                sys::NFTNL_EXPR_LOOKUP_SET as u16,
                            ))),
                            Some("log")
                                if sys::nftnl_expr_is_set(e, sys::NFTNL_EXPR_LOG_GROUP as u16) =>
                            {
                                log_groups.push(sys::nftnl_expr_get_u16(
                                    e,
                                    sys::NFTNL_EXPR_LOG_GROUP as u16,
                                ));
                            }
                            _ => {}
                        }
                        e = sys::nftnl_expr_iter_next(iter);
                    }
                    sys::nftnl_expr_iter_destroy(iter);
                }
                table.zip(chain).map(|(table, chain)| RuleInfo {
                    table,
                    chain,
                    lookups,
                    log_groups,
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

/// The kind of value an expression's attribute takes, as libnftnl reads it: a setter of the
/// wrong width would make libnftnl read past the value, so every attribute written is looked up
/// in [`EXPR_ATTRS`] and must be given with its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// `nftnl_expr_set_u16`.
    U16,
    /// `nftnl_expr_set_u32` (registers, operators, flags, verdicts).
    U32,
    /// `nftnl_expr_set_u64` (rates, units, timeouts).
    U64,
    /// `nftnl_expr_set` with a length (compared data, masks): at most [`MAX_EXPR_DATA`] bytes.
    Data,
    /// `nftnl_expr_set_str`: no NUL, at most [`MAX_EXPR_STR`] bytes.
    Str,
    /// `nftnl_expr_add_expr`: a nested expression (dynset's stateful expression).
    Expr,
}

/// An attribute's value, of one of the [`AttrKind`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    /// 16 bits (libnftnl turns them to network order where the kernel wants it).
    U16(u16),
    /// 32 bits.
    U32(u32),
    /// 64 bits.
    U64(u64),
    /// Bytes, as they go to the kernel.
    Data(Vec<u8>),
    /// A string (a set's or chain's name, a log prefix).
    Str(String),
    /// A nested expression.
    Expr(Box<RawExpr>),
}

impl AttrValue {
    fn kind(&self) -> AttrKind {
        match self {
            AttrValue::U16(_) => AttrKind::U16,
            AttrValue::U32(_) => AttrKind::U32,
            AttrValue::U64(_) => AttrKind::U64,
            AttrValue::Data(_) => AttrKind::Data,
            AttrValue::Str(_) => AttrKind::Str,
            AttrValue::Expr(_) => AttrKind::Expr,
        }
    }
}

/// The most bytes of data an attribute carries: a 16-byte register (an IPv6 address, a mask).
pub const MAX_EXPR_DATA: usize = 16;
/// The longest string an attribute carries: nft's log prefix limit (127), which also covers our
/// set and chain names.
pub const MAX_EXPR_STR: usize = 127;
/// The longest expression name (the kernel's `NFT_EXPR_MAXNAMELEN` is 16 with the NUL).
pub const MAX_EXPR_NAME: usize = 15;

/// The expressions scansentry writes with [`RawExpr`], and each attribute it may set on them
/// with its kind, as libnftnl 1.2's setters read them.
pub const EXPR_ATTRS: &[(&str, &[(u32, AttrKind)])] = {
    use AttrKind::{Data, Expr, Str, U16, U32, U64};
    &[
        (
            "meta",
            &[
                (sys::NFTNL_EXPR_META_KEY, U32),
                (sys::NFTNL_EXPR_META_DREG, U32),
            ],
        ),
        (
            "cmp",
            &[
                (sys::NFTNL_EXPR_CMP_SREG, U32),
                (sys::NFTNL_EXPR_CMP_OP, U32),
                (sys::NFTNL_EXPR_CMP_DATA, Data),
            ],
        ),
        (
            "payload",
            &[
                (sys::NFTNL_EXPR_PAYLOAD_DREG, U32),
                (sys::NFTNL_EXPR_PAYLOAD_BASE, U32),
                (sys::NFTNL_EXPR_PAYLOAD_OFFSET, U32),
                (sys::NFTNL_EXPR_PAYLOAD_LEN, U32),
            ],
        ),
        (
            "bitwise",
            &[
                (sys::NFTNL_EXPR_BITWISE_SREG, U32),
                (sys::NFTNL_EXPR_BITWISE_DREG, U32),
                (sys::NFTNL_EXPR_BITWISE_OP, U32),
                (sys::NFTNL_EXPR_BITWISE_LEN, U32),
                (sys::NFTNL_EXPR_BITWISE_MASK, Data),
                (sys::NFTNL_EXPR_BITWISE_XOR, Data),
            ],
        ),
        (
            "ct",
            &[
                (sys::NFTNL_EXPR_CT_KEY, U32),
                (sys::NFTNL_EXPR_CT_DREG, U32),
            ],
        ),
        (
            "lookup",
            &[
                (sys::NFTNL_EXPR_LOOKUP_SREG, U32),
                (sys::NFTNL_EXPR_LOOKUP_SET, Str),
                (sys::NFTNL_EXPR_LOOKUP_SET_ID, U32),
                (sys::NFTNL_EXPR_LOOKUP_FLAGS, U32),
            ],
        ),
        (
            "dynset",
            &[
                (sys::NFTNL_EXPR_DYNSET_SREG_KEY, U32),
                (sys::NFTNL_EXPR_DYNSET_OP, U32),
                (sys::NFTNL_EXPR_DYNSET_TIMEOUT, U64),
                (sys::NFTNL_EXPR_DYNSET_SET_NAME, Str),
                (sys::NFTNL_EXPR_DYNSET_SET_ID, U32),
                (sys::NFTNL_EXPR_DYNSET_EXPRESSIONS, Expr),
            ],
        ),
        (
            "limit",
            &[
                (sys::NFTNL_EXPR_LIMIT_RATE, U64),
                (sys::NFTNL_EXPR_LIMIT_UNIT, U64),
                (sys::NFTNL_EXPR_LIMIT_BURST, U32),
                (sys::NFTNL_EXPR_LIMIT_TYPE, U32),
                (sys::NFTNL_EXPR_LIMIT_FLAGS, U32),
            ],
        ),
        (
            "log",
            &[
                (sys::NFTNL_EXPR_LOG_PREFIX, Str),
                (sys::NFTNL_EXPR_LOG_GROUP, U16),
                (sys::NFTNL_EXPR_LOG_QTHRESHOLD, U16),
            ],
        ),
        (
            "fib",
            &[
                (sys::NFTNL_EXPR_FIB_DREG, U32),
                (sys::NFTNL_EXPR_FIB_RESULT, U32),
                (sys::NFTNL_EXPR_FIB_FLAGS, U32),
            ],
        ),
        (
            "objref",
            &[
                (sys::NFTNL_EXPR_OBJREF_IMM_TYPE, U32),
                (sys::NFTNL_EXPR_OBJREF_IMM_NAME, Str),
            ],
        ),
        (
            "immediate",
            &[
                (sys::NFTNL_EXPR_IMM_DREG, U32),
                (sys::NFTNL_EXPR_IMM_VERDICT, U32),
                (sys::NFTNL_EXPR_IMM_CHAIN, Str),
            ],
        ),
        ("counter", &[]),
    ]
};

/// An expression [`RawExpr::new`] refused to write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadExpr {
    /// Not an expression of [`EXPR_ATTRS`].
    #[error("expression {0:?} is not one scansentry writes")]
    Unknown(String),
    /// An attribute [`EXPR_ATTRS`] does not list for this expression.
    #[error("expression {expr}: attribute {attr} is not one scansentry sets")]
    UnknownAttr {
        /// The expression.
        expr: String,
        /// libnftnl's attribute number.
        attr: u32,
    },
    /// An attribute given with a value of the wrong kind.
    #[error("expression {expr}: attribute {attr} takes {expected:?}, not {given:?}")]
    WrongKind {
        /// The expression.
        expr: String,
        /// libnftnl's attribute number.
        attr: u32,
        /// What libnftnl reads.
        expected: AttrKind,
        /// What was given.
        given: AttrKind,
    },
    /// Data longer than a register.
    #[error("expression {expr}: {len} bytes of data (at most {MAX_EXPR_DATA})")]
    DataTooLong {
        /// The expression.
        expr: String,
        /// The data's length.
        len: usize,
    },
    /// A string with a NUL, or too long.
    #[error(
        "expression {expr}: string {text:?} holds a NUL or is longer than {MAX_EXPR_STR} bytes"
    )]
    BadStr {
        /// The expression.
        expr: String,
        /// The string.
        text: String,
    },
}

/// One nf_tables expression the safe `nftnl` API does not offer (dynset, limit, log, fib,
/// objref; lookups with flags; loads into the 32-bit registers concatenations use): its name
/// and attributes, checked when made ([`RawExpr::new`]), written by libnftnl when a rule takes
/// it ([`nftnl::expr::Expression`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawExpr {
    name: CString,
    attrs: Vec<(u16, RawAttr)>,
}

/// An attribute as it will be written: strings already C strings.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RawAttr {
    U16(u16),
    U32(u32),
    U64(u64),
    Data(Vec<u8>),
    Str(CString),
    Expr(Box<RawExpr>),
}

impl RawExpr {
    /// Expression `name` with `attrs` (libnftnl's attribute numbers and values).
    ///
    /// # Errors
    ///
    /// [`BadExpr`] when `name` is not in [`EXPR_ATTRS`], an attribute is not listed for it or
    /// has a value of another kind, data is longer than [`MAX_EXPR_DATA`] bytes, or a string
    /// holds a NUL or is longer than [`MAX_EXPR_STR`] bytes. This is what keeps the writes of
    /// [`RawExpr::build`] within what libnftnl reads.
    pub fn new(name: &str, attrs: Vec<(u32, AttrValue)>) -> Result<Self, BadExpr> {
        let known = EXPR_ATTRS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .filter(|_| name.len() <= MAX_EXPR_NAME)
            .ok_or_else(|| BadExpr::Unknown(name.to_string()))?;
        let expr = || name.to_string();
        let mut out = Vec::with_capacity(attrs.len());
        for (attr, value) in attrs {
            let Some(&(_, expected)) = known.iter().find(|(a, _)| *a == attr) else {
                return Err(BadExpr::UnknownAttr { expr: expr(), attr });
            };
            if value.kind() != expected {
                return Err(BadExpr::WrongKind {
                    expr: expr(),
                    attr,
                    expected,
                    given: value.kind(),
                });
            }
            let raw = match value {
                AttrValue::U16(v) => RawAttr::U16(v),
                AttrValue::U32(v) => RawAttr::U32(v),
                AttrValue::U64(v) => RawAttr::U64(v),
                AttrValue::Data(d) if d.len() > MAX_EXPR_DATA => {
                    return Err(BadExpr::DataTooLong {
                        expr: expr(),
                        len: d.len(),
                    });
                }
                AttrValue::Data(d) => RawAttr::Data(d),
                AttrValue::Str(text) => match CString::new(text.clone()) {
                    Ok(c) if text.len() <= MAX_EXPR_STR => RawAttr::Str(c),
                    _ => return Err(BadExpr::BadStr { expr: expr(), text }),
                },
                AttrValue::Expr(e) => RawAttr::Expr(e),
            };
            // libnftnl's attribute numbers are small (under 16): the u16 it takes holds them.
            out.push((attr as u16, raw));
        }
        Ok(RawExpr {
            name: CString::new(name).map_err(|_| BadExpr::Unknown(name.to_string()))?,
            attrs: out,
        })
    }

    /// A new libnftnl expression with these attributes; the caller owns it (a rule, or the
    /// dynset it is nested in, frees it).
    fn build(&self) -> NonNull<sys::nftnl_expr> {
        // SAFETY: the name is a NUL-terminated string of EXPR_ATTRS, which libnftnl knows; a
        // null return (out of memory) aborts, as elsewhere.
        let raw = unsafe { sys::nftnl_expr_alloc(self.name.as_ptr()) };
        let e = NonNull::new(raw).unwrap_or_else(|| std::process::abort());
        for (attr, value) in &self.attrs {
            // SAFETY: `e` is a valid expression we own; RawExpr::new checked that each attribute
            // belongs to this expression and has the width libnftnl's setter for it reads; data
            // is at most 16 bytes (libnftnl copies it into a 64-byte register) and passed with
            // its length; strings are NUL-terminated and copied (strdup); a nested expression
            // is a fresh one whose ownership passes to `e` (freed with it).
            unsafe {
                let p = e.as_ptr();
                match value {
                    RawAttr::U16(v) => sys::nftnl_expr_set_u16(p, *attr, *v),
                    RawAttr::U32(v) => sys::nftnl_expr_set_u32(p, *attr, *v),
                    RawAttr::U64(v) => sys::nftnl_expr_set_u64(p, *attr, *v),
                    RawAttr::Data(d) => {
                        let len = u32::try_from(d.len()).unwrap_or(0);
                        sys::nftnl_expr_set(p, *attr, d.as_ptr().cast(), len);
                    }
                    RawAttr::Str(s) => {
                        sys::nftnl_expr_set_str(p, *attr, s.as_ptr());
                    }
                    RawAttr::Expr(inner) => {
                        sys::nftnl_expr_add_expr(p, u32::from(*attr), inner.build().as_ptr());
                    }
                }
            }
        }
        e
    }
}

impl nftnl::expr::Expression for RawExpr {
    fn to_expr(&self, _rule: &nftnl::Rule<'_>) -> NonNull<sys::nftnl_expr> {
        self.build()
    }
}

/// A named counter object (`counter score_full {}`): to create or destroy it in a batch, or to
/// read its packets back.
pub struct CounterObj(NonNull<sys::nftnl_obj>);

/// `NFT_OBJECT_COUNTER`.
const OBJECT_COUNTER: u32 = 1;
/// `NFT_MSG_DESTROYOBJ` (kernel ≥ 6.3: a missing object is fine).
const NFT_MSG_DESTROYOBJ: u16 = 31;

impl CounterObj {
    /// Counter `name` of `table` in `family`, at zero.
    pub fn new(family: u32, table: &NftName, name: &NftName) -> Self {
        let (table, name) = (table.to_c(), name.to_c());
        // SAFETY: nftnl_obj_alloc has no preconditions (null aborts, as above).
        let raw = unsafe { sys::nftnl_obj_alloc() };
        let obj = NonNull::new(raw).unwrap_or_else(|| std::process::abort());
        // SAFETY: valid owned object; strings are copied (strdup), integers by value.
        unsafe {
            let o = obj.as_ptr();
            sys::nftnl_obj_set_u32(o, sys::NFTNL_OBJ_FAMILY as u16, family);
            sys::nftnl_obj_set_str(o, sys::NFTNL_OBJ_TABLE as u16, table.as_ptr());
            sys::nftnl_obj_set_str(o, sys::NFTNL_OBJ_NAME as u16, name.as_ptr());
            sys::nftnl_obj_set_u32(o, sys::NFTNL_OBJ_TYPE as u16, OBJECT_COUNTER);
            sys::nftnl_obj_set_u64(o, sys::NFTNL_OBJ_CTR_PKTS as u16, 0);
            sys::nftnl_obj_set_u64(o, sys::NFTNL_OBJ_CTR_BYTES as u16, 0);
        }
        CounterObj(obj)
    }

    /// Parses a NEWOBJ message (a GETOBJ reply) into this object; its packets.
    pub fn parse_packets(&mut self, msg: &[u8]) -> Option<u64> {
        with_aligned(msg, |nlh| {
            // SAFETY: `nlh` is aligned and length-checked; the object is valid and owned.
            unsafe {
                (sys::nftnl_obj_nlmsg_parse(nlh, self.0.as_ptr()) >= 0).then(|| {
                    sys::nftnl_obj_get_u64(self.0.as_ptr(), sys::NFTNL_OBJ_CTR_PKTS as u16)
                })
            }
        })
        .flatten()
    }
}

impl Drop for CounterObj {
    fn drop(&mut self) {
        // SAFETY: we own the object; it is freed exactly once.
        unsafe { sys::nftnl_obj_free(self.0.as_ptr()) }
    }
}

/// A counter object message for a batch: NEWOBJ with CREATE and without EXCL (an existing
/// counter keeps its count), or DESTROYOBJ.
pub struct ObjMsg<'a> {
    /// The counter.
    pub obj: &'a CounterObj,
    /// Create it (or leave it be), or destroy it.
    pub create: bool,
}

// SAFETY: `write` builds one message into `buf`, which nftnl's Batch guarantees holds
// nft_nlmsg_maxsize() (64 KiB) bytes; a counter object carries two names of at most 255 bytes,
// its type and two counts: under 700 bytes.
unsafe impl nftnl::NlMsg for ObjMsg<'_> {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _msg_type: MsgType) {
        let (msg_type, flags) = if self.create {
            (
                libc::NFT_MSG_NEWOBJ as u16,
                (libc::NLM_F_CREATE | libc::NLM_F_ACK) as u16,
            )
        } else {
            (NFT_MSG_DESTROYOBJ, libc::NLM_F_ACK as u16)
        };
        let obj = self.obj.0.as_ptr();
        // SAFETY: as above; the object outlives this call and its family was set when made.
        unsafe {
            let family = sys::nftnl_obj_get_u32(obj, sys::NFTNL_OBJ_FAMILY as u16) as u16;
            let nlh =
                sys::nftnl_nlmsg_build_hdr(buf.cast::<c_char>(), msg_type, family, flags, seq);
            sys::nftnl_obj_nlmsg_build_payload(nlh, obj);
        }
    }
}

/// A GETOBJ request for counter `name` of `table` (a single reply, then the ACK).
pub fn counter_request(family: u32, table: &NftName, name: &NftName, seq: u32) -> Vec<u8> {
    let size = nftnl::nft_nlmsg_maxsize() as usize;
    let mut buf = vec![0u32; size.div_ceil(4)];
    let obj = CounterObj::new(family, table, name);
    // SAFETY: `buf` is u32-aligned and nft_nlmsg_maxsize() bytes long; the object holds two
    // names of at most 255 bytes, far below that; nlmsg_len is written by libnftnl.
    let len = unsafe {
        let nlh = sys::nftnl_nlmsg_build_hdr(
            buf.as_mut_ptr().cast::<c_char>(),
            libc::NFT_MSG_GETOBJ as u16,
            family as u16,
            libc::NLM_F_ACK as u16,
            seq,
        );
        sys::nftnl_obj_nlmsg_build_payload(nlh, obj.0.as_ptr());
        (*nlh).nlmsg_len as usize
    };
    buf.iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(len.min(size))
        .collect()
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

    /// The raw expression builder's constructor refuses what libnftnl would read past or the
    /// kernel would refuse: each limit, one step past it.
    #[test]
    fn a_raw_expression_refuses_each_limit_one_past_it() {
        let cmp = |data: Vec<u8>| {
            RawExpr::new(
                "cmp",
                vec![
                    (sys::NFTNL_EXPR_CMP_SREG, AttrValue::U32(1)),
                    (sys::NFTNL_EXPR_CMP_DATA, AttrValue::Data(data)),
                ],
            )
        };
        assert!(cmp(vec![0xff; MAX_EXPR_DATA]).is_ok());
        assert_eq!(
            cmp(vec![0xff; MAX_EXPR_DATA + 1]),
            Err(BadExpr::DataTooLong {
                expr: "cmp".into(),
                len: MAX_EXPR_DATA + 1
            })
        );
        let log = |prefix: String| {
            RawExpr::new(
                "log",
                vec![(sys::NFTNL_EXPR_LOG_PREFIX, AttrValue::Str(prefix))],
            )
        };
        assert!(log("a".repeat(MAX_EXPR_STR)).is_ok());
        assert!(matches!(
            log("a".repeat(MAX_EXPR_STR + 1)),
            Err(BadExpr::BadStr { .. })
        ));
        assert!(matches!(log("a\0b".into()), Err(BadExpr::BadStr { .. })));
        // An expression or attribute not in the table, a value of another width.
        assert_eq!(
            RawExpr::new("queue", vec![]),
            Err(BadExpr::Unknown("queue".into()))
        );
        assert_eq!(
            RawExpr::new(&"x".repeat(MAX_EXPR_NAME + 1), vec![]),
            Err(BadExpr::Unknown("x".repeat(MAX_EXPR_NAME + 1)))
        );
        assert_eq!(
            RawExpr::new("meta", vec![(sys::NFTNL_EXPR_META_SREG, AttrValue::U32(1))]),
            Err(BadExpr::UnknownAttr {
                expr: "meta".into(),
                attr: sys::NFTNL_EXPR_META_SREG
            })
        );
        assert_eq!(
            RawExpr::new(
                "log",
                vec![(sys::NFTNL_EXPR_LOG_GROUP, AttrValue::U32(2701))]
            ),
            Err(BadExpr::WrongKind {
                expr: "log".into(),
                attr: sys::NFTNL_EXPR_LOG_GROUP,
                expected: AttrKind::U16,
                given: AttrKind::U32
            })
        );
        // A nested expression is checked when it is made, and only dynset takes one.
        let limit = RawExpr::new(
            "limit",
            vec![(sys::NFTNL_EXPR_LIMIT_RATE, AttrValue::U64(1))],
        )
        .unwrap();
        let nested = |name: &str, attr| {
            RawExpr::new(name, vec![(attr, AttrValue::Expr(Box::new(limit.clone())))])
        };
        assert!(nested("dynset", sys::NFTNL_EXPR_DYNSET_EXPRESSIONS).is_ok());
        assert!(matches!(
            nested("lookup", sys::NFTNL_EXPR_LOOKUP_SET),
            Err(BadExpr::WrongKind { .. })
        ));
        // What the constructor took, a rule takes whole: libnftnl writes it back as made.
        let table = nftnl::Table::new(c"scansentry", nftnl::ProtoFamily::Inet);
        let chain = nftnl::Chain::new(c"count", &table);
        let mut rule = nftnl::Rule::new(&chain);
        rule.add_expr(&nested("dynset", sys::NFTNL_EXPR_DYNSET_EXPRESSIONS).unwrap());
        rule.add_expr(&cmp(vec![0xff; MAX_EXPR_DATA]).unwrap());
        let mut batch = nftnl::Batch::new();
        batch.add(&rule, MsgType::Add);
        let bytes: usize = batch.finalize().iter().map(<[u8]>::len).sum();
        assert!(bytes > 100, "{bytes}");
    }
}
