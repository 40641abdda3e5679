//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

pub mod captures;
pub mod fail2ban;
pub mod fleet;
pub mod frames;
pub mod metrics;
pub mod netns;
pub mod nmap;
pub mod services;
