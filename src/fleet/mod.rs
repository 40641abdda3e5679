//! Fleet mode (issue 17, under way): hosts that share their blocks, and the probes that only
//! add up to a sweep across hosts, over NATS. What is here so far is the pure part — the
//! messages and their checks ([`message`]), the receiver's own rules for a block from another
//! host ([`gate`]) — on which the NATS link will be built; the configuration is
//! `config::fleet`. The README's "Fleet mode" section has the design.

pub mod gate;
pub mod message;
