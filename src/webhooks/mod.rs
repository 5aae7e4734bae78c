//! Webhooks: URLs a tenant registers to be told of contact changes, signed as Standard
//! Webhooks asks (<https://www.standardwebhooks.com/>). Each change's event is queued for
//! each subscribed webhook in the change's own transaction ([`fan_out`]), and a worker in
//! `serve` delivers the queue ([`delivery`], [`worker`]): at least once, in order per
//! webhook and contact, retried with backoff, the webhook disabled after a run of failures.
pub mod delivery;
pub mod fan_out;
pub mod store;
pub mod worker;

/// The states of a delivery.
pub mod state {
    pub const PENDING: &str = "PENDING";
    pub const DELIVERING: &str = "DELIVERING";
    pub const DELIVERED: &str = "DELIVERED";
    pub const FAILED: &str = "FAILED";
}
